//! The node: the kubelet's memory policies, followed to the letter.
//!
//! - `oom_score_adj` per QoS class (pkg/kubelet/qos/policy.go).
//! - Eviction ranking (pkg/kubelet/eviction/helpers.go, memory): pods whose
//!   working set exceeds their request first, then lower priority, then the
//!   larger `working set - request`. QoS class is not a key of its own; it
//!   only shows through the request (BestEffort's is zero).
//! - The eviction loop: every housekeeping interval, `memory.available =
//!   capacity - working set` (usage - inactive file) against the thresholds;
//!   below a hard one, evict the first-ranked pod at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cgroup::Cgroup;
use crate::monitor::clock::{monotonic_ns, seconds_between};
use crate::monitor::sampler::PodClock;
use crate::scenario::Qos;
use crate::units::fmt_quantity;

pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
pub const BESTEFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// The kubelet's oom_score_adj for a container of this pod.
pub fn oom_score_adj(qos: Qos, request_bytes: u64, capacity_bytes: u64) -> i32 {
    match qos {
        Qos::Guaranteed => GUARANTEED_OOM_SCORE_ADJ,
        Qos::BestEffort => BESTEFFORT_OOM_SCORE_ADJ,
        Qos::Burstable => {
            let cap = capacity_bytes.max(1) as i128;
            let adj = 1000 - (1000 * request_bytes as i128) / cap;
            // Never as protected as Guaranteed, never as exposed as BestEffort.
            adj.clamp(3, 999) as i32
        }
    }
}

/// A threshold as written: a quantity, or a percentage of capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

impl Threshold {
    pub fn parse(s: &str) -> Result<Threshold, String> {
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a percentage"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("{s:?} is outside 0%..100%"));
            }
            return Ok(Threshold::Percent(v));
        }
        crate::units::parse_bytes(s)
            .map(Threshold::Bytes)
            .map_err(|e| e.to_string())
    }

    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as u64,
        }
    }
}

/// The scenario's `node:` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeSpec {
    pub capacity_bytes: u64,
    pub hard: Threshold,
    pub soft: Option<(Threshold, f64)>,
    pub housekeeping_s: f64,
}

/// What ranking looks at for one pod.
#[derive(Debug, Clone, PartialEq)]
pub struct PodUsage {
    pub name: String,
    pub priority: i32,
    pub request_bytes: u64,
    pub working_set_bytes: u64,
}

/// Indices of `pods` in eviction order (first = evicted first).
pub fn rank(pods: &[PodUsage]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..pods.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (&pods[a], &pods[b]);
        let exceeds = |p: &PodUsage| p.working_set_bytes > p.request_bytes;
        let over = |p: &PodUsage| p.working_set_bytes as i128 - p.request_bytes as i128;
        exceeds(pb)
            .cmp(&exceeds(pa))
            .then(pa.priority.cmp(&pb.priority))
            .then(over(pb).cmp(&over(pa)))
    });
    order
}

/// The kubelet's eviction message.
pub fn eviction_message(threshold: &str, available: i64, pod: &PodUsage) -> String {
    format!(
        "The node was low on resource: memory. Threshold quantity: {threshold}, available: {}Ki. Container app was using {}Ki, request is {}, has larger consumption of memory.",
        available.div_euclid(1024),
        pod.working_set_bytes / 1024,
        fmt_quantity(pod.request_bytes)
    )
}

/// One reading of the node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    /// Seconds since the run's pods started.
    pub t_s: f64,
    pub working_set_bytes: u64,
    pub available_bytes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eviction {
    pub t_s: f64,
    pub pod: String,
    /// hard or soft.
    pub signal: String,
    pub available_bytes: i64,
    pub threshold_bytes: u64,
    pub message: String,
    /// Every running pod in the kubelet's order at that moment (first was evicted).
    pub ranking: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub t_s: f64,
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

/// The node's part of a report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    pub capacity_bytes: u64,
    pub hard_threshold_bytes: u64,
    pub housekeeping_s: f64,
    pub samples: Vec<NodeSample>,
    pub evictions: Vec<Eviction>,
    pub conditions: Vec<Condition>,
}

/// Set when the loop evicts a pod: (seconds since its start, the kubelet's message).
pub type EvictedFlag = Arc<Mutex<Option<(f64, String)>>>;

