//! The simulated GPU: capacity and accounting live in the shared ledger;
//! device bytes are never backed by host memory. An upload reads every
//! source byte, as a real copy engine would, so mapped files are faulted in
//! and charged like a real host-to-device copy.

use std::sync::Arc;

use super::{
    Claim, Device, DeviceBackend, DeviceInfo, DeviceMemory, GpuError, Ledger, OutOfMemory,
};

pub struct SimDevice {
    info: DeviceInfo,
    claim: Arc<Claim>,
}

impl SimDevice {
    pub fn new(ledger: Arc<Ledger>, slot: usize) -> SimDevice {
        let info = DeviceInfo {
            backend: DeviceBackend::Sim,
            index: ledger.index(),
            name: ledger.name(),
            total_bytes: ledger.capacity(),
            cuda_unavailable: None,
        };
        SimDevice {
            info,
            claim: Arc::new(Claim { ledger, slot }),
        }
    }
}

impl Device for SimDevice {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn mem_get_info(&self) -> Result<(u64, u64), GpuError> {
        let total = self.claim.ledger.capacity();
        Ok((total.saturating_sub(self.claim.ledger.used()), total))
    }

    fn alloc(&self, bytes: u64) -> Result<Box<dyn DeviceMemory>, GpuError> {
        self.claim
            .ledger
            .reserve(self.claim.slot, bytes)
            .map_err(|free| {
                GpuError::OutOfMemory(OutOfMemory {
                    device: self.info.index,
                    requested_bytes: bytes,
                    free_bytes: free,
                    total_bytes: self.info.total_bytes,
                })
            })?;
        Ok(Box::new(SimMemory {
            claim: self.claim.clone(),
            len: bytes,
            checksum: 0,
        }))
    }
}

struct SimMemory {
    claim: Arc<Claim>,
    len: u64,
    /// Kept so the reads in `upload` cannot be optimized away.
    checksum: u64,
}

impl DeviceMemory for SimMemory {
    fn upload(&mut self, offset: u64, src: &[u8]) -> Result<(), GpuError> {
        if offset.saturating_add(src.len() as u64) > self.len {
            return Err(GpuError::Driver(
                "CUDA_ERROR_INVALID_VALUE: copy past the end of the allocation".into(),
            ));
        }
        let mut sum = self.checksum;
        for chunk in src.chunks_exact(8) {
            sum = sum.wrapping_add(u64::from_ne_bytes(chunk.try_into().unwrap_or([0; 8])));
        }
        self.checksum = std::hint::black_box(sum);
        Ok(())
    }
}

impl Drop for SimMemory {
    fn drop(&mut self) {
        self.claim.ledger.release(self.claim.slot, self.len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_device_refuses_past_capacity_with_cuda_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oomsim-t-gpu");
        let ledger =
            Arc::new(Ledger::create(&path, 3 << 30, DeviceBackend::Sim, 1, "sim").unwrap());
        let slot = ledger.claim(0).unwrap();
        let dev = SimDevice::new(ledger.clone(), slot);
        let mut a = dev.alloc(2 << 30).unwrap();
        a.upload(0, &[1u8; 4096]).unwrap();
        assert!(a.upload((2 << 30) - 10, &[0u8; 64]).is_err());
        assert_eq!(dev.mem_get_info().unwrap(), (1 << 30, 3 << 30));
        let Err(GpuError::OutOfMemory(oom)) = dev.alloc(2 << 30) else {
            panic!("2 GiB more than fits must fail");
        };
        assert_eq!(oom.free_bytes, 1 << 30);
        assert!(
            oom.to_string()
                .starts_with("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1")
        );
        drop(a);
        assert_eq!(dev.mem_get_info().unwrap().0, 3 << 30, "freed on drop");
        drop(dev);
        assert_eq!(ledger.used(), 0);
    }
}
