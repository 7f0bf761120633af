//! The plan as one run executes it: every command's `{EXPR:UNIT}` rendered
//! with its container's limit and request (each search trial gets its own).

use super::RunError;
use crate::plan::{Phase, Plan, PodPlan};
use crate::template::Bindings;

/// What the downward API's `resourceFieldRef` gives container `j`:
/// `limits.memory` is its limit, else the pod-level limit, else the node's
/// allocatable (pkg/kubelet/kubelet_resources.go, `containerResourceRuntimeValue`);
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

/// The plan with every program's templates evaluated.
pub fn prepare(plan: &Plan, allocatable: u64) -> Result<Plan, RunError> {
    let mut out = plan.clone();
    for pod in &mut out.pods {
        let snapshot = pod.clone();
        for (j, c) in pod.containers.iter_mut().enumerate() {
            let b = bindings(&snapshot, j, allocatable);
            for phase in &mut c.workload.phases {
                if let Phase::Command(p) = phase {
                    let (rendered, flags) = p.rendered(b).map_err(|source| RunError::Template {
                        pod: snapshot.name.clone(),
                        container: c.name.clone(),
                        source: Box::new(source),
                    })?;
                    *p = rendered;
                    c.flags.extend(flags);
                }
            }
        }
    }
    Ok(out)
}
