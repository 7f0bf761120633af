//! A pod as the kubelet sees it: containers (init, sidecar, regular) with
//! their requests and limits, pod-level resources, priority; and the rules
//! the API server and kubelet compute from it.
//!
//! Followed from Kubernetes master:
//! - QoS: pkg/apis/core/v1/helper/qos/qos.go `ComputePodQOS` (requests and
//!   limits summed over every container, init ones included, or the
//!   pod-level ones when set; Guaranteed needs CPU and memory limits on
//!   every container and the sums equal).
//! - Effective requests and limits: staging/src/k8s.io/component-helpers/
//!   resource/helpers.go `PodRequests` / `PodLimits` (regular containers and
//!   sidecars summed, against each init container plus the sidecars started
//!   before it; pod-level values win).
//! - The pod cgroup's memory limit: pkg/kubelet/cm/helpers_linux.go
//!   `ResourceConfigForPod` (set only when every container has one, or the
//!   pod-level limit).

use serde::{Deserialize, Serialize};

use super::Qos;

/// What a container is to the kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    /// Runs to completion before the next one starts.
    Init,
    /// An init container with `restartPolicy: Always`: starts in the init
    /// order and keeps running beside the regular containers.
    Sidecar,
    Regular,
}

/// A request and a limit: bytes for memory, millicores for CPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub request: Option<u64>,
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub memory: Resource,
    pub cpu: Resource,
}

impl Resources {
    /// `resourceQOS`: Guaranteed when CPU and memory both have request equal
    /// to a non-zero limit, BestEffort when all four are zero or unset.
    pub fn qos(&self) -> Qos {
        let mut class = None;
        for r in [self.cpu, self.memory] {
            let (req, lim) = (r.request.unwrap_or(0), r.limit.unwrap_or(0));
            if req != lim {
                return Qos::Burstable;
            }
            let this = if req == 0 {
                Qos::BestEffort
            } else {
                Qos::Guaranteed
            };
            match class {
                None => class = Some(this),
                Some(c) if c != this => return Qos::Burstable,
                Some(_) => {}
            }
        }
        class.unwrap_or(Qos::BestEffort)
    }
}

/// `spec.restartPolicy`, as `ShouldContainerBeRestarted`
/// (pkg/kubelet/container/helpers.go) reads it for a container that exited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    /// The API server's default.
    #[default]
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub const ALL: [RestartPolicy; 3] = [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        }
    }

    pub fn parse(s: &str) -> Option<RestartPolicy> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether a container of this kind that exited with `exit_code` is
    /// started again: sidecars always; init containers until they succeed,
    /// unless the pod's policy is Never; regular containers as the policy
    /// says (OnFailure: only after a non-zero exit).
    pub fn restarts(self, kind: ContainerKind, exit_code: i32) -> bool {
        match (kind, self) {
            (ContainerKind::Sidecar, _) => true,
            (_, RestartPolicy::Never) => false,
            (ContainerKind::Init, _) | (_, RestartPolicy::OnFailure) => exit_code != 0,
            (ContainerKind::Regular, RestartPolicy::Always) => true,
        }
    }
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub name: String,
    pub kind: ContainerKind,
    pub resources: Resources,
}

/// A pod: init containers and sidecars in their order, then the regular ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pod {
    pub name: String,
    pub priority: i32,
    pub priority_class_name: Option<String>,
    pub containers: Vec<Container>,
    /// Pod-level `spec.resources` (PodLevelResources).
    pub resources: Option<Resources>,
    pub restart_policy: RestartPolicy,
}

/// The priority class of pods the kubelet never lets go first.
pub const NODE_CRITICAL: &str = "system-node-critical";
/// The priority at and above which a pod is critical (scheduling.SystemCriticalPriority).
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2_000_000_000;

fn positive(v: Option<u64>) -> Option<u64> {
    v.filter(|&v| v > 0)
}

/// The priority the Priority admission plugin gives the built-in classes.
pub fn builtin_class_priority(class: &str) -> Option<i32> {
    match class {
        NODE_CRITICAL => Some(SYSTEM_CRITICAL_PRIORITY + 1000),
        "system-cluster-critical" => Some(SYSTEM_CRITICAL_PRIORITY),
        _ => None,
    }
}

impl Pod {
    /// One regular container.
    #[cfg(test)]
    pub fn single(name: &str, container: &str, resources: Resources, priority: i32) -> Pod {
        Pod {
            name: name.into(),
            priority,
            priority_class_name: None,
            containers: vec![Container {
                name: container.into(),
                kind: ContainerKind::Regular,
                resources,
            }],
            resources: None,
            restart_policy: RestartPolicy::Always,
        }
    }

    pub fn regular(&self) -> impl Iterator<Item = &Container> {
        self.containers
            .iter()
            .filter(|c| c.kind == ContainerKind::Regular)
    }

    /// `kubelettypes.IsNodeCriticalPod`: the system-node-critical class on
    /// a critical pod (priority at or above SystemCriticalPriority; static
    /// and mirror pods, which oomsim does not make, are critical too).
    pub fn is_node_critical(&self) -> bool {
        self.priority_class_name.as_deref() == Some(NODE_CRITICAL)
            && self.priority >= SYSTEM_CRITICAL_PRIORITY
    }

