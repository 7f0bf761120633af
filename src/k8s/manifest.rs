//! Pods out of the manifests people roll out: a Pod, anything with a pod
//! template (Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ReplicationController, Job, CronJob), a List of them, several YAML
//! documents in one file, or `kubectl get -o json` (JSON is YAML).
//!
//! Quantities become what the kubelet sees: memory as `Quantity.Value()`
//! gives it (rounded up to a whole byte, so `100m` is 1), CPU in millicores
//! as `MilliValue()` does, and a missing request defaulted to its limit as
//! the API server does (pkg/apis/core/v1/defaults.go, SetDefaults_Pod).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::pod::{
    Container, ContainerKind, Pod, Resource, Resources, RestartPolicy, builtin_class_priority,
};
use crate::units::{UnitError, parse_quantity_scaled};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: not Kubernetes YAML or JSON: {message}")]
    Syntax { path: String, message: String },
    #[error(
        "{path}: {kind} {name:?} has no pod template (a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Job, CronJob or a List of them)"
    )]
    NoTemplate {
        path: String,
        kind: String,
        name: String,
    },
    #[error("{path}: {what} has no containers")]
    NoContainers { path: String, what: String },
    #[error("{path}: no pods in it")]
    Empty { path: String },
    /// `at` is `FILE:LINE: pod NAME: container C: resources.requests.memory`.
    #[error("{at}: {source}")]
    Quantity { at: String, source: UnitError },
    #[error(
        "{at}: the request ({request}) is larger than the limit ({limit}); the API server refuses it"
    )]
    RequestAboveLimit {
        at: String,
        request: String,
        limit: String,
    },
    #[error(
        "{at}: the pod-level request ({pod}) is below its containers' ({containers}); the API server refuses it"
    )]
    PodRequestBelowContainers {
        at: String,
        pod: u64,
        containers: u64,
    },
    #[error(
        "{at}: container {container}'s limit ({limit}) is above the pod-level limit ({pod}); the API server refuses it"
    )]
    ContainerLimitAbovePod {
        at: String,
        container: String,
        limit: String,
        pod: String,
    },
    #[error(
        "{path}: init container {container:?} of {pod} has restartPolicy {policy:?}; only Always (a sidecar) may be set"
    )]
    InitRestartPolicy {
        path: String,
        pod: String,
        container: String,
        policy: String,
    },
    #[error("{path}: pod {pod} has restartPolicy {policy:?} (Always, OnFailure or Never)")]
    RestartPolicy {
        path: String,
        pod: String,
        policy: String,
    },
}

/// The kinds a pod can be read out of, and the serde mirror of them.
mod raw {
    use super::*;

    #[derive(Debug, Deserialize)]
    pub struct Object {
        pub kind: Option<String>,
        #[serde(default)]
        pub items: Vec<Object>,
        pub metadata: Option<Metadata>,
        pub spec: Option<Spec>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Metadata {
        pub name: Option<String>,
    }

    /// Every spec shape at once: a pod spec, a template holder, a CronJob.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Spec {
        #[serde(default)]
        pub containers: Vec<Container>,
        #[serde(default)]
        pub init_containers: Vec<Container>,
        pub priority: Option<i32>,
        pub priority_class_name: Option<String>,
        pub restart_policy: Option<String>,
        /// Pod-level resources (PodLevelResources).
        pub resources: Option<Resources>,
        pub template: Option<Template>,
        pub job_template: Option<Template>,
    }

    #[derive(Debug, Deserialize)]
    pub struct Template {
        pub spec: Option<Box<Spec>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub struct Container {
        pub name: Option<String>,
        pub resources: Option<Resources>,
        pub restart_policy: Option<String>,
    }

    #[derive(Debug, Default, Deserialize)]
    pub struct Resources {
        #[serde(default)]
        pub requests: BTreeMap<String, Spanned<String>>,
        #[serde(default)]
        pub limits: BTreeMap<String, Spanned<String>>,
    }
}

/// Kinds whose `spec.template` is a pod template.
const TEMPLATED: [&str; 6] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
];

/// Every pod a manifest file holds, in order.
pub fn pods_from_manifest(text: &str, shown: &str) -> Result<Vec<Pod>, ManifestError> {
    let docs: Vec<Option<raw::Object>> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Syntax {
            path: shown.to_string(),
            message: e.to_string().lines().next().unwrap_or("").to_string(),
        })?;
    let mut pods = Vec::new();
    let docs: Vec<raw::Object> = docs.into_iter().flatten().collect();
    // In a List or several documents (Helm output, `kubectl get deploy,svc`),
    // objects that hold no pod are passed over; alone, one is an error.
    let alone = docs.len() == 1;
    for obj in docs {
        collect(obj, shown, &mut pods, alone)?;
    }
    if pods.is_empty() {
        return Err(ManifestError::Empty {
            path: shown.to_string(),
        });
    }
    Ok(pods)
}

