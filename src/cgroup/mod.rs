//! A thin layer over the kernel's cgroup files: one [`Backend`] trait with a
//! v1 and a v2 implementation, each rooted at a path so tests can point it at
//! a fake tree in a temp dir.
//!
//! Everything a run creates lives under `<root>/oomsim/<run-id>/`; the
//! [`RunGroup`] guard kills what is inside and removes it on drop, and a new
//! run removes what a SIGKILLed earlier run left behind.

pub mod cpu;
mod group;
mod v1;
mod v2;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use group::{Cgroup, RunGroup, new_run_id};
pub use v1::V1;
pub use v2::V2;

/// Directory under the hierarchy root that holds every run.
pub const PREFIX: &str = "oomsim";
pub const CGROUP_PROCS: &str = "cgroup.procs";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write {value:?}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("{path}: no {key:?} line in {content:?}")]
    Parse {
        path: PathBuf,
        key: String,
        content: String,
    },
    #[error("{path}: still busy after killing its processes")]
    Busy { path: PathBuf },
    #[error(
        "no memory controller: cgroup2 at {0} does not offer memory and no cgroup v1 memory hierarchy is mounted"
    )]
    V2WithoutMemory(String),
    #[error("no memory controller: neither a cgroup v1 memory hierarchy nor cgroup2 is mounted")]
    NotMounted,
}

pub type Result<T> = std::result::Result<T, CgroupError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    #[serde(rename = "v1", alias = "V1")]
    V1,
    #[serde(rename = "v2")]
    V2,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// What a cgroup's limit did about swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Swap {
    /// Swap is forbidden (memsw = limit on v1, memory.swap.max = 0 on v2).
    Off,
    /// The scenario asked for swap; it is allowed.
    Allowed,
    /// The kernel keeps no swap account for cgroups (v1 without
    /// swapaccount=1, v2 without memory.swap.max): the pod may swap, and an
    /// OOM kill can come later than it would in a cluster without swap.
    Uncontrolled,
}

/// Memory figures from `memory.stat`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemStat {
    pub anon_bytes: u64,
    pub file_bytes: u64,
    pub inactive_file_bytes: u64,
}

impl MemStat {
    /// The stats of several cgroups together. A parent's own hierarchical
    /// `memory.stat` is not used for this: on cgroup v1 the kernel may not
    /// flush its children's updates into it for seconds (measured on 6.18:
    /// a pod cgroup's `total_rss` stayed at 0.3 MiB while its container held
    /// 207 MiB, 3 s later), so the cgroups that hold the processes are read.
    pub fn sum(groups: &[Cgroup]) -> Result<MemStat> {
        groups.iter().try_fold(MemStat::default(), |acc, g| {
            Ok(acc.plus(g.backend.stat(&g.path)?))
        })
    }

    fn plus(self, s: MemStat) -> MemStat {
        MemStat {
            anon_bytes: self.anon_bytes + s.anon_bytes,
            file_bytes: self.file_bytes + s.file_bytes,
            inactive_file_bytes: self.inactive_file_bytes + s.inactive_file_bytes,
        }
    }
}

/// What differs between the two cgroup versions: file names, limit writes,
/// and how the kernel tells us about an OOM.
pub trait Backend: Send + Sync + std::fmt::Debug {
    fn version(&self) -> Version;
    /// The hierarchy's mount point (or a fake tree's root).
    fn root(&self) -> &Path;
    /// Make `dir` able to hold a memory-limited child (v2: enable the controller).
    fn enable_children(&self, dir: &Path) -> Result<()>;
    /// Set the memory limit (None: unlimited) and, unless `swap`, forbid
    /// swap; says whether the kernel let it control swap at all.
    fn set_limit(&self, dir: &Path, limit: Option<u64>, swap: bool) -> Result<Swap>;
    /// The file holding the bytes charged now.
    fn usage_file(&self) -> &'static str;
    /// The file and key of the OOM kill counter.
    fn oom_kill_counter(&self) -> (&'static str, &'static str);
    /// The highest charge seen, when the kernel keeps it.
    fn peak(&self, dir: &Path) -> Result<Option<u64>>;
    /// The names `memory.stat` gives anonymous, file and inactive file bytes.
    fn stat_keys(&self) -> [&'static str; 3];
    /// Anonymous, file and inactive file bytes.
    fn stat(&self, dir: &Path) -> Result<MemStat> {
        read_stat(&dir.join(MEMORY_STAT), self.stat_keys())
    }
    /// An fd that becomes readable when the cgroup hits OOM (v1 eventfd) or
    /// its events change (v2 inotify). Re-read the counter on every wake.
    fn oom_notifier(&self, dir: &Path) -> Result<Notifier>;
    /// Make an OOM kill take every process in `dir` at once
    /// (`memory.oom.group`); false where the kernel has no such switch (v1).
    fn set_oom_group(&self, dir: &Path) -> Result<bool>;
}

/// What an OOM kill takes of a container, as the kubelet sets it up
/// (pkg/kubelet/kuberuntime/kuberuntime_container_linux.go: on cgroup v2,
/// `memory.oom.group=1` unless `singleProcessOOMKill`; on v1 the kubelet
/// forces `singleProcessOOMKill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OomKillMode {
    /// cgroup v2 with `memory.oom.group=1` on every container: the whole container dies.
    Group,
    /// cgroup v2 with `singleProcessOOMKill: true`: the kernel kills one process.
    SingleProcess,
    /// cgroup v1 has no `memory.oom.group`: the kernel kills one process.
    CgroupV1,
}

