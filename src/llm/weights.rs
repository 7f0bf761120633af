//! Weights files for `model-load`: real files on disk, created once at the
//! size asked and reused by every later run. They are written through a
//! bounded window of page cache (written back and dropped as it goes), so
//! creating a 14 GiB file does not fill the host's memory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: the weights file has {has} bytes, fewer than the {size} to load")]
    TooSmall { path: PathBuf, has: u64, size: u64 },
    #[error(
        "{path}: a {size} weights file is needed but the disk has {free} free (keeping 1Gi spare)"
    )]
    NoRoom {
        path: PathBuf,
        size: String,
        free: String,
    },
    #[error("{path}: cannot create the weights file: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Written, synced and dropped from the page cache this much at a time.
const WINDOW: usize = 64 << 20;

/// Make sure `path` holds at least `size` bytes: an existing file is used as
/// it is (its first `size` bytes; never rewritten, it may be real weights);
/// a missing one is created (atomically: a temp file renamed) with non-zero
/// data. Returns whether it was created.
pub fn ensure(path: &Path, size: u64, progress: bool) -> Result<bool, WeightsError> {
    let io = |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Ok(m) = std::fs::metadata(path) {
        if m.len() >= size {
            return Ok(false);
        }
        return Err(WeightsError::TooSmall {
            path: path.to_path_buf(),
            has: m.len(),
            size,
        });
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let st = nix::sys::statvfs::statvfs(dir).map_err(|e| io(e.into()))?;
    let free = st.blocks_available() as u64 * st.fragment_size() as u64;
    if free < size + (1 << 30) {
        return Err(WeightsError::NoRoom {
            path: path.to_path_buf(),
            size: crate::units::fmt_quantity(size),
            free: crate::units::fmt_quantity(free),
        });
    }
    if progress {
        eprintln!(
            "oomsim: creating the weights file {} ({}, once; later runs reuse it)",
            path.display(),
            crate::units::fmt_quantity(size)
        );
    }
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = write(&tmp, size).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    Ok(true)
}

/// Drop `len` bytes at `offset` of a file from the page cache (advisory).
pub fn drop_cached(f: &File, offset: u64, len: u64) -> std::io::Result<()> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let signed = |v: u64| i64::try_from(v).map_err(std::io::Error::other);
    posix_fadvise(
        f,
        signed(offset)?,
        signed(len)?,
        PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    )
    .map_err(std::io::Error::from)
}

fn write(tmp: &Path, size: u64) -> std::io::Result<()> {
    let mut f: File = OpenOptions::new().write(true).create_new(true).open(tmp)?;
    // A pattern that differs page to page, so nothing can be deduplicated or sparse.
    let mut buf = vec![0u8; WINDOW];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for word in buf.chunks_exact_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        word.copy_from_slice(&x.to_le_bytes());
    }
    let mut written = 0u64;
    while written < size {
        let n = (size - written).min(WINDOW as u64) as usize;
        f.write_all(&buf[..n])?;
        f.sync_data()?;
        drop_cached(&f, written, n as u64)?;
        written += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_at_size_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.bin");
        assert!(ensure(&p, 3 * 1024 * 1024 + 5, false).unwrap());
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(bytes.len(), 3 * 1024 * 1024 + 5);
        assert!(bytes.iter().filter(|b| **b == 0).count() < bytes.len() / 100);
        assert!(!ensure(&p, 3 * 1024 * 1024 + 5, false).unwrap(), "reused");
        assert!(
            !ensure(&p, 4096, false).unwrap(),
            "a larger file is used as it is"
        );
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 3 * 1024 * 1024 + 5);
        let e = ensure(&p, 4 << 20, false).unwrap_err().to_string();
        assert!(e.contains("fewer than the 4194304 to load"), "{e}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp left"
        );
    }
}
