//! The kubelet's memory policy, followed to the letter.
//!
//! - `oom_score_adj` per QoS class (pkg/kubelet/qos/policy.go).
//! - Eviction ranking (pkg/kubelet/eviction/helpers.go, memory): pods whose
//!   working set exceeds their request first, then lower priority, then the
//!   larger `working set - request`. QoS class is not a key of its own; it
//!   only shows through the request (BestEffort's is zero).
//! - Thresholds as the kubelet reads them: a quantity or a percentage of
//!   capacity; and its eviction message.

use serde::{Deserialize, Serialize};

use super::Qos;
use crate::units::{UnitError, fmt_quantity};

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

    pub fn bytes(self, capacity: u64) -> u64 {
        match self {
            Threshold::Bytes(b) => b,
            Threshold::Percent(p) => (capacity as f64 * p / 100.0) as u64,
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

/// The kubelet's eviction message, naming the pod's container.
pub fn eviction_message(
    threshold: &str,
    available: i64,
    pod: &PodUsage,
    container: &str,
) -> String {
    format!(
        "The node was low on resource: memory. Threshold quantity: {threshold}, available: {}Ki. Container {container} was using {}Ki, request is {}, has larger consumption of memory.",
        available.div_euclid(1024),
        pod.working_set_bytes / 1024,
        fmt_quantity(pod.request_bytes)
    )
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
        let usage = pod("web", 0, 18_281_250 * 1024, 25_712_144 * 1024);
        assert_eq!(
            eviction_message("100Mi", 95_044 * 1024, &usage, "app"),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 95044Ki. Container app was using 25712144Ki, request is 18281250Ki, has larger consumption of memory."
        );
        // The message names the container as it is called, not `app`.
        assert!(
            eviction_message("100Mi", 0, &usage, "nginx").contains("Container nginx was using")
        );
    }
}
