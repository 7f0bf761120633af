//! `oomsim bench search`: the limit search on programs with a steady peak
//! (1 GiB and 700 MiB held), to the default precision with 3 repeats: its
//! trials beside what plain bisection needs (ceil(log2(range / precision))
//! plus the repeats), one trial at a time and two at once; and its wall
//! time beside a linear sweep upward in 64Mi steps.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::run_plan;
use crate::cli::Failure;
use crate::k8s::Resource;
use crate::plan::{Phase, Plan, SearchSpec, Steady};
use crate::search::{Bounds, Progress, runner::Real, search};
use crate::signals;

const RANGE: (u64, u64) = (64 << 20, 2 << 30);
const REPEAT: u32 = 3;
const SWEEP_STEP: u64 = 64 << 20;

#[derive(Debug, Serialize)]
pub struct SearchRun {
    pub program_bytes: u64,
    pub parallel: usize,
    pub trials: usize,
    /// ceil(log2(range / precision)) + repeats.
    pub bisection_trials: usize,
    pub wall_s: f64,
    pub min_safe_bytes: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct SearchStats {
    pub runs: Vec<SearchRun>,
    pub sweep_program_bytes: u64,
    pub sweep_trials: usize,
    pub sweep_wall_s: f64,
    pub sweep_min_safe_bytes: Option<u64>,
}

fn held(size: u64) -> Plan {
    Plan::single_pod(
        "search-bench",
        Some(RANGE.1),
        None,
        Duration::from_secs(60),
        vec![Phase::Steady(Steady {
            size_bytes: size,
            duration_s: 0.1,
        })],
    )
}

fn one(work: &Path, size: u64, parallel: usize) -> Result<SearchRun, Failure> {
    let plan = held(size);
    let spec = SearchSpec {
        pod: plan.pods[0].name.clone(),
        range: Some(RANGE),
        precision_bytes: None,
        repeat: REPEAT,
        strategies: vec![],
    };
    let dir = work.join(format!("search-{size}-{parallel}"));
    let bounds = Bounds {
        range: RANGE,
        precision_bytes: None,
        repeat: REPEAT,
        parallel,
    };
    let real = Real {
        plan: &plan,
        pod: &spec.pod,
        out_dir: &dir,
    };
    let r = search(&plan, &spec, bounds, &real, &Progress::Quiet)?;
    let _ = std::fs::remove_dir_all(&dir);
    let ratio = (RANGE.1 - RANGE.0) as f64 / r.precision_bytes as f64;
    let run = SearchRun {
        program_bytes: size,
        parallel,
        trials: r.trials_count,
        bisection_trials: ratio.log2().ceil() as usize + REPEAT as usize,
        wall_s: r.wall_s,
        min_safe_bytes: r.min_safe_limit_bytes,
    };
    eprintln!(
        "oomsim bench: search {} x{parallel}: {} trials (bisection {}), {:.1}s",
        crate::units::fmt_human(size),
        run.trials,
        run.bisection_trials,
        run.wall_s
    );
    Ok(run)
}

pub fn bench(work: &Path) -> Result<Option<SearchStats>, Failure> {
    let mut runs = Vec::new();
    for (size, parallel) in [(1 << 30, 1), (700 << 20, 1), (1 << 30, 2), (700 << 20, 2)] {
        if signals::caught().is_some() {
            return Ok(None);
        }
        runs.push(one(work, size, parallel)?);
    }
    let plan = held(1 << 30);
    let started = Instant::now();
    let (mut sweep_trials, mut sweep_min) = (0, None);
    let mut limit = RANGE.0;
    while limit <= RANGE.1 && signals::caught().is_none() {
        let mut p = plan.clone();
        p.pods[0].main_mut().resources.memory = Resource {
            request: Some(limit),
            limit: Some(limit),
        };
        sweep_trials += 1;
        if run_plan(&p, work)?.pods[0].survived() {
            sweep_min = Some(limit);
            break;
        }
        limit += SWEEP_STEP;
    }
    Ok(Some(SearchStats {
        runs,
        sweep_program_bytes: 1 << 30,
        sweep_trials,
        sweep_wall_s: started.elapsed().as_secs_f64(),
        sweep_min_safe_bytes: sweep_min,
    }))
}

pub fn print(s: &SearchStats) {
    let show = |b: Option<u64>| b.map_or("-".into(), crate::units::fmt_human);
    println!(
        "limit search over {}..{}, default precision, {REPEAT} repeats (trials beside plain bisection's):",
        show(Some(RANGE.0)),
        show(Some(RANGE.1))
    );
    for r in &s.runs {
        println!(
            "  {:>9} x{}     {} trials (bisection {}) {:.1}s -> {}",
            show(Some(r.program_bytes)),
            r.parallel,
            r.trials,
            r.bisection_trials,
            r.wall_s,
            show(r.min_safe_bytes)
        );
    }
    println!(
        "  anchor: a 64Mi linear sweep of the {} program, {} trials {:.1}s -> {}",
        show(Some(s.sweep_program_bytes)),
        s.sweep_trials,
        s.sweep_wall_s,
        show(s.sweep_min_safe_bytes)
    );
}
