//! The device ledger: a few shared-memory pages (under /dev/shm) in which
//! every process using a device records the bytes it holds, so several pods
//! can share one device, the sim backend can refuse what would not fit, and
//! the harness can read "memory used" per pod as nvidia-smi would, without a
//! context of its own. Device bytes are never backed by host memory.
//!
//! Each process claims a slot (pid, pod index, bytes, peak). Allocation on
//! the sim device takes an flock on the file, sums the slots and adds its
//! bytes; the kernel drops the lock when a holder dies. A process killed
//! while holding memory leaves its slot behind; the next allocation that
//! would fail, and the harness when the pod ends, give it back, as the CUDA
//! driver frees a dead process's memory.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

use nix::unistd::Pid;

use super::DeviceBackend;

const MAGIC: u64 = 0x6f6f_6d73_696d_6770; // "oomsimgp"
const SLOTS: usize = 128;
const NAME_LEN: usize = 96;
/// No pod: a process that is not one of the harness's pods.
pub const NO_POD: u32 = u32::MAX;

#[repr(C)]
struct Header {
    magic: u64,
    capacity: AtomicU64,
    /// 0 sim, 1 cuda.
    backend: u64,
    index: u64,
    name: [u8; NAME_LEN],
}

#[repr(C)]
struct Slot {
    pid: AtomicI32,
    pod: AtomicU32,
    bytes: AtomicU64,
    peak: AtomicU64,
}

#[repr(C)]
struct Segment {
    header: Header,
    slots: [Slot; SLOTS],
}

const SEGMENT_LEN: usize = std::mem::size_of::<Segment>();

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}: not an oomsim device ledger")]
    NotALedger(String),
    #[error("{0}: all {SLOTS} device slots are taken")]
    Full(String),
}

/// One mapping of a ledger file.
pub struct Ledger {
    file: File,
    path: PathBuf,
    map: memmap2::MmapMut,
    /// Whether dropping this handle removes the file (the harness's copy).
    owner: bool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ledger({})", self.path.display())
    }
}

/// Where a run's ledger lives: tmpfs, so the pages are never written to disk.
pub fn path_for(run_id: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("oomsim-{run_id}-gpu"))
}

fn map(file: &File, path: &Path) -> Result<memmap2::MmapMut, LedgerError> {
    // SAFETY: the ledger file is oomsim's own, sized to SEGMENT_LEN before it
    // is mapped and never truncated while any process has it mapped.
    unsafe { memmap2::MmapOptions::new().len(SEGMENT_LEN).map_mut(file) }.map_err(|source| {
        LedgerError::Io {
            path: path.display().to_string(),
            source,
        }
    })
}

fn pid_alive(pid: i32) -> bool {
    use nix::errno::Errno;
    // Signal 0 only checks that the process exists.
    pid > 0
        && !matches!(
            nix::sys::signal::kill(Pid::from_raw(pid), None),
            Err(Errno::ESRCH)
        )
}

