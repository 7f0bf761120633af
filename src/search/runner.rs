//! The real trial runner: each trial is the plan cut down to the searched
//! pod at one limit, run for real in its own cgroup under `trials/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Outcome, TrialRunner};
use crate::k8s::RestartPolicy;
use crate::plan::{LoadStrategy, Phase, Plan};
use crate::report::REPORT_FILE;
use crate::report::search::Trial;
use crate::run::{self, RunError};
use crate::units::fmt_quantity;
use crate::verdict::Cause;

/// Runs trials of one pod of a plan, in `out_dir/trials/`.
pub struct Real<'a> {
    pub plan: &'a Plan,
    pub pod: &'a str,
    pub out_dir: &'a Path,
}

impl Real<'_> {
    /// The plan with only the searched pod, at a given limit.
    fn trial_plan(&self, limit: u64, index: usize) -> Plan {
        let mut p = self.plan.clone();
        p.pods.retain(|x| x.name == self.pod);
        p.name = format!("{}-trial-{index:03}", self.plan.name);
        p.search = None;
        for x in &mut p.pods {
            x.set_limit(limit);
            // One run per trial: a restart would hide the first verdict.
            x.restart.policy = RestartPolicy::Never;
            x.expect = None;
            for c in &mut x.containers {
                c.expect = None;
            }
        }
        p
    }
}

impl TrialRunner for Real<'_> {
    fn run(&self, limits: &[u64], first: usize) -> Result<Vec<Outcome>, RunError> {
        let trials_dir = self.out_dir.join("trials");
        std::thread::scope(|s| {
            let handles: Vec<_> = limits
                .iter()
                .enumerate()
                .map(|(k, &limit)| {
                    let tp = self.trial_plan(limit, first + k);
                    let dir: PathBuf = trials_dir.join(&tp.name);
                    (
                        tp.name.clone(),
                        s.spawn(move || run_trial(&tp, &dir, limit)),
                    )
                })
                .collect();
            handles
                .into_iter()
                .map(|(name, h)| h.join().unwrap_or(Err(RunError::Panicked(name))))
                .collect()
        })
    }

    fn stopped(&self) -> bool {
        crate::signals::caught().is_some()
    }
}

fn run_trial(plan: &Plan, dir: &Path, limit: u64) -> Result<Outcome, RunError> {
    let started = Instant::now();
    let pre = run::preflight(plan)?;
    let mut r = run::run(plan, pre, dir, false)?;
    let pod = r.pods.remove(0);
    if pod.verdict.cause == Cause::StartFailed {
        return Err(RunError::TrialStart {
            limit: fmt_quantity(limit),
            message: pod.verdict.message,
        });
    }
    Ok(Outcome {
        trial: Trial {
            limit_bytes: limit,
            survived: pod.survived(),
            reason: pod.verdict.reason,
            exit_code: pod.verdict.exit_code,
            cause: pod.verdict.cause,
            peak_bytes: pod.peak_bytes,
            unreclaimable_bytes: super::unreclaimable(pod.peak_bytes, &pod.samples),
            at_s: pod.verdict.at_s,
            wall_s: started.elapsed().as_secs_f64(),
            report: dir.join(REPORT_FILE).display().to_string(),
            runtime_oom: pod.verdict.runtime_oom.clone(),
        },
        samples: pod.samples,
    })
}

/// The plan with the searched pod loading by `strategy` (the host copy not
/// kept; pinned only where a chunk buffer exists).
pub fn with_strategy(plan: &Plan, pod: &str, strategy: LoadStrategy) -> Plan {
    let mut p = plan.clone();
    for x in p.pods.iter_mut().filter(|x| x.name == pod) {
        for phase in x.containers.iter_mut().flat_map(|c| &mut c.workload.phases) {
            if let Phase::ModelLoad(m) = phase {
                m.strategy = strategy;
                m.keep_host = false;
                m.pinned &= strategy == LoadStrategy::Chunked;
            }
        }
    }
    p
}
