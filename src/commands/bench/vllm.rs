//! `oomsim bench vllm`: `oomsim search` of a model-load scenario (by
//! default scenarios/vllm-14g.yaml), end to end as a user runs it, against
//! its floor: the trials it ran times one cold read of the weights file
//! (`dd bs=256M`, cache dropped first; read before and after the search, the
//! faster taken, as the disk's speed wanders). Each strategy's trials are
//! shown beside what plain bisection needs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;

use crate::cli::Failure;
use crate::cli::args::ProgramArgs;
use crate::cli::resolve::{self, Source};
use crate::report::Saved;
use crate::report::search::SearchResult;

#[derive(Debug, Serialize)]
pub struct VllmStats {
    pub scenario: PathBuf,
    pub model_bytes: u64,
    pub wall_s: f64,
    /// The cold reads before and after the search.
    pub cold_read_s: [f64; 2],
    /// Per strategy: trials run, and ceil(log2(range / precision)) + repeats.
    pub strategies: Vec<(String, usize, usize)>,
    /// The trials run times one cold read.
    pub floor_s: f64,
}

pub fn vllm(work: &Path, scenario: &Path) -> Result<VllmStats, Failure> {
    let plan = resolve::plan(Source {
        scenario: &Some(scenario.to_path_buf()),
        program: &ProgramArgs::default(),
        limit: None,
        request: None,
        timeout: &None,
        strict: false,
    })?;
    let spec = plan
        .search
        .clone()
        .ok_or_else(|| Failure::input(format!("{}: no search: block", scenario.display())))?;
    let (file, size) = plan
        .pod(&spec.pod)
        .and_then(|p| {
            p.containers
                .iter()
                .flat_map(|c| &c.workload.phases)
                .find_map(|ph| match ph {
                    crate::plan::Phase::ModelLoad(m) => Some((m.file.clone()?, m.size_bytes)),
                    _ => None,
                })
        })
        .ok_or_else(|| {
            Failure::input(format!(
                "{}: the searched pod loads no weights file",
                scenario.display()
            ))
        })?;
    crate::llm::weights::ensure(&file, size, true).map_err(|e| Failure::internal(e.to_string()))?;
    let before = super::load::dd(&file, false)?;
    eprintln!(
        "oomsim bench: vllm: cold read of {} {before:.1}s",
        file.display()
    );
    let out = work.join("vllm");
    let exe = std::env::current_exe()
        .map_err(|e| Failure::internal(format!("bench vllm: oomsim's own binary: {e}")))?;
    let started = Instant::now();
    let status = Command::new(exe)
        .arg("search")
        .arg(scenario)
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| Failure::internal(format!("bench vllm: {e}")))?;
    let wall_s = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(Failure::internal(format!(
            "bench vllm: oomsim search {} failed ({status})",
            scenario.display()
        )));
    }
    let after = super::load::dd(&file, false)?;
    let mut strategies = Vec::new();
    for s in &spec.strategies {
        let path = out
            .join(format!("search-{}", s.as_str()))
            .join("search.json");
        let r: SearchResult = match crate::report::load(&path) {
            Ok(Saved::Search(r)) => *r,
            Ok(Saved::Report(_)) => {
                return Err(Failure::internal(format!(
                    "bench vllm: {} is not a search",
                    path.display()
                )));
            }
            Err(e) => return Err(Failure::internal(format!("bench vllm: {e}"))),
        };
        let ratio = (r.range_bytes.1 - r.range_bytes.0) as f64 / r.precision_bytes as f64;
        strategies.push((
            s.as_str().to_string(),
            r.trials_count,
            ratio.log2().ceil() as usize + r.repeat as usize,
        ));
    }
    let trials: usize = strategies.iter().map(|s| s.1).sum();
    Ok(VllmStats {
        scenario: scenario.to_path_buf(),
        model_bytes: size,
        wall_s,
        cold_read_s: [before, after],
        strategies,
        floor_s: trials as f64 * before.min(after),
    })
}

pub fn print(s: &VllmStats) {
    println!(
        "oomsim search {} end to end: {:.0}s; floor (trials x one cold read of the {} file, {:.1}s before / {:.1}s after): {:.0}s; ratio {:.2} (goal: 1.3 or less)",
        s.scenario.display(),
        s.wall_s,
        crate::units::fmt_human(s.model_bytes),
        s.cold_read_s[0],
        s.cold_read_s[1],
        s.floor_s,
        s.wall_s / s.floor_s
    );
    for (name, trials, bisection) in &s.strategies {
        println!("  {name:<14} {trials} trials (bisection {bisection})");
    }
}
