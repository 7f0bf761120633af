//! cgroup v2 memory controller: `memory.max`, `memory.swap.max`, the
//! `oom_kill` counter in `memory.events`, and inotify on that file for
//! notification.

use std::os::fd::OwnedFd;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use std::path::{Path, PathBuf};

use super::{Backend, Notifier, Result, Swap, Version, io_err, read_file, read_u64, write_file};

pub const MEMORY_MAX: &str = "memory.max";
pub const MEMORY_SWAP_MAX: &str = "memory.swap.max";
pub const MEMORY_CURRENT: &str = "memory.current";
pub const MEMORY_PEAK: &str = "memory.peak";
pub const MEMORY_OOM_GROUP: &str = "memory.oom.group";
pub const MEMORY_EVENTS: &str = "memory.events";
pub const CGROUP_SUBTREE_CONTROL: &str = "cgroup.subtree_control";

#[derive(Debug)]
pub struct V2 {
    root: PathBuf,
}

impl V2 {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
}

impl Backend for V2 {
    fn version(&self) -> Version {
        Version::V2
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn enable_children(&self, dir: &Path) -> Result<()> {
        // Every ancestor up to the root must pass the memory controller down.
        let mut chain: Vec<&Path> = dir
            .ancestors()
            .take_while(|p| p.starts_with(&self.root))
            .collect();
        chain.reverse();
        for d in chain {
            let control = d.join(CGROUP_SUBTREE_CONTROL);
            let enabled = read_file(&control)?;
            if !enabled.split_whitespace().any(|c| c == "memory") {
                write_file(&control, "+memory")?;
            }
        }
        Ok(())
    }

    fn set_limit(&self, dir: &Path, limit: Option<u64>, swap: bool) -> Result<Swap> {
        write_file(
            &dir.join(MEMORY_MAX),
            &limit.map_or_else(|| "max".to_string(), |l| l.to_string()),
        )?;
        let swap_max = dir.join(MEMORY_SWAP_MAX);
        if !swap_max.exists() {
            // A kernel built without swap accounting has no memory.swap.max.
            return Ok(Swap::Uncontrolled);
        }
        write_file(&swap_max, if swap { "max" } else { "0" })?;
        Ok(if swap { Swap::Allowed } else { Swap::Off })
    }

    fn usage_file(&self) -> &'static str {
        MEMORY_CURRENT
    }

    fn oom_kill_counter(&self) -> (&'static str, &'static str) {
        (MEMORY_EVENTS, "oom_kill")
    }

    fn peak(&self, dir: &Path) -> Result<Option<u64>> {
        let path = dir.join(MEMORY_PEAK);
        // memory.peak arrived in Linux 5.19; older kernels have none.
        if !path.exists() {
            return Ok(None);
        }
        read_u64(&path).map(Some)
    }

    fn stat_keys(&self) -> [&'static str; 3] {
        ["anon", "file", "inactive_file"]
    }

