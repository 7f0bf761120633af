//! One pod's evidence gathered into its report: per container and per run,
//! the kernel's kill line, the counter rise, the workload's events and the
//! eviction loop's word, each run judged once by [`crate::verdict::classify`];
//! the pod's own verdict is its first failure (or its main container's end).

use std::path::Path;

use super::pod::{ContainerEnd, PodEnd};
use super::spawn::{Ended, Instance};
use crate::cgroup::{MemStat, Swap};
use crate::k8s::Reason;
use crate::monitor::clock::seconds_between;
use crate::monitor::kmsg::{self, Kill};
use crate::monitor::sampler::Sample;
use crate::monitor::watch::Observed;
use crate::plan::{ContainerPlan, PodPlan};
use crate::report::time::kubectl_time;
use crate::report::{ContainerReport, ContainerState, DualResidency, PodReport, Termination};
use crate::verdict::{self, AtSource, Cause, Evidence, Exit, NodeLevel, Verdict};
use crate::workload::events::{Event, TimedEvent};

/// What the node knows of a pod.
pub struct PodNode {
    /// The kubelet's oom_score_adj per container.
    pub oom_score_adjs: Vec<i32>,
    /// The eviction loop evicted the pod: when (monotonic ns) and its message.
    pub evicted: Option<(u64, String)>,
    /// The node and kubepods cgroups' kernel names, when the run has a node.
    pub node_cgroups: Option<NodeCgroups>,
}

/// Kernel names of the cgroups above a pod on a node.
#[derive(Debug, Clone)]
pub struct NodeCgroups {
    pub node: String,
    pub kubepods: String,
}

/// What the pod's cgroups held when it ended.
pub struct Counters {
    pub pod_peak: Option<u64>,
    pub pod_stat: MemStat,
    /// Each container cgroup's peak, in the plan's order.
    pub container_peaks: Vec<Option<u64>>,
}

/// Everything gathered for one pod, judged into its report.
pub struct Gathered<'a> {
    pub end: PodEnd,
    pub observed: &'a Observed,
    /// Where the pod's first container is in the watcher's list.
    pub first_unit: usize,
    pub samples: Vec<Sample>,
    pub swap: Swap,
    pub node: PodNode,
    pub counters: Counters,
}

/// The file name stem of a container's log and events: the pod's name for
/// a one-container pod, `pod.container` otherwise.
pub fn file_stem(pod: &PodPlan, c: &ContainerPlan) -> String {
    if pod.containers.len() == 1 {
        pod.name.clone()
    } else {
        format!("{}.{}", pod.name, c.name)
    }
}

/// One run judged, with where it sits in the pod's time.
struct Judged<'a> {
    verdict: Verdict,
    /// The run's OOM kills, nested cgroups' included.
    oom_kills: u64,
    instance: &'a Instance,
    kill: Option<Kill>,
}

