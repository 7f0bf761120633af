//! The vLLM safe-region map: max_num_seqs against max_model_len, one curve
//! per utilization, measured kv-cache runs on top.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, PALETTE, PlotError, both, err};
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
        let (concurrency, failed) = match (oom, done) {
            (Some(o), _) => (o.concurrency, true),
            (None, Some(d)) => (d.peak_concurrency.unwrap_or(0), false),
            (None, None) => continue,
        };
        points.push(KvPoint {
            request_tokens: start.request_tokens,
            concurrency,
            failed,
            label: format!("{}/{}", report.scenario, pod.name),
        });
    }
    Ok(points)
}

/// max_num_seqs against max_model_len: under each utilization's curve every
/// sequence can reach max_model_len without preemption; left of its
/// vertical line vLLM starts at all. Measured runs on top.
pub fn safe_region(
    inp: &vllm::Inputs,
    points: &[KvPoint],
    dir: &Path,
) -> Result<Vec<PathBuf>, PlotError> {
    both(&dir.join("safe-region"), &SafeRegion { inp, points })
}

struct SafeRegion<'a> {
    inp: &'a vllm::Inputs,
    points: &'a [KvPoint],
}

impl Chart for SafeRegion<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let inp = self.inp;
        let mut levels: Vec<f64> = vec![0.80, 0.85, 0.90, 0.95];
        if !levels.iter().any(|l| (l - inp.utilization).abs() < 1e-9) {
            levels.push(inp.utilization);
            levels.sort_by(f64::total_cmp);
        }
        let x_max = (inp.max_model_len as f64 * 1.5).max(
            self.points
                .iter()
                .map(|p| p.request_tokens)
                .max()
                .unwrap_or(0) as f64
                * 1.3,
        );
        let y_max = (inp.max_num_seqs as f64 * 1.2)
            .max(self.points.iter().map(|p| p.concurrency).max().unwrap_or(0) as f64 * 1.1);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Safe vLLM settings: {} GPU, KV {} a token",
                    crate::units::fmt_human(inp.gpu_memory_bytes),
                    crate::units::fmt_human(inp.model.kv_bytes_per_token(&inp.settings()))
                ),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("max_model_len; for measured runs, tokens per request")
            .y_desc("max_num_seqs")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (i, &u) in levels.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let (blocks, largest) = inp.capacity_at(u);
            let tokens = largest as f64;
            let width = if (u - inp.utilization).abs() < 1e-9 {
                3
            } else {
                1
            };
            let x_end = tokens.min(x_max);
            let curve: Vec<(f64, f64)> = (1..=200)
                .map(|k| x_end * k as f64 / 200.0)
                .map(|x| (x, (inp.concurrent_with(blocks, x as u64) as f64).min(y_max)))
                .collect();
            chart
                .draw_series(LineSeries::new(curve, color.stroke_width(width)))
                .map_err(err)?
                .label(format!("utilization {u:.2}: {blocks} KV blocks"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            if tokens < x_max {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(tokens, 0.0), (tokens, y_max)],
                        6,
                        4,
                        color.stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        let here = (inp.max_model_len as f64, inp.max_num_seqs as f64);
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                here,
                9,
                BLACK.filled(),
            )))
            .map_err(err)?
            .label("the settings asked about")
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLACK.filled()));
        for p in self.points {
            let at = (p.request_tokens as f64, p.concurrency as f64);
            if p.failed {
                chart
                    .draw_series(std::iter::once(Cross::new(at, 8, RED.stroke_width(3))))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(std::iter::once(Circle::new(at, 7, PALETTE[2].filled())))
                    .map_err(err)?;
            }
            let label = Text::new(
                format!(
                    "{} {}",
                    p.label,
                    if p.failed { "CUDA OOM" } else { "survived" }
                ),
                (at.0, at.1 * 1.03 + y_max * 0.01),
                ("sans-serif", 13).into_font().color(&BLACK),
            );
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}
