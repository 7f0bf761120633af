//! The runtime's own parts as stacked areas under a pod's cgroup line: the
//! heap at the bottom, what the heap flag does not cap above it, and the
//! gap up to the line is memory the runtime does not count.

use plotters::style::RGBColor;

use super::figure::{
    BLUE, Figure, GREEN, GREY, KILL, Mark, ORANGE, PURPLE, Panel, SKY, Swatch, light,
};

/// One colour a part (a runtime has up to seven), Okabe-Ito's with yellow.
const PARTS: [RGBColor; 8] = [
    BLUE,
    ORANGE,
    GREEN,
    PURPLE,
    SKY,
    RGBColor(240, 228, 66),
    GREY,
    KILL,
];
use crate::report::PodReport;

/// Stacked areas of each container's runtime parts, in the legend as
/// `pod: part (runtime)`.
pub fn areas(panel: &mut Panel, fig: &mut Figure, pod: &PodReport) {
    for m in pod
        .containers
        .iter()
        .filter_map(|c| c.runtime_memory.as_ref())
    {
        // The highest layer first, each lower one painted over it; opaque,
        // so layers keep their own colour.
        for k in (0..m.parts.len()).rev() {
            let color = light(PARTS[k % PARTS.len()], 0.45);
            let top: Vec<(f64, f64)> = m
                .samples
                .iter()
                .map(|s| (s.t_s, s.bytes[..=k].iter().sum::<u64>() as f64))
                .collect();
            panel.mark(Mark::Area {
                points: top,
                base: 0.0,
                color,
            });
            fig.entry(
                format!("{}: {} ({})", pod.name, m.parts[k], m.runtime.name()),
                Swatch::Area(color),
            );
        }
    }
}
