//! One cgroup directory (create a child, signal and kill what is inside,
//! remove it), and the run's own cgroup under `<root>/oomsim/<run-id>/`,
//! whose guard removes it on every path.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{
    Backend, CGROUP_PROCS, CgroupError, OpenFile, PREFIX, Result, Swap, io_err, read_file,
};

/// One cgroup directory and the backend that knows its files.
#[derive(Debug, Clone)]
pub struct Cgroup {
    pub backend: Arc<dyn Backend>,
    pub path: PathBuf,
}

impl Cgroup {
    /// The path as the kernel names the cgroup in its log (`/oomsim/<run>/<pod>`).
    pub fn kernel_name(&self) -> String {
        let rel = self
            .path
            .strip_prefix(self.backend.root())
            .unwrap_or(&self.path);
        format!("/{}", rel.display())
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// `cgroup.procs` opened for writing, close-on-exec, for a child to enter.
    pub fn procs_for_entry(&self) -> Result<File> {
        let path = self.file(CGROUP_PROCS);
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err(&path))
    }

    pub fn usage(&self) -> Result<OpenFile> {
        OpenFile::open(self.file(self.backend.usage_file()))
    }

    pub fn oom_kill_file(&self) -> Result<(OpenFile, &'static str)> {
        let (name, key) = self.backend.oom_kill_counter();
        Ok((OpenFile::open(self.file(name))?, key))
    }

    pub fn oom_kills(&self) -> Result<u64> {
        let (mut file, key) = self.oom_kill_file()?;
        file.read_key(key)
    }

    pub fn pids(&self) -> Result<Vec<i32>> {
        let path = self.file(CGROUP_PROCS);
        Ok(read_file(&path)?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// SIGKILL every process inside. A process gone meanwhile, or a
    /// cgroup already removed, leaves nothing to kill.
    pub fn kill_all(&self) {
        let _ = self.signal_all(Signal::SIGKILL);
    }

    /// Send `sig` to every process inside; false when the cgroup's process
    /// list cannot be read (the cgroup is gone).
    pub fn signal_all(&self, sig: Signal) -> bool {
        let Ok(pids) = self.pids() else {
            return false;
        };
        for pid in pids {
            let _ = kill(Pid::from_raw(pid), sig);
        }
        true
    }

    /// SIGKILL every process here and in the child cgroups (a pod and its
    /// containers), the children first.
    pub fn kill_tree(&self) {
        for entry in std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                Cgroup {
                    backend: self.backend.clone(),
                    path: entry.path(),
                }
                .kill_tree();
            }
        }
        self.kill_all();
    }

    /// Create a child cgroup with a memory limit; says what became of swap.
    pub fn create_child(
        &self,
        name: &str,
        limit: Option<u64>,
        swap: bool,
    ) -> Result<(Cgroup, Swap)> {
        let child = Cgroup {
            backend: self.backend.clone(),
            path: self.path.join(name),
        };
        std::fs::create_dir(&child.path).map_err(io_err(&child.path))?;
        let swap = self.backend.set_limit(&child.path, limit, swap)?;
        Ok((child, swap))
    }

    /// Kill every process inside (children first) and remove the directories.
    pub fn kill_and_remove(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let sub = Cgroup {
                    backend: self.backend.clone(),
                    path: entry.path(),
                };
                sub.kill_and_remove()?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.kill_all();
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
                // A fake tree is a plain directory with files in it.
                Err(_) if self.is_fake() => {
                    return std::fs::remove_dir_all(&self.path).map_err(io_err(&self.path));
                }
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => {
                    return Err(CgroupError::Busy {
                        path: self.path.clone(),
                    });
                }
            }
        }
    }

    fn is_fake(&self) -> bool {
        // Real cgroup directories live on cgroupfs, whose statfs magic is fixed.
        use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};
        statfs(&self.path).is_ok_and(|st| {
            let magic = st.filesystem_type();
            magic != CGROUP_SUPER_MAGIC && magic != CGROUP2_SUPER_MAGIC
        })
    }
}

/// The cgroup of one run; dropping it kills what is inside and removes it.
#[derive(Debug)]
pub struct RunGroup {
    pub group: Cgroup,
    removed: bool,
}

