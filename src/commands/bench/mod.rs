//! `oomsim bench`: oomsim measured by its own real runs.
//!
//! - `fill`: the leak workload's fill rate with no rate cap, against a plain C
//!   page-touch loop and `stress-ng --vm 1 --vm-keep`, interleaved round by
//!   round so drift hits all alike; each measured the same way, from the
//!   cgroup's charge (10% to 90% of the size) sampled at 10 kHz.
//! - `detect`: OOM detection latency over repeated real kills, against the
//!   kernel's /dev/kmsg timestamp.
//! - `sampler`: CPU the sampler thread uses at 1 kHz, and the harness's RSS.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::Serialize;

mod diagnose;
mod fill;
mod load;
mod planner;
mod sampler;
mod search;
mod startup;
mod vllm;

use diagnose::DiagnoseStats;
use planner::{PlannerStats, planner};

use crate::cli::args::{Bench, BenchArgs};
use crate::cli::{Failure, exit};
use crate::plan::{Leak, Phase, Plan};
use crate::report::Report;
use crate::units::parse_bytes;
use crate::{run, signals};

#[derive(Debug, Serialize)]
pub(super) struct Spread {
    min: f64,
    median: f64,
    max: f64,
    n: usize,
}

pub(super) fn spread(values: &[f64]) -> Option<Spread> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Spread {
        min: v[0],
        median: percentile(&v, 0.5),
        max: v[v.len() - 1],
        n: v.len(),
    })
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[derive(Debug, Default, Serialize)]
struct Results {
    fill: Option<fill::FillStats>,
    detect_latency_us: Option<DetectStats>,
    sampler: Option<sampler::SamplerStats>,
    startup: Option<startup::StartupStats>,
    load: Option<load::LoadStats>,
    vllm: Option<vllm::VllmStats>,
    search: Option<search::SearchStats>,
    planner: Option<PlannerStats>,
    diagnose: Option<DiagnoseStats>,
    notes: Vec<String>,
}

