//! Kubernetes' own rules, as the API server, the kubelet and the container
//! runtime apply them: QoS classes, the reasons `kubectl describe pod`
//! shows, the kubelet's memory policy (oom_score_adj, eviction ranking,
//! thresholds, its message), and reading pods out of manifests and `kubectl get -o yaml|json`.

mod manifest;
mod node_plan;
mod oom_score;
mod pod;
mod policy;
mod qos;
mod reason;

pub use manifest::{ManifestError, default_pod_level, pods_from_manifest};
pub use node_plan::plan_pods;
pub use oom_score::oom_score_adj;
pub use pod::{
    Container, ContainerKind, Pod, Resource, Resources, RestartPolicy, builtin_class_priority,
};
pub use policy::{ContainerUsage, PodUsage, Threshold, eviction_message, rank};
pub use qos::Qos;

/// The exit code a runtime reports for a SIGKILLed process (128 + 9).
pub const OOM_KILLED_EXIT: i32 = 137;
pub use reason::Reason;

/// Kubernetes object names (RFC 1123 labels): lowercase letters, digits
/// and '-', at most 63, starting and ending with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}