fn collect(
    obj: raw::Object,
    shown: &str,
    pods: &mut Vec<Pod>,
    alone: bool,
) -> Result<(), ManifestError> {
    let kind = obj.kind.clone().unwrap_or_default();
    if kind == "List" || kind.ends_with("List") {
        for item in obj.items {
            collect(item, shown, pods, false)?;
        }
        return Ok(());
    }
    let holds_pod = kind == "Pod" || kind == "CronJob" || TEMPLATED.contains(&kind.as_str());
    if !holds_pod && !alone {
        return Ok(());
    }
    let name = obj
        .metadata
        .and_then(|m| m.name)
        .unwrap_or_else(|| format!("{}-{}", kind.to_lowercase(), pods.len()));
    let no_template = || ManifestError::NoTemplate {
        path: shown.to_string(),
        kind: if kind.is_empty() {
            "an object without a kind".into()
        } else {
            kind.clone()
        },
        name: name.clone(),
    };
    let spec = obj.spec.ok_or_else(no_template)?;
    let spec = match kind.as_str() {
        "Pod" => Box::new(spec),
        k if TEMPLATED.contains(&k) => template(spec.template).ok_or_else(no_template)?,
        "CronJob" => spec
            .job_template
            .and_then(|j| j.spec)
            .and_then(|s| template(s.template))
            .ok_or_else(no_template)?,
        _ => return Err(no_template()),
    };
    pods.push(pod(name, *spec, shown)?);
    Ok(())
}

fn template(t: Option<raw::Template>) -> Option<Box<raw::Spec>> {
    t.and_then(|t| t.spec)
}

fn pod(name: String, spec: raw::Spec, shown: &str) -> Result<Pod, ManifestError> {
    if spec.containers.is_empty() {
        return Err(ManifestError::NoContainers {
            path: shown.to_string(),
            what: format!("pod {name}"),
        });
    }
    let mut containers = Vec::new();
    for (i, c) in spec.init_containers.iter().enumerate() {
        let kind = match c.restart_policy.as_deref() {
            None => ContainerKind::Init,
            Some("Always") => ContainerKind::Sidecar,
            Some(other) => {
                return Err(ManifestError::InitRestartPolicy {
                    path: shown.to_string(),
                    pod: name.clone(),
                    container: container_name(c, ContainerKind::Init, i),
                    policy: other.to_string(),
                });
            }
        };
        containers.push(container(c, kind, i, &name, shown)?);
    }
    for (i, c) in spec.containers.iter().enumerate() {
        containers.push(container(c, ContainerKind::Regular, i, &name, shown)?);
    }
    let restart_policy = match spec.restart_policy.as_deref() {
        None => RestartPolicy::Always,
        Some(p) => RestartPolicy::parse(p).ok_or_else(|| ManifestError::RestartPolicy {
            path: shown.to_string(),
            pod: name.clone(),
            policy: p.to_string(),
        })?,
    };
    let at = format!("{shown}:?: pod {name}: resources");
    let pod_level = spec
        .resources
        .as_ref()
        .map(|r| parse_resources(r, &at, false))
        .transpose()?
        .filter(|r| *r != Resources::default());
    let mut pod = Pod {
        name: name.clone(),
        priority: 0,
        priority_class_name: None,
        containers,
        resources: None,
        restart_policy,
    };
    pod.resources = pod_level
        .map(|r| default_pod_level(&pod, r, &at))
        .transpose()?;
    Ok(Pod {
        name,
        // The Priority admission plugin fills in the built-in classes' values.
        priority: spec
            .priority
            .or_else(|| {
                spec.priority_class_name
                    .as_deref()
                    .and_then(builtin_class_priority)
            })
            .unwrap_or(0),
        priority_class_name: spec.priority_class_name,
        containers: pod.containers,
        resources: pod.resources,
        restart_policy,
    })
}

fn container(
    c: &raw::Container,
    kind: ContainerKind,
    index: usize,
    pod: &str,
    shown: &str,
) -> Result<Container, ManifestError> {
    let name = container_name(c, kind, index);
    let r = match &c.resources {
        Some(r) => parse_resources(
            r,
            &format!("{shown}:?: pod {pod}: container {name}: resources"),
            true,
        )?,
        None => Resources::default(),
    };
    Ok(Container {
        name,
        kind,
        resources: r,
    })
}

