//! The kernel log, read from /dev/kmsg: the OOM killer's own lines, with the
//! kernel's timestamp of each kill, calibrated against CLOCK_MONOTONIC.
//!
//! One record per read; EAGAIN when there is none; EPIPE when the ring buffer
//! overwrote records we had not read yet (we skip ahead).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::monitor::clock::monotonic_ns;

pub const KMSG: &str = "/dev/kmsg";
/// The kernel log's device number, char 1:11 (Documentation/admin-guide/devices.txt).
const KMSG_DEV: (u32, u32) = (1, 11);

/// One record: its timestamp (µs since boot, the kernel's clock) and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts_us: u64,
    pub message: String,
}

/// What the OOM killer said about one victim, merged from its two lines.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Kill {
    pub pid: i32,
    pub comm: String,
    /// The kernel's timestamp of the kill, in its clock (µs since boot).
    pub ts_us: u64,
    /// `Memory cgroup out of memory: Killed process ...` as printed.
    pub line: String,
    pub anon_rss_bytes: Option<u64>,
    pub total_vm_bytes: Option<u64>,
    /// CONSTRAINT_MEMCG for a cgroup's own limit, CONSTRAINT_NONE for the host.
    pub constraint: Option<String>,
    /// The cgroup whose limit was hit, as the kernel names it.
    pub oom_memcg: Option<String>,
    /// The cgroup the victim lived in.
    pub task_memcg: Option<String>,
}

/// Parse `key=value` out of the `oom-kill:` line.
pub fn oom_kill_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(',')
        .find_map(|kv| kv.trim().strip_prefix(key)?.strip_prefix('='))
}

/// The `NNNkB` after `key` (with its separator: `anon-rss:`, `limit `), in bytes.
pub fn kb_field(line: &str, key: &str) -> Option<u64> {
    let rest = &line[crate::scan::find(line, key)? + key.len()..];
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .map_or(rest, |end| &rest[..end]);
    digits.parse::<u64>().ok()?.checked_mul(1024)
}

/// `PID (comm)` at the start of `rest`.
pub fn pid_comm(rest: &str) -> Option<(i32, String)> {
    let (pid, rest) = rest.split_once(' ')?;
    let comm = rest.strip_prefix('(')?.split(") ").next()?;
    Some((pid.parse().ok()?, comm.trim_end_matches(')').to_string()))
}

/// Parse the `Killed process PID (comm) ...` line.
pub fn parse_killed(message: &str) -> Option<(i32, String)> {
    pid_comm(&message[crate::scan::find(message, "Killed process ")? + "Killed process ".len()..])
}

/// Reads kernel log records as they arrive and pairs the OOM killer's lines.
#[derive(Debug)]
pub struct KmsgReader {
    file: File,
    /// Offset to add to a kernel timestamp (ns) to get CLOCK_MONOTONIC (ns);
    /// None when the marker never showed (the kernel rate-limits /dev/kmsg writes).
    pub offset_ns: Option<i64>,
    pending_oom_kill: Option<String>,
    buf: Vec<u8>,
}

impl KmsgReader {
    /// Open at the end of the log; calibrate the clock with a marker record
    /// once per process (the kernel allows ten /dev/kmsg writes per 5 s).
    pub fn open(run_id: &str) -> std::io::Result<KmsgReader> {
        static OFFSET: OnceLock<Option<i64>> = OnceLock::new();
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(KMSG)?;
        let meta = file.metadata()?;
        let dev = (libc::major(meta.rdev()), libc::minor(meta.rdev()));
        if !meta.file_type().is_char_device() || dev != KMSG_DEV {
            // A container runtime may put /dev/null there: it opens, says nothing.
            return Err(std::io::Error::other(format!(
                "it is not the kernel log (device {}:{}, not char 1:11)",
                dev.0, dev.1
            )));
        }
        file.seek(SeekFrom::End(0))?;
        let mut reader = KmsgReader {
            file,
            offset_ns: None,
            pending_oom_kill: None,
            buf: vec![0; 8192],
        };
        reader.offset_ns = *OFFSET.get_or_init(|| match reader.calibrate(run_id) {
            Ok(offset) => Some(offset),
            Err(e) => {
                eprintln!("oomsim: warning: cannot calibrate the kernel log's clock ({e}); detection latency will be missing");
                None
            }
        });
        Ok(reader)
    }

    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Write a marker through write(2) and see where the kernel stamped it.
    fn calibrate(&mut self, run_id: &str) -> std::io::Result<i64> {
        let marker = format!("oomsim: clock marker {run_id}");
        let mut writer = OpenOptions::new().write(true).open(KMSG)?;
        let before = monotonic_ns();
        // The newline finalises the record; without it the kernel holds it open
        // for a continuation and readers do not see it until the next record.
        writer.write_all(format!("{marker}\n").as_bytes())?;
        let after = monotonic_ns();
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            match self.next_record()? {
                Some(r) if r.message.ends_with(&marker) => {
                    let mid = (before + after) / 2;
                    return Ok(mid as i64 - (r.ts_us * 1000) as i64);
                }
                Some(_) => {}
                None => std::thread::sleep(Duration::from_micros(100)),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the clock marker never appeared in /dev/kmsg",
        ))
    }

    /// The next record, or None when none is waiting.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        loop {
            match self.file.read(&mut self.buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(parse_record(&self.buf[..n])),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Every OOM kill logged since the last call.
    pub fn kills(&mut self) -> std::io::Result<Vec<Kill>> {
        let mut out = Vec::new();
        while let Some(record) = self.next_record()? {
            if let Some(kill) = self.feed(record) {
                out.push(kill);
            }
        }
        Ok(out)
    }

    /// Pair the `oom-kill:` context line with the `Killed process` line after it.
    fn feed(&mut self, record: Record) -> Option<Kill> {
        if record.message.starts_with("oom-kill:") {
            self.pending_oom_kill = Some(record.message);
            return None;
        }
        let (pid, comm) = parse_killed(&record.message)?;
        let context = self
            .pending_oom_kill
            .take()
            .filter(|c| oom_kill_field(c, "pid") == Some(&pid.to_string()));
        let field = |k: &str| {
            context
                .as_deref()
                .and_then(|c| oom_kill_field(c, k))
                .map(str::to_string)
        };
        Some(Kill {
            pid,
            comm,
            ts_us: record.ts_us,
            anon_rss_bytes: kb_field(&record.message, "anon-rss:"),
            total_vm_bytes: kb_field(&record.message, "total-vm:"),
            constraint: field("oom-kill:constraint"),
            oom_memcg: field("oom_memcg"),
            task_memcg: field("task_memcg"),
            line: record.message,
        })
    }
}

