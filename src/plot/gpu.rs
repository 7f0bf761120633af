//! The GPU's part of a timeline: device memory per pod against the GPU's
//! capacity, with CUDA OOMs and vLLM's preemptions; and, for a run that
//! ended well, the title the GPU's numbers make.

use super::axes::{Axis, bytes_label, seconds_label};
use super::figure::{Anchor, BLACK, Dash, Figure, Mark, Panel, SERIES, Shape, Swatch};
use super::timeline::bytes_axis;
use crate::report::Report;
use crate::workload::events::Event;

/// For a run that held device memory and ended well: the GPU is the story.
pub fn summary(report: &Report) -> Option<String> {
    let gpu = report.gpu.as_ref()?;
    let peak = report
        .pods
        .iter()
        .flat_map(|p| p.samples.iter().filter_map(|s| s.device_bytes))
        .max()?;
    let preempted: u64 = report
        .pods
        .iter()
        .filter_map(|p| crate::workload::events::kv_run(&p.events))
        .filter_map(|k| k.done.map(|d| d.preemptions))
        .sum();
    Some(format!(
        "All pods Completed: GPU peak {} of {}{}",
        bytes_label(peak),
        bytes_label(gpu.total_bytes),
        match preempted {
            0 => String::new(),
            n => format!(", {n} preemptions and no OOM"),
        }
    ))
}

/// Device memory per pod against the GPU's capacity, with the CUDA OOMs
/// and the preemptions the workloads reported. None without device samples.
pub fn panel(report: &Report, x: &Axis, fig: &mut Figure) -> Option<Panel> {
    let gpu = report.gpu.as_ref()?;
    let any = report
        .pods
        .iter()
        .any(|p| p.samples.iter().any(|s| s.device_bytes.is_some()));
    if !any {
        return None;
    }
    let cap = gpu.total_bytes as f64;
    let mut p = Panel::new(
        x.clone(),
        bytes_axis(cap * 1.04),
        format!("GPU {} memory", gpu.index),
    );
    p.weight = 0.8;
    p.mark(Mark::HRule {
        y: cap,
        color: BLACK,
        width: 1,
        dash: Dash::Solid,
    });
    p.label(
        format!(
            "GPU capacity {} ({})",
            bytes_label(gpu.total_bytes),
            gpu.backend
        ),
        BLACK,
        Anchor::HRule(cap),
        Swatch::Line(BLACK, Dash::Solid),
    );
    let mut preempted = 0u64;
    for (i, pod) in report.pods.iter().enumerate() {
        let color = SERIES[i % SERIES.len()];
        let device: Vec<(f64, f64)> = pod
            .samples
            .iter()
            .filter_map(|s| s.device_bytes.map(|d| (s.t_s, d as f64)))
            .collect();
        if device.is_empty() {
            continue;
        }
        let at_t = |t: f64| {
            device
                .iter()
                .filter(|d| d.0 <= t + 1e-3)
                .map(|d| d.1)
                .fold(0.0, f64::max)
        };
        p.mark(Mark::Line {
            points: device.clone(),
            color,
            width: 2,
            dash: Dash::Dashed,
        });
        fig.entry(
            format!("{} on the GPU", pod.name),
            Swatch::Line(color, Dash::Dashed),
        );
        let mut last = 0;
        for e in &pod.events {
            match &e.event {
                Event::CudaOom { .. } => p.kill(
                    (e.t_s, at_t(e.t_s)),
                    format!("{}: CUDA OOM at {}", pod.name, seconds_label(e.t_s)),
                ),
                Event::KvProgress(s) | Event::KvDone(s) if s.preemptions > last => {
                    last = s.preemptions;
                    p.mark(Mark::Marker {
                        at: (e.t_s, at_t(e.t_s)),
                        shape: Shape::Diamond,
                        color,
                    });
                }
                _ => {}
            }
        }
        preempted += last;
    }
    if preempted > 0 {
        fig.entry(
            format!("preemptions ({preempted} in all): vLLM recomputes, no OOM"),
            Swatch::Marker(Shape::Diamond, SERIES[0]),
        );
    }
    Some(p)
}
