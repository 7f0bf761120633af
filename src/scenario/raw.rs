//! The scenario file exactly as written: serde types that mirror the YAML,
//! with unknown fields refused and every scalar a user may get wrong kept
//! with its position, so validation can name the file, the line and the field.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type Text = Spanned<String>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub name: Text,
    pub description: Option<String>,
    pub sampling: Option<RawSampling>,
    /// Named quantities for formulas (`model: 14Gi`, `jvm_heap: 1Gi`).
    pub vars: Option<BTreeMap<String, Text>>,
    /// The user's sizing formulas (`mine: "model * 1.5 + 4Gi"`).
    pub formulas: Option<BTreeMap<String, Text>>,
    /// Search the smallest safe limit of one pod after the run.
    pub search: Option<RawSearch>,
    /// A GPU the pods share: `{backend: auto | cuda | sim, device: 0, memory: 80Gi}`.
    pub gpu: Option<RawGpu>,
    /// A node the pods share: capacity, eviction thresholds, housekeeping.
    pub node: Option<RawNode>,
    /// The kubelet's `singleProcessOOMKill` (cgroup v2: no `memory.oom.group`).
    #[serde(rename = "singleProcessOOMKill")]
    pub single_process_oom_kill: Option<bool>,
    pub pods: Spanned<Vec<RawPod>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    pub pod: Text,
    pub range: Option<Text>,
    pub precision: Option<Text>,
    pub repeat: Option<Spanned<u32>>,
    /// For a model-load pod: search once per loading strategy.
    pub strategies: Option<Spanned<Vec<Text>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub capacity: Text,
    #[serde(rename = "evictionHard")]
    pub eviction_hard: Option<BTreeMap<String, Text>>,
    #[serde(rename = "evictionSoft")]
    pub eviction_soft: Option<BTreeMap<String, Text>>,
    #[serde(rename = "evictionSoftGracePeriod")]
    pub eviction_soft_grace_period: Option<BTreeMap<String, Text>>,
    pub housekeeping: Option<Text>,
    /// The kubelet's `kubeReserved` / `systemReserved` (memory counts).
    #[serde(rename = "kubeReserved")]
    pub kube_reserved: Option<BTreeMap<String, Text>>,
    #[serde(rename = "systemReserved")]
    pub system_reserved: Option<BTreeMap<String, Text>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGpu {
    pub backend: Option<Text>,
    pub device: Option<Spanned<u32>>,
    pub memory: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSampling {
    pub rate_hz: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPod {
    /// The pod's name; with `from`, the object to take out of the manifest.
    pub name: Text,
    /// A Kubernetes manifest (Pod, Deployment, ... or a List) whose pod
    /// this is: containers, resources and priority come from it.
    pub from: Option<Text>,
    /// The one-container shorthand: the container's name (default: the
    /// pod's), as the kubelet's messages name it.
    pub container: Option<Text>,
    pub priority: Option<i32>,
    #[serde(rename = "priorityClassName")]
    pub priority_class_name: Option<Text>,
    /// The shorthand's container resources; with `containers`, the pod-level
    /// `spec.resources`.
    pub resources: Option<RawResources>,
    /// `4k` (default) or `huge` (transparent huge pages).
    pub pages: Option<Text>,
    /// The shorthand container's image, run with podman in oomsim's cgroup
    /// (its workload is the command).
    pub image: Option<Text>,
    /// Let the pod swap; off by default, since swap hides OOM kills.
    pub swap: Option<bool>,
    /// The harness kills the pod after this long (default 5m).
    pub timeout: Option<Text>,
    pub workload: Option<RawWorkload>,
    pub phases: Option<Spanned<Vec<RawWorkload>>>,
    pub expect: Option<RawExpect>,
    pub containers: Option<Spanned<Vec<RawContainer>>>,
    #[serde(rename = "initContainers")]
    pub init_containers: Option<Spanned<Vec<RawContainer>>>,
    /// `Always`, `OnFailure` or `Never` (default: Never; with `from`, the manifest's).
    #[serde(rename = "restartPolicy")]
    pub restart_policy: Option<Text>,
    /// Multiplies the kubelet's restart back-off (10 s doubling to 5 min).
    #[serde(rename = "backoffScale")]
    pub backoff_scale: Option<Spanned<f64>>,
    /// Stop after this many restarts of a container.
    #[serde(rename = "maxRestarts")]
    pub max_restarts: Option<Spanned<u32>>,
}

/// One container of a pod with `containers` / `initContainers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawContainer {
    pub name: Text,
    /// Not with `from`: the manifest gives them.
    pub resources: Option<RawResources>,
    /// An init container with `Always` is a sidecar.
    #[serde(rename = "restartPolicy")]
    pub restart_policy: Option<Text>,
    pub pages: Option<Text>,
    /// An image from the local store, run with podman in oomsim's cgroup.
    pub image: Option<Text>,
    pub workload: Option<RawWorkload>,
    pub phases: Option<Spanned<Vec<RawWorkload>>>,
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResources {
    pub requests: Option<RawResourceList>,
    pub limits: Option<RawResourceList>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResourceList {
    pub memory: Option<Text>,
    /// The QoS class, and the kubelet's CFS quota in the container's cgroup.
    pub cpu: Option<Text>,
}

/// One workload or phase; which fields apply depends on `kind` and is checked
/// in validation (a flat struct keeps every field's position, which an
/// internally tagged enum loses).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub kind: Text,
    pub baseline: Option<Text>,
    pub rate: Option<Text>,
    pub cap: Option<Text>,
    pub duration: Option<Text>,
    pub size: Option<Text>,
    pub spike: Option<Text>,
    pub period: Option<Text>,
    pub hold: Option<Text>,
    pub count: Option<Spanned<u32>>,
    /// command: the program and its arguments; `{EXPR:UNIT}` follows the limit.
    pub command: Option<Spanned<Vec<Text>>>,
    pub env: Option<Spanned<BTreeMap<String, Text>>>,
    /// command: the runtime it starts (java, node, go, python) when its
    /// program's name does not say (a wrapper script).
    pub runtime: Option<Text>,
    /// model-load: a Hugging Face config.json (instead of `size`) and its dtype.
    pub model: Option<Text>,
    pub dtype: Option<Text>,
    pub strategy: Option<Text>,
    pub keep_host: Option<Spanned<bool>>,
    pub chunk: Option<Text>,
    pub pinned: Option<Spanned<bool>>,
    /// `file` (default) or `synthetic`.
    pub source: Option<Text>,
    pub file: Option<Text>,
    pub overhead: Option<Text>,
    /// kv-cache: vLLM's settings and the load.
    pub mode: Option<Text>,
    pub gpu_memory_utilization: Option<Spanned<f64>>,
    pub max_num_seqs: Option<Spanned<u64>>,
    pub max_model_len: Option<Spanned<u64>>,
    pub kv_cache_dtype: Option<Text>,
    pub kv_cache_memory: Option<Text>,
    pub weights: Option<Text>,
    pub activation: Option<Text>,
    pub prompt: Option<Spanned<u64>>,
    pub output: Option<Spanned<u64>>,
    pub concurrency: Option<Spanned<u64>>,
    pub ramp: Option<Text>,
    pub step: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub reason: Option<Text>,
    pub exit_code: Option<Spanned<i32>>,
    pub within: Option<Text>,
}
