//! Where the memory went inside the runtime, sampled beside the cgroup's
//! charge: the JVM's native memory tracking (committed, per category), Node's
//! `process.memoryUsage()`, Go's gctrace lines, Python's mappings from
//! `/proc/PID/smaps`. Parts are in stacking order, heap first, so what the
//! heap flag does not cap is what lies above the heap.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Runtime;

/// One reading: seconds since the container started, bytes per part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartSample {
    pub t_s: f64,
    pub bytes: Vec<u64>,
}

/// A container's runtime memory over its run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeMemory {
    pub runtime: Runtime,
    /// Where the numbers come from.
    pub source: String,
    /// The parts' names, in stacking order.
    pub parts: Vec<String>,
    pub samples: Vec<PartSample>,
    /// Go: collections counted, and the heap goal after the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_gc_bytes: Option<u64>,
}

impl RuntimeMemory {
    fn new(runtime: Runtime, source: &str, parts: &[&str]) -> RuntimeMemory {
        RuntimeMemory {
            runtime,
            source: source.into(),
            parts: parts.iter().map(|p| p.to_string()).collect(),
            samples: Vec::new(),
            gc_count: None,
            next_gc_bytes: None,
        }
    }

    /// The split at `t_s` (the cgroup's peak): the reading nearest in time.
    pub fn at(&self, t_s: f64) -> Option<&PartSample> {
        self.samples
            .iter()
            .min_by(|a, b| (a.t_s - t_s).abs().total_cmp(&(b.t_s - t_s).abs()))
    }
}

/// A JSON line the Java agent or the Node preload wrote.
#[derive(Deserialize)]
struct Line {
    t_ns: u64,
    bytes: Vec<u64>,
}

/// The samples a run's agent wrote (`start_ns`: the container's start, on
/// the same monotonic clock).
fn from_lines(mut m: RuntimeMemory, text: &str, start_ns: u64) -> RuntimeMemory {
    m.samples = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Line>(l).ok())
        .filter(|l| l.bytes.len() == m.parts.len() && l.t_ns >= start_ns)
        .map(|l| PartSample {
            t_s: l.t_ns.saturating_sub(start_ns) as f64 / 1e9,
            bytes: l.bytes,
        })
        .collect();
    m
}

/// Go's `GODEBUG=gctrace=1` lines in the log: `gc 3 @0.105s 4%: ...,
/// 33->34->16 MB, 34 MB goal, ...` (heap at the start of the collection,
/// at its end, live; the goal of the next). Seconds count from the
/// program's start.
fn from_gctrace(log: &str) -> RuntimeMemory {
    let mut m = RuntimeMemory::new(
        Runtime::Go,
        "Go's gctrace (GODEBUG=gctrace=1): heap at each collection",
        &["live heap", "garbage"],
    );
    for line in log.lines() {
        let Some(rest) = line.trim().strip_prefix("gc ") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let (Some(n), Some(at)) = (words.next(), words.next()) else {
            continue;
        };
        let (Ok(n), Some(t_s)) = (
            n.parse::<u64>(),
            at.strip_prefix('@')
                .and_then(|a| a.strip_suffix('s'))
                .and_then(|a| a.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let Some(heaps) = rest
            .split(", ")
            .find(|p| p.contains("->") && p.ends_with(" MB"))
        else {
            continue;
        };
        let mb: Vec<u64> = heaps
            .trim_end_matches(" MB")
            .split("->")
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        let [start, _end, live] = mb[..] else {
            continue;
        };
        let goal = rest
            .split(", ")
            .find_map(|p| p.strip_suffix(" MB goal"))
            .and_then(|g| g.trim().parse::<u64>().ok());
        m.samples.push(PartSample {
            t_s,
            bytes: vec![live << 20, start.saturating_sub(live) << 20],
        });
        m.gc_count = Some(n);
        m.next_gc_bytes = goal.map(|g| g << 20);
    }
    m
}

/// What a Python process's mappings hold, from `/proc/PID/smaps`:
/// proportional sizes (a pre-forked worker shares its parent's pages).
pub fn python_split(smaps: &str) -> Vec<u64> {
    let mut parts = vec![0u64; PYTHON_PARTS.len()];
    let mut which: Option<usize> = None;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let first = words.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: "start-end perms offset dev inode [path]".
            let path = words.nth(4);
            which = match path {
                None | Some("[heap]") => Some(0),
                Some("[stack]") => Some(1),
                Some(p) if p.starts_with('[') => None,
                Some(_) => Some(2),
            };
            continue;
        }
        // Anonymous mappings count whole; a file's count only its private
        // written pages, which are charged as anonymous memory.
        let field = if which == Some(2) {
            "Pss_Dirty:"
        } else {
            "Pss:"
        };
        if first == field
            && let (Some(i), Some(kb)) = (which, words.next().and_then(|v| v.parse::<u64>().ok()))
        {
            parts[i] += kb << 10;
        }
    }
    parts
}