    /// `ComputePodQOS`: the pod-level resources alone when set; else every
    /// container's class (init ones included): any Burstable, or a mix of
    /// Guaranteed and BestEffort, makes the pod Burstable.
    pub fn qos(&self) -> Qos {
        if let Some(r) = &self.resources {
            return r.qos();
        }
        let mut classes = self.containers.iter().map(|c| c.resources.qos());
        let first = classes.next().unwrap_or(Qos::BestEffort);
        if first == Qos::Burstable || classes.any(|q| q != first) {
            Qos::Burstable
        } else {
            first
        }
    }

    /// The memory request eviction ranking counts
    /// (`GetResourceRequestQuantity`): with pod-level resources, the
    /// pod-level request alone (0 if it has none); else the containers'.
    pub fn memory_request(&self) -> u64 {
        match &self.resources {
            Some(r) => r.memory.request.unwrap_or(0),
            None => self.containers_memory_request(),
        }
    }

    /// `AggregateContainerRequests` for memory, pod-level values aside.
    pub fn containers_memory_request(&self) -> u64 {
        self.aggregate(|c| c.resources.memory.request.unwrap_or(0))
    }

    /// `AggregateContainerRequests` / `...Limits` for one value: regular
    /// containers and sidecars summed, against each init container plus the
    /// sidecars started before it.
    pub fn aggregate(&self, value: impl Fn(&Container) -> u64) -> u64 {
        let mut sum: u64 = self.regular().map(&value).fold(0, u64::saturating_add);
        let (mut sidecars, mut init_peak) = (0u64, 0u64);
        for c in &self.containers {
            match c.kind {
                ContainerKind::Sidecar => {
                    sum = sum.saturating_add(value(c));
                    sidecars = sidecars.saturating_add(value(c));
                    init_peak = init_peak.max(sidecars);
                }
                ContainerKind::Init => init_peak = init_peak.max(value(c).saturating_add(sidecars)),
                ContainerKind::Regular => {}
            }
        }
        sum.max(init_peak)
    }

    /// The pod cgroup's memory limit: the pod-level one, else `PodLimits`
    /// when every container (init ones included) has a limit, else none.
    pub fn memory_limit(&self) -> Option<u64> {
        if let Some(l) = self.resources.and_then(|r| r.memory.limit) {
            return Some(l);
        }
        self.containers
            .iter()
            .all(|c| positive(c.resources.memory.limit).is_some())
            .then(|| self.aggregate(|c| c.resources.memory.limit.unwrap_or(0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    pub fn res(mem_req: Option<u64>, mem_lim: Option<u64>) -> Resources {
        Resources {
            memory: Resource {
                request: mem_req,
                limit: mem_lim,
            },
            cpu: Resource::default(),
        }
    }

    fn c(name: &str, kind: ContainerKind, r: Resources) -> Container {
        Container {
            name: name.into(),
            kind,
            resources: r,
        }
    }

    #[test]
    fn requests_count_sidecars_against_the_largest_init_container() {
        use ContainerKind::*;
        // KEP-753's example: init 1Gi; sidecar 200Mi; init 300Mi; app 500Mi.
        let pod = Pod {
            name: "p".into(),
            priority: 0,
            priority_class_name: None,
            containers: vec![
                c("setup", Init, res(Some(1024 * MI), None)),
                c("proxy", Sidecar, res(Some(200 * MI), Some(200 * MI))),
                c("migrate", Init, res(Some(300 * MI), None)),
                c("app", Regular, res(Some(500 * MI), Some(500 * MI))),
            ],
            resources: None,
            restart_policy: RestartPolicy::Always,
        };
        // max(app 500 + proxy 200, setup 1024, migrate 300 + proxy 200) = 1024.
        assert_eq!(pod.memory_request(), 1024 * MI);
        // An init container without a limit: no pod cgroup limit.
        assert_eq!(pod.memory_limit(), None);
        let mut limited = pod.clone();
        limited.containers[0].resources.memory.limit = Some(100 * MI);
        limited.containers[2].resources.memory.limit = Some(600 * MI);
        // max(500 + 200, 100, 600 + 200) = 800.
        assert_eq!(limited.memory_limit(), Some(800 * MI));
        limited.resources = Some(res(Some(2048 * MI), Some(4096 * MI)));
        assert_eq!(limited.memory_limit(), Some(4096 * MI));
        assert_eq!(limited.memory_request(), 2048 * MI);
    }

    #[test]
    fn restarts_follow_should_container_be_restarted() {
        use ContainerKind::*;
        use RestartPolicy::*;
        // (policy, kind, exit code) -> restarted
        let table = [
            (Always, Regular, 0, true),
            (Always, Regular, 137, true),
            (OnFailure, Regular, 0, false),
            (OnFailure, Regular, 1, true),
            (Never, Regular, 137, false),
            (Never, Init, 1, false),
            (Always, Init, 0, false),
            (Always, Init, 1, true),
            (OnFailure, Init, 137, true),
            (Never, Sidecar, 0, true),
            (Never, Sidecar, 137, true),
        ];
        for (policy, kind, code, want) in table {
            assert_eq!(
                policy.restarts(kind, code),
                want,
                "{policy} {kind:?} exit {code}"
            );
        }
    }
}
