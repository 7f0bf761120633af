//! Baseline and current side by side, one pair of bars per check, each with
//! its value, the tolerance a search may grow by drawn over the current
//! bar, and regressions in the kill colour.

use std::path::{Path, PathBuf};

use super::axes::bytes_label;
use super::figure::{Anchor, BLACK, BLUE, Dash, Figure, GREY, KILL, Mark, Panel, Swatch};
use super::{PlotError, both};
use crate::report::compare::Row;

/// `stem.png` and `stem.svg`.
pub fn compare(rows: &[Row], stem: &Path) -> Result<Vec<PathBuf>, PlotError> {
    both(stem, &figure(rows))
}

pub fn figure(rows: &[Row]) -> Figure {
    let hi = rows
        .iter()
        .flat_map(|r| [r.baseline_bytes, r.current_bytes, r.tolerance_bytes])
        .flatten()
        .max()
        .unwrap_or(1) as f64;
    let mut p = Panel::categories(rows.len(), hi, "smallest safe limit, or peak");
    let failed = rows.iter().filter(|r| r.regression).count();
    let mut fig = Figure {
        title: match failed {
            0 => format!("No regression in {} check(s)", rows.len()),
            n => format!("{n} regression(s) in {} check(s)", rows.len()),
        },
        subtitle: "oomsim compare: baseline against current".into(),
        panels: Vec::new(),
        x_title: String::new(),
        legend: Vec::new(),
    };
    fig.entry("baseline", Swatch::Area(GREY));
    fig.entry("current, within tolerance", Swatch::Area(BLUE));
    if failed > 0 {
        fig.entry("current, a regression", Swatch::Area(KILL));
    }
    if rows.iter().any(|r| r.tolerance_bytes.is_some()) {
        fig.entry(
            "the most the current may reach",
            Swatch::Line(BLACK, Dash::Dashed),
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let c = i as f64;
        let current = if r.regression { KILL } else { BLUE };
        for (value, x0, color, who) in [
            (r.baseline_bytes, c - 0.36, GREY, "baseline"),
            (r.current_bytes, c + 0.02, current, "current"),
        ] {
            let Some(v) = value else {
                p.label(
                    format!("no {who}"),
                    color,
                    Anchor::Point(x0 + 0.17, 0.0),
                    Swatch::Area(color),
                );
                continue;
            };
            p.mark(Mark::Bar {
                x0,
                x1: x0 + 0.34,
                y: v as f64,
                color,
            });
            p.label(
                bytes_label(v),
                if color == GREY { BLACK } else { color },
                Anchor::Point(x0 + 0.17, v as f64),
                Swatch::Area(color),
            );
        }
        if let Some(t) = r.tolerance_bytes {
            p.mark(Mark::Line {
                points: vec![(c - 0.02, t as f64), (c + 0.4, t as f64)],
                color: BLACK,
                width: 2,
                dash: Dash::Dashed,
            });
        }
        p.label(
            format!(
                "{}: {}",
                r.name,
                if r.regression { "regression" } else { "ok" }
            ),
            if r.regression { KILL } else { BLACK },
            Anchor::Below(c),
            Swatch::Area(current),
        );
    }
    fig.panels.push(p);
    fig
}