#[derive(Debug, Serialize)]
struct DetectStats {
    kills: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

pub fn run(args: &BenchArgs) -> Result<u8, Failure> {
    let size = parse_bytes(&args.size).map_err(|e| Failure::input(format!("--size: {e}")))?;
    let wants = |b: Bench| args.which == b || args.which == Bench::All;
    let work = tempfile_dir()?;
    let mut results = Results::default();
    if wants(Bench::Fill) {
        results.fill = Some(fill::fill(
            size,
            args.repeat.max(1),
            &work,
            &mut results.notes,
        )?);
    }
    if wants(Bench::Detect) {
        detect(args.kills.max(1), &work, &mut results)?;
    }
    if wants(Bench::Sampler) {
        results.sampler = sampler::sampler(&work, &mut results.notes)?;
    }
    if wants(Bench::Startup) {
        results.startup = startup::startup(&work, &mut results.notes)?;
    }
    if wants(Bench::Load) {
        let model = parse_bytes(&args.model_size)
            .map_err(|e| Failure::input(format!("--model-size: {e}")))?;
        results.load = load::load(&work, model)?;
    }
    if wants(Bench::Vllm) {
        if args.scenario.is_file() {
            results.vllm = Some(vllm::vllm(&work, &args.scenario)?);
        } else {
            results.notes.push(format!(
                "vllm skipped: {} not found (run from the project's folder, or give --scenario)",
                args.scenario.display()
            ));
        }
    }
    if wants(Bench::Search) {
        results.search = search::bench(&work)?;
    }
    if wants(Bench::Planner) {
        results.planner = Some(planner(&work)?);
    }
    if wants(Bench::Diagnose) {
        results.diagnose = Some(diagnose::diagnose()?);
    }
    let _ = std::fs::remove_dir_all(&work);
    print_results(&results);
    if let Some(path) = &args.json {
        crate::report::write_json(path, &results)
            .map_err(|e| Failure::input(format!("{}: {e}", path.display())))?;
    }
    if let Some(sig) = signals::caught() {
        return Ok(128u8.saturating_add(sig as u8));
    }
    Ok(exit::OK)
}

fn tempfile_dir() -> Result<PathBuf, Failure> {
    let dir = std::env::temp_dir().join(format!("oomsim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("{}: {e}", dir.display()),
    })?;
    Ok(dir)
}

/// Run a plan for real and return its report.
fn run_plan(plan: &Plan, work: &Path) -> Result<Report, Failure> {
    let pre = run::preflight(plan).map_err(run::RunError::from)?;
    let out = work.join(&plan.name);
    Ok(run::run(plan, pre, &out, false)?)
}

/// Why a C reference program could not be built or run; the benchmark
/// notes it and goes on without that comparison.
#[derive(Debug, thiserror::Error)]
enum ReferenceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cc failed to build {0}")]
    Compile(PathBuf),
    #[error("{0} printed {1:?}, not a number")]
    Output(PathBuf, String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReferenceError + '_ {
    move |source| ReferenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn compile_c(work: &Path, name: &str, source: &str) -> Result<PathBuf, ReferenceError> {
    // Apart from the runs' report folders, which are named after their pods.
    let dir = work.join("c");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).map_err(io(&src))?;
    let status = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .map_err(io(Path::new("cc")))?;
    if !status.success() {
        return Err(ReferenceError::Compile(src));
    }
    Ok(bin)
}

fn detect(kills: u32, work: &Path, results: &mut Results) -> Result<(), Failure> {
    let mut latencies = Vec::new();
    let leak = vec![Phase::Leak(Leak {
        baseline_bytes: 0,
        rate_bytes_per_s: None,
        cap_bytes: None,
        duration_s: None,
    })];
    for k in 0..kills {
        if signals::caught().is_some() {
            break;
        }
        let plan = Plan::single_pod(
            "detect",
            Some(64 << 20),
            None,
            Duration::from_secs(30),
            leak.clone(),
        );
        let report = run_plan(&plan, work)?;
        if !report.host.kmsg_readable {
            results
                .notes
                .push("detect skipped: /dev/kmsg cannot be read".into());
            return Ok(());
        }
        let v = &report.pods[0].verdict;
        if let Some(us) = v.detect_latency_us {
            latencies.push(us);
        }
        eprintln!(
            "oomsim bench: kill {}/{kills}: {} {:?} us",
            k + 1,
            v.reason,
            v.detect_latency_us
        );
    }
    latencies.sort_by(f64::total_cmp);
    if !latencies.is_empty() {
        results.detect_latency_us = Some(DetectStats {
            kills: latencies.len(),
            p50: percentile(&latencies, 0.5),
            p90: percentile(&latencies, 0.9),
            p99: percentile(&latencies, 0.99),
            max: latencies[latencies.len() - 1],
        });
    }
    Ok(())
}

fn print_results(r: &Results) {
    if let Some(d) = &r.diagnose {
        let ms = |s: &Option<Spread>| {
            s.as_ref().map_or("-".into(), |s| {
                format!(
                    "min {:.2}  median {:.2}  max {:.2} ms (n={})",
                    s.min, s.median, s.max, s.n
                )
            })
        };
        println!(
            "diagnose: {} bytes, {} lines: {}; anchor (split lines, find a word): {}",
            d.bytes,
            d.lines,
            ms(&d.diagnose_ms),
            ms(&d.anchor_ms)
        );
    }
    if let Some(p) = &r.planner {
        println!(
            "vllm planner: {} plans (256 x 256 grid) in {:.4}s = {:.0} plans/s; sim device: {:.0} block allocs+frees/s",
            p.grid_plans, p.grid_s, p.plans_per_s, p.sim_allocs_per_s
        );
    }
    let show = |s: &Option<Spread>| {
        s.as_ref().map_or("-".into(), |s| {
            format!(
                "min {:.3}  median {:.3}  max {:.3}  (n={})",
                s.min, s.median, s.max, s.n
            )
        })
    };
    if let Some(f) = &r.fill {
        fill::print(f, show);
    }
    if let Some(d) = &r.detect_latency_us {
        println!(
            "OOM detection latency after the kernel's kill, us ({} kills): p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
            d.kills, d.p50, d.p90, d.p99, d.max
        );
    }
    if let Some(s) = &r.sampler {
        sampler::print(s, show);
    }
    if let Some(s) = &r.startup {
        startup::print(s, show);
    }
    if let Some(s) = &r.load {
        load::print(s, show);
    }
    if let Some(s) = &r.vllm {
        vllm::print(s);
    }
    if let Some(s) = &r.search {
        search::print(s);
    }
    for n in &r.notes {
        println!("note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
        assert_eq!(percentile(&v, 0.5), 5.0);
        assert_eq!(percentile(&v, 0.99), 10.0);
        assert_eq!(percentile(&v, 0.9), 9.0);
        let s = spread(&[3.0, f64::NAN, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.0, 3.0, 3));
        assert!(spread(&[f64::NAN]).is_none());
    }
}
