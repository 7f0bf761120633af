//! What a run produced: `report.json` and `search.json` (public interfaces
//! for CI; their schema is in the README), and the writers that render them
//! (JSON, kubectl-style text, markdown, JUnit) behind one small trait.
//!
//! The schema is versioned: a report names the version that wrote it, every
//! field a later version added has a default, and a reader refuses only a
//! report from a newer version than itself.

mod check;
pub mod compare;
pub mod node;
pub mod runtime;
pub mod search;
pub mod text;
pub mod time;
mod writer;

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::runtime::stats::RuntimeMemory;

pub use writer::{Format, Json, write_atomic, write_json};

use crate::cgroup::{MemStat, OomKillMode, Swap};
use crate::host::HostInfo;
use crate::k8s::{ContainerKind, Qos};
use crate::monitor::kmsg::Kill;
use crate::monitor::sampler::Sample;
use crate::plan::Expect;
use crate::verdict::Verdict;
use crate::workload::events::{Event, TimedEvent};
use search::SearchResult;

/// Version 2 added `warnings`, `host.swap_total_bytes`, `pods[].container`,
/// `pods[].swap`, typed workload events and `search.json`'s `schema_version`.
/// Version 3 added `pods[].containers[]` (each with its restarts and
/// terminations) and `oom_kill_mode`.
pub const SCHEMA_VERSION: u32 = 3;
pub const REPORT_FILE: &str = "report.json";
pub const SEARCH_FILE: &str = "search.json";

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    NotJson {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: not an oomsim {kind}: {field}: {source}")]
    Shape {
        path: String,
        kind: &'static str,
        field: String,
        source: serde_json::Error,
    },
    #[error("{path}: not a meaningful {kind}: {field}: {why}")]
    Meaningless {
        path: String,
        kind: &'static str,
        field: String,
        why: String,
    },
    #[error("cannot encode as JSON: {0}")]
    Encode(serde_json::Error),
    #[error(
        "{path}: written by a newer oomsim (schema_version {found}; this one reads up to {SCHEMA_VERSION})"
    )]
    Newer { path: String, found: u64 },
}

fn v1() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub scenario: String,
    pub description: Option<String>,
    pub run_id: String,
    pub started_at: String,
    pub finished_at: String,
    pub host: HostInfo,
    /// What watching cost oomsim itself.
    pub harness: Harness,
    /// The GPU the run used (which backend, its name and capacity), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<crate::gpu::DeviceInfo>,
    /// The node (capacity, evictions, MemoryPressure), when the scenario has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<node::NodeReport>,
    /// What an OOM kill took of a container in this run (cgroup v2's
    /// `memory.oom.group`, or one process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_kill_mode: Option<OomKillMode>,
    /// The signal name when Ctrl-C or SIGTERM stopped the run early.
    pub interrupted: Option<String>,
    /// What went wrong with the harness itself or what it could not control
    /// (a monitor thread, the kernel log, swap): the verdicts stand, these say
    /// what they could not see.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Every pod's expectation held (true when none were stated).
    pub ok: bool,
    pub pods: Vec<PodReport>,
}

