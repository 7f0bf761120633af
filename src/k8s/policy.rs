//! The kubelet's memory eviction policy, followed to the letter
//! (`oom_score_adj` is in oom_score.rs).
//!
//! - Eviction ranking (pkg/kubelet/eviction/helpers.go, memory): pods whose
//!   working set exceeds their request first, then lower priority, then the
//!   larger `working set - request`. QoS class is not a key of its own; it
//!   only shows through the request (BestEffort's is zero).
//! - Thresholds as the kubelet reads them: a quantity or a percentage of
//!   capacity; and its eviction message.

use serde::{Deserialize, Serialize};

use crate::units::{UnitError, fmt_quantity};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("{0:?} is not a percentage")]
    NotAPercentage(String),
    #[error("{0:?} is outside 0%..100%")]
    OutOfRange(String),
    #[error(transparent)]
    Quantity(#[from] UnitError),
}

/// A threshold as written: a quantity, or a percentage of capacity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Threshold {
    Bytes(u64),
    Percent(f64),
}

impl Threshold {
    pub fn parse(s: &str) -> Result<Threshold, ThresholdError> {
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .map_err(|_| ThresholdError::NotAPercentage(s.to_string()))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(ThresholdError::OutOfRange(s.to_string()));
            }
            return Ok(Threshold::Percent(v));
        }
        Ok(Threshold::Bytes(crate::units::parse_bytes(s)?))
    }

    /// `GetThresholdQuantity`: a percentage is a float32 (as the kubelet
    /// parses it) of the capacity, truncated: 10% of 8Gi is 858993472.
    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            Threshold::Percent(p) => (capacity as f64 * f64::from(p as f32 / 100.0)) as u64,
        }
    }
}

impl std::fmt::Display for Threshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Threshold::Bytes(b) => f.write_str(&fmt_quantity(*b)),
            Threshold::Percent(p) => write!(f, "{p}%"),
        }
    }
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

/// One container's line in the eviction message.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerUsage {
    pub name: String,
    /// The container's own request (defaulted from its limit), 0 if none.
    pub request_bytes: u64,
    pub working_set_bytes: u64,
}

/// The kubelet's eviction message (pkg/kubelet/eviction/helpers.go
/// `evictionMessage`): the threshold and what was available, the pod-level
/// request when the pod has one, then every container using more than its
/// own request, each fragment ending in ". " as the kubelet writes it.
pub fn eviction_message(
    threshold: Threshold,
    capacity: u64,
    available: i64,
    pod: &PodUsage,
    pod_request: Option<u64>,
    containers: &[ContainerUsage],
) -> String {
    let mut m = format!(
        "The node was low on resource: memory. Threshold quantity: {}, available: {}. ",
        fmt_quantity(threshold.bytes(capacity)),
        fmt_quantity(available.max(0) as u64)
    );
    if let Some(request) = pod_request {
        m += &format!(
            "Pod {} was using {}, request is {}, has larger consumption of memory. ",
            pod.name,
            fmt_quantity(pod.working_set_bytes),
            fmt_quantity(request)
        );
    }
    for c in containers
        .iter()
        .filter(|c| c.working_set_bytes > c.request_bytes)
    {
        m += &format!(
            "Container {} was using {}, request is {}, has larger consumption of memory. ",
            c.name,
            fmt_quantity(c.working_set_bytes),
            fmt_quantity(c.request_bytes)
        );
    }
    m
}

#[cfg(test)]
mod tests {
    //! pkg/kubelet/eviction/helpers_test.go: the memory ranking tests and
    //! every case of TestEvictionMessage.

    use super::*;

    const MI: u64 = 1 << 20;

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
    fn ordered_by_exceeds_request_and_priority_and_memory() {
        // TestOrderedByExceedsRequestMemory.
        let pods = [
            pod("below-requests", -1, 200 * MI, 199 * MI),
            pod("exceeds-requests", 1, 100 * MI, 101 * MI),
        ];
        assert_eq!(names(&pods), ["exceeds-requests", "below-requests"]);
        // TestOrderedByPriority (no usage: all equal, none over).
        let pods = [
            pod("high-priority", 12534, 200 * MI, 0),
            pod("medium-priority", 1, 100 * MI, 0),
            pod("low-priority", -134, 0, 0),
        ];
        assert_eq!(
            names(&pods),
            ["low-priority", "medium-priority", "high-priority"]
        );
        // TestOrderedByPriorityMemory: the full rankMemoryPressure.
        let table = [
            ("above-requests-low-priority-high-usage", -1, 0, 500),
            ("above-requests-low-priority-low-usage", -1, 0, 50),
            ("above-requests-high-priority-high-usage", 1, 100, 600),
            ("above-requests-high-priority-low-usage", 1, 100, 150),
            ("below-requests-low-priority-high-usage", -1, 1024, 800),
            ("below-requests-low-priority-low-usage", -1, 1024, 200),
            ("below-requests-high-priority-high-usage", 1, 1024, 800),
            ("below-requests-high-priority-low-usage", 1, 1024, 200),
        ];
        let pods: Vec<PodUsage> = table
            .iter()
            .rev()
            .map(|&(n, p, r, u)| pod(n, p, r * MI, u * MI))
            .collect();
        let expected: Vec<&str> = table.iter().map(|t| t.0).collect();
        assert_eq!(names(&pods), expected);
    }

