//! The `model-load` workload: weights onto the device by one of three
//! strategies, with the runtime's overhead held beside them, reporting each
//! step as an event so the harness can mark the dual-residency window.

use std::fs::File;
use std::io::Read;
use std::time::Duration;

use super::Region;
use super::events::{Event, Events};
use crate::gpu::{Device, DeviceMemory, GpuError, OutOfMemory};
use crate::plan::{LoadStrategy, ModelLoad, Pages};

/// Print torch's error and record it; the process then exits 1, as torch does.
pub fn cuda_oom(oom: &OutOfMemory, events: &Events) -> i32 {
    let text = oom.to_string();
    eprintln!("torch.OutOfMemoryError: {text}");
    events.emit(Event::CudaOom {
        message: text,
        requested_bytes: oom.requested_bytes,
        free_bytes: oom.free_bytes,
        total_bytes: oom.total_bytes,
    });
    1
}

fn gpu_io(e: GpuError) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Fill `buf` from the file, or with synthetic bytes (one per page) without one.
fn fill(buf: &mut [u8], file: Option<&mut File>) -> std::io::Result<()> {
    match file {
        Some(f) => f.read_exact(buf),
        None => {
            for page in buf.chunks_mut(4096) {
                page[0] = 0x5a;
            }
            Ok(())
        }
    }
}

/// Weights on the device, one allocation per chunk as tensors are, so the
/// device fills as the copy proceeds and an out-of-memory error names the
/// chunk that did not fit.
struct Tensors<'a> {
    dev: &'a dyn Device,
    held: Vec<Box<dyn DeviceMemory>>,
}

impl Tensors<'_> {
    /// Copy one chunk to a new device allocation; Err(oom) when it does not fit.
    fn push(&mut self, src: &[u8]) -> std::io::Result<Result<(), OutOfMemory>> {
        let mut mem = match self.dev.alloc(src.len() as u64) {
            Ok(m) => m,
            Err(GpuError::OutOfMemory(o)) => return Ok(Err(o)),
            Err(e) => return Err(gpu_io(e)),
        };
        mem.upload(0, src).map_err(gpu_io)?;
        self.held.push(mem);
        Ok(Ok(()))
    }
}

pub fn model_load(
    pages: Pages,
    m: &ModelLoad,
    dev: &dyn Device,
    events: &Events,
) -> std::io::Result<i32> {
    let mut overhead = Region::reserve(m.overhead_bytes, pages)?;
    overhead.touch_to(m.overhead_bytes);
    events.emit(Event::LoadStart {
        strategy: m.strategy.as_str().into(),
        size_bytes: m.size_bytes,
        overhead_bytes: m.overhead_bytes,
        device: dev.info().name.clone(),
        backend: dev.info().backend,
    });
    let mut file = m
        .file
        .as_ref()
        .map(|p| {
            File::open(p)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
        })
        .transpose()?;
    // Drop the file's cached pages so this pod's reads are charged to this pod.
    if let Some(f) = &file {
        crate::llm::weights::drop_cached(f, 0, 0)?;
    }
    let size = usize::try_from(m.size_bytes).map_err(std::io::Error::other)?;
    let chunk = (m.chunk_bytes as usize).min(size);
    let pieces = (0..size).step_by(chunk).map(|o| (o, chunk.min(size - o)));
    let mut tensors = Tensors {
        dev,
        held: Vec::new(),
    };
    // The host side of the copy lives until the end of the match arm that made it.
    let oom = match m.strategy {
        LoadStrategy::ReadThenCopy => {
            let mut host = Region::reserve(m.size_bytes, pages)?;
            for (off, n) in pieces.clone() {
                fill(host.slice_mut(off, n), file.as_mut())?;
            }
            events.emit(Event::DualResidencyStart {
                host_bytes: m.size_bytes,
                page_cache: false,
                pinned: false,
            });
            let mut oom = None;
            for (off, n) in pieces {
                if let Err(o) = tensors.push(host.slice(off, n))? {
                    oom = Some(o);
                    break;
                }
            }
            if oom.is_none() && m.keep_host {
                events.emit(Event::DeviceCopyDone);
                events.emit(Event::HostCopyKept {
                    host_bytes: m.size_bytes,
                });
                hold(m.hold_s);
                return Ok(0);
            }
            host.release();
            oom
        }
        LoadStrategy::Chunked => {
            let mut buf = Region::reserve(chunk as u64, pages)?;
            if m.pinned {
                buf.lock()?;
            }
            events.emit(Event::DualResidencyStart {
                host_bytes: chunk as u64,
                page_cache: false,
                pinned: m.pinned,
            });
            let mut oom = None;
            for (_, n) in pieces {
                fill(buf.slice_mut(0, n), file.as_mut())?;
                if let Err(o) = tensors.push(buf.slice(0, n))? {
                    oom = Some(o);
                    break;
                }
            }
            oom
        }
        LoadStrategy::Mmap => {
            let f = file
                .as_ref()
                .ok_or_else(|| std::io::Error::other("mmap needs a file"))?;
            let map = map_file(f, size)?;
            events.emit(Event::DualResidencyStart {
                host_bytes: m.size_bytes,
                page_cache: true,
                pinned: false,
            });
            let mut oom = None;
            for (off, n) in pieces {
                if let Err(o) = tensors.push(&map[off..off + n])? {
                    oom = Some(o);
                    break;
                }
            }
            oom
        }
    };
    if let Some(o) = oom {
        return Ok(cuda_oom(&o, events));
    }
    events.emit(Event::DeviceCopyDone);
    events.emit(Event::DualResidencyEnd);
    hold(m.hold_s);
    drop(overhead);
    Ok(0)
}

fn hold(s: f64) {
    if s > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(s));
    }
}

/// A read-only shared mapping of the first `len` bytes of a weights file:
/// pages come from the page cache.
fn map_file(f: &File, len: usize) -> std::io::Result<memmap2::Mmap> {
    let actual = f.metadata()?.len();
    if actual < len as u64 {
        return Err(std::io::Error::other(format!(
            "the weights file has {actual} bytes, fewer than the {len} to load"
        )));
    }
    // SAFETY: the weights file is oomsim's own (written before the run or
    // given by the scenario) and is not truncated or written while mapped.
    unsafe { memmap2::MmapOptions::new().len(len).map(f) }
}