/// oomsim's own cost during the run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Harness {
    pub sampler_cpu_s: f64,
    pub watcher_cpu_s: f64,
    pub samples_taken: usize,
    /// The harness's peak RSS (VmHWM); children are not counted.
    pub rss_hwm_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodReport {
    pub name: String,
    /// The pod's container, as the kubelet's messages name it.
    #[serde(default)]
    pub container: Option<String>,
    pub qos: Qos,
    pub priority: i32,
    pub request_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// What the limit did about swap (`off`, `allowed`, `uncontrolled`).
    #[serde(default)]
    pub swap: Option<Swap>,
    /// What the kubelet's policy set on the pod's processes.
    #[serde(default)]
    pub oom_score_adj: i32,
    /// What the kernel held: differs only for Guaranteed's -997 on a host
    /// without CAP_SYS_RESOURCE, where 0 is applied.
    #[serde(default)]
    pub oom_score_adj_applied: Option<i32>,
    pub peak_bytes: u64,
    pub oom_kill_count: u64,
    /// memory.stat when the pod ended: page cache stays charged after exit.
    pub stat_at_end: MemStat,
    pub pid: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    pub verdict: Verdict,
    /// The OOM killer's own line for this pod, from /dev/kmsg.
    pub kernel_kill: Option<Kill>,
    pub expect: Option<Expect>,
    /// What did not hold of `expect` (empty: it held).
    pub unmet: Vec<String>,
    /// The pod's stdout and stderr.
    pub log: String,
    /// Largest device memory the pod held (GPU runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_peak_bytes: Option<u64>,
    /// Largest anonymous memory and page cache sampled from memory.stat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anon_peak_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_peak_bytes: Option<u64>,
    /// When host and device both held the weights (model-load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dual_residency: Option<DualResidency>,
    /// What the workload reported (`cuda_oom`, `dual_residency_start`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<TimedEvent>,
    pub samples: Vec<Sample>,
    /// The pod's containers, init ones and sidecars first (schema 3; older
    /// reports had one container, described by the pod's own fields).
    #[serde(default)]
    pub containers: Vec<ContainerReport>,
}

/// One container: its resources, what the kubelet's policy gave it, its
/// restarts, and every termination.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerReport {
    pub name: String,
    pub kind: ContainerKind,
    pub request_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    /// The container cgroup's peak charge, over all its runs.
    pub peak_bytes: u64,
    pub oom_score_adj: i32,
    pub restart_count: u32,
    pub oom_kill_count: u64,
    /// What `kubectl describe` would show as its State when the pod ended.
    pub state: ContainerState,
    /// The last termination's verdict (None: it never started).
    pub verdict: Option<Verdict>,
    /// Every termination, the last one first.
    pub terminations: Vec<Termination>,
    pub expect: Option<Expect>,
    /// What did not hold of `expect`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmet: Vec<String>,
    /// The command's templated flags as this run rendered them (`-Xmx179m`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Where the runtime's memory went (its last run), on the pod's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_memory: Option<RuntimeMemory>,
    pub log: String,
}

/// One run of a container that ended: the Last State of `kubectl describe`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Termination {
    pub verdict: Verdict,
    pub pid: Option<i32>,
    pub started_at: String,
    pub finished_at: String,
    /// Seconds after the pod started that this run started.
    pub started_s: f64,
    pub oom_kill_count: u64,
    pub kernel_kill: Option<Kill>,
}

/// A container's State, in `kubectl describe`'s words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ContainerState {
    /// Still running when oomsim's timeout (or an interrupt) ended the pod.
    Running,
    /// Not running: `CrashLoopBackOff` (a restart was due), or
    /// `PodInitializing` (an init container before it never finished).
    Waiting {
        reason: String,
    },
    Terminated,
}

impl ContainerReport {
    /// The termination `kubectl describe` shows as Last State: the one
    /// before the State's own run, or the last one while it waits.
    pub fn last_state(&self) -> Option<&Termination> {
        match self.state {
            ContainerState::Waiting { .. } => self.terminations.first(),
            ContainerState::Running | ContainerState::Terminated => self.terminations.get(1),
        }
    }
}

impl PodReport {
    /// Completed (or still running at its timeout) with no OOM kill.
    pub fn survived(&self) -> bool {
        self.verdict.survived(self.oom_kill_count)
    }

    /// The container's name (reports before version 2: the pod's).
    pub fn container_name(&self) -> &str {
        self.container.as_deref().unwrap_or(&self.name)
    }
}

/// The window in which a model's weights were held on the host and the device at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DualResidency {
    pub start_s: f64,
    /// The host copy was freed then, or the pod ended (killed, or it kept the copy).
    pub end_s: f64,
    /// Host bytes held for the copy: the whole model, a chunk buffer, or page cache.
    pub host_bytes: u64,
    /// The host side was page cache (mmap): reclaimable, unlike a buffer.
    pub page_cache: bool,
}

