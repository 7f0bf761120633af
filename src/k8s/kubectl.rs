//! `kubectl get pods -o yaml` as far as memory goes: a `List` of Pods or one
//! Pod, each with its QoS class over all containers and its summed memory
//! request, for `oomsim node plan`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_saphyr::Spanned;

use super::{PodUsage, Qos, oom_score_adj, rank};

#[derive(Debug, thiserror::Error)]
pub enum KubectlError {
    #[error("{path}: not kubectl YAML: {message}")]
    Yaml { path: String, message: String },
    #[error("{path}: kind {kind:?} is neither a Pod nor a List of Pods (kubectl get pods -o yaml)")]
    Kind { path: String, kind: Option<String> },
    #[error("{path}: pod {pod} has no spec")]
    NoSpec { path: String, pod: String },
    /// `at` is `FILE:LINE: pod NAME: resources KEY`.
    #[error("{at}: {source}")]
    Quantity {
        at: String,
        source: Box<crate::units::UnitError>,
    },
}

/// `kubectl get pods -o yaml` as far as memory goes: a `List` of Pods or one Pod.
mod kube {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    pub struct Object {
        pub kind: Option<String>,
        #[serde(default)]
        pub items: Vec<Object>,
        pub metadata: Option<Metadata>,
        pub spec: Option<PodSpec>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Metadata {
        pub name: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    pub struct PodSpec {
        #[serde(default)]
        pub containers: Vec<Container>,
        pub priority: Option<i32>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Container {
        pub resources: Option<Resources>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Resources {
        #[serde(default)]
        pub requests: super::ResourceMap,
        #[serde(default)]
        pub limits: super::ResourceMap,
    }
}

/// One pod of `oomsim node plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedPod {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    pub request_bytes: u64,
    pub usage_bytes: u64,
    pub oom_score_adj: i32,
    /// 1 = evicted first.
    pub eviction_rank: usize,
}

/// One pod as kubectl's YAML gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct KubePod {
    pub name: String,
    pub qos: Qos,
    pub priority: i32,
    pub request_bytes: u64,
}

type ResourceMap = BTreeMap<String, Spanned<String>>;

/// Pods from kubectl's YAML: QoS over all containers (Guaranteed when every
/// container's CPU and memory limits equal their requests), summed requests.
pub fn pods_from_kubectl(text: &str, shown: &str) -> Result<Vec<KubePod>, KubectlError> {
    let obj: kube::Object = serde_saphyr::from_str(text).map_err(|e| KubectlError::Yaml {
        path: shown.to_string(),
        message: e.to_string().lines().next().unwrap_or("").to_string(),
    })?;
    let pods: Vec<kube::Object> = match obj.kind.as_deref() {
        Some("List") | Some("PodList") => obj.items,
        Some("Pod") => vec![obj],
        other => {
            return Err(KubectlError::Kind {
                path: shown.to_string(),
                kind: other.map(str::to_string),
            });
        }
    };
    let mut out = Vec::new();
    for (i, p) in pods.into_iter().enumerate() {
        if p.kind.as_deref().is_some_and(|k| k != "Pod") {
            continue;
        }
        let name = p
            .metadata
            .and_then(|m| m.name)
            .unwrap_or_else(|| format!("pod-{i}"));
        let spec = p.spec.ok_or_else(|| KubectlError::NoSpec {
            path: shown.to_string(),
            pod: name.clone(),
        })?;
        let (mut request, mut any, mut guaranteed) = (0u64, false, !spec.containers.is_empty());
        for c in &spec.containers {
            let r = c.resources.as_ref();
            let get = |m: Option<&ResourceMap>, k: &str| {
                m.and_then(|m| m.get(k))
                    .map(|v| {
                        crate::units::parse_quantity_scaled(&v.value, 3).map_err(|source| {
                            KubectlError::Quantity {
                                at: format!(
                                    "{shown}:{}: pod {name}: resources {k}",
                                    v.referenced.line()
                                ),
                                source: Box::new(source),
                            }
                        })
                    })
                    .transpose()
            };
            let (req, lim) = (r.map(|r| &r.requests), r.map(|r| &r.limits));
            let mem_lim = get(lim, "memory")?;
            let cpu_lim = get(lim, "cpu")?;
            // The API server defaults a missing request to the limit.
            let mem_req = get(req, "memory")?.or(mem_lim);
            let cpu_req = get(req, "cpu")?.or(cpu_lim);
            any |= [mem_req, mem_lim, cpu_req, cpu_lim]
                .iter()
                .any(|v| v.is_some_and(|v| v > 0));
            guaranteed &=
                mem_lim.is_some() && mem_req == mem_lim && cpu_lim.is_some() && cpu_req == cpu_lim;
            request += mem_req.unwrap_or(0).div_ceil(1000);
        }
        let qos = if guaranteed {
            Qos::Guaranteed
        } else if any {
            Qos::Burstable
        } else {
            Qos::BestEffort
        };
        out.push(KubePod {
            name,
            qos,
            priority: spec.priority.unwrap_or(0),
            request_bytes: request,
        });
    }
    Ok(out)
}

/// QoS, oom_score_adj and eviction rank for pods at the given usage.
pub fn plan_pods(pods: &[KubePod], capacity: u64, usage: &[(String, u64)]) -> Vec<PlannedPod> {
    let usages: Vec<PodUsage> = pods
        .iter()
        .map(|p| PodUsage {
            name: p.name.clone(),
            priority: p.priority,
            request_bytes: p.request_bytes,
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
            qos: p.qos,
            priority: p.priority,
            request_bytes: p.request_bytes,
            usage_bytes: usages[i].working_set_bytes,
            oom_score_adj: oom_score_adj(p.qos, p.request_bytes, capacity),
            eviction_rank: order.iter().position(|&j| j == i).unwrap_or(0) + 1,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    containers:
    - name: app
      image: nginx
      resources:
        requests: {memory: 1Gi, cpu: 100m}
        limits: {memory: 2Gi}
    - name: sidecar
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
        let pods = pods_from_kubectl(yaml, "pods.yaml").unwrap();
        let row = |p: &KubePod| (p.name.clone(), p.qos, p.priority, p.request_bytes);
        assert_eq!(row(&pods[0]), ("web".into(), Qos::Burstable, 0, 1536 << 20));
        assert_eq!(row(&pods[1]), ("db".into(), Qos::Guaranteed, 1000, 4 << 30));
        assert_eq!(row(&pods[2]), ("batch".into(), Qos::BestEffort, 0, 0));
        let planned = plan_pods(
            &pods,
            16 << 30,
            &[
                ("web".into(), 2 << 30),
                ("batch".into(), 100 << 20),
                ("db".into(), 1 << 30),
            ],
        );
        // 1000 - 1000 x 1.5Gi / 16Gi = 1000 - 93 = 907.
        assert_eq!(planned[0].oom_score_adj, 907);
        assert_eq!(planned[1].oom_score_adj, -997);
        assert_eq!(planned[2].oom_score_adj, 1000);
        // web is 512Mi over its request, batch 100Mi over zero, db within.
        let ranks: Vec<usize> = planned.iter().map(|p| p.eviction_rank).collect();
        assert_eq!(ranks, [1, 3, 2]);
        assert!(
            pods_from_kubectl("kind: Service\n", "s.yaml")
                .unwrap_err()
                .to_string()
                .contains("neither a Pod")
        );
    }
}
