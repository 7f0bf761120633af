//! The writers: one small trait, a format per kind of document, and one
//! atomic write so a reader sees the old file or the new one, never half.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::ReportError;

/// A way of rendering a `T` as a document.
pub trait Format<T: ?Sized> {
    fn render(&self, value: &T) -> Result<String, ReportError>;

    /// Render and write atomically.
    fn write(&self, path: &Path, value: &T) -> Result<(), ReportError> {
        write_atomic(path, self.render(value)?.as_bytes()).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// Pretty JSON, for report.json and search.json.
pub struct Json;

impl<T: Serialize + ?Sized> Format<T> for Json {
    fn render(&self, value: &T) -> Result<String, ReportError> {
        serde_json::to_string_pretty(value)
            .map(|json| json + "\n")
            .map_err(ReportError::Encode)
    }
}

/// Write a value as JSON, atomically.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), ReportError> {
    Json.write(path, value)
}

/// Write a file so that readers see the old or the new content, never half.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("r.json");
        write_atomic(&p, b"one").unwrap();
        write_json(&p, &serde_json::json!({"two": 2})).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{\n  \"two\": 2\n}\n");
        let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }
}
