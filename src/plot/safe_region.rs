//! The vLLM safe-region map: max_num_seqs against max_model_len, one curve
//! per utilization, measured kv-cache runs on top.

use std::path::{Path, PathBuf};

use super::axes::{Axis, Unit, trim};
use super::figure::{
    Anchor, BLACK, Dash, Figure, GREEN, KILL, Mark, ORANGE, Panel, SERIES, Shape, Swatch, light,
};
use super::{PlotError, both};
use crate::llm::vllm;
use crate::report::{self, Saved};
use crate::workload::events::{KvRun, kv_run};

/// A measured kv-cache run: the tokens each of its requests grows to, the
/// concurrency it reached, and whether it died there (CUDA OOM) or survived
/// (with preemptions).
#[derive(Debug, Clone, PartialEq)]
pub struct KvPoint {
    pub request_tokens: u64,
    pub concurrency: u64,
    pub failed: bool,
    /// Sequences vLLM preempted (recomputed) on the way: a cost, not a failure.
    pub preemptions: u64,
    pub label: String,
}

/// The kv-cache pods of a report.json, as points for the safe-region map.
pub fn kv_points(path: &Path) -> Result<Vec<KvPoint>, PlotError> {
    let report = match report::load(path) {
        Ok(Saved::Report(r)) => r,
        Ok(Saved::Search(_)) => return Err(PlotError::NotAReport(path.display().to_string())),
        Err(e) => return Err(PlotError::Report(std::sync::Arc::new(e))),
    };
    let mut points = Vec::new();
    for pod in &report.pods {
        let Some(KvRun { start, oom, done }) = kv_run(&pod.events) else {
            continue;
        };
        let (concurrency, failed, preemptions) = match (oom, done) {
            (Some(o), _) => (o.concurrency, true, o.preemptions),
            (None, Some(d)) => (d.peak_concurrency.unwrap_or(0), false, d.preemptions),
            (None, None) => continue,
        };
        points.push(KvPoint {
            request_tokens: start.request_tokens,
            concurrency,
            failed,
            preemptions,
            label: format!("{}/{}", report.scenario, pod.name),
        });
    }
    Ok(points)
}

/// max_num_seqs against max_model_len on log axes (where each
/// utilization's limit is a straight line): under a curve every sequence
/// reaches max_model_len without preemption, the asked utilization's region
/// shaded; a curve ends at the longest max_model_len vLLM starts with.
/// Measured runs on top.
pub fn safe_region(
    inp: &vllm::Inputs,
    points: &[KvPoint],
    dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    both(&dir.join("safe-region"), &figure(inp, points))
}

fn level_label(u: f64) -> String {
    trim(u, 3)
}

