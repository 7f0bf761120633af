//! `oomsim node plan`: for pods read from manifests, each pod's QoS and
//! eviction rank, and each container's `oom_score_adj`.

use serde::Serialize;

use super::pod::{ContainerKind, Pod};
use super::{PodUsage, Qos, oom_score_adj, rank};

/// One container of a planned pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedContainer {
    pub name: String,
    pub init: bool,
    pub sidecar: bool,
    pub request_bytes: u64,
    pub limit_bytes: Option<u64>,
    pub oom_score_adj: i32,
}

/// One pod of `oomsim node plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedPod {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    /// What ranking counts (regular containers and sidecars against the
    /// largest init container, or the pod-level request).
    pub request_bytes: u64,
    pub usage_bytes: u64,
    /// 1 = evicted first.
    pub eviction_rank: usize,
    pub containers: Vec<PlannedContainer>,
}

/// QoS, eviction rank and per-container oom_score_adj for pods at the given usage.
pub fn plan_pods(pods: &[Pod], capacity: u64, usage: &[(String, u64)]) -> Vec<PlannedPod> {
    let usages: Vec<PodUsage> = pods
        .iter()
        .map(|p| PodUsage {
            name: p.name.clone(),
            priority: p.priority,
            request_bytes: p.memory_request(),
            working_set_bytes: usage
                .iter()
                .find(|(n, _)| *n == p.name)
                .map_or(0, |(_, u)| *u),
        })
        .collect();
    let order = rank(&usages);
    pods.iter()
        .enumerate()
        .map(|(i, p)| PlannedPod {
            name: p.name.clone(),
            qos: p.qos(),
            priority: p.priority,
            request_bytes: usages[i].request_bytes,
            usage_bytes: usages[i].working_set_bytes,
            eviction_rank: order.iter().position(|&j| j == i).unwrap_or(0) + 1,
            containers: p
                .containers
                .iter()
                .map(|c| PlannedContainer {
                    name: c.name.clone(),
                    init: c.kind != ContainerKind::Regular,
                    sidecar: c.kind == ContainerKind::Sidecar,
                    request_bytes: c.resources.memory.request.unwrap_or(0),
                    limit_bytes: c.resources.memory.limit,
                    oom_score_adj: oom_score_adj(p, c, capacity),
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::pods_from_manifest;

    #[test]
    fn kubectl_list_to_qos_adj_and_rank() {
        let yaml = r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: web, namespace: default}
  spec:
    priority: 0
    initContainers:
    - name: proxy
      restartPolicy: Always
      resources:
        requests: {memory: 64Mi}
    containers:
    - name: app
      image: nginx
      resources:
        requests: {memory: 1Gi, cpu: 100m}
        limits: {memory: 2Gi}
    - name: helper
      resources:
        requests: {memory: 512Mi}
- kind: Pod
  metadata: {name: db}
  spec:
    priority: 1000
    containers:
    - resources:
        limits: {memory: 4Gi, cpu: "1"}
- kind: Pod
  metadata: {name: batch}
  spec:
    containers:
    - name: x
  status: {phase: Running}
"#;
        let pods = pods_from_manifest(yaml, "pods.yaml").unwrap();
        let planned = plan_pods(
            &pods,
            16 << 30,
            &[
                ("web".into(), 2 << 30),
                ("batch".into(), 100 << 20),
                ("db".into(), 1 << 30),
            ],
        );
        let row = |p: &PlannedPod| (p.name.clone(), p.qos, p.priority, p.request_bytes);
        // 1Gi + 512Mi + the 64Mi sidecar.
        assert_eq!(
            row(&planned[0]),
            ("web".into(), Qos::Burstable, 0, 1600 << 20)
        );
        assert_eq!(
            row(&planned[1]),
            ("db".into(), Qos::Guaranteed, 1000, 4 << 30)
        );
        assert_eq!(row(&planned[2]), ("batch".into(), Qos::BestEffort, 0, 0));
        let adj: Vec<(&str, i32)> = planned[0]
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.oom_score_adj))
            .collect();
        // app: 1000 - 1000 x 1Gi / 16Gi = 938; helper: 1000 - 31 = 969;
        // the sidecar's own 997 is capped at the smallest regular's 969.
        assert_eq!(adj, [("proxy", 969), ("app", 938), ("helper", 969)]);
        assert!(planned[0].containers[0].sidecar && planned[0].containers[0].init);
        assert_eq!(planned[1].containers[0].oom_score_adj, -997);
        assert_eq!(planned[2].containers[0].oom_score_adj, 1000);
        // web is 448Mi over its request, batch 100Mi over zero, db within.
        let ranks: Vec<usize> = planned.iter().map(|p| p.eviction_rank).collect();
        assert_eq!(ranks, [1, 3, 2]);
    }
}