impl Ledger {
    /// Create a run's ledger (removing those of harnesses that died).
    pub fn create(
        path: &Path,
        capacity: u64,
        backend: DeviceBackend,
        index: u32,
        name: &str,
    ) -> Result<Ledger, LedgerError> {
        remove_stale(path.parent().unwrap_or(Path::new("/dev/shm")));
        let io = |source| LedgerError::Io {
            path: path.display().to_string(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(io)?;
        file.set_len(SEGMENT_LEN as u64).map_err(io)?;
        let mut map = map(&file, path)?;
        // SAFETY: the mapping is SEGMENT_LEN bytes, page-aligned, zero-filled
        // (a Segment of zeros is valid), and nobody else has opened it yet:
        // this is the only reference.
        let h = unsafe { &mut (*map.as_mut_ptr().cast::<Segment>()).header };
        h.capacity.store(capacity, Ordering::Release);
        h.backend = u64::from(backend == DeviceBackend::Cuda);
        h.index = u64::from(index);
        let n = name.len().min(NAME_LEN - 1);
        h.name[..n].copy_from_slice(&name.as_bytes()[..n]);
        h.magic = MAGIC;
        Ok(Ledger {
            file,
            path: path.to_path_buf(),
            map,
            owner: true,
        })
    }

    /// Open a ledger another process created.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| LedgerError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let map = map(&file, path)?;
        let ledger = Ledger {
            file,
            path: path.to_path_buf(),
            map,
            owner: false,
        };
        if ledger.seg().header.magic != MAGIC {
            return Err(LedgerError::NotALedger(path.display().to_string()));
        }
        Ok(ledger)
    }

    fn seg(&self) -> &Segment {
        // SAFETY: the mapping is SEGMENT_LEN bytes and page-aligned; every
        // field that changes after creation is atomic, and the header's plain
        // fields were written once, before any other process opened it.
        unsafe { &*self.map.as_ptr().cast::<Segment>() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn capacity(&self) -> u64 {
        self.seg().header.capacity.load(Ordering::Acquire)
    }

    pub fn is_cuda(&self) -> bool {
        self.seg().header.backend == 1
    }

    pub fn index(&self) -> u32 {
        self.seg().header.index as u32
    }

    pub fn name(&self) -> String {
        let raw = &self.seg().header.name;
        let end = raw.iter().position(|b| *b == 0).unwrap_or(NAME_LEN);
        String::from_utf8_lossy(&raw[..end]).into_owned()
    }

    fn lock(&self) -> LockGuard<'_> {
        // flock(LOCK_EX), blocking until granted; a signal only retries.
        while let Err(e) = self.file.lock() {
            if e.kind() != std::io::ErrorKind::Interrupted {
                break;
            }
        }
        LockGuard(self)
    }

    /// Bytes held by every live slot.
    pub fn used(&self) -> u64 {
        self.seg()
            .slots
            .iter()
            .filter(|s| s.pid.load(Ordering::Acquire) != 0)
            .map(|s| s.bytes.load(Ordering::Acquire))
            .sum()
    }

    /// Bytes held by one pod's processes.
    pub fn used_by_pod(&self, pod: u32) -> u64 {
        self.seg()
            .slots
            .iter()
            .filter(|s| s.pid.load(Ordering::Acquire) != 0 && s.pod.load(Ordering::Acquire) == pod)
            .map(|s| s.bytes.load(Ordering::Acquire))
            .sum()
    }

    /// Give back the slots of processes that no longer exist.
    fn reclaim_dead(&self) -> u64 {
        let mut freed = 0;
        for s in &self.seg().slots {
            let pid = s.pid.load(Ordering::Acquire);
            if pid != 0 && !pid_alive(pid) {
                freed += s.bytes.swap(0, Ordering::AcqRel);
                s.pid.store(0, Ordering::Release);
            }
        }
        freed
    }

    /// Give back a pod's slots once it has ended (its processes are gone).
    pub fn release_pod(&self, pod: u32) {
        let _lock = self.lock();
        for s in &self.seg().slots {
            if s.pod.load(Ordering::Acquire) == pod && s.pid.load(Ordering::Acquire) != 0 {
                s.bytes.store(0, Ordering::Release);
                s.pid.store(0, Ordering::Release);
            }
        }
    }

    /// Claim a slot for this process.
    pub fn claim(&self, pod: u32) -> Result<usize, LedgerError> {
        let _lock = self.lock();
        let me = nix::unistd::getpid().as_raw();
        let pick = |ledger: &Ledger| {
            ledger
                .seg()
                .slots
                .iter()
                .position(|s| s.pid.load(Ordering::Acquire) == 0)
        };
        let i = match pick(self) {
            Some(i) => i,
            None => {
                self.reclaim_dead();
                pick(self).ok_or_else(|| LedgerError::Full(self.path.display().to_string()))?
            }
        };
        let s = &self.seg().slots[i];
        s.pod.store(pod, Ordering::Release);
        s.bytes.store(0, Ordering::Release);
        s.peak.store(0, Ordering::Release);
        s.pid.store(me, Ordering::Release);
        Ok(i)
    }

    /// Reserve `bytes` in `slot` if the device's capacity allows; on refusal,
    /// the bytes free at that moment.
    pub fn reserve(&self, slot: usize, bytes: u64) -> Result<(), u64> {
        let _lock = self.lock();
        let cap = self.capacity();
        let mut used = self.used();
        if used.saturating_add(bytes) > cap {
            used -= self.reclaim_dead().min(used);
            if used.saturating_add(bytes) > cap {
                return Err(cap.saturating_sub(used));
            }
        }
        self.record(slot, bytes);
        Ok(())
    }

    /// Record bytes the device itself granted (the cuda backend).
    pub fn record(&self, slot: usize, bytes: u64) {
        let s = &self.seg().slots[slot];
        let now = s.bytes.fetch_add(bytes, Ordering::AcqRel) + bytes;
        s.peak.fetch_max(now, Ordering::AcqRel);
    }

    pub fn release(&self, slot: usize, bytes: u64) {
        let s = &self.seg().slots[slot];
        let _ = s
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |b| {
                Some(b.saturating_sub(bytes))
            });
    }

    /// This process is done with the device.
    pub fn leave(&self, slot: usize) {
        let s = &self.seg().slots[slot];
        s.bytes.store(0, Ordering::Release);
        s.pid.store(0, Ordering::Release);
    }
}

struct LockGuard<'a>(&'a Ledger);

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.file.unlock();
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        if self.owner {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Ledgers of harnesses that died without cleaning up (`oomsim-<pid>-...-gpu`).
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix("oomsim-") else {
            continue;
        };
        if !name.ends_with("-gpu") {
            continue;
        }
        if let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok())
            && !pid_alive(pid)
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(dir: &Path, cap: u64) -> Ledger {
        Ledger::create(
            &dir.join("oomsim-test-gpu"),
            cap,
            DeviceBackend::Sim,
            0,
            "sim",
        )
        .unwrap()
    }

    #[test]
    fn capacity_is_enforced_and_freed() {
        let dir = tempfile::tempdir().unwrap();
        let l = ledger(dir.path(), 100);
        assert_eq!(l.name(), "sim");
        let s = l.claim(0).unwrap();
        assert!(l.reserve(s, 60).is_ok());
        assert_eq!(
            l.reserve(s, 50),
            Err(40),
            "40 bytes free when 50 were asked"
        );
        l.release(s, 60);
        assert!(l.reserve(s, 100).is_ok());
        assert_eq!(l.used_by_pod(0), 100);
        assert_eq!(l.used_by_pod(1), 0);
        l.leave(s);
        assert_eq!(l.used(), 0);
    }

    #[test]
    fn dead_holders_are_reclaimed_and_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oomsim-test-gpu");
        let l = ledger(dir.path(), 100);
        let s = l.claim(3).unwrap();
        l.reserve(s, 90).unwrap();
        // Pretend the holder died: a pid that cannot exist.
        l.seg().slots[s].pid.store(i32::MAX, Ordering::Release);
        let other = Ledger::open(&path).unwrap();
        let t = other.claim(4).unwrap();
        assert!(other.reserve(t, 50).is_ok(), "the dead slot's 90 came back");
        drop(other);
        assert!(path.exists(), "only the creator removes the file");
        drop(l);
        assert!(!path.exists());
    }
}
