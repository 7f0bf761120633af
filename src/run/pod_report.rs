//! One pod's evidence gathered into its report: the kernel's kill line, the
//! counter rise, the workload's events and the eviction loop's word, judged
//! once by [`crate::verdict::classify`].

use std::path::Path;

use super::spawn::PodEnd;
use crate::monitor::clock::seconds_between;
use crate::monitor::kmsg::{self, Kill};
use crate::monitor::sampler::Sample;
use crate::monitor::watch::Observed;
use crate::plan::PodPlan;
use crate::report::{DualResidency, PodReport};
use crate::verdict::{self, Evidence, NodeLevel};
use crate::workload::events::Event;

/// What the node knows of a pod.
pub struct PodNode {
    pub oom_score_adj: i32,
    pub evicted: Option<(f64, String)>,
    /// The node and kubepods cgroups' kernel names, when the run has a node.
    pub node_cgroups: Option<NodeCgroups>,
}

/// Kernel names of the cgroups above a pod on a node.
#[derive(Debug, Clone)]
pub struct NodeCgroups {
    pub node: String,
    pub kubepods: String,
}

/// Everything gathered for one pod, judged into its report.
pub struct Gathered<'a> {
    pub end: PodEnd,
    pub observed: &'a Observed,
    pub index: usize,
    pub samples: Vec<Sample>,
    pub swap: crate::cgroup::Swap,
    pub node: PodNode,
}

pub fn pod_report(pod: &PodPlan, g: Gathered<'_>, logs_dir: &Path) -> PodReport {
    let Gathered {
        end,
        observed,
        index: i,
        samples,
        swap,
        node,
    } = g;
    let kills: &[Kill] = observed.kills.get(i).map_or(&[], Vec::as_slice);
    let main_kill = kills.iter().find(|k| Some(k.pid) == end.pid);
    let kill = main_kill.or(kills.first()).cloned();
    let since_start = |ns: u64| seconds_between(end.start_ns, ns);
    let kernel_kill_s = match (&kill, observed.kmsg_offset_ns) {
        (Some(k), Some(offset)) => Some(since_start(kmsg::to_monotonic_ns(k.ts_us, offset))),
        _ => None,
    };
    let counter_seen_s = observed
        .rises
        .get(i)
        .and_then(|r| r.first())
        .map(|r| since_start(r.seen_ns));
    let evidence = Evidence {
        exit: end.exit,
        start_error: end.start_error,
        timed_out: end.timed_out,
        oom_kills: end.oom_kills,
        main_was_victim: main_kill.is_some(),
        waited_s: since_start(end.end_ns),
        counter_seen_s,
        kernel_kill_s,
        cuda_oom: end
            .events
            .iter()
            .find_map(|e| match &e.event {
                Event::CudaOom { message, .. } => Some((Some(e.t_s), message.clone())),
                _ => None,
            })
            .or(end.logged_cuda_oom.map(|l| (None, l))),
        evicted: node.evicted,
        node_oom: node_level_oom(&node.node_cgroups, kill.as_ref(), pod, end.kernel_peak),
        interrupted: crate::signals::caught().map(crate::signals::name),
    };
    let verdict = verdict::classify(&evidence);
    let sampled_peak = samples.iter().map(|s| s.bytes).max().unwrap_or(0);
    let max_of = |f: fn(&Sample) -> Option<u64>| samples.iter().filter_map(f).max();
    let dual_residency = DualResidency::from_events(&end.events, verdict.at_s);
    let unmet = pod
        .expect
        .as_ref()
        .map(|e| verdict::unmet(e, &verdict))
        .unwrap_or_default();
    PodReport {
        name: pod.name.clone(),
        container: Some(pod.container.clone()),
        qos: pod.qos,
        priority: pod.priority,
        request_bytes: pod.request_bytes,
        limit_bytes: pod.limit_bytes,
        swap: Some(swap),
        oom_score_adj: node.oom_score_adj,
        oom_score_adj_applied: end.oom_score_adj_applied,
        peak_bytes: end.kernel_peak.unwrap_or(0).max(sampled_peak),
        oom_kill_count: end.oom_kills,
        stat_at_end: end.stat_at_end,
        pid: end.pid,
        started_at: crate::report::time::kubectl_time(end.started_at),
        finished_at: crate::report::time::kubectl_time(end.finished_at),
        verdict,
        kernel_kill: kill,
        expect: pod.expect.clone(),
        unmet,
        log: logs_dir
            .join(format!("{}.log", pod.name))
            .display()
            .to_string(),
        device_peak_bytes: max_of(|s| s.device_bytes),
        anon_peak_bytes: max_of(|s| s.anon_bytes),
        file_peak_bytes: max_of(|s| s.file_bytes),
        dual_residency,
        events: end.events,
        samples,
    }
}

/// The kill was the node's: the kernel names the node cgroup as the one out
/// of memory; without its line, the pod was below its own limit (or had none).
/// Which cgroup above the pod the kernel's kill was for, if not the pod's:
/// the kill line's `oom_memcg`, or without it, a kill well below the pod's
/// own limit (kubepods' when there is one: its limit is below the node's,
/// so it fills first).
fn node_level_oom(
    cgroups: &Option<NodeCgroups>,
    kill: Option<&Kill>,
    pod: &PodPlan,
    peak: Option<u64>,
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
            match (pod.limit_bytes, peak) {
                (None, _) => Some(level),
                (Some(l), Some(p)) if p + (1 << 20) < l => Some(level),
                _ => None,
            }
        }
    }
}
