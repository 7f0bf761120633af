//! The runtime's own split of a container's memory, in words: the parts it
//! reported at the cgroup's peak, and what lies above them (memory the
//! runtime does not count, which its heap flag does not cap).

use std::fmt::Write;

use super::PodReport;
use crate::monitor::sampler::Sample;
use crate::runtime::stats::{PartSample, RuntimeMemory};
use crate::units::fmt_human;

/// When the pod's charge peaked (seconds on its clock).
fn peak_at(samples: &[Sample]) -> Option<f64> {
    samples.iter().max_by_key(|s| s.bytes).map(|s| s.t_s)
}

/// The runtime's reading at the pod's peak and the charge then.
pub fn at_peak<'a>(pod: &PodReport, m: &'a RuntimeMemory) -> Option<(&'a PartSample, u64)> {
    let t = peak_at(&pod.samples).unwrap_or(f64::MAX);
    let s = m.at(t)?;
    // The most the cgroup held within a tenth of a second of the reading:
    // the runtime's clock and the sampler's are read apart.
    let charge = pod
        .samples
        .iter()
        .filter(|x| (x.t_s - s.t_s).abs() <= 0.1)
        .map(|x| x.bytes)
        .max()
        .unwrap_or(pod.peak_bytes);
    Some((s, charge))
}

/// `Runtime:` lines for each container whose runtime reported its memory.
pub fn describe(out: &mut String, pod: &PodReport) {
    for c in &pod.containers {
        let Some(m) = &c.runtime_memory else {
            continue;
        };
        let Some((s, charge)) = at_peak(pod, m) else {
            continue;
        };
        let parts: Vec<String> = m
            .parts
            .iter()
            .zip(&s.bytes)
            .map(|(n, b)| format!("{n} {}", fmt_human(*b)))
            .collect();
        let total: u64 = s.bytes.iter().sum();
        let _ = writeln!(
            out,
            "Runtime:      {} ({}), at {:.2}s near the peak: {}",
            m.runtime.name(),
            m.source,
            s.t_s,
            parts.join(", ")
        );
        let above = if charge > total {
            format!(
                "; {} above it is not the runtime's (page cache, native libraries, allocator slack)",
                fmt_human(charge - total)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  in all:     {} of the cgroup's {} then{above}",
            fmt_human(total),
            fmt_human(charge)
        );
        if let (Some(n), Some(goal)) = (m.gc_count, m.next_gc_bytes) {
            let _ = writeln!(
                out,
                "  GC:         {n} collections, next at {}",
                fmt_human(goal)
            );
        }
    }
}