fn container_name(c: &raw::Container, kind: ContainerKind, index: usize) -> String {
    c.name.clone().unwrap_or_else(|| match kind {
        ContainerKind::Regular => format!("container-{index}"),
        _ => format!("init-{index}"),
    })
}

/// Pod-level values as the API server defaults them (defaultPodRequests,
/// defaultPodLimits in pkg/apis/core/v1/defaults.go): a missing request is
/// the containers' aggregate when any container requests it, else the pod
/// limit; a missing limit is the containers' aggregate when every container
/// has one. A request below the containers' is refused, as validation does.
pub fn default_pod_level(
    pod: &Pod,
    mut r: Resources,
    at: &str,
) -> Result<Resources, ManifestError> {
    type Get = fn(&Resources) -> Resource;
    let pick: [(&str, Get); 2] = [("memory", |r| r.memory), ("cpu", |r| r.cpu)];
    for (key, get) in pick {
        let requests = |c: &Container| get(&c.resources).request;
        let limits = |c: &Container| get(&c.resources).limit;
        let aggregate_request = pod.aggregate(|c| requests(c).unwrap_or(0));
        let mut v = get(&r);
        if v.request.is_none() {
            v.request = if pod.containers.iter().any(|c| requests(c).is_some()) {
                Some(aggregate_request)
            } else {
                v.limit
            };
        }
        if v.limit.is_none() && pod.containers.iter().all(|c| limits(c).is_some()) {
            v.limit = Some(pod.aggregate(|c| limits(c).unwrap_or(0)));
        }
        // validatePodResourceConsistency: each container's limit at most the pod's.
        if let Some(pod_limit) = v.limit
            && let Some((c, limit)) = pod
                .containers
                .iter()
                .find_map(|c| limits(c).filter(|l| *l > pod_limit).map(|l| (c, l)))
        {
            return Err(ManifestError::ContainerLimitAbovePod {
                at: format!("{}.limits.{key}", at.replace(":?:", ":")),
                container: c.name.clone(),
                limit: crate::units::fmt_quantity(limit),
                pod: crate::units::fmt_quantity(pod_limit),
            });
        }
        if let Some(req) = v.request
            && req < aggregate_request
        {
            return Err(ManifestError::PodRequestBelowContainers {
                at: format!("{}.requests.{key}", at.replace(":?:", ":")),
                pod: req,
                containers: aggregate_request,
            });
        }
        match key {
            "memory" => r.memory = v,
            _ => r.cpu = v,
        }
    }
    Ok(r)
}