impl DualResidency {
    /// From a pod's events; an open window ends at `ended_s`.
    pub fn from_events(events: &[TimedEvent], ended_s: f64) -> Option<DualResidency> {
        let (start_s, host_bytes, page_cache) = events.iter().find_map(|e| match e.event {
            Event::DualResidencyStart {
                host_bytes,
                page_cache,
                ..
            } => Some((e.t_s, host_bytes, page_cache)),
            _ => None,
        })?;
        let end_s = events
            .iter()
            .find(|e| e.event == Event::DualResidencyEnd)
            .map_or(ended_s, |e| e.t_s);
        Some(DualResidency {
            start_s,
            end_s,
            host_bytes,
            page_cache,
        })
    }
}

/// A saved report.json or search.json.
pub enum Saved {
    Report(Box<Report>),
    Search(Box<SearchResult>),
}

/// Read a saved report.json or search.json, of this schema version or older.
pub fn load(path: &Path) -> Result<Saved, ReportError> {
    let shown = path.display().to_string();
    let text = crate::bounded::read_text(path, crate::bounded::REPORT_MAX).map_err(|source| {
        ReportError::Io {
            path: shown.clone(),
            source,
        }
    })?;
    parse(&shown, &text)
}

/// A saved report.json or search.json's text; `shown` names it in errors.
pub fn parse(shown: &str, text: &str) -> Result<Saved, ReportError> {
    let shown = shown.to_string();
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|source| ReportError::NotJson {
            path: shown.clone(),
            source,
        })?;
    let found = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(1);
    if found > u64::from(SCHEMA_VERSION) {
        return Err(ReportError::Newer { path: shown, found });
    }
    let search = value.get("min_safe_limit_bytes").is_some();
    let kind = if search { SEARCH_FILE } else { REPORT_FILE };
    let shape = |e: serde_path_to_error::Error<serde_json::Error>| ReportError::Shape {
        path: shown.clone(),
        kind,
        field: e.path().to_string(),
        source: e.into_inner(),
    };
    let (saved, checked) = if search {
        let s: SearchResult = serde_path_to_error::deserialize(value).map_err(shape)?;
        let checked = check::search(&s);
        (Saved::Search(Box::new(s)), checked)
    } else {
        let r: Report = serde_path_to_error::deserialize(value).map_err(shape)?;
        let checked = check::report(&r);
        (Saved::Report(Box::new(r)), checked)
    };
    checked.map_err(|i| ReportError::Meaningless {
        path: shown.clone(),
        kind,
        field: i.field,
        why: i.why,
    })?;
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every report and search result kept under reports/ stays readable.
    #[test]
    fn every_saved_baseline_reads() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("reports");
        let mut found = 0;
        let mut stack = vec![root];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    match load(&path) {
                        Ok(_) => found += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        assert!(found >= 2, "the baselines under reports/ were not found");
    }

    #[test]
    fn a_version_1_report_reads_with_defaults() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1");
        let Saved::Report(r) = load(&dir.join(REPORT_FILE)).unwrap() else {
            panic!("a report");
        };
        assert_eq!(r.schema_version, 1);
        assert!(r.warnings.is_empty());
        assert_eq!(r.pods[0].container_name(), r.pods[0].name);
        assert_eq!(r.pods[0].swap, None);
        assert!(r.pods[0].survived());
        let Saved::Search(s) = load(&dir.join(SEARCH_FILE)).unwrap() else {
            panic!("a search");
        };
        assert_eq!(s.schema_version, 1, "search.json had no version: 1");
    }

    #[test]
    fn a_newer_report_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(&p, r#"{"schema_version": 99, "pods": []}"#).unwrap();
        let e = load(&p).err().unwrap().to_string();
        assert!(e.contains("newer oomsim (schema_version 99"), "{e}");
        std::fs::write(&p, "{not json").unwrap();
        assert!(load(&p).err().unwrap().to_string().contains("not JSON"));
    }
}
