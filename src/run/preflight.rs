//! Before anything is created: root, a memory controller, `vm.panic_on_oom`
//! off, limits the host can give, and the weights files model-load pods read.

use std::sync::Arc;

use crate::cgroup::{self, Backend};
use crate::host::{self, HostError, HostInfo};
use crate::plan::{Phase, Plan};

/// The host facts and backend a run needs, checked before anything is created.
pub struct Preflight {
    pub backend: Arc<dyn Backend>,
    pub host: HostInfo,
    pub usable_bytes: u64,
}

/// Check root, the memory controller, panic_on_oom, and that the limits fit.
pub fn preflight(plan: &Plan) -> Result<Preflight, HostError> {
    if !host::is_root() {
        return Err(HostError::NotRoot);
    }
    let backend = cgroup::detect().map_err(HostError::NoMemoryController)?;
    host::check_panic_on_oom()?;
    let mem = host::meminfo()?;
    // A node's capacity bounds every pod inside it, whatever their limits.
    let limits: Vec<(String, u64)> = match &plan.node {
        Some(n) => vec![(n.capacity_field.clone(), n.capacity_bytes)],
        None => plan
            .pods
            .iter()
            .filter_map(|p| p.limit_bytes().map(|l| (p.limit_field().to_string(), l)))
            .collect(),
    };
    let usable_bytes = host::check_fits(&limits, mem.available_bytes, mem.total_bytes)?;
    for pod in &plan.pods {
        for phase in pod.containers.iter().flat_map(|c| &c.workload.phases) {
            if let Phase::ModelLoad(m) = phase
                && let Some(file) = &m.file
            {
                crate::llm::weights::ensure(file, m.size_bytes, true)?;
            }
        }
    }
    let host = HostInfo {
        kernel: host::kernel_release(),
        cgroup_version: backend.version(),
        cgroup_root: backend.root().display().to_string(),
        mem_total_bytes: mem.total_bytes,
        mem_available_bytes: mem.available_bytes,
        swap_total_bytes: Some(mem.swap_total_bytes),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kmsg_readable: false,
    };
    Ok(Preflight {
        backend,
        host,
        usable_bytes,
    })
}
