//! The kubelet's eviction loop, run for real against the node cgroup:
//! every housekeeping interval, `memory.available = capacity - working set`
//! (usage - inactive file) against the thresholds; below a hard one, rank
//! the running pods as the kubelet does (pkg/kubelet/eviction) and kill the
//! first at once (hard eviction has no grace period).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cgroup::Cgroup;
use crate::k8s::{ContainerUsage, PodUsage, eviction_message, rank};
use crate::monitor::PodStop;
use crate::monitor::clock::{monotonic_ns, seconds_between};
use crate::monitor::sampler::PodClock;
use crate::plan::NodeSpec;
use crate::report::node::{Condition, Eviction, NodeReport, NodeSample};

/// Set when the loop evicts a pod: (when, monotonic ns; the kubelet's message).
pub type EvictedFlag = Arc<Mutex<Option<(u64, String)>>>;

/// One container as the eviction message names it.
pub struct WatchedContainer {
    pub name: String,
    /// Its own request (defaulted from its limit), 0 if none.
    pub request_bytes: u64,
    pub group: Cgroup,
}

/// One pod as the eviction loop sees it.
pub struct Watched {
    pub name: String,
    pub priority: i32,
    /// The request ranking counts (pod-level, else the containers' aggregate).
    pub request_bytes: u64,
    /// The pod-level request, when the pod has pod-level resources.
    pub pod_request: Option<u64>,
    pub containers: Vec<WatchedContainer>,
    pub group: Cgroup,
    pub clock: Arc<PodClock>,
    pub evicted: EvictedFlag,
    /// Raised on eviction, so that nothing in the pod starts again.
    pub stop: Arc<PodStop>,
}

fn working_set(g: &Cgroup) -> Option<u64> {
    let usage = g.usage().ok()?.read_number().ok()?;
    let stat = g.backend.stat(&g.path).ok()?;
    Some(usage.saturating_sub(stat.inactive_file_bytes))
}

pub struct EvictionLoop {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<NodeReport>,
}

/// The loop's thread panicked: the run's evictions are unknown.
#[derive(Debug, thiserror::Error)]
#[error("the eviction loop's thread panicked; the node's evictions are incomplete")]
pub struct EvictionPanicked;

impl EvictionLoop {
    pub fn start(spec: NodeSpec, node: Cgroup, pods: Vec<Watched>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("eviction".into())
            .spawn(move || run(&spec, &node, &pods, &flag))?;
        Ok(EvictionLoop { stop, handle })
    }

    pub fn finish(self) -> Result<NodeReport, EvictionPanicked> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().map_err(|_| EvictionPanicked)
    }
}

/// Samples the node often (for the plot), acts only every housekeeping interval.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

fn run(spec: &NodeSpec, node: &Cgroup, pods: &[Watched], stop: &AtomicBool) -> NodeReport {
    let cap = spec.capacity_bytes;
    let hard = spec.hard.bytes(cap);
    let t0 = monotonic_ns();
    let mut report = NodeReport {
        capacity_bytes: cap,
        allocatable_bytes: Some(spec.allocatable_bytes()),
        hard_threshold_bytes: hard,
        housekeeping_s: spec.housekeeping_s,
        samples: Vec::new(),
        evictions: Vec::new(),
        conditions: Vec::new(),
    };
    let housekeeping = Duration::from_secs_f64(spec.housekeeping_s);
    let mut next_housekeeping = t0 + housekeeping.as_nanos() as u64;
    let mut soft_since: Option<u64> = None;
    let mut pressure = false;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(SAMPLE_EVERY);
        let now = monotonic_ns();
        let Some(ws) = working_set(node) else {
            continue;
        };
        let available = cap as i64 - ws as i64;
        let t_s = seconds_between(t0, now);
        report.samples.push(NodeSample {
            t_s,
            working_set_bytes: ws,
            available_bytes: available,
        });
        if now < next_housekeeping {
            continue;
        }
        next_housekeeping = now + housekeeping.as_nanos() as u64;
        let below_soft = spec
            .soft
            .is_some_and(|(s, _)| available < s.bytes(cap) as i64);
        soft_since = if below_soft {
            soft_since.or(Some(now))
        } else {
            None
        };
        let soft_due = match (spec.soft, soft_since) {
            (Some((_, grace)), Some(since)) => seconds_between(since, now) >= grace,
            _ => false,
        };
        let signal = if available < hard as i64 {
            Some(("hard", hard, spec.hard))
        } else if soft_due {
            spec.soft.map(|(s, _)| ("soft", s.bytes(cap), s))
        } else {
            None
        };
        if signal.is_some() != pressure {
            pressure = signal.is_some();
            report.conditions.push(Condition {
                t_s,
                kind: "MemoryPressure".into(),
                status: if pressure { "True" } else { "False" }.into(),
            });
        }
        let Some((kind, threshold_bytes, threshold)) = signal else {
            continue;
        };
        // Only pods still running can be evicted: one that has ended is gone
        // from the kubelet's view, whatever page cache it left charged.
        let live: Vec<(usize, PodUsage, Vec<ContainerUsage>)> = pods
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.clock.is_running() && p.evicted.lock().map(|e| e.is_none()).unwrap_or(false)
            })
            .filter_map(|(i, p)| {
                let containers = p
                    .containers
                    .iter()
                    .map(|c| {
                        Some(ContainerUsage {
                            name: c.name.clone(),
                            request_bytes: c.request_bytes,
                            working_set_bytes: working_set(&c.group)?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                let usage = PodUsage {
                    name: p.name.clone(),
                    priority: p.priority,
                    request_bytes: p.request_bytes,
                    // The kubelet sums its containers' working sets.
                    working_set_bytes: containers.iter().map(|c| c.working_set_bytes).sum(),
                };
                Some((i, usage, containers))
            })
            .filter(|(_, u, _)| u.working_set_bytes > 0)
            .collect();
        let usages: Vec<PodUsage> = live.iter().map(|(_, u, _)| u.clone()).collect();
        let order = rank(&usages);
        let Some(&first) = order.first() else {
            continue;
        };
        let (idx, victim, containers) = &live[first];
        let pod = &pods[*idx];
        let message = eviction_message(
            threshold,
            cap,
            available,
            victim,
            pod.pod_request,
            containers,
        );
        // A pod that has ended by itself by now is gone: not evicted.
        if !pod.clock.is_running() {
            continue;
        }
        // Hard eviction: no grace period, and nothing in the pod starts
        // again (a pod waiting out a back-off is evicted too).
        pod.stop.raise();
        if let Ok(mut e) = pod.evicted.lock() {
            *e = Some((now, message.clone()));
        }
        pod.group.kill_tree();
        report.evictions.push(Eviction {
            t_s,
            pod: victim.name.clone(),
            signal: kind.into(),
            available_bytes: available,
            threshold_bytes,
            message,
            ranking: order.iter().map(|&i| usages[i].name.clone()).collect(),
        });
    }
    report
}
