//! Baseline and current side by side, one pair of bars per check.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Chart, MIB, PALETTE, PlotError, both, err};
use crate::report::compare::Row;

/// Baseline and current side by side, one pair of bars per check.
pub fn compare(rows: &[Row], stem: &Path) -> Result<Vec<PathBuf>, PlotError> {
    both(stem, &Compare(rows))
}

struct Compare<'a>(&'a [Row]);

impl Chart for Compare<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let rows = self.0;
        let y_max = rows
            .iter()
            .flat_map(|r| r.baseline_bytes.into_iter().chain(r.current_bytes))
            .max()
            .unwrap_or(1) as f64
            / MIB
            * 1.2;
        let n = rows.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "oomsim compare: baseline (grey) and current",
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("MiB (smallest safe limit, or peak)")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (i, r) in rows.iter().enumerate() {
            let x = i as f64;
            let current_color = if r.regression { PALETTE[3] } else { PALETTE[2] };
            for (value, left, color) in [
                (r.baseline_bytes, x + 0.15, RGBColor(150, 150, 150)),
                (r.current_bytes, x + 0.5, current_color),
            ] {
                if let Some(v) = value {
                    let bar = Rectangle::new(
                        [(left, 0.0), (left + 0.33, v as f64 / MIB)],
                        color.filled(),
                    );
                    chart.draw_series(std::iter::once(bar)).map_err(err)?;
                }
            }
            let label = Text::new(
                r.name.clone(),
                (x + 0.1, y_max * 0.95),
                ("sans-serif", 13).into_font(),
            );
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
        Ok(())
    }
}