/// Requests and limits, checked as the API server does; a container's
/// missing request defaults to its limit.
fn parse_resources(
    r: &raw::Resources,
    at: &str,
    default_request: bool,
) -> Result<Resources, ManifestError> {
    let get = |m: &BTreeMap<String, Spanned<String>>, section: &str, key: &str, scale: i32| {
        m.get(key)
            .map(|v| {
                let at = at.replace(":?:", &format!(":{}:", v.referenced.line()));
                parse_quantity_scaled(&v.value, scale)
                    .map(|q| (q, v.value.clone()))
                    .map_err(|source| ManifestError::Quantity {
                        at: format!("{at}.{section}.{key}"),
                        source,
                    })
            })
            .transpose()
    };
    let mut out = Resources::default();
    for (key, scale) in [("memory", 0), ("cpu", 3)] {
        let limit = get(&r.limits, "limits", key, scale)?;
        let request = get(&r.requests, "requests", key, scale)?;
        if let (Some((req, req_text)), Some((lim, lim_text))) = (&request, &limit)
            && req > lim
        {
            let line = r.requests[key].referenced.line();
            return Err(ManifestError::RequestAboveLimit {
                at: format!("{}.requests.{key}", at.replace(":?:", &format!(":{line}:"))),
                request: req_text.clone(),
                limit: lim_text.clone(),
            });
        }
        let resource = Resource {
            limit: limit.as_ref().map(|l| l.0),
            // The API server defaults a container's missing request to its limit.
            request: if default_request {
                request.or(limit).map(|r| r.0)
            } else {
                request.map(|r| r.0)
            },
        };
        match key {
            "memory" => out.memory = resource,
            _ => out.cpu = resource,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  template:
    metadata: {labels: {app: web}}
    spec:
      priorityClassName: high
      initContainers:
      - name: migrate
        resources: {limits: {memory: 256Mi}}
      - name: proxy
        restartPolicy: Always
        resources: {requests: {memory: 64Mi}}
      containers:
      - name: app
        resources:
          requests: {memory: 1Gi, cpu: 100m}
          limits: {memory: 2Gi}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: job
            resources: {requests: {memory: 100m}}
"#;

    #[test]
    fn templates_documents_and_defaulting() {
        let pods = pods_from_manifest(DEPLOYMENT, "d.yaml").unwrap();
        assert_eq!(pods.len(), 2);
        let web = &pods[0];
        assert_eq!(web.name, "web");
        assert_eq!(web.priority_class_name.as_deref(), Some("high"));
        let kinds: Vec<(&str, ContainerKind)> = web
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("migrate", ContainerKind::Init),
                ("proxy", ContainerKind::Sidecar),
                ("app", ContainerKind::Regular)
            ]
        );
        // The request defaults to the limit.
        assert_eq!(web.containers[0].resources.memory.request, Some(256 << 20));
        assert_eq!(web.containers[2].resources.cpu.request, Some(100));
        // 100m of memory is 0.1 byte: Value() rounds it up to 1.
        assert_eq!(pods[1].name, "nightly");
        assert_eq!(pods[1].containers[0].resources.memory.request, Some(1));
    }

    #[test]
    fn lists_json_and_huge_requests() {
        let json = r#"{"apiVersion": "v1", "kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [
                {"name": "c", "resources": {"requests": {"memory": "9Pi"}}}]}},
            {"kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"template": {"spec": {
                "containers": [{"name": "pg", "resources": {"limits": {"memory": "4Gi", "cpu": "2"}}}]}}}}
        ]}"#;
        let pods = pods_from_manifest(json, "get.json").unwrap();
        assert_eq!(
            pods[0].containers[0].resources.memory.request,
            Some(9 << 50)
        );
        assert_eq!(pods[1].name, "db");
        assert_eq!(pods[1].containers[0].resources.cpu.request, Some(2000));
    }

    #[test]
    fn pod_level_resources_are_defaulted_as_the_api_server_does() {
        let pod = |resources: &str| {
            pods_from_manifest(
                &format!(
                    "kind: Pod\nmetadata: {{name: p}}\nspec:\n  resources: {resources}\n  containers:\n  - name: a\n    resources: {{requests: {{memory: 1Gi}}}}\n  - name: b\n"
                ),
                "p.yaml",
            )
        };
        // The pod-level request is the containers' when they request memory,
        // not the pod limit: the pod is Burstable, not Guaranteed.
        let p = pod("{limits: {memory: 4Gi, cpu: 1}}").unwrap().remove(0);
        let r = p.resources.unwrap();
        assert_eq!(
            (r.memory.request, r.memory.limit),
            (Some(1 << 30), Some(4 << 30))
        );
        assert_eq!(
            r.cpu.request,
            Some(1000),
            "no container requests CPU: the limit"
        );
        assert_eq!(p.qos(), crate::k8s::Qos::Burstable);
        assert_eq!(p.memory_request(), 1 << 30);
        // Empty pod-level resources are not pod-level resources.
        let p = pod("{}").unwrap().remove(0);
        assert!(p.resources.is_none());
        let e = pod("{requests: {memory: 512Mi}}").unwrap_err().to_string();
        assert!(e.contains("pod p: resources.requests.memory: the pod-level request (536870912) is below its containers' (1073741824)"), "{e}");
    }

    #[test]
    fn lists_pass_over_objects_without_pods() {
        let yaml = "kind: Service\nmetadata: {name: s}\nspec: {}\n---\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c}]\n";
        let pods = pods_from_manifest(yaml, "all.yaml").unwrap();
        assert_eq!(pods.len(), 1);
        let e = pods_from_manifest(
            "kind: List\nitems:\n- {kind: Service, metadata: {name: s}}\n",
            "l.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "l.yaml: no pods in it");
    }

    #[test]
    fn bad_manifests_name_file_line_and_field() {
        let e = pods_from_manifest("kind: Service\nmetadata: {name: s}\nspec: {}\n", "s.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("s.yaml: Service \"s\" has no pod template"),
            "{e}"
        );
        let e = pods_from_manifest(
            "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources:\n      requests: {memory: 2Gi}\n      limits: {memory: 1Gi}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "p.yaml:7: pod p: container c: resources.requests.memory: the request (2Gi) is larger than the limit (1Gi); the API server refuses it"
        );
        let e = pods_from_manifest(
            "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    resources:\n      limits: {memory: 1Qi}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("p.yaml:7: pod p: container c: resources.limits.memory: "),
            "{e}"
        );
        let e = pods_from_manifest(
            "kind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n  - {name: i, restartPolicy: Never}\n  containers:\n  - {name: c}\n",
            "p.yaml",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("restartPolicy \"Never\""), "{e}");
    }
}
