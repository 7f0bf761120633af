//! A matrix of cells: the smallest safe limit each search found, a bar per
//! search in each cell's slot; a cell without an answer says why.

use std::path::{Path, PathBuf};

use super::axes::bytes_label;
use super::figure::{Anchor, BLACK, Figure, KILL, Mark, Panel, SERIES, Swatch};
use super::{PlotError, both};
use crate::jobs::merge::Merged;

/// `stem.png` and `stem.svg`.
pub fn matrix(m: &Merged, stem: &Path) -> Result<Vec<PathBuf>, PlotError> {
    both(stem, &figure(m))
}

pub fn figure(m: &Merged) -> Figure {
    let searches: Vec<String> = {
        let mut names: Vec<String> = m
            .rows
            .iter()
            .flat_map(|r| r.smallest_safe.iter().map(|(n, _)| n.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    };
    let hi = m
        .rows
        .iter()
        .flat_map(|r| r.smallest_safe.iter().filter_map(|(_, b)| *b))
        .max()
        .unwrap_or(1) as f64;
    let mut p = Panel::categories(m.rows.len(), hi, "smallest safe limit");
    let failed = m.rows.iter().filter(|r| !r.ok).count();
    let mut fig = Figure {
        title: match failed {
            0 => format!("{} cell(s) of {}, all held", m.rows.len(), m.scenario),
            k => format!(
                "{k} of {} cell(s) of {} need a look",
                m.rows.len(),
                m.scenario
            ),
        },
        subtitle: "oomsim merge: the smallest safe limit per cell and search".into(),
        panels: Vec::new(),
        x_title: String::new(),
        legend: Vec::new(),
    };
    for (k, s) in searches.iter().enumerate() {
        fig.entry(s, Swatch::Area(SERIES[k % SERIES.len()]));
    }
    let width = 0.8 / searches.len().max(1) as f64;
    for (i, r) in m.rows.iter().enumerate() {
        let c = i as f64;
        for (name, bytes) in &r.smallest_safe {
            let k = searches.iter().position(|s| s == name).unwrap_or(0);
            let color = SERIES[k % SERIES.len()];
            let x0 = c - 0.4 + width * k as f64;
            match bytes {
                Some(b) => {
                    p.mark(Mark::Bar {
                        x0,
                        x1: x0 + width * 0.9,
                        y: *b as f64,
                        color,
                    });
                    p.label(
                        bytes_label(*b),
                        color,
                        Anchor::Point(x0 + width * 0.45, *b as f64),
                        Swatch::Area(color),
                    );
                }
                None => p.label(
                    "none safe",
                    KILL,
                    Anchor::Point(x0 + width * 0.45, 0.0),
                    Swatch::Area(KILL),
                ),
            }
        }
        p.label(
            format!("{} {}", r.index, r.label),
            if r.ok { BLACK } else { KILL },
            Anchor::Below(c),
            Swatch::Area(BLACK),
        );
    }
    fig.panels.push(p);
    fig
}