impl RunGroup {
    /// Create `<root>/oomsim/<run_id>` with a limit over everything in the run,
    /// after removing what dead earlier runs left behind.
    pub fn create(backend: Arc<dyn Backend>, run_id: &str, limit: Option<u64>) -> Result<RunGroup> {
        let prefix = Cgroup {
            path: backend.root().join(PREFIX),
            backend: backend.clone(),
        };
        remove_stale(&prefix);
        let path = prefix.path.join(run_id);
        // A concurrent run may remove the empty prefix between our mkdirs: retry.
        let mut tries = 0;
        loop {
            match std::fs::create_dir_all(&prefix.path).and_then(|_| std::fs::create_dir(&path)) {
                Ok(()) => break,
                Err(e) if e.kind() == ErrorKind::NotFound && tries < 50 => tries += 1,
                Err(e) => return Err(io_err(&path)(e)),
            }
        }
        let run = RunGroup {
            group: Cgroup {
                backend: backend.clone(),
                path,
            },
            removed: false,
        };
        // cgroup v2: the limit's file appears once the prefix passes the
        // memory controller down. A parallel trial's cleanup can take an
        // empty prefix away and another recreate it between our steps (seen
        // once under qemu on 6.1: memory.max absent): enable and try again.
        let mut tries = 0;
        loop {
            backend.enable_children(&prefix.path)?;
            match backend.set_limit(&run.group.path, limit, false) {
                Err(CgroupError::Write { source, .. })
                    if source.kind() == ErrorKind::NotFound && tries < 50 =>
                {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
                other => {
                    other?;
                    break;
                }
            }
        }
        backend.enable_children(&run.group.path)?;
        Ok(run)
    }

    /// Remove now, reporting failure (drop removes too, silently).
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        let result = self.group.kill_and_remove();
        remove_prefix_if_empty(&self.group);
        remove_in_other_hierarchies(&self.group);
        result
    }
}

impl Drop for RunGroup {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = self.group.kill_and_remove() {
                eprintln!("oomsim: warning: {e}");
            }
            remove_prefix_if_empty(&self.group);
            remove_in_other_hierarchies(&self.group);
        }
    }
}

fn remove_prefix_if_empty(run: &Cgroup) {
    if let Some(prefix) = run.path.parent() {
        // Fails with ENOTEMPTY/EBUSY while another run is inside: that is fine.
        let _ = std::fs::remove_dir(prefix);
    }
}

/// Run ids start with the owner's pid: `<pid>-<nanos>`.
pub fn new_run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // Runs in one process (parallel search trials) differ by a counter.
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{:x}{n:x}", std::process::id(), nanos & 0xffff_ffff_ffff)
}

/// Remove runs whose owner process is gone (killed with SIGKILL, say).
fn remove_stale(prefix: &Cgroup) {
    let Ok(entries) = std::fs::read_dir(&prefix.path) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        // Signal 0 only checks that the pid exists.
        let alive = !matches!(
            kill(Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        );
        if !alive {
            let stale = Cgroup {
                backend: prefix.backend.clone(),
                path: entry.path(),
            };
            let removed = stale.kill_and_remove();
            remove_in_other_hierarchies(&stale);
            match removed {
                Ok(()) => eprintln!(
                    "oomsim: removed cgroup {} left by an earlier run",
                    stale.kernel_name()
                ),
                Err(e) => eprintln!("oomsim: warning: cannot remove a stale run: {e}"),
            }
        }
    }
}

/// cgroup v1: a run's path in the other hierarchies (a CPU limit's, and
/// every one an engine such as podman made it in), deepest first, then the
/// prefix there if no other run is inside.
fn remove_in_other_hierarchies(run: &Cgroup) {
    if run.backend.version() != super::Version::V1 {
        return;
    }
    let (Some(mounts), Ok(rel)) = (
        run.backend.root().parent(),
        run.path.strip_prefix(run.backend.root()),
    ) else {
        return;
    };
    let Ok(hierarchies) = std::fs::read_dir(mounts) else {
        return;
    };
    for h in hierarchies.flatten() {
        let dir = h.path().join(rel);
        if h.path() != run.backend.root() && dir.is_dir() {
            remove_tree(&dir);
            if let Some(prefix) = dir.parent() {
                // Fails while another run is inside: that is fine.
                let _ = std::fs::remove_dir(prefix);
            }
        }
    }
}

fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
