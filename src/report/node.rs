//! The node's part of a report: readings of `memory.available`, the
//! kubelet's evictions with its ranking at that moment, and the
//! MemoryPressure condition over time.

use serde::{Deserialize, Serialize};

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
    /// The kubepods cgroup's limit: capacity less kubeReserved and
    /// systemReserved (absent in reports before it was recorded).
    #[serde(default)]
    pub allocatable_bytes: Option<u64>,
    pub hard_threshold_bytes: u64,
    pub housekeeping_s: f64,
    pub samples: Vec<NodeSample>,
    pub evictions: Vec<Eviction>,
    pub conditions: Vec<Condition>,
}
