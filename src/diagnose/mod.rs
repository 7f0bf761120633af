//! `oomsim diagnose`: evidence a user pastes (kubectl describe / get -o
//! yaml|json / events, kernel logs, container logs, oomsim's own reports)
//! read from the outside into the failure class oomsim knows from the
//! inside, the lines that show it, what they rule out, and the fix. Reading
//! needs no root and touches no cgroup; no input makes it panic.
//!
//! The flow: [`input`] makes lines, [`kernel`], [`kube`], [`logs`] and
//! [`saved`] turn lines into [`finding::Finding`]s, [`classify`] weighs
//! them, [`fix`] words the remedy, [`emit`] writes a scenario that
//! reproduces it.

mod classify;
pub mod emit;
mod facts;
mod finding;
mod fix;
pub mod input;
mod kernel;
mod kube;
mod logs;
mod saved;
#[cfg(test)]
mod tests;
pub mod text;

use serde::Serialize;

use crate::runtime::Runtime;
use finding::{Finding, Kind};
use input::Source;

/// The failure classes, as `--json` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// The kernel's OOM killer at the container's (or pod's) memory limit.
    CgroupOom,
    /// The kubelet evicted the pod: the node ran low.
    NodeEviction,
    /// The kernel's OOM killer for the whole node.
    NodeOom,
    /// The GPU ran out (PyTorch, the driver).
    CudaOom,
    /// vLLM refused to start: the KV cache does not fit.
    VllmKvStartup,
    /// The language runtime's own cap (heap flag) or allocation failure.
    RuntimeOom,
    /// SIGKILL from someone else: a probe, preemption, a grace period.
    ExternalSigkill,
    /// Asked to stop: exit 143.
    Sigterm,
    /// The application failed by itself: not memory.
    AppError,
    /// Not enough evidence, or evidence that conflicts.
    Unknown,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::CgroupOom => "cgroup_oom",
            Class::NodeEviction => "node_eviction",
            Class::NodeOom => "node_oom",
            Class::CudaOom => "cuda_oom",
            Class::VllmKvStartup => "vllm_kv_startup",
            Class::RuntimeOom => "runtime_oom",
            Class::ExternalSigkill => "external_sigkill",
            Class::Sigterm => "sigterm",
            Class::AppError => "app_error",
            Class::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

/// One line that counted, quoted.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub file: String,
    pub line: usize,
    pub text: String,
    pub means: String,
}

/// What the evidence says in numbers (absent when it does not say).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_bytes: Option<u64>,
    /// The cgroup's usage at the kill, or the container's at the eviction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_bytes: Option<u64>,
    /// The victim's anonymous RSS in the kernel's kill line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anon_rss_bytes: Option<u64>,
    /// `java (pid 4242)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub victim: Option<String>,
    /// The memory cgroup whose limit was hit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memcg: Option<String>,
    /// When it died: the kernel line's stamp, or the status's `Finished`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_at: Option<String>,
    /// The eviction: the resource, the threshold and what was available.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eviction_resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eviction_threshold_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_allocatable_bytes: Option<u64>,
    /// The GPU: its capacity, what was free, what the failed allocation asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_total_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_free_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_tried_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_in_use_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_reserved_bytes: Option<u64>,
    /// vLLM's settings and what its KV cache needed and had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_memory_utilization: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_cache_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_needed_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_available_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_max_model_len: Option<u64>,
    /// The runtime's own word for its OOM (`Java heap space`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_kind: Option<String>,
    /// A probe that failed (`liveness`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// From oomsim's search.json: the smallest limit that survived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_safe_limit_bytes: Option<u64>,
}

/// One file read.
#[derive(Debug, Clone, Serialize)]
pub struct Read {
    pub file: String,
    pub lines: usize,
}

/// The verdict on a set of evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    pub class: Class,
    pub runtime: Option<Runtime>,
    pub confidence: Confidence,
    /// One line, in Kubernetes' words.
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub ruled_out: Vec<String>,
    pub fix: String,
    /// When the evidence is not enough or conflicts: the one command whose
    /// output would decide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decide: Option<String>,
    pub facts: Facts,
    /// The files read and how many lines each had.
    pub read: Vec<Read>,
}

/// Read every file (its name, its text) and diagnose them together.
pub fn diagnose(files: &[(String, String)]) -> Diagnosis {
    let sources: Vec<Source> = files.iter().map(|(n, t)| input::read(n, t)).collect();
    let mut findings = Vec::new();
    let mut saved_facts = Facts::default();
    for (i, (src, (_, text))) in sources.iter().zip(files).enumerate() {
        if let Some(f) = saved::read(i, src, text, &mut saved_facts) {
            findings.extend(f);
            continue;
        }
        let mut reader = kube::Reader::default();
        for (n, line) in src.lines.iter().enumerate() {
            let t = line.text.as_str();
            let mut push = |kind| {
                findings.push(Finding {
                    source: i,
                    line: n,
                    kind,
                })
            };
            if let Some(kind) = reader
                .line(t)
                .or_else(|| kernel::parse(t))
                .or_else(|| kube::event(t))
                .or_else(|| logs::parse(t))
            {
                push(kind);
            }
            if let Some(v) = kernel::constraint_victim(t) {
                push(Kind::KernelKill {
                    scope: finding::KillScope::Unsaid,
                    victim: Some(v),
                    anon_rss: None,
                });
            }
        }
    }
    let mut d = classify::classify(&sources, &findings, saved_facts);
    d.read = sources
        .iter()
        .map(|s| Read {
            file: s.name.clone(),
            lines: s.lines.len(),
        })
        .collect();
    d
}