/// A kernel log timestamp converted to CLOCK_MONOTONIC nanoseconds.
pub fn to_monotonic_ns(ts_us: u64, offset_ns: i64) -> u64 {
    ((ts_us * 1000) as i64 + offset_ns).max(0) as u64
}

/// `PRIO,SEQ,TS_US,FLAGS[,..];MESSAGE\n` (continuation lines after the message ignored).
pub fn parse_record(bytes: &[u8]) -> Option<Record> {
    let text = String::from_utf8_lossy(bytes);
    let (header, body) = text.split_once(';')?;
    let ts_us = header.split(',').nth(2)?.parse().ok()?;
    let message = body.lines().next().unwrap_or_default().to_string();
    Some(Record { ts_us, message })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTEXT: &str = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/oomsim/1-a/app,task_memcg=/oomsim/1-a/app,task=oomsim,pid=4242,uid=0";
    const KILLED: &str = "Memory cgroup out of memory: Killed process 4242 (oomsim) total-vm:70000kB, anon-rss:65432kB, file-rss:1200kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:0";

    #[test]
    fn parses_records() {
        let r =
            parse_record(b"3,1234,5678901,-;Memory cgroup out of memory\n SUBSYSTEM=x\n").unwrap();
        assert_eq!(r.ts_us, 5_678_901);
        assert_eq!(r.message, "Memory cgroup out of memory");
        assert!(parse_record(b"garbage").is_none());
    }

    #[test]
    fn pairs_context_with_kill_line() {
        let mut reader = KmsgReader {
            file: File::open("/dev/null").unwrap(),
            offset_ns: None,
            pending_oom_kill: None,
            buf: vec![],
        };
        assert!(
            reader
                .feed(Record {
                    ts_us: 10,
                    message: CONTEXT.into()
                })
                .is_none()
        );
        let kill = reader
            .feed(Record {
                ts_us: 11,
                message: KILLED.into(),
            })
            .unwrap();
        assert_eq!(kill.pid, 4242);
        assert_eq!(kill.comm, "oomsim");
        assert_eq!(kill.ts_us, 11);
        assert_eq!(kill.anon_rss_bytes, Some(65432 * 1024));
        assert_eq!(kill.total_vm_bytes, Some(70000 * 1024));
        assert_eq!(kill.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(kill.task_memcg.as_deref(), Some("/oomsim/1-a/app"));
        // A kill line whose context named another pid carries no context.
        reader.feed(Record {
            ts_us: 12,
            message: CONTEXT.replace("pid=4242", "pid=1"),
        });
        let kill = reader
            .feed(Record {
                ts_us: 13,
                message: KILLED.into(),
            })
            .unwrap();
        assert_eq!(kill.task_memcg, None);
    }

    #[test]
    fn host_level_kill_line() {
        assert_eq!(
            parse_killed("Out of memory: Killed process 77 (java) total-vm:1kB, anon-rss:1kB"),
            Some((77, "java".to_string()))
        );
        assert_eq!(parse_killed("something else"), None);
        assert_eq!(
            pid_comm("4242 (java) total-vm"),
            Some((4242, "java".into()))
        );
        assert_eq!(pid_comm("(java)"), None);
        assert_eq!(kb_field("x anon-rss:10kB, y", "anon-rss:"), Some(10240));
        assert_eq!(
            kb_field("anon-rss:99999999999999999999kB", "anon-rss:"),
            None
        );
    }
}
