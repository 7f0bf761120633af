//! Kubernetes' own rules, as the API server, the kubelet and the container
//! runtime apply them: QoS classes, the reasons `kubectl describe pod`
//! shows, the kubelet's memory policy (oom_score_adj, eviction ranking,
//! thresholds, its message), and reading `kubectl get pods -o yaml`.

mod kubectl;
mod policy;
mod qos;
mod reason;

pub use kubectl::{KubectlError, plan_pods, pods_from_kubectl};
pub use policy::{PodUsage, Threshold, eviction_message, oom_score_adj, rank};
pub use qos::{Qos, qos_class};
pub use reason::Reason;
