//! `search.json`: the smallest safe limit a search measured, every trial
//! behind it, and each sizing formula checked against it.

use serde::{Deserialize, Serialize};

use crate::k8s::Reason;
use crate::runtime::oom::RuntimeOom;
use crate::verdict::Cause;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    pub limit_bytes: u64,
    pub survived: bool,
    pub reason: Reason,
    pub exit_code: i32,
    pub cause: Cause,
    pub peak_bytes: u64,
    /// What the kernel could not have reclaimed at the peak (the charge less
    /// its page cache), as sampled: the next limit tried starts from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreclaimable_bytes: Option<u64>,
    pub at_s: f64,
    pub wall_s: f64,
    pub report: String,
    /// The runtime's own out-of-memory, when that ended the trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_oom: Option<RuntimeOom>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitStats {
    pub limit_bytes: u64,
    pub trials: u32,
    pub survived: u32,
    pub survival_rate: f64,
}

/// What a formula's recommendation says against the measured minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Below the measured minimum: it would be OOMKilled.
    Unsafe,
    /// Less than 10% over.
    Tight,
    Fine,
    /// More than 50% over.
    Wasteful,
    /// The formula could not be evaluated with this run's numbers.
    Failed,
}

impl Fit {
    pub fn as_str(self) -> &'static str {
        match self {
            Fit::Unsafe => "unsafe",
            Fit::Tight => "tight",
            Fit::Fine => "fine",
            Fit::Wasteful => "wasteful",
            Fit::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormulaCheck {
    pub name: String,
    pub rule: String,
    pub recommended_bytes: u64,
    /// recommended / measured minimum - 1.
    pub margin: f64,
    pub fit: Fit,
    /// Why the formula could not be evaluated (`fit` is `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchResult {
    #[serde(default = "super::v1")]
    pub schema_version: u32,
    pub scenario: String,
    pub pod: String,
    /// The smallest limit that survived every trial; null when none in range did.
    pub min_safe_limit_bytes: Option<u64>,
    /// None survived and the runtime's own cap ended the trial at the top
    /// of the range: no limit helps, the flag does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_limit_helps: Option<RuntimeOom>,
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