pub fn figure(inp: &vllm::Inputs, points: &[KvPoint]) -> Figure {
    let mut levels: Vec<f64> = vec![0.80, 0.85, 0.90, 0.95];
    if !levels.iter().any(|l| (l - inp.utilization).abs() < 1e-9) {
        levels.push(inp.utilization);
        levels.sort_by(f64::total_cmp);
    }
    let caps: Vec<(f64, u64, u64)> = levels
        .iter()
        .map(|&u| {
            let (blocks, largest) = inp.capacity_at(u);
            (u, blocks, largest)
        })
        .collect();
    let longest = caps.iter().map(|c| c.2).max().unwrap_or(0);
    let x_lo = inp.block_size.max(1) as f64;
    let x_hi = (longest.max(inp.max_model_len) as f64 * 1.5)
        .max(points.iter().map(|p| p.request_tokens).max().unwrap_or(0) as f64 * 1.5)
        .max(x_lo * 10.0);
    let y_hi = caps
        .iter()
        .map(|c| inp.concurrent_with(c.1, x_lo as u64) as f64)
        .chain(points.iter().map(|p| p.concurrency as f64 * 1.5))
        .chain([inp.max_num_seqs as f64 * 1.5])
        .fold(10.0, f64::max);
    let x = Axis::log(x_lo, x_hi, Unit::Count);
    let y = Axis::log(1.0, y_hi, Unit::Count);
    let mut p = Panel::new(x.clone(), y.clone(), "max_num_seqs");
    let asked = caps
        .iter()
        .find(|c| (c.0 - inp.utilization).abs() < 1e-9)
        .copied()
        .unwrap_or((inp.utilization, 0, 0));
    let fits = inp.concurrent_with(asked.1, inp.max_model_len);
    let mut fig = Figure {
        title: if asked.2 >= inp.max_model_len && asked.1 > 0 {
            format!(
                "At utilization {}: {} sequences of {} tokens fit with no preemption ({} KV blocks)",
                level_label(inp.utilization),
                fits,
                inp.max_model_len,
                asked.1
            )
        } else {
            format!(
                "At utilization {}: vLLM does not start with max_model_len {} (longest {})",
                level_label(inp.utilization),
                inp.max_model_len,
                asked.2
            )
        },
        subtitle: format!(
            "{} GPU · KV {} a token · block {} tokens",
            crate::units::fmt_human(inp.gpu_memory_bytes),
            crate::units::fmt_human(inp.model.kv_bytes_per_token(&inp.settings())),
            inp.block_size
        ),
        panels: Vec::new(),
        x_title: "max_model_len; for measured runs, tokens per request".into(),
        legend: Vec::new(),
    };
    let curve = |blocks: u64, largest: u64| -> Vec<(f64, f64)> {
        let end = (largest as f64).min(x.hi);
        (0..=240)
            .map(|k| x_lo * (end / x_lo).powf(f64::from(k) / 240.0))
            .map(|t| (t, (inp.concurrent_with(blocks, t as u64) as f64).max(1.0)))
            .collect()
    };
    if asked.2 > 0 {
        let shade = light(SERIES[0], 0.14);
        p.mark(Mark::Area {
            points: curve(asked.1, asked.2),
            base: y.lo,
            color: shade,
        });
        fig.entry(
            format!(
                "safe at utilization {}: no preemption",
                level_label(inp.utilization)
            ),
            Swatch::Area(shade),
        );
    }
    for (i, &(u, blocks, largest)) in caps.iter().enumerate() {
        let color = SERIES[i % SERIES.len()];
        let mine = (u - inp.utilization).abs() < 1e-9;
        if largest == 0 {
            fig.entry(
                format!("utilization {}: does not start", level_label(u)),
                Swatch::Line(color, Dash::Dotted),
            );
            continue;
        }
        p.mark(Mark::Line {
            points: curve(blocks, largest),
            color,
            width: if mine { 3 } else { 1 },
            dash: Dash::Solid,
        });
        p.mark(Mark::VRule {
            x: largest as f64,
            color,
            width: 1,
            dash: Dash::Dotted,
        });
        fig.entry(
            format!(
                "utilization {}: {blocks} KV blocks, starts up to {largest} tokens",
                level_label(u)
            ),
            Swatch::Line(color, Dash::Solid),
        );
    }
    let here = (inp.max_model_len as f64, inp.max_num_seqs as f64);
    p.mark(Mark::Marker {
        at: here,
        shape: Shape::Triangle,
        color: BLACK,
    });
    p.label(
        format!("asked: {} x {}", inp.max_num_seqs, inp.max_model_len),
        BLACK,
        Anchor::Point(here.0, here.1),
        Swatch::Marker(Shape::Triangle, BLACK),
    );
    for pt in points {
        let at = (pt.request_tokens as f64, (pt.concurrency as f64).max(1.0));
        let (shape, color, what) = match (pt.failed, pt.preemptions) {
            (true, _) => (Shape::Cross, KILL, "CUDA OOM".to_string()),
            (false, 0) => (Shape::Dot, GREEN, "survived".to_string()),
            (false, n) => (Shape::Ring, ORANGE, format!("survived, {n} preemptions")),
        };
        p.mark(Mark::Marker { at, shape, color });
        p.label(
            format!("{} {what}", pt.label),
            color,
            Anchor::Point(at.0, at.1),
            Swatch::Marker(shape, color),
        );
    }
    if points.iter().any(|p| !p.failed && p.preemptions > 0) {
        fig.entry(
            "above a curve but alive: vLLM preempted and recomputed, no OOM",
            Swatch::Marker(Shape::Ring, ORANGE),
        );
    }
    fig.panels.push(p);
    fig
}