impl OomKillMode {
    pub fn describe(self) -> &'static str {
        match self {
            OomKillMode::Group => {
                "memory.oom.group=1 on each container (cgroup v2, the kubelet's default): an OOM kill takes the whole container"
            }
            OomKillMode::SingleProcess => {
                "singleProcessOOMKill: the kernel kills one process; the container's main process may outlive a dead worker"
            }
            OomKillMode::CgroupV1 => {
                "cgroup v1 has no memory.oom.group: the kernel kills one process; the container's main process may outlive a dead worker"
            }
        }
    }
}

/// A readable-on-event fd, plus whatever must stay open for it to keep firing.
#[derive(Debug)]
pub struct Notifier {
    pub fd: OwnedFd,
    pub _keep: Option<File>,
}

impl Notifier {
    /// Consume pending readiness so the next poll waits for a new event.
    pub fn drain(&self) {
        let mut buf = [0u8; 4096];
        while nix::unistd::read(&self.fd, &mut buf).is_ok_and(|n| n > 0) {}
    }
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    // O_TRUNC is a no-op on cgroupfs and keeps fake trees exact.
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()))
        .map_err(|source| CgroupError::Write {
            path: path.to_path_buf(),
            value: value.to_string(),
            source,
        })
}

pub(crate) fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

pub(crate) fn read_u64(path: &Path) -> Result<u64> {
    let text = read_file(path)?;
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    t.parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        key: "<number>".into(),
        content: text.clone(),
    })
}

/// `key value` lines (memory.stat, memory.events, memory.oom_control).
pub(crate) fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// `memory.stat`, in both versions.
pub const MEMORY_STAT: &str = "memory.stat";

/// Read `memory.stat` with the version's names for anon, file and inactive file.
fn read_stat(path: &Path, keys: [&str; 3]) -> Result<MemStat> {
    parse_stat(&read_file(path)?, path, keys)
}

fn parse_stat(text: &str, path: &Path, [anon, file, inactive]: [&str; 3]) -> Result<MemStat> {
    let get = |key: &str| {
        keyed_value(text, key).ok_or_else(|| CgroupError::Parse {
            path: path.to_path_buf(),
            key: key.to_string(),
            content: text.to_string(),
        })
    };
    Ok(MemStat {
        anon_bytes: get(anon)?,
        file_bytes: get(file)?,
        inactive_file_bytes: get(inactive)?,
    })
}

/// A cgroup's `memory.stat` kept open, for sampling.
#[derive(Debug)]
pub struct StatFile {
    file: OpenFile,
    keys: [&'static str; 3],
}

impl StatFile {
    pub fn open(group: &Cgroup) -> Result<StatFile> {
        Ok(StatFile {
            file: OpenFile::open(group.path.join(MEMORY_STAT))?,
            keys: group.backend.stat_keys(),
        })
    }

    pub fn read(&mut self) -> Result<MemStat> {
        let path = self.file.path.clone();
        parse_stat(self.file.read()?, &path, self.keys)
    }