    fn oom_notifier(&self, dir: &Path) -> Result<Notifier> {
        let events = dir.join(MEMORY_EVENTS);
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| io_err(&events)(e.into()))?;
        inotify
            .add_watch(&events, AddWatchFlags::IN_MODIFY)
            .map_err(|e| io_err(&events)(e.into()))?;
        Ok(Notifier {
            fd: OwnedFd::from(inotify),
            _keep: None,
        })
    }

    fn set_oom_group(&self, dir: &Path) -> Result<bool> {
        let path = dir.join(MEMORY_OOM_GROUP);
        // memory.oom.group arrived in Linux 4.19.
        if !path.exists() {
            return Ok(false);
        }
        write_file(&path, "1")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::{MEMORY_STAT, MemStat};
    use std::fs;

    fn fake_tree() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let pod = tmp.path().join("oomsim").join("run").join("pod");
        fs::create_dir_all(&pod).unwrap();
        for d in [
            tmp.path(),
            &tmp.path().join("oomsim"),
            &tmp.path().join("oomsim/run"),
        ] {
            fs::write(d.join(CGROUP_SUBTREE_CONTROL), "cpu").unwrap();
        }
        for (name, content) in [
            (MEMORY_MAX, "max\n"),
            (MEMORY_SWAP_MAX, "max\n"),
            (MEMORY_CURRENT, "4096\n"),
            (MEMORY_EVENTS, "low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n"),
            (MEMORY_STAT, "anon 100\nfile 200\ninactive_file 50\n"),
            ("cgroup.procs", ""),
        ] {
            fs::write(pod.join(name), content).unwrap();
        }
        (tmp, pod)
    }

    #[test]
    fn limit_turns_swap_off() {
        let (tmp, pod) = fake_tree();
        let v2 = V2::new(tmp.path());
        v2.set_limit(&pod, Some(64 << 20), false).unwrap();
        assert_eq!(
            fs::read_to_string(pod.join(MEMORY_MAX)).unwrap(),
            "67108864"
        );
        assert_eq!(fs::read_to_string(pod.join(MEMORY_SWAP_MAX)).unwrap(), "0");
        v2.set_limit(&pod, None, true).unwrap();
        assert_eq!(fs::read_to_string(pod.join(MEMORY_MAX)).unwrap(), "max");
        assert_eq!(
            fs::read_to_string(pod.join(MEMORY_SWAP_MAX)).unwrap(),
            "max"
        );
    }

    /// The kubelet's group kill: memory.oom.group=1 where the kernel has it
    /// (4.19+), and a plain "no" where it does not.
    #[test]
    fn oom_group_is_set_where_the_kernel_has_it() {
        let (tmp, pod) = fake_tree();
        let v2 = V2::new(tmp.path());
        assert!(!v2.set_oom_group(&pod).unwrap(), "no file: an old kernel");
        fs::write(pod.join(MEMORY_OOM_GROUP), "0\n").unwrap();
        assert!(v2.set_oom_group(&pod).unwrap());
        assert_eq!(fs::read_to_string(pod.join(MEMORY_OOM_GROUP)).unwrap(), "1");
        let v1 = crate::cgroup::v1::V1::new(tmp.path());
        assert!(!v1.set_oom_group(&pod).unwrap(), "v1 has no group kill");
    }

    #[test]
    fn enables_memory_down_the_chain() {
        let (tmp, pod) = fake_tree();
        let v2 = V2::new(tmp.path());
        v2.enable_children(pod.parent().unwrap()).unwrap();
        for d in [
            tmp.path().to_path_buf(),
            tmp.path().join("oomsim"),
            tmp.path().join("oomsim/run"),
        ] {
            assert_eq!(
                fs::read_to_string(d.join(CGROUP_SUBTREE_CONTROL)).unwrap(),
                "+memory",
                "{}",
                d.display()
            );
        }
    }

    #[test]
    fn reads_events_stat_and_missing_peak() {
        let (tmp, pod) = fake_tree();
        let v2 = V2::new(tmp.path());
        let cg = super::super::Cgroup {
            backend: std::sync::Arc::new(V2::new(tmp.path())),
            path: pod.clone(),
        };
        assert_eq!(cg.oom_kills().unwrap(), 1);
        assert_eq!(cg.usage().unwrap().read_number().unwrap(), 4096);
        assert_eq!(v2.peak(&pod).unwrap(), None);
        fs::write(pod.join(MEMORY_PEAK), "8192\n").unwrap();
        assert_eq!(v2.peak(&pod).unwrap(), Some(8192));
        assert_eq!(
            v2.stat(&pod).unwrap(),
            MemStat {
                anon_bytes: 100,
                file_bytes: 200,
                inactive_file_bytes: 50
            }
        );
        assert_eq!(cg.kernel_name(), "/oomsim/run/pod");
    }

    #[test]
    fn inotify_fires_when_events_change() {
        let (tmp, pod) = fake_tree();
        let n = V2::new(tmp.path()).oom_notifier(&pod).unwrap();
        fs::write(pod.join(MEMORY_EVENTS), "oom 2\noom_kill 2\n").unwrap();
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let ready = |ms: u16| {
            let mut fds = [PollFd::new(n.fd.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(ms)).unwrap()
        };
        assert_eq!(ready(1000), 1, "inotify did not report the write");
        n.drain();
        // Nothing new was written, so nothing is ready.
        assert_eq!(ready(0), 0);
    }
}
