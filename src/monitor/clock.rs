//! CLOCK_MONOTONIC in nanoseconds: the one clock every event is placed on.

use nix::time::{ClockId, clock_gettime};

/// Nanoseconds on CLOCK_MONOTONIC.
pub fn monotonic_ns() -> u64 {
    clock_ns(ClockId::CLOCK_MONOTONIC)
}

fn clock_ns(id: ClockId) -> u64 {
    // Both clocks always exist on Linux; a failure would read as 0.
    clock_gettime(id).map_or(0, |ts| {
        ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
    })
}

/// Seconds between two monotonic readings (negative when `to` is earlier).
pub fn seconds_between(from_ns: u64, to_ns: u64) -> f64 {
    (to_ns as f64 - from_ns as f64) / 1e9
}

/// CPU seconds the calling thread has used.
pub fn thread_cpu_s() -> f64 {
    clock_ns(ClockId::CLOCK_THREAD_CPUTIME_ID) as f64 / 1e9
}

/// The process's peak resident set (VmHWM), in bytes.
pub fn rss_hwm_bytes() -> Option<u64> {
    crate::host::proc_kb_field(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmHWM:",
    )
}