    /// The stats of several cgroups together (see [`MemStat::sum`]).
    pub fn sum(files: &mut [StatFile]) -> Result<MemStat> {
        files.iter_mut().try_fold(MemStat::default(), |acc, f| {
            let s = f.read()?;
            Ok(acc.plus(s))
        })
    }
}

/// A kernel file kept open and re-read with pread: the cheap way to sample.
#[derive(Debug)]
pub struct OpenFile {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
}

impl OpenFile {
    pub fn open(path: PathBuf) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            file,
            path,
            buf: vec![0; 4096],
        })
    }

    fn read(&mut self) -> Result<&str> {
        let n = self
            .file
            .read_at(&mut self.buf, 0)
            .map_err(io_err(&self.path))?;
        std::str::from_utf8(&self.buf[..n]).map_err(|_| CgroupError::Parse {
            path: self.path.clone(),
            key: "<utf-8>".into(),
            content: String::new(),
        })
    }

    /// The whole file as one number.
    pub fn read_number(&mut self) -> Result<u64> {
        let path = self.path.clone();
        let text = self.read()?;
        text.trim().parse().map_err(|_| CgroupError::Parse {
            path,
            key: "<number>".into(),
            content: text.to_string(),
        })
    }

    /// The value of one `key value` line.
    pub fn read_key(&mut self, key: &str) -> Result<u64> {
        let path = self.path.clone();
        let text = self.read()?;
        keyed_value(text, key).ok_or_else(|| CgroupError::Parse {
            path,
            key: key.to_string(),
            content: text.to_string(),
        })
    }
}

/// Inside a cgroup namespace whose root is not the hierarchy's own (a pod
/// on cgroup v2: the root has a `cgroup.type`, the real one has none), this
/// process sits in that root, and a cgroup holding processes cannot pass
/// controllers down to children ("no internal processes", cgroup-v2.rst).
/// So move into a leaf of its own first, as kind's node entrypoint moves
/// its processes to `/init` for the same reason. Nothing to do on v1 or at
/// the real root.
pub fn leave_namespace_root() -> Result<()> {
    let root = Path::new("/sys/fs/cgroup");
    if !root.join("cgroup.type").exists() || !root.join("cgroup.controllers").exists() {
        return Ok(());
    }
    let leaf = root.join("oomsim-self");
    match std::fs::create_dir(&leaf) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(io_err(&leaf)(e)),
        _ => {}
    }
    write_file(&leaf.join(CGROUP_PROCS), "0")
}

/// The memory controller this host offers, found in /proc/self/mountinfo.
pub fn detect() -> Result<Arc<dyn Backend>> {
    let path = Path::new("/proc/self/mountinfo");
    let mountinfo = std::fs::read_to_string(path).map_err(io_err(path))?;
    detect_from(&mountinfo, |p| std::fs::read_to_string(p).ok())
}

/// Detection over given mountinfo text; `read` fetches cgroup.controllers.
pub fn detect_from(
    mountinfo: &str,
    read: impl Fn(&Path) -> Option<String>,
) -> Result<Arc<dyn Backend>> {
    let mut v2_without_memory = None;
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mount_point = left.split(' ').nth(4).unwrap_or_default();
        let mut fields = right.split(' ');
        let fstype = fields.next().unwrap_or_default();
        let options = fields.nth(1).unwrap_or_default();
        match fstype {
            "cgroup" if options.split(',').any(|o| o == "memory") => {
                return Ok(Arc::new(V1::new(mount_point)));
            }
            "cgroup2" => {
                let controllers = read(&Path::new(mount_point).join("cgroup.controllers"));
                if controllers.is_some_and(|c| c.split_whitespace().any(|c| c == "memory")) {
                    return Ok(Arc::new(V2::new(mount_point)));
                }
                v2_without_memory = Some(mount_point.to_string());
            }
            _ => {}
        }
    }
    Err(match v2_without_memory {
        Some(m) => CgroupError::V2WithoutMemory(m),
        None => CgroupError::NotMounted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
    const PURE_V2: &str = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn detects_hybrid_as_v1() {
        let b = detect_from(HYBRID, |_| Some("hugetlb".into())).unwrap();
        assert_eq!(b.version(), Version::V1);
        assert_eq!(b.root(), Path::new("/sys/fs/cgroup/memory"));
    }

    #[test]
    fn detects_pure_v2() {
        let b = detect_from(PURE_V2, |_| Some("cpuset cpu io memory pids".into())).unwrap();
        assert_eq!(b.version(), Version::V2);
        assert_eq!(b.root(), Path::new("/sys/fs/cgroup"));
    }

    #[test]
    fn v2_without_memory_is_refused() {
        let e = detect_from(PURE_V2, |_| Some("cpu io".into())).unwrap_err();
        assert!(
            matches!(&e, CgroupError::V2WithoutMemory(m) if m == "/sys/fs/cgroup"),
            "{e}"
        );
    }

    #[test]
    fn keyed_values() {
        let c = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed_value(c, "oom_kill"), Some(3));
        assert_eq!(keyed_value(c, "oom"), None);
    }
}
