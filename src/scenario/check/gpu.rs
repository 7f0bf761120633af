//! The `gpu:` block: the backend, the device and the sim device's capacity.

use super::Checker;
use crate::gpu::{BackendChoice, GpuSpec};
use crate::plan::DEFAULT_SIM_GPU_MEMORY;
use crate::scenario::ScenarioError;
use crate::scenario::raw::RawGpu;
use crate::units;

impl Checker<'_> {
    pub(super) fn gpu(&self, g: &RawGpu) -> Result<GpuSpec, ScenarioError> {
        let backend = match g.backend.as_ref() {
            None => BackendChoice::Auto,
            Some(t) => match t.value.as_str() {
                "auto" => BackendChoice::Auto,
                "cuda" => BackendChoice::Cuda,
                "sim" => BackendChoice::Sim,
                other => {
                    return Err(self.err(
                        &t.referenced,
                        "gpu.backend",
                        format!("{other:?} is not a backend (auto, cuda, sim)"),
                    ));
                }
            },
        };
        let memory_bytes = match &g.memory {
            Some(t) => {
                let b = self.unit(t, "gpu.memory", units::parse_bytes)?;
                if b == 0 {
                    return Err(self.err(&t.referenced, "gpu.memory", "must be more than zero"));
                }
                b
            }
            None => DEFAULT_SIM_GPU_MEMORY,
        };
        Ok(GpuSpec {
            backend,
            device: g.device.as_ref().map_or(0, |d| d.value),
            memory_bytes,
        })
    }
}
