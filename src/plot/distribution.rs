//! Peaks of surviving trials and time to OOM of killed ones, as percentile
//! curves from hdrhistograms.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, PALETTE, PlotError, SIZE, err};
use crate::k8s::Reason;
use crate::report::search::SearchResult;

/// Peaks of surviving trials and time-to-OOM of killed ones, as percentile
/// curves from hdrhistograms.
pub(super) struct Distribution<'a>(pub &'a SearchResult);

fn percentiles(values: impl Iterator<Item = u64>) -> Vec<(f64, f64)> {
    let Ok(mut h) = hdrhistogram::Histogram::<u64>::new(3) else {
        return Vec::new();
    };
    for v in values {
        let _ = h.record(v.max(1));
    }
    if h.is_empty() {
        return Vec::new();
    }
    (0..=100)
        .map(|p| {
            (
                f64::from(p),
                h.value_at_quantile(f64::from(p) / 100.0) as f64,
            )
        })
        .collect()
}

impl Chart for Distribution<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let r = self.0;
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        let peaks: Vec<(f64, f64)> = percentiles(
            r.trials
                .iter()
                .filter(|t| t.survived)
                .map(|t| t.peak_bytes / 1024),
        )
        .into_iter()
        .map(|(p, kib)| (p, kib / 1024.0))
        .collect();
        let kills: Vec<(f64, f64)> = percentiles(
            r.trials
                .iter()
                .filter(|t| t.reason == Reason::OomKilled)
                .map(|t| (t.at_s * 1000.0) as u64),
        )
        .into_iter()
        .map(|(p, ms)| (p, ms / 1000.0))
        .collect();
        for (area, data, title, unit) in [
            (&left, &peaks, "peak of surviving trials", "MiB"),
            (&right, &kills, "time to OOM of killed trials", "seconds"),
        ] {
            let y_max = data.iter().map(|d| d.1).fold(0.0, f64::max).max(1e-3) * 1.1;
            let mut chart = ChartBuilder::on(area)
                .caption(
                    format!(
                        "{title} (n={})",
                        if unit == "MiB" {
                            r.trials.iter().filter(|t| t.survived).count()
                        } else {
                            r.trials
                                .iter()
                                .filter(|t| t.reason == Reason::OomKilled)
                                .count()
                        }
                    ),
                    ("sans-serif", 17),
                )
                .margin(10)
                .x_label_area_size(36)
                .y_label_area_size(60)
                .build_cartesian_2d(0.0..100.0, 0.0..y_max)
                .map_err(err)?;
            chart
                .configure_mesh()
                .x_desc("percentile")
                .y_desc(unit)
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(err)?;
            chart
                .draw_series(LineSeries::new(
                    data.iter().copied(),
                    PALETTE[0].stroke_width(2),
                ))
                .map_err(err)?;
        }
        Ok(())
    }
}
