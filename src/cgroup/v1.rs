//! cgroup v1 memory controller: `memory.limit_in_bytes` with
//! `memory.memsw.limit_in_bytes` kept at or above it, the `oom_kill` counter
//! in `memory.oom_control`, and OOM notification through an eventfd
//! registered in `cgroup.event_control`.

use std::fs::OpenOptions;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{Backend, Notifier, Result, Swap, Version, io_err, read_u64, write_file};

pub const MEMORY_LIMIT: &str = "memory.limit_in_bytes";
pub const MEMORY_MEMSW_LIMIT: &str = "memory.memsw.limit_in_bytes";
pub const MEMORY_USAGE: &str = "memory.usage_in_bytes";
pub const MEMORY_MAX_USAGE: &str = "memory.max_usage_in_bytes";
pub const MEMORY_OOM_CONTROL: &str = "memory.oom_control";
pub const MEMORY_SWAPPINESS: &str = "memory.swappiness";
pub const CGROUP_EVENT_CONTROL: &str = "cgroup.event_control";

#[derive(Debug)]
pub struct V1 {
    root: PathBuf,
}

impl V1 {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

/// "-1" means unlimited to the v1 files.
fn limit_text(limit: Option<u64>) -> String {
    limit.map_or_else(|| "-1".to_string(), |l| l.to_string())
}

impl Backend for V1 {
    fn version(&self) -> Version {
        Version::V1
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn enable_children(&self, _dir: &Path) -> Result<()> {
        // Hierarchical accounting (use_hierarchy) is inherited; nothing to enable.
        Ok(())
    }

    fn set_limit(&self, dir: &Path, limit: Option<u64>, swap: bool) -> Result<Swap> {
        let mem = dir.join(MEMORY_LIMIT);
        let memsw = dir.join(MEMORY_MEMSW_LIMIT);
        if !memsw.exists() {
            // Swap accounting is off on this kernel (no swapaccount=1): only
            // the memory limit exists, and a pod may swap whatever it asked.
            write_file(&mem, &limit_text(limit))?;
            return Ok(Swap::Uncontrolled);
        }
        let memsw_limit = if swap { None } else { limit };
        // The kernel keeps memsw >= limit at every step: lower the limit first,
        // raise memsw first.
        let current = read_u64(&mem)?;
        if limit.unwrap_or(u64::MAX) < current {
            write_file(&mem, &limit_text(limit))?;
            write_file(&memsw, &limit_text(memsw_limit))?;
        } else {
            write_file(&memsw, &limit_text(memsw_limit))?;
            write_file(&mem, &limit_text(limit))?;
        }
        let swappiness = dir.join(MEMORY_SWAPPINESS);
        if !swap && swappiness.exists() {
            write_file(&swappiness, "0")?;
        }
        Ok(if swap { Swap::Allowed } else { Swap::Off })
    }

    fn usage_file(&self) -> &'static str {
        MEMORY_USAGE
    }

    fn oom_kill_counter(&self) -> (&'static str, &'static str) {
        (MEMORY_OOM_CONTROL, "oom_kill")
    }

    fn peak(&self, dir: &Path) -> Result<Option<u64>> {
        read_u64(&dir.join(MEMORY_MAX_USAGE)).map(Some)
    }

    fn stat_keys(&self) -> [&'static str; 3] {
        ["total_rss", "total_cache", "total_inactive_file"]
    }

