//! The runtime's own parts as stacked areas under a pod's cgroup line: the
//! heap at the bottom, what the heap flag does not cap above it, and the
//! gap up to the line is memory the runtime does not count.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{MIB, PlotError, err};
use crate::report::PodReport;

/// Okabe-Ito colours, told apart by colour-blind readers.
const PARTS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];

/// Opaque, so layers painted over each other keep their own colour.
fn pastel(c: RGBColor) -> RGBColor {
    let light = |v: u8| (f64::from(v) * 0.55 + 255.0 * 0.45) as u8;
    RGBColor(light(c.0), light(c.1), light(c.2))
}

type Chart2d<'a, 'b, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Stacked areas of each container's runtime parts, in the legend as
/// `pod: part`.
pub fn areas<DB: DrawingBackend>(
    chart: &mut Chart2d<'_, '_, DB>,
    pod: &PodReport,
) -> Result<(), PlotError> {
    for m in pod
        .containers
        .iter()
        .filter_map(|c| c.runtime_memory.as_ref())
    {
        // Top of each layer: the sum of the parts up to it.
        let tops: Vec<Vec<(f64, f64)>> = (0..m.parts.len())
            .map(|k| {
                m.samples
                    .iter()
                    .map(|s| (s.t_s, s.bytes[..=k].iter().sum::<u64>() as f64 / MIB))
                    .collect()
            })
            .collect();
        // The highest layer first, each lower one painted over it.
        for (k, top) in tops.into_iter().enumerate().rev() {
            let color = pastel(PARTS[k % PARTS.len()]);
            chart
                .draw_series(AreaSeries::new(top, 0.0, color.filled()))
                .map_err(err)?
                .label(format!(
                    "{}: {} ({})",
                    pod.name,
                    m.parts[k],
                    m.runtime.name()
                ))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 18, y + 5)], color.filled())
                });
        }
    }
    Ok(())
}
