//! The smallest safe memory limit, found by real runs, each in a fresh
//! cgroup: a bracket narrowed by what its top survivor measured (see
//! [`bracket`]), halved where that says nothing, then repeats at the answer,
//! because near the boundary outcomes are flaky. A failure is conclusive;
//! survival must repeat.
//!
//! The algorithm runs over a [`TrialRunner`], so it is tested against a fake
//! pod as well as run for real ([`runner::Real`]); it returns its result and
//! whoever asked writes and draws it.

mod bracket;
mod progress;
pub mod runner;
pub mod sizing;

use std::time::Instant;

use bracket::Bracket;
pub use bracket::unreclaimable;
pub use progress::Progress;

use crate::monitor::sampler::Sample;
use crate::plan::{Plan, PodPlan, SearchSpec};
use crate::report::SCHEMA_VERSION;
use crate::report::search::{LimitStats, SearchResult, Trial};
use crate::run::RunError;
use crate::units::fmt_quantity;

/// The precision floor: 1% of the answer or this, whichever is larger.
pub const MIN_PRECISION: u64 = 4 << 20;
/// Trials run at once at most, whatever the host.
const MAX_PARALLEL: usize = 4;
/// Limits tried are rounded up to this.
pub const STEP: u64 = 1 << 20;
/// The default range starts here (or lower for a small pod).
const DEFAULT_LOW: u64 = 16 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(
        "the range {lo}..{hi} is empty: give --range LO..HI with LO below HI (the pod's limit is {limit})"
    )]
    EmptyRange {
        lo: String,
        hi: String,
        limit: String,
    },
    #[error("search range high end {hi} is more than this host can give ({usable} usable)")]
    TooLarge { hi: String, usable: String },
}

/// One trial's outcome and the samples of a survivor.
pub struct Outcome {
    pub trial: Trial,
    pub samples: Vec<Sample>,
}

/// Runs trials of the searched pod at given limits, all at once.
pub trait TrialRunner {
    /// One trial per limit; `first` numbers them.
    fn run(&self, limits: &[u64], first: usize) -> Result<Vec<Outcome>, RunError>;
    /// Stop early (Ctrl-C): the answer so far is not an answer.
    fn stopped(&self) -> bool;
}

/// The range searched when none is given: from 16Mi (less for a tiny pod)
/// to four times the pod's limit, within half of what the host can give;
/// both ends whole MiB, so they print as quantities.
pub fn default_range(pod: &PodPlan, usable: u64) -> Result<(u64, u64), SearchError> {
    let top = pod
        .searched_limit()
        .map_or(usable / 2, |l| l.saturating_mul(4).min(usable / 2));
    let hi = top / STEP * STEP;
    let lo = DEFAULT_LOW.min(hi / 4 / STEP * STEP).max(STEP);
    if lo >= hi {
        return Err(SearchError::EmptyRange {
            lo: fmt_quantity(lo),
            hi: fmt_quantity(hi),
            limit: pod.searched_limit().map_or("none".into(), fmt_quantity),
        });
    }
    Ok((lo, hi))
}

/// How many trials run at once: one a core, and no more copies of the top
/// limit than the host can hold. With guided probes two at once try the
/// guess and the limit below it together (`oomsim bench search` on 2
/// cores: 1.5-1.9x faster than one at a time).
pub fn parallelism(hi: u64, usable: u64) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.min((usable / hi.max(1)) as usize)
        .clamp(1, MAX_PARALLEL)
}

/// What the search was asked: the range, precision, repeats and width.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub range: (u64, u64),
    pub precision_bytes: Option<u64>,
    pub repeat: u32,
    pub parallel: usize,
}

impl Bounds {
    fn precision(&self, answer: u64) -> u64 {
        self.precision_bytes
            .unwrap_or((answer / 100).max(MIN_PRECISION))
            .max(1)
    }

    /// Trials still to run from a bracket, for the progress bar: k-section
    /// rounds of `parallel` trials, then the repeats.
    fn remaining(&self, lo: u64, hi: u64, repeats_left: u32) -> u64 {
        let ratio = (hi - lo) as f64 / self.precision(hi) as f64;
        let rounds = if ratio > 1.0 {
            ratio.log(self.parallel as f64 + 1.0).ceil() as u64
        } else {
            0
        };
        rounds * self.parallel as u64 + u64::from(repeats_left)
    }
}

/// The trials so far, the bracket and the answer.
struct State {
    trials: Vec<Trial>,
    samples_at: Vec<(u64, Vec<Sample>)>,
}

impl State {
    /// Run one batch; each limit's outcome and what its survivor measured.
    fn batch(
        &mut self,
        runner: &dyn TrialRunner,
        limits: &[u64],
    ) -> Result<Vec<(u64, bool, Option<u64>)>, RunError> {
        let outcomes = runner.run(limits, self.trials.len())?;
        Ok(outcomes
            .into_iter()
            .map(|o| {
                let t = &o.trial;
                let seen = (t.limit_bytes, t.survived, need_of(t));
                if t.survived {
                    self.samples_at.push((t.limit_bytes, o.samples));
                }
                self.trials.push(o.trial);
                seen
            })
            .collect())
    }
}

/// What a survivor could not do without: its unreclaimable peak, else its
/// whole peak (an upper guess, still below its limit).
fn need_of(t: &Trial) -> Option<u64> {
    t.survived
        .then(|| t.unreclaimable_bytes.unwrap_or(t.peak_bytes))
}