    fn oom_notifier(&self, dir: &Path) -> Result<Notifier> {
        let control_path = dir.join(MEMORY_OOM_CONTROL);
        let control = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&control_path)
            .map_err(io_err(&control_path))?;
        let fd = OwnedFd::from(
            EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| io_err(&control_path)(e.into()))?,
        );
        write_file(
            &dir.join(CGROUP_EVENT_CONTROL),
            &format!("{} {}", fd.as_raw_fd(), control.as_raw_fd()),
        )?;
        Ok(Notifier {
            fd,
            _keep: Some(control),
        })
    }

    fn set_oom_group(&self, _dir: &Path) -> Result<bool> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::MEMORY_STAT;
    use std::fs;

    fn fake_cgroup() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pod");
        fs::create_dir(&dir).unwrap();
        let unlimited = "9223372036854771712\n";
        for (name, content) in [
            (MEMORY_LIMIT, unlimited),
            (MEMORY_MEMSW_LIMIT, unlimited),
            (MEMORY_SWAPPINESS, "60\n"),
            (MEMORY_USAGE, "1234\n"),
            (MEMORY_MAX_USAGE, "67108864\n"),
            (
                MEMORY_OOM_CONTROL,
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            (
                MEMORY_STAT,
                "cache 5\nrss 6\ntotal_cache 4096\ntotal_rss 8192\ntotal_inactive_file 1024\n",
            ),
            (CGROUP_EVENT_CONTROL, ""),
            ("cgroup.procs", ""),
        ] {
            fs::write(dir.join(name), content).unwrap();
        }
        (tmp, dir)
    }

    #[test]
    fn limit_and_memsw_follow_each_other() {
        let (_tmp, dir) = fake_cgroup();
        let v1 = V1::new(dir.parent().unwrap());
        assert_eq!(
            v1.set_limit(&dir, Some(64 << 20), false).unwrap(),
            Swap::Off
        );
        assert_eq!(
            fs::read_to_string(dir.join(MEMORY_LIMIT)).unwrap(),
            "67108864"
        );
        assert_eq!(
            fs::read_to_string(dir.join(MEMORY_MEMSW_LIMIT)).unwrap(),
            "67108864"
        );
        assert_eq!(
            fs::read_to_string(dir.join(MEMORY_SWAPPINESS)).unwrap(),
            "0"
        );
        assert_eq!(
            v1.set_limit(&dir, Some(128 << 20), true).unwrap(),
            Swap::Allowed
        );
        assert_eq!(
            fs::read_to_string(dir.join(MEMORY_LIMIT)).unwrap(),
            "134217728"
        );
        assert_eq!(
            fs::read_to_string(dir.join(MEMORY_MEMSW_LIMIT)).unwrap(),
            "-1"
        );
        v1.set_limit(&dir, None, false).unwrap();
        assert_eq!(fs::read_to_string(dir.join(MEMORY_LIMIT)).unwrap(), "-1");
    }

    #[test]
    fn without_swap_accounting_swap_is_uncontrolled_and_said() {
        let (_tmp, dir) = fake_cgroup();
        fs::remove_file(dir.join(MEMORY_MEMSW_LIMIT)).unwrap();
        let v1 = V1::new(dir.parent().unwrap());
        assert_eq!(
            v1.set_limit(&dir, Some(64 << 20), false).unwrap(),
            Swap::Uncontrolled
        );
        assert_eq!(
            fs::read_to_string(dir.join(MEMORY_LIMIT)).unwrap(),
            "67108864"
        );
    }

    #[test]
    fn reads_counters_and_stat() {
        let (_tmp, dir) = fake_cgroup();
        let v1 = V1::new(dir.parent().unwrap());
        let cg = super::super::Cgroup {
            backend: std::sync::Arc::new(V1::new(dir.parent().unwrap())),
            path: dir.clone(),
        };
        assert_eq!(cg.oom_kills().unwrap(), 2);
        assert_eq!(cg.usage().unwrap().read_number().unwrap(), 1234);
        assert_eq!(v1.peak(&dir).unwrap(), Some(64 << 20));
        let stat = v1.stat(&dir).unwrap();
        assert_eq!(
            (stat.anon_bytes, stat.file_bytes, stat.inactive_file_bytes),
            (8192, 4096, 1024)
        );
        assert_eq!(cg.kernel_name(), "/pod");
    }

    #[test]
    fn notifier_registers_eventfd_with_oom_control() {
        let (_tmp, dir) = fake_cgroup();
        let v1 = V1::new(dir.parent().unwrap());
        let n = v1.oom_notifier(&dir).unwrap();
        let written = fs::read_to_string(dir.join(CGROUP_EVENT_CONTROL)).unwrap();
        let fds: Vec<i32> = written.split(' ').map(|s| s.parse().unwrap()).collect();
        assert_eq!(fds[0], n.fd.as_raw_fd());
        assert_eq!(fds[1], n._keep.as_ref().unwrap().as_raw_fd());
    }

    #[test]
    fn missing_file_error_names_the_path() {
        let (_tmp, dir) = fake_cgroup();
        fs::remove_file(dir.join(MEMORY_STAT)).unwrap();
        let e = V1::new(dir.parent().unwrap())
            .stat(&dir)
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory.stat"), "{e}");
    }
}
