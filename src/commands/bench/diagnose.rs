//! `oomsim bench diagnose`: `oomsim diagnose` over 1 MiB of evidence (the
//! corpus under tests/diagnose/corpus, repeated, as one paste), beside its
//! anchor in the same run: one pass that splits the same text into lines
//! and looks for one word in each, as `grep -c` would. Warm-up rounds
//! first, then rounds taking turns.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::{Spread, spread};
use crate::cli::Failure;

const CORPUS: &str = "tests/diagnose/corpus";
const SIZE: usize = 1 << 20;
const WARMUP: usize = 3;
const ROUNDS: usize = 15;

#[derive(Debug, Serialize)]
pub struct DiagnoseStats {
    pub bytes: usize,
    pub lines: usize,
    /// Milliseconds for the whole diagnosis.
    pub diagnose_ms: Option<Spread>,
    /// Milliseconds for the line-split-and-find anchor.
    pub anchor_ms: Option<Spread>,
}

/// Every sample's text, in a stable order.
fn samples(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut files = Vec::new();
    for class in std::fs::read_dir(dir)? {
        for f in std::fs::read_dir(class?.path())? {
            files.push(f?.path());
        }
    }
    files.sort();
    files.iter().map(std::fs::read_to_string).collect()
}

pub fn diagnose() -> Result<DiagnoseStats, Failure> {
    let parts = samples(Path::new(CORPUS)).map_err(|e| {
        Failure::input(format!(
            "bench diagnose: {CORPUS}: {e} (run it from the repository's root)"
        ))
    })?;
    let mut text = String::with_capacity(SIZE + 4096);
    'fill: loop {
        for p in &parts {
            text.push_str(p);
            text.push('\n');
            if text.len() >= SIZE {
                break 'fill;
            }
        }
        if parts.is_empty() {
            break;
        }
    }
    let files = [("bench.log".to_string(), text)];
    let anchor = |t: &str| t.lines().filter(|l| l.contains("memory")).count();
    let mut d_ms = Vec::new();
    let mut a_ms = Vec::new();
    for round in 0..WARMUP + ROUNDS {
        let t0 = Instant::now();
        std::hint::black_box(crate::diagnose::diagnose(std::hint::black_box(&files)));
        let d = t0.elapsed().as_secs_f64() * 1e3;
        let t0 = Instant::now();
        std::hint::black_box(anchor(std::hint::black_box(&files[0].1)));
        let a = t0.elapsed().as_secs_f64() * 1e3;
        if round >= WARMUP {
            d_ms.push(d);
            a_ms.push(a);
        }
    }
    Ok(DiagnoseStats {
        bytes: files[0].1.len(),
        lines: files[0].1.lines().count(),
        diagnose_ms: spread(&d_ms),
        anchor_ms: spread(&a_ms),
    })
}
