//! The matrix as Kubernetes objects, built from the API's own types
//! (k8s-openapi), so what is printed is valid by construction: a ConfigMap
//! holding the scenario and the cell table, and one Indexed Job whose
//! index `i` runs cell `i` (`JOB_COMPLETION_INDEX`, set by the Job
//! controller for `completionMode: Indexed`).
//!
//! Why the pod is privileged: oomsim makes cgroups under its own and reads
//! the kernel log. containerd mounts `/sys/fs/cgroup` read-only in a
//! container unless the runtime's `cgroup_writable` is set
//! (internal/cri/opts/spec_linux_opts.go, `withMounts`: mode "ro"), and a
//! privileged container gets a writable cgroupfs, the host's devices
//! (`/dev/kmsg`) and CAP_SYSLOG to read them, and CAP_SYS_RESOURCE for the
//! kubelet's negative `oom_score_adj` values oomsim gives Guaranteed pods.
//! Its memory limit holds every experiment: they run in cgroups nested
//! under the container's, so the node never carries more than that limit.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, PodSpec, PodTemplateSpec,
    ResourceRequirements, SecurityContext, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::Table;
use crate::units::fmt_quantity;

/// Where the pod finds the ConfigMap, and where it writes reports.
pub const CONFIG_DIR: &str = "/etc/oomsim";
pub const REPORTS_DIR: &str = "/reports";
pub const SCENARIO_KEY: &str = "scenario.yaml";
pub const CELLS_KEY: &str = "cells.json";
/// What oomsim itself takes beside the experiments: its threads, the
/// reports, logs and charts it writes.
pub const HARNESS_BYTES: u64 = 128 << 20;
const GPU_RESOURCE: &str = "nvidia.com/gpu";

/// What the Job is asked for beyond the scenario.
#[derive(Debug, Clone)]
pub struct JobOptions {
    pub image: String,
    pub parallelism: Option<i32>,
    /// Retries of one cell (`backoffLimitPerIndex`): a failed cell does
    /// not stop the others.
    pub backoff_limit: i32,
    /// Node labels the pods must carry (`nvidia.com/gpu.product=...`).
    pub node_selector: Vec<(String, String)>,
    /// Ask for one GPU (`nvidia.com/gpu: 1`) and tolerate GPU taints.
    pub gpu: bool,
    /// The largest experiment of any cell, in bytes.
    pub experiment_bytes: u64,
}

/// A DNS-1123 label from a scenario name: lowercase, `-` for the rest,
/// within 52 characters so the pods' names (plus index and suffix) fit 63.
pub fn object_name(scenario: &str) -> String {
    let mut name: String = scenario
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name.insert_str(0, "oomsim-");
    name.truncate(52);
    name.trim_end_matches('-').to_string()
}

fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "oomsim".into()),
        ("app.kubernetes.io/instance".into(), name.into()),
    ])
}

/// The pod's memory: every experiment, oomsim itself, and the reserve
/// oomsim keeps from any host (`host::usable_bytes`: 512Mi or 5%, inside a
/// pod of its limit), whole MiB; so a cell refused for want of memory
/// never happens in a pod sized this way.
pub fn pod_memory(experiment_bytes: u64) -> u64 {
    let need = experiment_bytes + HARNESS_BYTES;
    (need * 20)
        .div_ceil(19)
        .max(need + crate::host::HOST_RESERVE_BYTES)
        .next_multiple_of(1 << 20)
}

pub fn config_map(
    name: &str,
    scenario: &str,
    table: &Table,
) -> Result<ConfigMap, serde_json::Error> {
    Ok(ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(name)),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (SCENARIO_KEY.into(), scenario.into()),
            (CELLS_KEY.into(), serde_json::to_string_pretty(table)?),
        ])),
        ..ConfigMap::default()
    })
}

pub fn job(name: &str, cells: usize, o: &JobOptions) -> Job {
    let memory = Quantity(fmt_quantity(pod_memory(o.experiment_bytes)));
    let mut limits = BTreeMap::from([("memory".to_string(), memory.clone())]);
    if o.gpu {
        limits.insert(GPU_RESOURCE.into(), Quantity("1".into()));
    }
    let container = Container {
        name: "oomsim".into(),
        image: Some(o.image.clone()),
        command: Some(
            [
                "oomsim",
                "k8s",
                "cell",
                "--config",
                CONFIG_DIR,
                "--out",
                REPORTS_DIR,
            ]
            .map(String::from)
            .to_vec(),
        ),
        resources: Some(ResourceRequirements {
            // Requests equal limits: Guaranteed, the last the node evicts.
            requests: Some(BTreeMap::from([("memory".to_string(), memory)])),
            limits: Some(limits),
            ..ResourceRequirements::default()
        }),
        security_context: Some(SecurityContext {
            privileged: Some(true),
            ..SecurityContext::default()
        }),
        volume_mounts: Some(vec![
            VolumeMount {
                name: "scenario".into(),
                mount_path: CONFIG_DIR.into(),
                read_only: Some(true),
                ..VolumeMount::default()
            },
            VolumeMount {
                name: "reports".into(),
                mount_path: REPORTS_DIR.into(),
                ..VolumeMount::default()
            },
        ]),
        ..Container::default()
    };
    let tolerations = o.gpu.then(|| {
        vec![Toleration {
            key: Some(GPU_RESOURCE.into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Toleration::default()
        }]
    });
    let node_selector = (!o.node_selector.is_empty())
        .then(|| o.node_selector.iter().cloned().collect::<BTreeMap<_, _>>());
    let cells = i32::try_from(cells).unwrap_or(i32::MAX);
    Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(name)),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            completion_mode: Some("Indexed".into()),
            completions: Some(cells),
            parallelism: Some(o.parallelism.unwrap_or(cells).min(cells)),
            backoff_limit_per_index: Some(o.backoff_limit),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels(name)),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    containers: vec![container],
                    node_selector,
                    tolerations,
                    volumes: Some(vec![
                        Volume {
                            name: "scenario".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: name.into(),
                                ..ConfigMapVolumeSource::default()
                            }),
                            ..Volume::default()
                        },
                        Volume {
                            name: "reports".into(),
                            empty_dir: Some(EmptyDirVolumeSource::default()),
                            ..Volume::default()
                        },
                    ]),
                    ..PodSpec::default()
                }),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

/// Both objects as multi-document YAML, for `kubectl apply -f -`.
pub fn yaml(config: &ConfigMap, job: &Job) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!(
        "---\n{}---\n{}",
        serde_saphyr::to_string(config)?,
        serde_saphyr::to_string(job)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pod_leaves_every_experiment_usable() {
        for exp in [0, 64 << 20, 1 << 30, 19 << 30, 300 << 30] {
            let pod = pod_memory(exp);
            // Inside the pod, oomsim's own use counted as spent.
            let usable = crate::host::usable_bytes(pod - HARNESS_BYTES, pod);
            assert!(usable >= exp, "{exp}: pod {pod}, usable {usable}");
            assert!(
                pod <= (exp + (1 << 30)) * 11 / 10,
                "{exp}: pod {pod} is wasteful"
            );
        }
    }

    #[test]
    fn names_are_dns_labels_with_room_for_the_pod_suffix() {
        assert_eq!(object_name("vllm-14g"), "oomsim-vllm-14g");
        assert_eq!(object_name("My_Scenario.v2"), "oomsim-my-scenario-v2");
        let long = object_name(&"x".repeat(200));
        assert!(long.len() <= 52, "{long}");
    }
}
