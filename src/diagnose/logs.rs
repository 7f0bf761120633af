//! Container logs: PyTorch's CUDA out-of-memory in each generation's words
//! (c10/cuda/CUDACachingAllocator.cpp: before 2.1 "Tried to allocate X (GPU
//! 0; T total capacity; A already allocated; F free; R reserved in total by
//! PyTorch)"; from 2.1 "Tried to allocate X. GPU 0 has a total capacity of T
//! of which F is free. ... this process has U memory in use. Of the
//! allocated memory A is allocated by PyTorch, and R is reserved by PyTorch
//! but unallocated."), the driver's own (`CUDA error: out of memory`,
//! `CUBLAS_STATUS_ALLOC_FAILED`), vLLM refusing to start (V0
//! vllm/worker/worker.py `raise_if_cache_size_invalid`; V1
//! vllm/v1/core/kv_cache_utils.py `check_enough_kv_cache_memory` and the
//! worker's free-memory check at start-up), a runtime's own OOM
//! ([`crate::runtime::oom`]), and what an application's failure looks like
//! when it is not memory.

use super::finding::{CudaOom, Kind, VllmKv, after, decimal, int, size};
use crate::runtime::oom::classify_line;
use crate::scan::has;

/// What a log line says, if anything this module knows.
pub fn parse(text: &str) -> Option<Kind> {
    if let Some(v) = vllm(text) {
        return Some(Kind::Vllm(v));
    }
    if let Some(c) = cuda(text) {
        return Some(Kind::Cuda(c));
    }
    if let Some(r) = classify_line(text) {
        return Some(Kind::Runtime(r));
    }
    if let Some(u) = after(text, "gpu_memory_utilization=")
        .or_else(|| after(text, "--gpu-memory-utilization "))
        .or_else(|| after(text, "--gpu-memory-utilization="))
        .and_then(decimal)
        .filter(|u| *u > 0.0 && *u <= 1.0)
    {
        return Some(Kind::VllmUtilization(u));
    }
    if let Some(code) = exit_text(text) {
        return Some(Kind::ExitText(code));
    }
    if is_killed(text) {
        return Some(Kind::Killed);
    }
    app_error(text).map(Kind::AppError)
}

fn cuda(text: &str) -> Option<CudaOom> {
    let generic = [
        "CUDA error: out of memory",
        "CUBLAS_STATUS_ALLOC_FAILED",
        "CUDA_ERROR_OUT_OF_MEMORY",
        "cudaErrorMemoryAllocation",
        "OutOfMemoryError: CUDA",
    ];
    if !has(text, "CUDA out of memory") {
        return generic.iter().any(|g| has(text, g)).then(CudaOom::default);
    }
    let gib_after = |key: &str| after(text, key).and_then(size);
    // The old wording puts each figure before its label: "T total capacity".
    let before = |label: &str| {
        let end = text.find(label)?;
        let head = text[..end].trim_end();
        let start = head.rfind([';', '(']).map_or(0, |i| i + 1);
        size(&head[start..])
    };
    Some(CudaOom {
        tried_bytes: gib_after("Tried to allocate "),
        total_bytes: gib_after("has a total capacity of ").or_else(|| before(" total capacity")),
        free_bytes: after(text, "total capacity of ")
            .and_then(|r| after(r, " of which "))
            .and_then(size)
            .or_else(|| before(" free;")),
        allocated_bytes: gib_after("Of the allocated memory ")
            .or_else(|| before(" already allocated")),
        reserved_bytes: gib_after("and ")
            .filter(|_| has(text, "reserved by PyTorch but unallocated"))
            .or_else(|| before(" reserved in total by PyTorch")),
        in_use_bytes: gib_after("this process has ").or_else(|| {
            after(text, "Process ")
                .and_then(|r| after(r, " has "))
                .and_then(size)
        }),
    })
}

