//! `oomsim diagnose` and `oomsim recommend`: files in, advice out; no root,
//! no cgroup.

use std::path::{Path, PathBuf};

use crate::bounded;
use crate::cli::args::{DiagnoseArgs, RecommendArgs};
use crate::cli::{Failure, exit};
use crate::diagnose::{self, emit};
use crate::recommend::{self, manifest};
use crate::units::fmt_quantity;

/// Each file's name and text; `-` (or none at all) is stdin.
fn read_all(files: &[PathBuf]) -> Result<Vec<(String, String)>, Failure> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    files
        .iter()
        .map(|f| {
            let bytes = if f.as_os_str() == "-" {
                bounded::read_bytes(std::io::stdin(), bounded::EVIDENCE_MAX)
            } else {
                std::fs::File::open(f).and_then(|h| bounded::read_bytes(h, bounded::EVIDENCE_MAX))
            }
            .map_err(|e| Failure::input(format!("{}: {e}", f.display())))?;
            let name = if f.as_os_str() == "-" {
                "stdin".into()
            } else {
                f.display().to_string()
            };
            Ok((name, String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

pub fn diagnose(args: &DiagnoseArgs) -> Result<u8, Failure> {
    let files = read_all(&args.files)?;
    let d = diagnose::diagnose(&files);
    let emitted = match &args.emit_scenario {
        Some(path) => {
            let e = emit::scenario(&d, path).map_err(|e| Failure::input(e.to_string()))?;
            emit::write(&e, path).map_err(|e| Failure::internal(e.to_string()))?;
            Some(path)
        }
        None => None,
    };
    let json = serde_json::to_string_pretty(&d).map_err(|e| Failure::internal(e.to_string()))?;
    if let Some(dir) = &args.out {
        let io = |e: std::io::Error| Failure::flag("--out", format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(dir).map_err(io)?;
        crate::report::write_atomic(&dir.join("diagnosis.json"), json.as_bytes()).map_err(io)?;
        let page = crate::html::write(dir, &crate::html::diagnose(&d)).map_err(io)?;
        eprintln!("oomsim: wrote {}", page.display());
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", diagnose::text::render(&d));
    }
    if let Some(p) = emitted {
        eprintln!(
            "oomsim: wrote {}: `oomsim run {0}` reproduces it, `oomsim search {0}` sizes it",
            p.display()
        );
    }
    Ok(exit::OK)
}

pub fn recommend(args: &RecommendArgs) -> Result<u8, Failure> {
    let saved = crate::report::load(&args.file)?;
    let base = args.file.parent().unwrap_or(Path::new("."));
    let advice = recommend::advise(&saved, base);
    let text = recommend::text(&advice);
    let Some(path) = &args.manifest else {
        print!("{text}");
        return Ok(exit::OK);
    };
    let (a, l, r) = advice
        .iter()
        .find_map(|a| Some((a, a.limit_bytes?, a.request_bytes?)))
        .ok_or_else(|| {
            Failure::input(format!(
                "--manifest: {}: no limit to set: {}",
                args.file.display(),
                text.trim()
            ))
        })?;
    let original = bounded::read_text(path, bounded::CONFIG_MAX)
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    let container = args.container.as_deref().unwrap_or(&a.container);
    let patched = manifest::patch(&original, container, &fmt_quantity(l), &fmt_quantity(r))
        .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    eprint!("{text}");
    print!("{patched}");
    Ok(exit::OK)
}
