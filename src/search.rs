//! The smallest safe memory limit, found by real runs: k-section over the
//! range (as many trials at once as cores and host memory allow, each in a
//! fresh cgroup), then repeats at the answer, because near the boundary
//! outcomes are flaky. A failure is conclusive; survival must repeat.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::monitor::sampler::Sample;
use crate::report::{self, Report};
use crate::run::{self, RunError};
use crate::scenario::{LoadStrategy, Phase, Plan, PodPlan, SearchSpec};
use crate::sizing::{self, FormulaCheck};
use crate::units::{fmt_human, fmt_quantity};
use crate::{host, signals};

pub const SEARCH_FILE: &str = "search.json";
/// The precision floor: 1% of the answer or this, whichever is larger.
pub const MIN_PRECISION: u64 = 4 << 20;
/// Trials run at once at most, whatever the host.
const MAX_PARALLEL: usize = 4;
/// Limits tried are rounded up to this.
const STEP: u64 = 1 << 20;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub limit_bytes: u64,
    pub survived: bool,
    pub reason: String,
    pub exit_code: i32,
    pub cause: crate::verdict::Cause,
    pub peak_bytes: u64,
    pub at_s: f64,
    pub wall_s: f64,
    pub report: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitStats {
    pub limit_bytes: u64,
    pub trials: u32,
    pub survived: u32,
    pub survival_rate: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResult {
    pub scenario: String,
    pub pod: String,
    /// The smallest limit that survived every trial; null when none in range did.
    pub min_safe_limit_bytes: Option<u64>,
    /// The largest peak seen in a surviving trial.
    pub peak_bytes: Option<u64>,
    /// The largest limit that was OOMKilled.
    pub oom_limit_bytes: Option<u64>,
    pub range_bytes: (u64, u64),
    pub precision_bytes: u64,
    pub repeat: u32,
    pub parallel: usize,
    pub trials_count: usize,
    pub wall_s: f64,
    pub per_limit: Vec<LimitStats>,
    pub formulas: Vec<FormulaCheck>,
    pub trials: Vec<Trial>,
}

/// The plan with only the searched pod, at a given limit.
fn trial_plan(plan: &Plan, pod: &str, limit: u64, index: usize) -> Plan {
    let mut p = plan.clone();
    p.pods.retain(|x| x.name == pod);
    p.name = format!("{}-trial-{index:03}", plan.name);
    p.search = None;
    for x in &mut p.pods {
        x.limit_bytes = Some(limit);
        x.request_bytes = x.request_bytes.map(|r| r.min(limit));
        x.expect = None;
    }
    p
}

/// Survived: it finished (or ran until its timeout) with no OOM kill.
fn survived(r: &Report) -> bool {
    r.pods.iter().all(|p| {
        p.oom_kill_count == 0
            && (p.verdict.reason == "Completed"
                || p.verdict.cause == crate::verdict::Cause::Timeout)
    })
}

struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(expected: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(expected);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{spinner} search [{elapsed_precise}] {bar:30} {pos}/{len} trials  {msg}",
            ) {
                b.set_style(style);
            }
            b
        });
        Progress { bar }
    }

    fn trial(&self, t: &Trial, lo: u64, hi: u64) {
        let line = format!(
            "{} at {}: {} (peak {}); bracket {}..{}",
            if t.survived { "survived" } else { "died" },
            fmt_quantity(t.limit_bytes),
            t.reason,
            fmt_human(t.peak_bytes),
            fmt_quantity(lo),
            fmt_quantity(hi)
        );
        match &self.bar {
            Some(b) => {
                b.inc(1);
                b.set_message(line);
            }
            None => eprintln!("oomsim search: {line}"),
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// Run the search and write `out_dir/search.json`.
pub fn search(plan: &Plan, spec: &SearchSpec, out_dir: &Path) -> Result<SearchResult, RunError> {
    let started = Instant::now();
    let pod = plan
        .pods
        .iter()
        .find(|p| p.name == spec.pod)
        .ok_or_else(|| RunError::Internal(format!("no pod named {:?}", spec.pod)))?;
    let (total, available) = host::meminfo().map_err(|e| RunError::Host(e.to_string()))?;
    let usable = host::usable_bytes(available, total);
    let (lo0, hi0) = spec.range.unwrap_or_else(|| {
        (
            16 << 20,
            pod.limit_bytes
                .map_or(usable / 2, |l| (l * 4).min(usable / 2)),
        )
    });
    if hi0 > usable {
        return Err(RunError::Host(format!(
            "search range high end {} is more than this host can give ({} usable)",
            fmt_human(hi0),
            fmt_human(usable)
        )));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = cpus.min((usable / hi0) as usize).clamp(1, MAX_PARALLEL);
    let precision = |answer: u64| {
        spec.precision_bytes
            .unwrap_or((answer / 100).max(MIN_PRECISION))
    };
    let expected = ((hi0 - lo0) as f64 / precision(hi0) as f64).log2().ceil() as u64
        + u64::from(spec.repeat)
        + 2;
    let progress = Progress::new(expected);
    let trials_dir = out_dir.join("trials");
    let mut trials: Vec<Trial> = Vec::new();
    let mut samples_at: Vec<(u64, Vec<Sample>)> = Vec::new();
    let mut batch = |limits: &[u64],
                     trials: &mut Vec<Trial>,
                     lo: u64,
                     hi: u64|
     -> Result<Vec<bool>, RunError> {
        let base = trials.len();
        let results: Vec<Result<(Trial, Vec<Sample>), RunError>> = std::thread::scope(|s| {
            let handles: Vec<_> = limits
                .iter()
                .enumerate()
                .map(|(k, &limit)| {
                    let tp = trial_plan(plan, &spec.pod, limit, base + k);
                    let dir: PathBuf = trials_dir.join(&tp.name);
                    s.spawn(move || run_trial(&tp, &dir))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(RunError::Internal("a trial thread panicked".into()))
                    })
                })
                .collect()
        });
        let mut outcomes = Vec::new();
        for r in results {
            let (t, samples) = r?;
            progress.trial(&t, lo, hi);
            outcomes.push(t.survived);
            if t.survived {
                samples_at.push((t.limit_bytes, samples));
            }
            trials.push(t);
        }
        Ok(outcomes)
    };

    // The high end must survive, or there is no answer in range.
    let (mut lo, mut hi) = (lo0, hi0);
    let top = batch(&[hi0], &mut trials, lo, hi)?;
    let mut found = top[0];
    if found {
        let bottom = batch(&[lo0], &mut trials, lo, hi)?;
        if bottom[0] {
            hi = lo0;
        }
        // k-section until the bracket is within the precision, then confirm.
        loop {
            while hi - lo > precision(hi) && signals::caught().is_none() {
                let points: Vec<u64> = (1..=parallel as u64)
                    .map(|k| {
                        (lo + (hi - lo) * k / (parallel as u64 + 1))
                            .next_multiple_of(STEP)
                            .min(hi - 1)
                    })
                    .filter(|p| *p > lo)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if points.is_empty() {
                    break;
                }
                let outcomes = batch(&points, &mut trials, lo, hi)?;
                // The bracket: above the largest failure, at the smallest survival above it.
                for (p, ok) in points.iter().zip(&outcomes) {
                    if !ok {
                        lo = lo.max(*p);
                    }
                }
                if let Some(s) = points
                    .iter()
                    .zip(&outcomes)
                    .filter(|(p, ok)| **ok && **p > lo)
                    .map(|(p, _)| *p)
                    .min()
                {
                    hi = hi.min(s);
                }
            }
            if signals::caught().is_some() {
                found = false;
                break;
            }
            // Repeats at the answer: every one must survive.
            let done = trials.iter().filter(|t| t.limit_bytes == hi).count() as u32;
            let more = spec.repeat.saturating_sub(done) as usize;
            let mut confirmed = true;
            let mut left = more;
            while left > 0 && confirmed {
                let n = left.min(parallel);
                let outcomes = batch(&vec![hi; n], &mut trials, lo, hi)?;
                confirmed = outcomes.iter().all(|ok| *ok);
                left -= n;
            }
            if confirmed {
                break;
            }
            // Flaky at hi: it is not safe. Continue above it, up to the next limit known to survive.
            lo = hi;
            hi = trials
                .iter()
                .filter(|t| t.survived && t.limit_bytes > lo)
                .map(|t| t.limit_bytes)
                .min()
                .unwrap_or(hi0);
            if lo >= hi0 {
                found = false;
                break;
            }
        }
    }
    progress.finish();
    let min_safe = found.then_some(hi);
    let surviving_peak = trials
        .iter()
        .filter(|t| t.survived)
        .map(|t| t.peak_bytes)
        .max();
    let oom_limit = trials
        .iter()
        .filter(|t| t.reason == "OOMKilled")
        .map(|t| t.limit_bytes)
        .max();
    let formulas = match (min_safe, surviving_peak) {
        (Some(m), Some(peak)) => {
            let mut usage: Vec<u64> = samples_at
                .iter()
                .filter(|(l, _)| *l == m)
                .flat_map(|(_, s)| s.iter().map(|x| x.bytes))
                .collect();
            usage.sort_unstable();
            let p90 = usage
                .get((usage.len() * 9 / 10).min(usage.len().saturating_sub(1)))
                .copied()
                .unwrap_or(peak);
            sizing::check_all(&sizing::Inputs {
                min_safe_bytes: m,
                peak_bytes: peak,
                p90_bytes: p90,
                oom_limit_bytes: oom_limit,
                vars: vars_with_model(plan, pod),
                user: plan.formulas.clone(),
            })
        }
        _ => Vec::new(),
    };
    let mut per_limit: Vec<LimitStats> = Vec::new();
    for t in &trials {
        match per_limit
            .iter_mut()
            .find(|s| s.limit_bytes == t.limit_bytes)
        {
            Some(s) => {
                s.trials += 1;
                s.survived += u32::from(t.survived);
            }
            None => per_limit.push(LimitStats {
                limit_bytes: t.limit_bytes,
                trials: 1,
                survived: u32::from(t.survived),
                survival_rate: 0.0,
            }),
        }
    }
    for s in &mut per_limit {
        s.survival_rate = f64::from(s.survived) / f64::from(s.trials);
    }
    per_limit.sort_by_key(|s| s.limit_bytes);
    let result = SearchResult {
        scenario: plan.name.clone(),
        pod: spec.pod.clone(),
        min_safe_limit_bytes: min_safe,
        peak_bytes: surviving_peak,
        oom_limit_bytes: oom_limit,
        range_bytes: (lo0, hi0),
        precision_bytes: precision(hi),
        repeat: spec.repeat,
        parallel,
        trials_count: trials.len(),
        wall_s: started.elapsed().as_secs_f64(),
        per_limit,
        formulas,
        trials,
    };
    report::write_json(&out_dir.join(SEARCH_FILE), &result)?;
    if let Err(e) = report::plot::search(&result, out_dir) {
        eprintln!("oomsim: warning: search plots not drawn: {e}");
    }
    Ok(result)
}

/// The scenario's vars, plus `model` (the weights' bytes) from a model-load
/// pod when the scenario did not name it, so the dual-residency rule applies.
fn vars_with_model(plan: &Plan, pod: &PodPlan) -> Vec<(String, f64)> {
    let mut vars = plan.vars.clone();
    let model = pod.workload.phases.iter().find_map(|p| match p {
        Phase::ModelLoad(m) => Some(m.size_bytes),
        _ => None,
    });
    if let Some(bytes) = model
        && !vars.iter().any(|(k, _)| k == "model")
    {
        vars.push(("model".into(), bytes as f64));
    }
    vars
}

/// One search per loading strategy, each in `out_dir/search-<strategy>/`.
pub fn search_strategies(
    plan: &Plan,
    spec: &SearchSpec,
    out_dir: &Path,
) -> Result<Vec<(LoadStrategy, SearchResult)>, RunError> {
    let mut results = Vec::new();
    for &strategy in &spec.strategies {
        let mut p = plan.clone();
        for pod in p.pods.iter_mut().filter(|x| x.name == spec.pod) {
            for phase in &mut pod.workload.phases {
                if let Phase::ModelLoad(m) = phase {
                    m.strategy = strategy;
                    m.keep_host = false;
                    m.pinned &= strategy == LoadStrategy::Chunked;
                }
            }
        }
        eprintln!(
            "oomsim: searching the smallest safe limit for pod {} loading {}",
            spec.pod,
            strategy.as_str()
        );
        let dir = out_dir.join(format!("search-{}", strategy.as_str()));
        results.push((strategy, search(&p, spec, &dir)?));
        if signals::caught().is_some() {
            break;
        }
    }
    Ok(results)
}

/// The strategies side by side, with the dual-residency rule against each.
pub fn describe_strategies(results: &[(LoadStrategy, SearchResult)]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>12} {:>10} {:>14} {:>8}",
        "STRATEGY", "MIN SAFE", "PEAK", "1.5xMODEL+4Gi", "MARGIN"
    );
    for (st, r) in results {
        let rule = r.formulas.iter().find(|f| f.name == "dual-residency");
        let _ = writeln!(
            out,
            "{:<16} {:>12} {:>10} {:>14} {:>8}",
            st.as_str(),
            r.min_safe_limit_bytes
                .map_or("none".into(), |m| fmt_quantity(m.next_multiple_of(STEP))),
            r.peak_bytes.map_or("-".into(), fmt_human),
            rule.map_or("-".into(), |f| fmt_human(f.recommended_bytes)),
            rule.map_or("-".into(), |f| format!("{:+.0}%", f.margin * 100.0)),
        );
    }
    out
}

