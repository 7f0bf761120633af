//! The timeline: memory charged per pod over time, with request and limit
//! lines, device memory dashed, and a marker where the kill hit.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, MIB, PALETTE, PlotError, both, err};
use crate::k8s::Reason;
use crate::report::Report;

/// Memory charged per pod over time, with request and limit lines and a
/// marker where the kill hit.
pub fn timeline(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    both(&dir.join("timeline"), &Timeline(report))
}

struct Timeline<'a>(&'a Report);

impl Chart for Timeline<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let report = self.0;
        let t_max = report
            .pods
            .iter()
            .flat_map(|p| p.samples.iter().map(|s| s.t_s))
            .fold(0.1, f64::max)
            * 1.12;
        let y_max = report
            .pods
            .iter()
            .flat_map(|p| {
                p.samples
                    .iter()
                    .map(|s| s.bytes.max(s.device_bytes.unwrap_or(0)))
                    .chain(p.limit_bytes)
                    .chain(std::iter::once(p.peak_bytes))
            })
            .chain(report.node.as_ref().map(|n| n.capacity_bytes))
            .max()
            .unwrap_or(1) as f64
            / MIB
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: memory charged per pod (cgroup {}){}",
                    report.scenario,
                    report.host.cgroup_version,
                    if report.gpu.is_some() {
                        ", dashed: GPU"
                    } else {
                        ""
                    }
                ),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the pod started")
            .y_desc("MiB")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        if let Some(node) = &report.node {
            let series = node
                .samples
                .iter()
                .map(|s| (s.t_s, s.available_bytes.max(0) as f64 / MIB));
            chart
                .draw_series(LineSeries::new(series, BLACK.stroke_width(2)))
                .map_err(err)?
                .label("node memory.available")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
            let y = node.hard_threshold_bytes as f64 / MIB;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, y), (t_max, y)],
                    4,
                    4,
                    RED.stroke_width(1),
                ))
                .map_err(err)?
                .label("eviction threshold")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(1)));
            for e in &node.evictions {
                let at = (e.t_s, e.available_bytes.max(0) as f64 / MIB);
                chart
                    .draw_series(std::iter::once(Circle::new(at, 6, RED.filled())))
                    .map_err(err)?;
                let label = Text::new(
                    format!("evicted {}", e.pod),
                    (at.0, at.1 + y_max * 0.03),
                    ("sans-serif", 14).into_font().color(&RED),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
        }
        for (i, pod) in report.pods.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if let Some(d) = &pod.dual_residency {
                let shade = Rectangle::new(
                    [(d.start_s, 0.0), (d.end_s, y_max)],
                    color.mix(0.10).filled(),
                );
                chart.draw_series(std::iter::once(shade)).map_err(err)?;
                let label = Text::new(
                    format!("{} dual residency", pod.name),
                    (d.start_s, y_max * 0.97),
                    ("sans-serif", 13).into_font().color(&color),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
            let device: Vec<(f64, f64)> = pod
                .samples
                .iter()
                .filter_map(|s| s.device_bytes.map(|d| (s.t_s, d as f64 / MIB)))
                .collect();
            if !device.is_empty() {
                let gpu = report
                    .gpu
                    .as_ref()
                    .map_or("GPU".into(), |g| format!("GPU {} ({})", g.index, g.backend));
                chart
                    .draw_series(DashedLineSeries::new(device, 4, 3, color.stroke_width(2)))
                    .map_err(err)?
                    .label(format!("{} on {gpu}", pod.name))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 6, y)], color.stroke_width(2))
                    });
            }
            super::runtime::areas(&mut chart, pod)?;
            chart
                .draw_series(LineSeries::new(
                    pod.samples.iter().map(|s| (s.t_s, s.bytes as f64 / MIB)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} ({})", pod.name, pod.verdict.reason))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            for (value, what, style) in [
                (pod.limit_bytes, "limit", color.stroke_width(2)),
                (pod.request_bytes, "request", color.mix(0.5).stroke_width(1)),
            ] {
                if let Some(v) = value {
                    let y = v as f64 / MIB;
                    chart
                        .draw_series(DashedLineSeries::new(
                            vec![(0.0, y), (t_max, y)],
                            8,
                            6,
                            style,
                        ))
                        .map_err(err)?;
                    let label = Text::new(
                        format!("{} {what}", pod.name),
                        (t_max * 0.01, y),
                        ("sans-serif", 13).into_font().color(&color),
                    );
                    chart.draw_series(std::iter::once(label)).map_err(err)?;
                }
            }
            if pod.verdict.reason != Reason::Completed {
                let y = pod
                    .samples
                    .iter()
                    .map(|s| s.bytes)
                    .max()
                    .unwrap_or(pod.peak_bytes) as f64
                    / MIB;
                let at = (pod.verdict.at_s, y);
                chart
                    .draw_series(std::iter::once(Cross::new(at, 8, RED.stroke_width(3))))
                    .map_err(err)?;
                let label = Text::new(
                    format!("{} at {:.2}s", pod.verdict.reason, pod.verdict.at_s),
                    (at.0, at.1 * 1.03),
                    ("sans-serif", 14).into_font().color(&RED),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}
