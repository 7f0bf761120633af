//! The search chart: survival rate against the limit, with each formula's
//! recommendation as a labelled vertical line.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::distribution::Distribution;
use super::{Chart, MIB, PALETTE, PlotError, both, err};
use crate::report::search::SearchResult;

/// Survival rate against the limit, with each formula's recommendation as a
/// labelled vertical line.
pub fn search(result: &SearchResult, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut files = both(&dir.join("search"), &SearchChart(result))?;
    files.extend(both(&dir.join("distribution"), &Distribution(result))?);
    Ok(files)
}

struct SearchChart<'a>(&'a SearchResult);

impl Chart for SearchChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
        let r = self.0;
        let x_max = r
            .per_limit
            .iter()
            .map(|s| s.limit_bytes)
            .chain(r.formulas.iter().map(|f| f.recommended_bytes))
            .max()
            .unwrap_or(1) as f64
            / MIB
            * 1.05;
        let x_min = r.per_limit.iter().map(|s| s.limit_bytes).min().unwrap_or(0) as f64 / MIB * 0.9;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!("{} / {}: survival rate by memory limit", r.scenario, r.pod),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_min..x_max, 0.0..1.45)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("memory limit, MiB")
            .y_desc("survival rate")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        let points = r.per_limit.iter().map(|s| {
            let color = if s.survival_rate >= 1.0 {
                PALETTE[2]
            } else {
                PALETTE[3]
            };
            Circle::new(
                (s.limit_bytes as f64 / MIB, s.survival_rate),
                5,
                color.filled(),
            )
        });
        chart.draw_series(points).map_err(err)?;
        let mut lines: Vec<(String, u64, RGBColor)> = r
            .formulas
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    format!("{} ({})", f.name, f.fit.as_str()),
                    f.recommended_bytes,
                    PALETTE[i % PALETTE.len()],
                )
            })
            .collect();
        if let Some(m) = r.min_safe_limit_bytes {
            lines.insert(0, ("measured minimum".into(), m, BLACK));
        }
        for (i, (label, bytes, color)) in lines.iter().enumerate() {
            let x = *bytes as f64 / MIB;
            chart
                .draw_series(LineSeries::new(
                    vec![(x, 0.0), (x, 1.05)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            let y = 1.08 + 0.35 * (i as f64 / lines.len().max(1) as f64);
            let text = Text::new(
                label.clone(),
                (x, y),
                ("sans-serif", 12).into_font().color(color),
            );
            chart.draw_series(std::iter::once(text)).map_err(err)?;
        }
        Ok(())
    }
}