fn vllm(text: &str) -> Option<VllmKv> {
    if has(text, "No available memory for the cache blocks") {
        return Some(VllmKv::NoCacheBlocks);
    }
    let seq_len = || {
        after(text, "max seq len (")
            .and_then(int)
            .and_then(|v| u64::try_from(v).ok())
    };
    if let Some(rest) = after(
        text,
        "maximum number of tokens that can be stored in KV cache (",
    ) {
        return Some(VllmKv::MaxLenOverCache {
            max_model_len: seq_len()?,
            kv_tokens: u64::try_from(int(rest)?).ok()?,
        });
    }
    if has(
        text,
        "KV cache is needed, which is larger than the available KV cache memory",
    ) {
        let needed = text
            .split("KV cache is needed")
            .next()
            .and_then(|h| h.rfind('(').map(|i| &h[i + 1..]))
            .and_then(size);
        return Some(VllmKv::NeedsMore {
            max_model_len: seq_len(),
            needed,
            available: after(text, "available KV cache memory (").and_then(size),
            estimated_max_len: after(text, "estimated maximum model length is ")
                .and_then(int)
                .and_then(|v| u64::try_from(v).ok()),
        });
    }
    if let Some(rest) = after(text, "Available KV cache memory: -") {
        return Some(VllmKv::NegativeAvailable { bytes: size(rest)? });
    }
    if let Some(rest) = after(text, "Free memory on device") {
        let rest = rest.trim_start_matches(|c: char| c != '(');
        let inner = rest.trim_start_matches('(');
        let free = decimal(inner);
        let total = after(inner, "/").and_then(decimal);
        let wanted = after(text, "desired GPU memory utilization (");
        let gib = |v: f64| (v * (1u64 << 30) as f64).round() as u64;
        if has(text, "less than desired GPU memory utilization") {
            return Some(VllmKv::FreeBelowUtilization {
                free: free.map(gib),
                total: total.map(gib),
                utilization: wanted.and_then(decimal),
                wanted: wanted.and_then(|w| after(w, ", ")).and_then(size),
            });
        }
    }
    None
}

/// `command terminated with exit code 137`, `exited with code 137`, `exit status 137`.
fn exit_text(text: &str) -> Option<i32> {
    [
        "terminated with exit code ",
        "exited with code ",
        "exit status ",
        "returned a non-zero code: ",
        "exit code: ",
        "Exited (",
    ]
    .iter()
    .find_map(|k| after(text, k).and_then(int))
    .and_then(|c| i32::try_from(c).ok())
    .filter(|c| (1..=255).contains(c))
}

/// A shell's own word for a SIGKILLed child: `Killed`, `Killed: 9`, or
/// bash's `line 1:  1234 Killed   python x.py`.
fn is_killed(text: &str) -> bool {
    if !has(text, "Killed") {
        return false;
    }
    let t = text.trim().trim_end_matches('`');
    t == "Killed"
        || t == "Killed: 9"
        || t.split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| {
                w[0].bytes().all(|b| b.is_ascii_digit()) && w[1] == "Killed" && !w[0].is_empty()
            })
}