pub fn pod_report(pod: &PodPlan, g: Gathered<'_>, logs_dir: &Path) -> PodReport {
    let Gathered {
        end,
        observed,
        first_unit,
        samples,
        swap,
        node,
        counters,
    } = g;
    let pod_limit = pod.limit_bytes();
    let judged: Vec<Vec<Judged<'_>>> = pod
        .containers
        .iter()
        .zip(&end.containers)
        .enumerate()
        .map(|(j, (c, ce))| {
            let peak = counters.container_peaks.get(j).copied().flatten();
            let limits = Limits {
                container: (c.limit_bytes(), peak),
                pod: (pod_limit, counters.pod_peak),
            };
            judge_runs(ce, observed, first_unit + j, &node, &limits)
        })
        .collect();
    let containers: Vec<ContainerReport> = pod
        .containers
        .iter()
        .zip(&end.containers)
        .zip(&judged)
        .enumerate()
        .map(|(j, ((c, ce), runs))| {
            let log = logs_dir.join(format!("{}.log", file_stem(pod, c)));
            let adj = node.oom_score_adjs.get(j).copied().unwrap_or(0);
            let peak = counters.container_peaks.get(j).copied().flatten();
            container_report(c, ce, runs, end.start_ns, adj, peak, &log)
        })
        .collect();
    let main = pod.main_index();
    let since_pod = |i: &Instance| seconds_between(end.start_ns, i.start_ns);
    // The pod's verdict: its first failure (a sidecar stopped at the pod's
    // end is not one, unless evicted or interrupted), else its main
    // container's end, else (the pod never got past its init containers)
    // the last run of any container.
    let failed = |r: &&Judged<'_>| {
        let stopped_at_end = r.instance.ended == Ended::Stopped
            && !matches!(r.verdict.cause, Cause::Evicted | Cause::Interrupted);
        !stopped_at_end && !r.verdict.survived(r.instance.oom_kills)
    };
    let first_failure = judged
        .iter()
        .flatten()
        .filter(failed)
        .min_by_key(|r| r.instance.end_ns);
    let decisive = first_failure
        .or_else(|| judged[main].last())
        .or_else(|| judged.iter().flatten().max_by_key(|r| r.instance.end_ns));
    let mut verdict = match decisive {
        Some(r) => Verdict {
            at_s: r.verdict.at_s + since_pod(r.instance),
            ..r.verdict.clone()
        },
        None => verdict::classify(&Evidence {
            start_error: Some("no container of the pod started".into()),
            ..Evidence::default()
        }),
    };
    // An evicted pod is Evicted, whatever its containers did before (its
    // containers may all have been waiting out a back-off).
    if let Some((ns, message)) = &node.evicted {
        verdict = Verdict {
            reason: Reason::Evicted,
            cause: Cause::Evicted,
            message: message.clone(),
            at_s: seconds_between(end.start_ns, *ns),
            at_source: AtSource::Eviction,
            detect_latency_us: None,
            ..verdict
        };
    }
    let main_last = end.containers[main].instances.last();
    let sampled_peak = samples.iter().map(|s| s.bytes).max().unwrap_or(0);
    let max_of = |f: fn(&Sample) -> Option<u64>| samples.iter().filter_map(f).max();
    // The decisive run's events, on the pod's clock.
    let events: Vec<TimedEvent> = decisive
        .map(|r| {
            let shift = since_pod(r.instance);
            r.instance
                .events
                .iter()
                .map(|e| TimedEvent {
                    t_s: e.t_s + shift,
                    ..e.clone()
                })
                .collect()
        })
        .unwrap_or_default();
    let dual_residency = DualResidency::from_events(&events, verdict.at_s);
    let mut unmet = pod
        .expect
        .as_ref()
        .map(|e| verdict::unmet(e, &verdict))
        .unwrap_or_default();
    for c in &containers {
        unmet.extend(c.unmet.iter().map(|u| format!("container {}: {u}", c.name)));
    }
    PodReport {
        name: pod.name.clone(),
        container: Some(pod.containers[main].name.clone()),
        qos: pod.qos,
        priority: pod.priority,
        request_bytes: pod.request_bytes(),
        limit_bytes: pod_limit,
        swap: Some(swap),
        oom_score_adj: node.oom_score_adjs.get(main).copied().unwrap_or(0),
        oom_score_adj_applied: main_last.and_then(|i| i.oom_score_adj_applied),
        peak_bytes: counters.pod_peak.unwrap_or(0).max(sampled_peak),
        oom_kill_count: containers.iter().map(|c| c.oom_kill_count).sum(),
        stat_at_end: counters.pod_stat,
        pid: main_last.and_then(|i| i.pid),
        started_at: kubectl_time(end.started_at),
        finished_at: kubectl_time(end.finished_at),
        kernel_kill: decisive.and_then(|r| r.kill.clone()),
        verdict,
        expect: pod.expect.clone(),
        unmet,
        log: containers[main].log.clone(),
        device_peak_bytes: max_of(|s| s.device_bytes),
        anon_peak_bytes: max_of(|s| s.anon_bytes),
        file_peak_bytes: max_of(|s| s.file_bytes),
        dual_residency,
        events,
        samples,
        containers,
    }
}

/// A container's limit and peak, and its pod's.
struct Limits {
    container: (Option<u64>, Option<u64>),
    pod: (Option<u64>, Option<u64>),
}

/// Judge each run of one container from what the watcher saw in its time.
fn judge_runs<'a>(
    ce: &'a ContainerEnd,
    observed: &Observed,
    unit: usize,
    node: &PodNode,
    limits: &Limits,
) -> Vec<Judged<'a>> {
    let kills: &[Kill] = observed.kills.get(unit).map_or(&[], Vec::as_slice);
    let rises = observed.rises.get(unit).map_or(&[][..], Vec::as_slice);
    let to_mono = |k: &Kill| {
        observed
            .kmsg_offset_ns
            .map(|offset| kmsg::to_monotonic_ns(k.ts_us, offset))
    };
    // The container cgroup's counter runs on across restarts: a run's
    // rises are those that counted its own kills.
    let mut counted: u64 = 0;
    ce.instances
        .iter()
        .enumerate()
        .map(|(k, inst)| {
            let until = ce
                .instances
                .get(k + 1)
                .map_or(u64::MAX, |next| next.start_ns);
            let within = |ns: u64| ns >= inst.start_ns && ns < until;
            let kills_of_run = (counted + 1)..=(counted + inst.oom_kills);
            counted += inst.oom_kills;
            // Kills in a cgroup an engine made below the container's (v1
            // counts them only there); v2's counter already holds them.
            let nested = observed.nested_kills.get(unit).map_or(0, |n| {
                n.iter().filter(|k| to_mono(k).is_some_and(within)).count() as u64
            });
            let mine: Vec<&Kill> = kills
                .iter()
                .filter(|kl| Some(kl.pid) == inst.pid || to_mono(kl).is_some_and(within))
                .collect();
            let main_kill = mine.iter().find(|kl| Some(kl.pid) == inst.pid).copied();
            let kill = main_kill.or(mine.first().copied()).cloned();
            let since_start = |ns: u64| seconds_between(inst.start_ns, ns);
            let evidence = Evidence {
                exit: inst.exit,
                start_error: inst.start_error.clone(),
                timed_out: inst.ended == Ended::Timeout,
                oom_kills: inst.oom_kills.max(nested),
                // An engine's container: its killed init is the main process.
                main_was_victim: main_kill.is_some()
                    || (nested > 0 && inst.exit == Some(Exit::Signal(libc::SIGKILL))),
                waited_s: since_start(inst.end_ns),
                counter_seen_s: rises
                    .iter()
                    .find(|r| kills_of_run.contains(&r.count))
                    .map(|r| since_start(r.seen_ns)),
                kernel_kill_s: kill.as_ref().and_then(to_mono).map(since_start),
                cuda_oom: inst
                    .events
                    .iter()
                    .find_map(|e| match &e.event {
                        Event::CudaOom { message, .. } => Some((Some(e.t_s), message.clone())),
                        _ => None,
                    })
                    .or(inst.logged_cuda_oom.clone().map(|l| (None, l))),
                runtime_oom: inst.runtime_oom.clone(),
                evicted: node
                    .evicted
                    .as_ref()
                    .filter(|(ns, _)| *ns >= inst.start_ns && *ns <= inst.end_ns)
                    .map(|(ns, m)| (since_start(*ns), m.clone())),
                node_oom: node_level_oom(&node.node_cgroups, kill.as_ref(), limits),
                interrupted: crate::signals::caught().map(crate::signals::name),
            };
            Judged {
                oom_kills: evidence.oom_kills,
                verdict: verdict::classify(&evidence),
                instance: inst,
                kill,
            }
        })
        .collect()
}

