//! The plan as one run executes it: every command's `{EXPR:UNIT}` rendered
//! with its container's limit and request (each search trial gets its own),
//! and a runtime's program built and told to report its memory.

use std::path::{Path, PathBuf};

use super::RunError;
use super::pod_report::file_stem;
use crate::host::HostError;
use crate::plan::{ContainerPlan, Phase, Plan, PodPlan};
use crate::runtime::build;
use crate::template::Bindings;

/// Where a container's runtime statistics go, beside its log.
pub fn stats_file(logs: &Path, pod: &PodPlan, c: &ContainerPlan) -> PathBuf {
    logs.join(format!("{}.runtime.jsonl", file_stem(pod, c)))
}

/// What the downward API's `resourceFieldRef` gives container `j`:
/// `limits.memory` is its limit, else the pod-level limit, else the node's
/// allocatable (pkg/kubelet/kubelet_resources.go, `defaultPodLimitsForDownwardAPI`);
/// an unset `requests.memory` is 0.
pub fn bindings(pod: &PodPlan, j: usize, allocatable: u64) -> Bindings {
    let c = &pod.containers[j];
    Bindings {
        limit: c
            .limit_bytes()
            .or(pod.resources.and_then(|r| r.memory.limit))
            .unwrap_or(allocatable),
        request: c.request_bytes().unwrap_or(0),
    }
}

/// The plan with every program's templates evaluated and its runtime prepared.
pub fn prepare(plan: &Plan, allocatable: u64, logs: &Path) -> Result<Plan, RunError> {
    let mut out = plan.clone();
    // Read from the plan as given, written into its copy.
    for (pod, into) in plan.pods.iter().zip(&mut out.pods) {
        for (j, (c, into)) in pod.containers.iter().zip(&mut into.containers).enumerate() {
            if let Some(image) = &c.image {
                crate::runtime::image::check(image).map_err(HostError::from)?;
            }
            let b = bindings(pod, j, allocatable);
            for (phase, into_phase) in c.workload.phases.iter().zip(&mut into.workload.phases) {
                let (Phase::Command(p), Phase::Command(into_p)) = (phase, into_phase) else {
                    continue;
                };
                let (rendered, flags) = p.rendered(b).map_err(|source| RunError::Template {
                    pod: pod.name.clone(),
                    container: c.name.clone(),
                    source: Box::new(source),
                })?;
                // An image brings its own runtime: nothing is built here.
                *into_p = match c.image {
                    Some(_) => rendered,
                    None => build::prepare(&rendered, &stats_file(logs, pod, c))
                        .map_err(HostError::from)?,
                };
                into.flags.extend(flags);
            }
        }
    }
    Ok(out)
}