/// A failure that is the application's own: an exception, a panic, a crash,
/// a program that cannot start.
fn app_error(text: &str) -> Option<String> {
    let t = text.trim();
    let starts = [
        "panic: ",
        "Segmentation fault",
        "fatal error: ",
        "Error: Cannot find module",
        "Error: ",
        "ERROR: ",
    ];
    let contains = [
        "exec format error",
        "executable file not found",
        "Exception in thread",
        "segfault at",
        "core dumped",
        "Could not find or load main class",
        "no such file or directory",
        "level=error",
        "level=fatal",
    ];
    if starts.iter().any(|s| t.starts_with(s)) || contains.iter().any(|s| has(t, s)) {
        return Some(t.to_string());
    }
    // A Python traceback's last line: `KeyError: 'HOME'`, `pkg.SomeError: ...`.
    let head = t.split(": ").next().unwrap_or(t);
    let named = head.ends_with("Error") || head.ends_with("Exception");
    let word = !head.is_empty()
        && head
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_');
    (named && word && head.as_bytes()[0].is_ascii_alphabetic()).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = (1u64 << 30) as f64;
    fn gib(v: f64) -> Option<u64> {
        Some((v * GIB).round() as u64)
    }
    fn mib(v: f64) -> Option<u64> {
        Some((v * (1u64 << 20) as f64).round() as u64)
    }

    #[test]
    fn torch_in_each_generation() {
        let old = "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; 14.56 GiB already allocated; 3.19 MiB free; 14.68 GiB reserved in total by PyTorch)";
        assert_eq!(
            cuda(old).unwrap(),
            CudaOom {
                tried_bytes: mib(20.0),
                total_bytes: gib(15.78),
                free_bytes: mib(3.19),
                allocated_bytes: gib(14.56),
                reserved_bytes: gib(14.68),
                in_use_bytes: None,
            }
        );
        let new = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.96 GiB. GPU 0 has a total capacity of 79.15 GiB of which 1.21 GiB is free. Including non-PyTorch memory, this process has 77.93 GiB memory in use. Of the allocated memory 76.10 GiB is allocated by PyTorch, and 1.20 GiB is reserved by PyTorch but unallocated.";
        assert_eq!(
            cuda(new).unwrap(),
            CudaOom {
                tried_bytes: gib(1.96),
                total_bytes: gib(79.15),
                free_bytes: gib(1.21),
                allocated_bytes: gib(76.10),
                reserved_bytes: gib(1.20),
                in_use_bytes: gib(77.93),
            }
        );
        assert_eq!(
            cuda("RuntimeError: CUDA error: out of memory"),
            Some(CudaOom::default())
        );
        assert_eq!(cuda("CUDA kernel launched"), None);
    }

    #[test]
    fn vllm_v0_and_v1() {
        assert_eq!(
            vllm(
                "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine."
            ),
            Some(VllmKv::NoCacheBlocks)
        );
        assert_eq!(
            vllm(
                "ValueError: The model's max seq len (32768) is larger than the maximum number of tokens that can be stored in KV cache (27856). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
            ),
            Some(VllmKv::MaxLenOverCache {
                max_model_len: 32768,
                kv_tokens: 27856
            })
        );
        assert_eq!(
            vllm(
                "ValueError: To serve at least one request with the models's max seq len (131072), (16.00 GiB KV cache is needed, which is larger than the available KV cache memory (9.50 GiB). Based on the available memory, the estimated maximum model length is 77808. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine."
            ),
            Some(VllmKv::NeedsMore {
                max_model_len: Some(131072),
                needed: gib(16.0),
                available: gib(9.5),
                estimated_max_len: Some(77808),
            })
        );
        assert_eq!(
            vllm("INFO 05-01 10:00:00 worker.py:1 Available KV cache memory: -2.50 GiB"),
            Some(VllmKv::NegativeAvailable {
                bytes: (2.5 * GIB) as u64
            })
        );
        assert_eq!(
            vllm(
                "ValueError: Free memory on device (13.2/79.1 GiB) on startup is less than desired GPU memory utilization (0.9, 71.19 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
            ),
            Some(VllmKv::FreeBelowUtilization {
                free: gib(13.2),
                total: gib(79.1),
                utilization: Some(0.9),
                wanted: gib(71.19),
            })
        );
    }

    #[test]
    fn exits_kills_and_app_errors() {
        assert_eq!(
            parse("command terminated with exit code 137"),
            Some(Kind::ExitText(137))
        );
        assert_eq!(
            parse("app_1 exited with code 137"),
            Some(Kind::ExitText(137))
        );
        assert_eq!(parse("Killed"), Some(Kind::Killed));
        assert_eq!(
            parse("/bin/sh: line 1:  4242 Killed   python train.py"),
            Some(Kind::Killed)
        );
        assert_eq!(
            parse("KeyError: 'HOME'"),
            Some(Kind::AppError("KeyError: 'HOME'".into()))
        );
        assert!(matches!(
            parse("panic: runtime error: invalid memory address or nil pointer dereference"),
            Some(Kind::AppError(_))
        ));
        assert!(matches!(parse("MemoryError"), Some(Kind::Runtime(_))));
        for not in [
            "Error rate 5%",
            "memory usage: 200MB",
            "Killed 3 zombies",
            "INFO ready",
        ] {
            assert_eq!(parse(not), None, "{not}");
        }
    }
}