fn run_trial(plan: &Plan, dir: &Path) -> Result<(Trial, Vec<Sample>), RunError> {
    let started = Instant::now();
    let pre = run::preflight(plan)?;
    let mut r = run::run(plan, pre, dir, false)?;
    let ok = survived(&r);
    let pod = r.pods.remove(0);
    if pod.verdict.cause == crate::verdict::Cause::StartFailed {
        return Err(RunError::Internal(format!(
            "the trial at {} could not start its pod: {}",
            fmt_quantity(pod.limit_bytes.unwrap_or(0)),
            pod.verdict.message
        )));
    }
    Ok((
        Trial {
            limit_bytes: pod.limit_bytes.unwrap_or(0),
            survived: ok,
            reason: pod.verdict.reason,
            exit_code: pod.verdict.exit_code,
            cause: pod.verdict.cause,
            peak_bytes: pod.peak_bytes,
            at_s: pod.verdict.at_s,
            wall_s: started.elapsed().as_secs_f64(),
            report: dir.join(report::REPORT_FILE).display().to_string(),
        },
        pod.samples,
    ))
}

/// The text summary printed after a search.
pub fn describe(r: &SearchResult) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = match r.min_safe_limit_bytes {
        Some(m) => writeln!(
            out,
            "Smallest safe limit for {}: {} ({} bytes), survived {}/{} trials there; peak {}",
            r.pod,
            fmt_quantity(m.next_multiple_of(STEP)),
            m,
            r.per_limit
                .iter()
                .find(|s| s.limit_bytes == m)
                .map_or(0, |s| s.survived),
            r.repeat,
            r.peak_bytes.map_or("-".into(), fmt_human)
        ),
        None => writeln!(
            out,
            "No limit in {}..{} survived for {}",
            fmt_quantity(r.range_bytes.0),
            fmt_quantity(r.range_bytes.1),
            r.pod
        ),
    };
    let _ = writeln!(
        out,
        "{} trials ({} at a time) in {:.1}s; precision {}",
        r.trials_count,
        r.parallel,
        r.wall_s,
        fmt_human(r.precision_bytes)
    );
    let _ = writeln!(out, "{:<10} {:>7} {:>9}", "LIMIT", "TRIALS", "SURVIVED");
    for s in &r.per_limit {
        let _ = writeln!(
            out,
            "{:<10} {:>7} {:>8.0}%",
            fmt_quantity(s.limit_bytes),
            s.trials,
            s.survival_rate * 100.0
        );
    }
    if !r.formulas.is_empty() {
        let _ = writeln!(
            out,
            "\n{:<16} {:>10} {:>8}  {:<9} RULE",
            "FORMULA", "SAYS", "MARGIN", "VERDICT"
        );
        for f in &r.formulas {
            let _ = writeln!(
                out,
                "{:<20} {:>10} {:>+7.0}%  {:<9} {}",
                f.name,
                fmt_human(f.recommended_bytes),
                f.margin * 100.0,
                f.fit.as_str(),
                f.rule
            );
        }
    }
    out
}
