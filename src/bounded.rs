//! Every file a user hands oomsim is read with a bound: `/dev/zero` given
//! as a model config, or a 5 GB scalar, is refused after the bound, never
//! read whole.

use std::io::Read;
use std::path::Path;

/// Scenarios, manifests, model configs, pod lists: far above any real one.
pub const CONFIG_MAX: u64 = 16 << 20;
/// Saved report.json and search.json (a long run at a high sampling rate).
pub const REPORT_MAX: u64 = 512 << 20;
/// Evidence pasted into `diagnose` (logs, describe, events).
pub const EVIDENCE_MAX: u64 = 64 << 20;

/// At most `max` bytes of `reader`; more is an error saying the bound.
pub fn read_bytes(reader: impl Read, max: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {}, the most oomsim reads of such a file",
                crate::units::fmt_quantity(max)
            ),
        ));
    }
    Ok(bytes)
}

/// A UTF-8 file of at most `max` bytes.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    let bytes = read_bytes(std::fs::File::open(path)?, max)?;
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_zero_is_refused_after_the_bound() {
        let e = read_text(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "larger than 1Mi, the most oomsim reads of such a file"
        );
        assert_eq!(read_bytes(&b"abc"[..], 3).unwrap(), b"abc");
        assert!(read_bytes(&b"abcd"[..], 3).is_err());
        let e = read_text(Path::new("/proc/self/exe"), 1 << 30).unwrap_err();
        assert_eq!(e.to_string(), "not UTF-8 text");
    }
}