    #[test]
    fn ordered_by_memory_within_the_same_priority_and_exceeding() {
        // TestOrderedByMemory's pods, ranked by the full comparator: the
        // pods over their request first (largest over first), then the rest.
        let pods = [
            pod("best-effort-high", 0, 0, 500 * MI),
            pod("best-effort-low", 0, 0, 300 * MI),
            pod("burstable-high", 0, 100 * MI, 800 * MI),
            pod("burstable-low", 0, 100 * MI, 300 * MI),
            pod("guaranteed-high", 0, 1024 * MI, 800 * MI),
            pod("guaranteed-low", 0, 1024 * MI, 200 * MI),
        ];
        assert_eq!(
            names(&pods),
            [
                "burstable-high",
                "best-effort-high",
                "best-effort-low",
                "burstable-low",
                "guaranteed-high",
                "guaranteed-low"
            ]
        );
    }

    fn c(name: &str, request: u64, ws: u64) -> ContainerUsage {
        ContainerUsage {
            name: name.into(),
            request_bytes: request * MI,
            working_set_bytes: ws * MI,
        }
    }

    /// TestEvictionMessage's cases: (containers with usage, expected clauses).
    #[test]
    fn eviction_message_clauses_as_the_kubelet_writes_them() {
        let p = pod("pod", 1, 0, MI);
        let msg = |containers: &[ContainerUsage]| {
            let m = eviction_message(
                Threshold::Bytes(100 * MI),
                0,
                59_875_328,
                &p,
                None,
                containers,
            );
            let head = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 58472Ki. ";
            assert!(m.starts_with(head), "{m}");
            m[head.len()..].to_string()
        };
        let clause = |n: &str, u: &str, r: &str| {
            format!(
                "Container {n} was using {u}, request is {r}, has larger consumption of memory. "
            )
        };
        // 1: nobody over; 3: equal to the request is not over.
        assert_eq!(
            msg(&[c("restartable-init1", 200, 150), c("regular1", 200, 100)]),
            ""
        );
        // 2: an init container over its request.
        assert_eq!(
            msg(&[c("init1", 100, 150)]),
            clause("init1", "150Mi", "100Mi")
        );
        // 3 and 4.
        assert_eq!(
            msg(&[
                c("restartable-init1", 200, 250),
                c("restartable-init2", 200, 150),
                c("regular1", 200, 200)
            ]),
            clause("restartable-init1", "250Mi", "200Mi")
        );
        assert_eq!(
            msg(&[
                c("restartable-init1", 200, 200),
                c("regular1", 200, 250),
                c("regular2", 300, 250)
            ]),
            clause("regular1", "250Mi", "200Mi")
        );
        // 6: no request prints as 0.
        assert_eq!(
            msg(&[
                c("restartable-init1", 0, 250),
                c("restartable-init2", 300, 250),
                c("regular1", 0, 200)
            ]),
            clause("restartable-init1", "250Mi", "0") + &clause("regular1", "200Mi", "0")
        );
        // 7: several, in the order given.
        assert_eq!(
            msg(&[
                c("restartable-init1", 100, 150),
                c("restartable-init2", 200, 250),
                c("restartable-init3", 300, 250),
                c("regular1", 300, 50),
                c("regular2", 200, 250),
                c("regular3", 100, 400)
            ]),
            clause("restartable-init1", "150Mi", "100Mi")
                + &clause("restartable-init2", "250Mi", "200Mi")
                + &clause("regular2", "250Mi", "200Mi")
                + &clause("regular3", "400Mi", "100Mi")
        );
    }

    #[test]
    fn thresholds_and_the_pod_level_clause() {
        assert_eq!(Threshold::parse("100Mi"), Ok(Threshold::Bytes(100 << 20)));
        // float32 as the kubelet parses it: 858993472, not 858993459.
        assert_eq!(Threshold::parse("10%").unwrap().bytes(8 << 30), 858_993_472);
        assert!(Threshold::parse("120%").is_err());
        let m = eviction_message(
            Threshold::Percent(10.0),
            8 << 30,
            -5,
            &pod("p", 0, 1 << 30, 2 << 30),
            Some(1 << 30),
            &[],
        );
        assert_eq!(
            m,
            "The node was low on resource: memory. Threshold quantity: 858993472, available: 0. Pod p was using 2Gi, request is 1Gi, has larger consumption of memory. "
        );
    }
}