pub const PYTHON_PARTS: [&str; 3] = [
    "objects (malloc heap and arenas)",
    "stacks",
    "libraries (written pages)",
];

/// A container run's runtime memory: Java's and Node's from the file their
/// agent wrote, Go's from its log, Python's from the harness's samples.
pub fn collect(
    runtime: Runtime,
    stats: &Path,
    log_tail: &str,
    start_ns: u64,
    python: Vec<PartSample>,
) -> Option<RuntimeMemory> {
    let m = match runtime {
        Runtime::Java => from_lines(
            RuntimeMemory::new(
                runtime,
                "heap and direct buffers in use (MXBeans), metaspace, threads, code and GC committed (native memory tracking), the rest of RssAnon",
                &[
                    "heap",
                    "direct buffers",
                    "metaspace",
                    "threads",
                    "code",
                    "gc",
                    "other native",
                ],
            ),
            &std::fs::read_to_string(stats).ok()?,
            start_ns,
        ),
        Runtime::Node => from_lines(
            RuntimeMemory::new(
                runtime,
                "process.memoryUsage() and RssAnon",
                &["V8 heap", "array buffers", "external", "native other"],
            ),
            &std::fs::read_to_string(stats).ok()?,
            start_ns,
        ),
        Runtime::Go => from_gctrace(log_tail),
        Runtime::Python => {
            let mut m = RuntimeMemory::new(
                runtime,
                "/proc/PID/smaps of the container's processes (proportional)",
                &PYTHON_PARTS,
            );
            m.samples = python;
            m
        }
    };
    (!m.samples.is_empty()).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_gctrace_lines() {
        // Go 1.19's format (runtime/mgc.go, gcMarkTermination).
        let log = "live 64 MiB\n\
            gc 1 @0.011s 1%: 0.012+0.45+0.003 ms clock, 0.02+0.1/0.2/0+0.006 ms cpu, 4->4->2 MB, 4 MB goal, 0 MB stacks, 0 MB globals, 2 P\n\
            gc 2 @1.504s 3%: 0.010+2.1+0.004 ms clock, 0.02+0.3/1.9/0+0.008 ms cpu, 130->131->64 MB, 132 MB goal, 0 MB stacks, 0 MB globals, 2 P\n";
        let m = from_gctrace(log);
        assert_eq!(m.samples.len(), 2);
        assert_eq!(m.samples[1].t_s, 1.504);
        assert_eq!(m.samples[1].bytes, vec![64 << 20, 66 << 20]);
        assert_eq!((m.gc_count, m.next_gc_bytes), (Some(2), Some(132 << 20)));
        assert_eq!(m.at(1.0).unwrap().t_s, 1.504, "the nearest reading");
        assert_eq!(m.at(0.5).unwrap().t_s, 0.011);
    }

    #[test]
    fn python_mappings_split() {
        let smaps = "\
5600-5700 rw-p 00000000 00:00 0                          [heap]
Rss:                1024 kB
Pss:                1024 kB
Pss_Dirty:          1024 kB
7f00-7f80 rw-p 00000000 00:00 0 
Pss:                 512 kB
Pss_Dirty:           512 kB
7f80-7f90 r-xp 00000000 fe:00 1234                       /usr/lib/libpython3.11.so
Pss:                2048 kB
Pss_Dirty:             0 kB
7f90-7fa0 rw-p 00000000 fe:00 1234                       /usr/lib/libpython3.11.so
Pss:                  64 kB
Pss_Dirty:            32 kB
7ffc-7ffd rw-p 00000000 00:00 0                          [stack]
Pss:                 132 kB
ffff-ffff r-xp 00000000 00:00 0                          [vdso]
Pss:                   4 kB
";
        assert_eq!(python_split(smaps), vec![1536 << 10, 132 << 10, 32 << 10]);
    }

    #[test]
    fn agent_lines_on_the_pod_clock() {
        let m = RuntimeMemory::new(Runtime::Java, "nmt", &["heap", "other"]);
        let text = "{\"t_ns\":1500000000,\"bytes\":[100,5]}\nnot json\n{\"t_ns\":2000000000,\"bytes\":[1]}\n";
        let m = from_lines(m, text, 1_000_000_000);
        assert_eq!(
            m.samples,
            vec![PartSample {
                t_s: 0.5,
                bytes: vec![100, 5]
            }]
        );
    }
}