fn container_report(
    c: &ContainerPlan,
    ce: &ContainerEnd,
    runs: &[Judged<'_>],
    pod_start_ns: u64,
    oom_score_adj: i32,
    peak: Option<u64>,
    log: &Path,
) -> ContainerReport {
    let last = runs.last();
    let state = match last {
        None => ContainerState::Waiting {
            reason: "PodInitializing".into(),
        },
        Some(_) if ce.backing_off => ContainerState::Waiting {
            reason: "CrashLoopBackOff".into(),
        },
        Some(r) if matches!(r.verdict.cause, Cause::Timeout | Cause::Interrupted) => {
            ContainerState::Running
        }
        Some(_) => ContainerState::Terminated,
    };
    let verdict = last.map(|r| r.verdict.clone());
    let unmet = match (&c.expect, &verdict) {
        (Some(e), Some(v)) => verdict::unmet(e, v),
        (Some(_), None) => vec!["it never started".into()],
        (None, _) => Vec::new(),
    };
    ContainerReport {
        name: c.name.clone(),
        kind: c.kind,
        request_bytes: c.request_bytes(),
        limit_bytes: c.limit_bytes(),
        peak_bytes: peak.unwrap_or(0),
        oom_score_adj,
        restart_count: ce.restart_count(),
        oom_kill_count: runs.iter().map(|r| r.oom_kills).sum(),
        state,
        verdict,
        terminations: runs
            .iter()
            .rev()
            .map(|r| Termination {
                verdict: r.verdict.clone(),
                pid: r.instance.pid,
                started_at: kubectl_time(r.instance.started_at),
                finished_at: kubectl_time(r.instance.finished_at),
                started_s: seconds_between(pod_start_ns, r.instance.start_ns),
                oom_kill_count: r.oom_kills,
                kernel_kill: r.kill.clone(),
            })
            .collect(),
        expect: c.expect.clone(),
        unmet,
        flags: c.flags.clone(),
        // The last run's, on the pod's clock.
        runtime_memory: last.and_then(|r| {
            let mut m = r.instance.runtime_memory.clone()?;
            let offset = seconds_between(pod_start_ns, r.instance.start_ns);
            m.samples.iter_mut().for_each(|s| s.t_s += offset);
            Some(m)
        }),
        log: log.display().to_string(),
    }
}

/// Which cgroup above the container the kernel's kill was for, if not its
/// own or its pod's: the kill line's `oom_memcg`, or without it, a kill well
/// below every limit of its own (kubepods' when there is one: its limit is
/// below the node's, so it fills first).
fn node_level_oom(
    cgroups: &Option<NodeCgroups>,
    kill: Option<&Kill>,
    limits: &Limits,
) -> Option<NodeLevel> {
    let cgroups = cgroups.as_ref()?;
    match kill.and_then(|k| k.oom_memcg.as_deref()) {
        Some(memcg) if memcg == cgroups.node => Some(NodeLevel::Node),
        Some(memcg) if memcg == cgroups.kubepods => Some(NodeLevel::Allocatable),
        Some(_) => None,
        None => {
            let level = if cgroups.kubepods == cgroups.node {
                NodeLevel::Node
            } else {
                NodeLevel::Allocatable
            };
            let near = |(limit, peak): (Option<u64>, Option<u64>)| match (limit, peak) {
                (None, _) => false,
                (Some(l), Some(p)) => p + (1 << 20) >= l,
                // A limit with no peak known: it may have been reached.
                (Some(_), None) => true,
            };
            (!near(limits.container) && !near(limits.pod)).then_some(level)
        }
    }
}
