//! The real device through cudarc's driver API, loaded at run time: without
//! libcuda.so the probe says so and `auto` falls back to the sim device
//! (cudarc panics when it is asked for a context without the library, so the
//! library is checked first, always).

use std::sync::Arc;

use cudarc::driver::result::{self, DriverError};
use cudarc::driver::sys::CUresult;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};

use super::{
    Claim, Device, DeviceBackend, DeviceInfo, DeviceMemory, GpuError, Ledger, OutOfMemory,
};

fn driver(e: DriverError) -> GpuError {
    GpuError::Driver(format!("{:?}", e.0))
}

/// Why there is no CUDA device to use.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("libcuda.so is not present on this host")]
    NoLibrary,
    #[error("there is no GPU {index} (this host has {count})")]
    NoDevice { index: u32, count: i32 },
    #[error("{call} failed: {code:?}")]
    Driver { call: &'static str, code: CUresult },
}

fn failed(call: &'static str) -> impl Fn(DriverError) -> ProbeError {
    move |e| ProbeError::Driver { call, code: e.0 }
}

/// Name and capacity of device `index`, or why there is none.
pub fn probe(index: u32) -> Result<DeviceInfo, ProbeError> {
    // SAFETY: loads libcuda.so if it can be found; no other effect.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(ProbeError::NoLibrary);
    }
    result::init().map_err(failed("cuInit"))?;
    let count = result::device::get_count().map_err(failed("cuDeviceGetCount"))?;
    let dev = match i32::try_from(index) {
        Ok(i) if i < count => result::device::get(i).map_err(failed("cuDeviceGet"))?,
        _ => return Err(ProbeError::NoDevice { index, count }),
    };
    let name = result::device::get_name(dev).map_err(failed("cuDeviceGetName"))?;
    // SAFETY: dev came from cuDeviceGet above.
    let total = unsafe { result::device::total_mem(dev) }.map_err(failed("cuDeviceTotalMem"))?;
    Ok(DeviceInfo {
        backend: DeviceBackend::Cuda,
        index,
        name,
        total_bytes: total as u64,
        cuda_unavailable: None,
    })
}

pub struct CudaDevice {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    claim: Arc<Claim>,
}

impl CudaDevice {
    pub fn open(ledger: Arc<Ledger>, slot: usize) -> Result<CudaDevice, GpuError> {
        let index = ledger.index();
        let info = probe(index)?;
        let ctx = CudaContext::new(index as usize).map_err(driver)?;
        let stream = ctx.default_stream();
        Ok(CudaDevice {
            info,
            ctx,
            stream,
            claim: Arc::new(Claim { ledger, slot }),
        })
    }
}

impl Device for CudaDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn mem_get_info(&self) -> Result<(u64, u64), GpuError> {
        let (free, total) = self.ctx.mem_get_info().map_err(driver)?;
        Ok((free as u64, total as u64))
    }

    fn alloc(&self, bytes: u64) -> Result<Box<dyn DeviceMemory>, GpuError> {
        let len = usize::try_from(bytes).map_err(|_| GpuError::Driver("size too large".into()))?;
        // SAFETY: the memory is uninitialized device memory, written only by upload.
        match unsafe { self.stream.alloc::<u8>(len) } {
            Ok(slice) => {
                self.claim.ledger.record(self.claim.slot, bytes);
                Ok(Box::new(CudaMemory {
                    slice,
                    stream: self.stream.clone(),
                    claim: self.claim.clone(),
                    len: bytes,
                }))
            }
            Err(DriverError(CUresult::CUDA_ERROR_OUT_OF_MEMORY)) => {
                let (free, total) = self.mem_get_info().unwrap_or((0, self.info.total_bytes));
                Err(GpuError::OutOfMemory(OutOfMemory {
                    device: self.info.index,
                    requested_bytes: bytes,
                    free_bytes: free,
                    total_bytes: total,
                }))
            }
            Err(e) => Err(driver(e)),
        }
    }
}

struct CudaMemory {
    slice: CudaSlice<u8>,
    stream: Arc<CudaStream>,
    claim: Arc<Claim>,
    len: u64,
}

impl DeviceMemory for CudaMemory {
    fn upload(&mut self, offset: u64, src: &[u8]) -> Result<(), GpuError> {
        let start = offset as usize;
        let mut dst = self
            .slice
            .try_slice_mut(start..start + src.len())
            .ok_or_else(|| {
                GpuError::Driver(
                    "CUDA_ERROR_INVALID_VALUE: copy past the end of the allocation".into(),
                )
            })?;
        self.stream.memcpy_htod(src, &mut dst).map_err(driver)?;
        self.stream.synchronize().map_err(driver)
    }
}

impl Drop for CudaMemory {
    fn drop(&mut self) {
        self.claim.ledger.release(self.claim.slot, self.len);
    }
}