/// Run the search; `progress` hears of every batch with the bracket after it.
pub fn search(
    plan: &Plan,
    spec: &SearchSpec,
    bounds: Bounds,
    runner: &dyn TrialRunner,
    progress: &Progress,
) -> Result<SearchResult, RunError> {
    let started = Instant::now();
    let (lo0, hi0) = bounds.range;
    let mut st = State {
        trials: Vec::new(),
        samples_at: Vec::new(),
    };
    let repeat = bounds.repeat;
    progress.expect(1 + bounds.remaining(lo0, hi0, repeat));
    // The high end must survive, or there is no answer in range. The low
    // end is taken as failing until a trial says otherwise.
    let top = st.batch(runner, &[hi0])?[0];
    let mut b = Bracket {
        lo: lo0,
        hi: hi0,
        need: top.2,
        below_probe: None,
    };
    let mut found = top.1;
    progress.batch(&st.trials, b.lo, b.hi);
    if found {
        loop {
            // Narrow until the bracket is within the precision, then confirm.
            while b.hi - b.lo > bounds.precision(b.hi) && !runner.stopped() {
                let points = b.next(|x| bounds.precision(x), bounds.parallel);
                if points.is_empty() {
                    break;
                }
                let before = st.trials.len();
                let tried = st.batch(runner, &points)?;
                b.update(&tried);
                progress.batch(&st.trials[before..], b.lo, b.hi);
                progress.expect(st.trials.len() as u64 + bounds.remaining(b.lo, b.hi, repeat));
            }
            if runner.stopped() {
                found = false;
                break;
            }
            // Repeats at the answer: every one must survive.
            let done = st.trials.iter().filter(|t| t.limit_bytes == b.hi).count() as u32;
            let mut left = repeat.saturating_sub(done) as usize;
            let mut confirmed = true;
            progress.expect(st.trials.len() as u64 + left as u64);
            while left > 0 && confirmed {
                let n = left.min(bounds.parallel);
                let before = st.trials.len();
                confirmed = st.batch(runner, &vec![b.hi; n])?.iter().all(|t| t.1);
                progress.batch(&st.trials[before..], b.lo, b.hi);
                left -= n;
            }
            if confirmed {
                break;
            }
            // Flaky at the top: it is not safe. Continue above it, up to the
            // next limit known to survive, with what that one measured.
            b.lo = b.hi;
            let above = st
                .trials
                .iter()
                .filter(|t| t.survived && t.limit_bytes > b.lo)
                .min_by_key(|t| t.limit_bytes);
            (b.hi, b.need) = above.map_or((hi0, None), |t| (t.limit_bytes, need_of(t)));
            if b.lo >= hi0 {
                found = false;
                break;
            }
            progress.expect(st.trials.len() as u64 + bounds.remaining(b.lo, b.hi, repeat));
        }
    }
    progress.finish();
    Ok(summarize(
        plan,
        spec,
        bounds,
        st,
        found.then_some(b.hi),
        started,
    ))
}

fn summarize(
    plan: &Plan,
    spec: &SearchSpec,
    bounds: Bounds,
    st: State,
    min_safe: Option<u64>,
    started: Instant,
) -> SearchResult {
    let trials = st.trials;
    let surviving_peak = trials
        .iter()
        .filter(|t| t.survived)
        .map(|t| t.peak_bytes)
        .max();
    let oom_limit = trials
        .iter()
        .filter(|t| t.reason == crate::k8s::Reason::OomKilled)
        .map(|t| t.limit_bytes)
        .max();
    let formulas = match (min_safe, surviving_peak) {
        (Some(m), Some(peak)) => {
            let mut usage: Vec<u64> = st
                .samples_at
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
                vars: vars_with_model(plan, &spec.pod),
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
    // The highest limit tried died of the runtime's own cap: no limit helps.
    let no_limit_helps = min_safe
        .is_none()
        .then(|| trials.iter().max_by_key(|t| t.limit_bytes))
        .flatten()
        .and_then(|t| t.runtime_oom.clone());
    SearchResult {
        schema_version: SCHEMA_VERSION,
        scenario: plan.name.clone(),
        pod: spec.pod.clone(),
        min_safe_limit_bytes: min_safe,
        no_limit_helps,
        peak_bytes: surviving_peak,
        oom_limit_bytes: oom_limit,
        range_bytes: bounds.range,
        precision_bytes: bounds.precision(min_safe.unwrap_or(bounds.range.1)),
        repeat: bounds.repeat,
        parallel: bounds.parallel,
        trials_count: trials.len(),
        wall_s: started.elapsed().as_secs_f64(),
        per_limit,
        formulas,
        trials,
    }
}

/// The scenario's vars, plus `model` (the weights' bytes) from a model-load
/// pod when the scenario did not name it, so the dual-residency rule applies.
fn vars_with_model(plan: &Plan, pod: &str) -> Vec<(String, f64)> {
    let mut vars = plan.vars.clone();
    if let Some(bytes) = plan.pod(pod).and_then(PodPlan::model_bytes)
        && !vars.iter().any(|(k, _)| k == "model")
    {
        vars.push(("model".into(), bytes as f64));
    }
    vars
}

#[cfg(test)]
mod tests;
