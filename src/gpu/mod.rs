//! GPU devices: a [`Device`] trait with a real CUDA backend (cudarc, loaded
//! at run time, so oomsim builds and runs with no CUDA installed) and a
//! simulated one that keeps CUDA's contract: a capacity, `cuMemGetInfo`-style
//! free/total, and allocations past capacity failing with CUDA's
//! out-of-memory error. Both record what each process holds in the run's
//! [`ledger::Ledger`], which the harness samples.

mod cuda;
pub mod ledger;
mod sim;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use ledger::Ledger;

/// Which backend a scenario asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    Auto,
    Cuda,
    Sim,
}

/// The scenario's `gpu:` block.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuSpec {
    pub backend: BackendChoice,
    pub device: u32,
    /// The sim device's capacity; a CUDA device has its own.
    pub memory_bytes: u64,
}

/// The backend that ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceBackend {
    Cuda,
    Sim,
}

impl std::fmt::Display for DeviceBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DeviceBackend::Cuda => "cuda",
            DeviceBackend::Sim => "sim",
        })
    }
}

/// The device that ran, as every report names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub backend: DeviceBackend,
    pub index: u32,
    pub name: String,
    pub total_bytes: u64,
    /// Why `backend: auto` did not use CUDA (no libcuda.so, no such GPU...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cuda_unavailable: Option<String>,
}

/// Environment a pod's workload reads to reach the run's device.
pub const ENV_LEDGER: &str = "OOMSIM_GPU_LEDGER";
pub const ENV_POD: &str = "OOMSIM_GPU_POD";

/// A device allocation that did not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfMemory {
    pub device: u32,
    pub requested_bytes: u64,
    pub free_bytes: u64,
    pub total_bytes: u64,
}

/// torch's way of writing a size (c10's format_size).
fn torch_size(bytes: u64) -> String {
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes < 1 << 20 {
        format!("{:.2} KiB", b / 1024.0)
    } else if bytes < 1 << 30 {
        format!("{:.2} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    }
}

impl std::fmt::Display for OutOfMemory {
    /// The same sentence torch prints, so log scrapers that look for it match.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CUDA out of memory. Tried to allocate {}. GPU {} has a total capacity of {} of which {} is free.",
            torch_size(self.requested_bytes),
            self.device,
            torch_size(self.total_bytes),
            torch_size(self.free_bytes)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("{0}")]
    OutOfMemory(OutOfMemory),
    #[error("CUDA error: {0}")]
    Driver(String),
    #[error("{0}")]
    Ledger(#[from] ledger::LedgerError),
    #[error("gpu.backend: cuda was asked for, but {0}")]
    CudaUnavailable(#[from] cuda::ProbeError),
}

/// Memory on a device; freed when dropped.
pub trait DeviceMemory {
    /// Copy `src` to `offset` bytes into this allocation (host to device).
    fn upload(&mut self, offset: u64, src: &[u8]) -> Result<(), GpuError>;
}

pub trait Device {
    fn info(&self) -> &DeviceInfo;
    /// (free, total), as cuMemGetInfo gives them.
    fn mem_get_info(&self) -> Result<(u64, u64), GpuError>;
    fn alloc(&self, bytes: u64) -> Result<Box<dyn DeviceMemory>, GpuError>;
}

/// The harness's side: the resolved device and the ledger pods share.
pub struct RunDevice {
    pub info: DeviceInfo,
    pub ledger: Arc<Ledger>,
}

impl RunDevice {
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(ENV_LEDGER.into(), self.ledger.path().display().to_string())]
    }
}

/// Resolve `auto`, query the device, and create the run's ledger.
pub fn prepare(spec: &GpuSpec, run_id: &str) -> Result<RunDevice, GpuError> {
    let sim = |cuda_unavailable: Option<String>| DeviceInfo {
        backend: DeviceBackend::Sim,
        index: spec.device,
        name: format!(
            "oomsim simulated GPU ({})",
            crate::units::fmt_quantity(spec.memory_bytes)
        ),
        total_bytes: spec.memory_bytes,
        cuda_unavailable,
    };
    let info = match spec.backend {
        BackendChoice::Sim => sim(None),
        BackendChoice::Auto => {
            cuda::probe(spec.device).unwrap_or_else(|e| sim(Some(e.to_string())))
        }
        BackendChoice::Cuda => cuda::probe(spec.device)?,
    };
    let ledger = Ledger::create(
        &ledger::path_for(run_id),
        info.total_bytes,
        info.backend,
        info.index,
        &info.name,
    )?;
    Ok(RunDevice {
        info,
        ledger: Arc::new(ledger),
    })
}

/// The workload's side: open the device the harness prepared, if any.
pub fn open_from_env() -> Result<Option<Box<dyn Device>>, GpuError> {
    let Some(path) = std::env::var_os(ENV_LEDGER) else {
        return Ok(None);
    };
    let pod = std::env::var(ENV_POD)
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(ledger::NO_POD);
    let ledger = Ledger::open(&PathBuf::from(path))?;
    let slot = ledger.claim(pod)?;
    let ledger = Arc::new(ledger);
    Ok(Some(if ledger.is_cuda() {
        Box::new(cuda::CudaDevice::open(ledger, slot)?)
    } else {
        Box::new(sim::SimDevice::new(ledger, slot))
    }))
}

/// A sim device on a ledger this process holds (for benchmarks).
pub fn sim_device(ledger: Arc<Ledger>) -> Result<Box<dyn Device>, GpuError> {
    let slot = ledger.claim(ledger::NO_POD)?;
    Ok(Box::new(sim::SimDevice::new(ledger, slot)))
}

/// A process's claim on the ledger, given back when the device is dropped.
struct Claim {
    ledger: Arc<Ledger>,
    slot: usize,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.ledger.leave(self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_text_matches_torch() {
        let e = OutOfMemory {
            device: 0,
            requested_bytes: 2 << 30,
            free_bytes: (1.23 * (1u64 << 30) as f64) as u64,
            total_bytes: (39.5 * (1u64 << 30) as f64) as u64,
        };
        assert_eq!(
            e.to_string(),
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 39.50 GiB of which 1.23 GiB is free."
        );
        assert_eq!(torch_size(512), "512 bytes");
        assert_eq!(torch_size(20 << 20), "20.00 MiB");
    }
}
