//! The real device through cudarc's driver API, loaded at run time: without
//! libcuda.so the probe says so and `auto` falls back to the sim device
//! (cudarc panics when it is asked for a context without the library, so the
//! library is checked first, always).

use std::sync::Arc;

use cudarc::driver::result::{self, DriverError};
use cudarc::driver::sys::CUresult;
use cudarc::driver::{CudaContext, CudaSlice, CudaStream};

use super::{Claim, Device, DeviceInfo, DeviceMemory, GpuError, Ledger, OutOfMemory};

fn driver(e: DriverError) -> GpuError {
    GpuError::Driver(format!("{:?}", e.0))
}

/// Name and capacity of device `index`, or why there is none.
pub fn probe(index: u32) -> Result<DeviceInfo, String> {
    // SAFETY: loads libcuda.so if it can be found; no other effect.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err("libcuda.so is not present on this host".into());
    }
    result::init().map_err(|e| format!("cuInit failed: {:?}", e.0))?;
    let count = result::device::get_count().map_err(|e| format!("{:?}", e.0))?;
    if i64::from(index) >= i64::from(count) {
        return Err(format!("there is no GPU {index} (this host has {count})"));
    }
    let dev = result::device::get(index as i32).map_err(|e| format!("{:?}", e.0))?;
    let name = result::device::get_name(dev).map_err(|e| format!("{:?}", e.0))?;
    // SAFETY: dev came from cuDeviceGet above.
    let total = unsafe { result::device::total_mem(dev) }.map_err(|e| format!("{:?}", e.0))?;
    Ok(DeviceInfo {
        backend: "cuda".into(),
        index,
        name,
        total_bytes: total as u64,
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
        let info = probe(index).map_err(GpuError::Setup)?;
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