/// One pod as the eviction loop sees it.
pub struct Watched {
    pub name: String,
    pub priority: i32,
    pub request_bytes: u64,
    pub group: Cgroup,
    pub clock: Arc<PodClock>,
    pub evicted: EvictedFlag,
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

impl EvictionLoop {
    pub fn start(spec: NodeSpec, node: Cgroup, pods: Vec<Watched>) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("eviction".into())
            .spawn(move || run(&spec, &node, &pods, &flag))?;
        Ok(EvictionLoop { stop, handle })
    }

    pub fn finish(self) -> Option<NodeReport> {
        self.stop.store(true, Ordering::Release);
        self.handle.join().ok()
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
            Some(("hard", hard, fmt_threshold(spec.hard)))
        } else if soft_due {
            spec.soft
                .map(|(s, _)| ("soft", s.bytes(cap), fmt_threshold(s)))
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
        let live: Vec<(usize, PodUsage)> = pods
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.clock.pid().is_some() && p.evicted.lock().map(|e| e.is_none()).unwrap_or(false)
            })
            .filter_map(|(i, p)| {
                Some((
                    i,
                    PodUsage {
                        name: p.name.clone(),
                        priority: p.priority,
                        request_bytes: p.request_bytes,
                        working_set_bytes: working_set(&p.group)?,
                    },
                ))
            })
            .filter(|(_, u)| u.working_set_bytes > 0)
            .collect();
        let usages: Vec<PodUsage> = live.iter().map(|(_, u)| u.clone()).collect();
        let order = rank(&usages);
        let Some(&first) = order.first() else {
            continue;
        };
        let (idx, victim) = &live[first];
        let message = eviction_message(&threshold, available, victim);
        let pod = &pods[*idx];
        // Hard eviction: no grace period.
        for pid in pod.group.pids().unwrap_or_default() {
            // SAFETY: kill(2) on a process inside one of our pod cgroups.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let since_pod = pod
            .clock
            .start_ns()
            .map_or(t_s, |s| seconds_between(s, now));
        if let Ok(mut e) = pod.evicted.lock() {
            *e = Some((since_pod, message.clone()));
        }
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

fn fmt_threshold(t: Threshold) -> String {
    match t {
        Threshold::Bytes(b) => fmt_quantity(b),
        Threshold::Percent(p) => format!("{p}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GI: u64 = 1 << 30;

    #[test]
    fn oom_score_adj_at_the_clamps_and_between() {
        assert_eq!(oom_score_adj(Qos::Guaranteed, 8 * GI, 16 * GI), -997);
        assert_eq!(oom_score_adj(Qos::BestEffort, 0, 16 * GI), 1000);
        // 1000 - 1000 x 4Gi / 16Gi = 750.
        assert_eq!(oom_score_adj(Qos::Burstable, 4 * GI, 16 * GI), 750);
        // Integer division: 1000 - 1000 x 1000 / 3000 = 1000 - 333 = 667.
        assert_eq!(oom_score_adj(Qos::Burstable, 1000, 3000), 667);
        // A request as large as the node would give 0: raised to 3.
        assert_eq!(oom_score_adj(Qos::Burstable, 16 * GI, 16 * GI), 3);
        assert_eq!(oom_score_adj(Qos::Burstable, 32 * GI, 16 * GI), 3);
        // A tiny request would give 1000: lowered to 999.
        assert_eq!(oom_score_adj(Qos::Burstable, 1, 16 * GI), 999);
        assert_eq!(oom_score_adj(Qos::Burstable, 0, 16 * GI), 999);
    }

    fn pod(name: &str, priority: i32, request: u64, ws: u64) -> PodUsage {
        PodUsage {
            name: name.into(),
            priority,
            request_bytes: request,
            working_set_bytes: ws,
        }
    }

    fn names(pods: &[PodUsage]) -> Vec<&str> {
        rank(pods).iter().map(|&i| pods[i].name.as_str()).collect()
    }

    #[test]
    fn ranking_follows_the_kubelet_not_the_qos_shorthand() {
        const MI: u64 = 1 << 20;
        let pods = [
            pod("guaranteed", 0, 512 * MI, 512 * MI),
            pod("besteffort", 0, 0, 300 * MI),
            pod("burstable-leak", 0, 256 * MI, 2048 * MI),
            pod("burstable-under", 0, 1024 * MI, 600 * MI),
        ];
        // Both over their request; the leaker is further over than BestEffort.
        // Then the Guaranteed pod at its request (0 over) before the Burstable
        // one 424Mi under its own: QoS class is not a key.
        assert_eq!(
            names(&pods),
            [
                "burstable-leak",
                "besteffort",
                "guaranteed",
                "burstable-under"
            ]
        );
        // Priority comes before the amount over request.
        let pods = [
            pod("big-important", 1000, 0, 4096 * MI),
            pod("small-plain", 0, 0, 10 * MI),
        ];
        assert_eq!(names(&pods), ["small-plain", "big-important"]);
        // Over request beats priority: a high-priority pod over its request goes
        // before a low-priority pod within its request.
        let pods = [
            pod("low-within", -10, 1024 * MI, 900 * MI),
            pod("high-over", 100, 100 * MI, 200 * MI),
        ];
        assert_eq!(names(&pods), ["high-over", "low-within"]);
        // Within their requests: lower priority, then the one closest to its request.
        let pods = [
            pod("a", 0, 1024 * MI, 100 * MI),
            pod("b", 0, 1024 * MI, 1000 * MI),
        ];
        assert_eq!(names(&pods), ["b", "a"]);
    }

    #[test]
    fn thresholds_and_the_kubelet_message() {
        assert_eq!(Threshold::parse("100Mi"), Ok(Threshold::Bytes(100 << 20)));
        assert_eq!(Threshold::parse("10%").unwrap().bytes(1000), 100);
        assert!(Threshold::parse("120%").is_err());
        let m = eviction_message(
            "100Mi",
            95_044 * 1024,
            &pod("app", 0, 18_281_250 * 1024, 25_712_144 * 1024),
        );
        assert_eq!(
            m,
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 95044Ki. Container app was using 25712144Ki, request is 18281250Ki, has larger consumption of memory."
        );
    }
}

/// `kubectl get pods -o yaml` as far as memory goes: a `List` of Pods or one Pod.
pub mod kube {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub struct Object {
        pub kind: Option<String>,
        #[serde(default)]
        pub items: Vec<Object>,
        pub metadata: Option<Metadata>,
        pub spec: Option<PodSpec>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Metadata {
        pub name: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    pub struct PodSpec {
        #[serde(default)]
        pub containers: Vec<Container>,
        pub priority: Option<i32>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Container {
        pub resources: Option<Resources>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Resources {
        #[serde(default)]
        pub requests: std::collections::BTreeMap<String, serde_saphyr::Spanned<String>>,
        #[serde(default)]
        pub limits: std::collections::BTreeMap<String, serde_saphyr::Spanned<String>>,
    }
}

/// One pod of `oomsim node plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedPod {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    pub request_bytes: u64,
    pub usage_bytes: u64,
    pub oom_score_adj: i32,
    /// 1 = evicted first.
    pub eviction_rank: usize,
}

/// Pods from kubectl's YAML: QoS over all containers (Guaranteed when every
/// container's CPU and memory limits equal their requests), summed requests.
pub fn pods_from_kubectl(text: &str, shown: &str) -> Result<Vec<(String, Qos, i32, u64)>, String> {
    let obj: kube::Object = serde_saphyr::from_str(text).map_err(|e| {
        format!(
            "{shown}: not kubectl YAML: {}",
            e.to_string().lines().next().unwrap_or("")
        )
    })?;
    let pods: Vec<kube::Object> = match obj.kind.as_deref() {
        Some("List") | Some("PodList") => obj.items,
        Some("Pod") => vec![obj],
        other => {
            return Err(format!(
                "{shown}: kind {other:?} is neither a Pod nor a List of Pods (kubectl get pods -o yaml)"
            ));
        }
    };
    let mut out = Vec::new();
    for (i, p) in pods.into_iter().enumerate() {
        if p.kind.as_deref().is_some_and(|k| k != "Pod") {
            continue;
        }
        let name = p
            .metadata
            .and_then(|m| m.name)
            .unwrap_or_else(|| format!("pod-{i}"));
        let spec = p
            .spec
            .ok_or_else(|| format!("{shown}: pod {name} has no spec"))?;
        let (mut request, mut any, mut guaranteed) = (0u64, false, !spec.containers.is_empty());
        for c in &spec.containers {
            let r = c.resources.as_ref();
            let get =
                |m: Option<&std::collections::BTreeMap<String, serde_saphyr::Spanned<String>>>,
                 k: &str| {
                    m.and_then(|m| m.get(k))
                        .map(|v| {
                            crate::units::parse_quantity_scaled(&v.value, 3).map_err(|e| {
                                format!(
                                    "{shown}:{}: pod {name}: resources {k}: {e}",
                                    v.referenced.line()
                                )
                            })
                        })
                        .transpose()
                };
            let (req, lim) = (r.map(|r| &r.requests), r.map(|r| &r.limits));
            let mem_lim = get(lim, "memory")?;
            let cpu_lim = get(lim, "cpu")?;
            // The API server defaults a missing request to the limit.
            let mem_req = get(req, "memory")?.or(mem_lim);
            let cpu_req = get(req, "cpu")?.or(cpu_lim);
            any |= [mem_req, mem_lim, cpu_req, cpu_lim]
                .iter()
                .any(|v| v.is_some_and(|v| v > 0));
            guaranteed &=
                mem_lim.is_some() && mem_req == mem_lim && cpu_lim.is_some() && cpu_req == cpu_lim;
            request += mem_req.unwrap_or(0) / 1000;
        }
        let qos = if guaranteed {
            Qos::Guaranteed
        } else if any {
            Qos::Burstable
        } else {
            Qos::BestEffort
        };
        out.push((name, qos, spec.priority.unwrap_or(0), request));
    }
    Ok(out)
}

/// QoS, oom_score_adj and eviction rank for pods at the given usage.
pub fn plan_pods(
    pods: &[(String, Qos, i32, u64)],
    capacity: u64,
    usage: &[(String, u64)],
) -> Vec<PlannedPod> {
    let usages: Vec<PodUsage> = pods
        .iter()
        .map(|(name, _, priority, request)| PodUsage {
            name: name.clone(),
            priority: *priority,
            request_bytes: *request,
            working_set_bytes: usage.iter().find(|(n, _)| n == name).map_or(0, |(_, u)| *u),
        })
        .collect();
    let order = rank(&usages);
    pods.iter()
        .enumerate()
        .map(|(i, (name, qos, priority, request))| PlannedPod {
            name: name.clone(),
            qos: *qos,
            priority: *priority,
            request_bytes: *request,
            usage_bytes: usages[i].working_set_bytes,
            oom_score_adj: oom_score_adj(*qos, *request, capacity),
            eviction_rank: order.iter().position(|&j| j == i).unwrap_or(0) + 1,
        })
        .collect()
}

#[cfg(test)]
mod kube_tests {
    use super::*;

    #[test]
    fn kubectl_list_to_qos_adj_and_rank() {
        let yaml = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: default}
  spec:
    priority: 0
    containers:
    - name: app
      image: nginx
      resources:
        requests: {memory: 1Gi, cpu: 100m}
        limits: {memory: 2Gi}
    - name: sidecar
      resources:
        requests: {memory: 512Mi}
- kind: Pod
  metadata: {name: db}
  spec:
    priority: 1000
    containers:
    - resources:
        limits: {memory: 4Gi, cpu: "1"}
- kind: Pod
  metadata: {name: batch}
  spec:
    containers:
    - name: x
  status: {phase: Running}
"#;
        let pods = pods_from_kubectl(yaml, "pods.yaml").unwrap();
        assert_eq!(pods[0], ("web".into(), Qos::Burstable, 0, 1536 << 20));
        assert_eq!(pods[1], ("db".into(), Qos::Guaranteed, 1000, 4 << 30));
        assert_eq!(pods[2], ("batch".into(), Qos::BestEffort, 0, 0));
        let planned = plan_pods(
            &pods,
            16 << 30,
            &[
                ("web".into(), 2 << 30),
                ("batch".into(), 100 << 20),
                ("db".into(), 1 << 30),
            ],
        );
        // 1000 - 1000 x 1.5Gi / 16Gi = 1000 - 93 = 907.
        assert_eq!(planned[0].oom_score_adj, 907);
        assert_eq!(planned[1].oom_score_adj, -997);
        assert_eq!(planned[2].oom_score_adj, 1000);
        // web is 512Mi over its request, batch 100Mi over zero, db within.
        let ranks: Vec<usize> = planned.iter().map(|p| p.eviction_rank).collect();
        assert_eq!(ranks, [1, 3, 2]);
        assert!(
            pods_from_kubectl("kind: Service\n", "s.yaml")
                .unwrap_err()
                .contains("neither a Pod")
        );
    }
}
