//! The search chart: where the boundary is and which formulas land on the
//! safe side. Zoomed on the bracket (the largest limit killed to the
//! smallest that held), the safe and unsafe sides shaded, each formula a
//! line coloured by its verdict with its label above the chart.

use std::path::{Path, PathBuf};

use super::axes::{Axis, Scale, Unit, bytes_label};
use super::distribution;
use super::figure::{
    Anchor, BLACK, Dash, Figure, GREEN, KILL, Mark, ORANGE, PURPLE, Panel, Shape, Swatch, light,
};
use super::{PlotError, both};
use crate::report::search::{Fit, SearchResult};

/// `search.png`/`.svg` and `distribution.png`/`.svg`.
pub fn search(result: &SearchResult, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut files = both(&dir.join("search"), &figure(result))?;
    files.extend(both(
        &dir.join("distribution"),
        &distribution::figure(result),
    )?);
    Ok(files)
}

fn fit_color(fit: Fit) -> plotters::style::RGBColor {
    match fit {
        Fit::Unsafe | Fit::Failed => KILL,
        Fit::Tight => ORANGE,
        Fit::Fine => GREEN,
        Fit::Wasteful => PURPLE,
    }
}

fn fit_meaning(fit: Fit) -> &'static str {
    match fit {
        Fit::Unsafe => "unsafe: below the smallest safe limit, it would be OOMKilled",
        Fit::Tight => "tight: less than 10% over the smallest safe limit",
        Fit::Fine => "fine: 10-50% over",
        Fit::Wasteful => "wasteful: more than 50% over",
        Fit::Failed => "failed: the formula could not be evaluated",
    }
}

/// The window that shows the answer: from a little under the largest limit
/// killed to a little over the smallest safe one and the formulas near it.
fn window(r: &SearchResult) -> (f64, f64) {
    let safe = r.min_safe_limit_bytes.map(|b| b as f64);
    let killed = r.oom_limit_bytes.map(|b| b as f64);
    let all = || r.per_limit.iter().map(|s| s.limit_bytes as f64);
    // No kill and no survivor: the trials' span, or the range asked.
    let span_lo = all().reduce(f64::min).unwrap_or(r.range_bytes.0 as f64);
    let span_hi = all().reduce(f64::max).unwrap_or(r.range_bytes.1 as f64);
    let lo = killed.or(safe).unwrap_or(span_lo);
    let hi = safe.or(killed).unwrap_or(span_hi).max(lo);
    let near = hi * 2.0;
    let hi = r
        .formulas
        .iter()
        .filter(|f| f.fit != Fit::Failed)
        .map(|f| f.recommended_bytes as f64)
        .filter(|v| *v <= near)
        .fold(hi, f64::max);
    let lo = r
        .formulas
        .iter()
        .filter(|f| f.fit != Fit::Failed)
        .map(|f| f.recommended_bytes as f64)
        .filter(|v| *v >= lo * 0.5)
        .fold(lo, f64::min);
    let pad = ((hi - lo) * 0.12)
        .max(r.precision_bytes as f64 * 2.0)
        .max(hi * 0.02);
    ((lo - pad).max(0.0), hi + pad)
}

pub fn figure(r: &SearchResult) -> Figure {
    let (lo, hi) = window(r);
    let unit = Unit::Bytes(Scale::for_max(hi));
    let x = Axis::linear(lo, hi, unit);
    let y = Axis::linear(0.0, 1.0, Unit::Share);
    let mut p = Panel::new(x.clone(), y, "trials that survived");
    let formulas: Vec<_> = r.formulas.iter().filter(|f| f.fit != Fit::Failed).collect();
    p.rows_above = (formulas.len() as u32 / 2 + 2).clamp(1, 6);
    let mut fig = Figure {
        title: title(r),
        subtitle: format!(
            "scenario {} · pod {} · {} trials, {} each limit, precision {}",
            r.scenario,
            r.pod,
            r.trials_count,
            r.repeat,
            bytes_label(r.precision_bytes)
        ),
        panels: Vec::new(),
        x_title: "memory limit".into(),
        legend: Vec::new(),
    };
    if let Some(k) = r.oom_limit_bytes {
        let shade = light(KILL, 0.12);
        p.mark(Mark::Shade {
            x0: x.lo,
            x1: k as f64,
            color: shade,
        });
        fig.entry(
            format!("OOMKilled at {} and below", bytes_label(k)),
            Swatch::Area(shade),
        );
    }
    if let Some(s) = r.min_safe_limit_bytes {
        let shade = light(GREEN, 0.15);
        p.mark(Mark::Shade {
            x0: s as f64,
            x1: x.hi,
            color: shade,
        });
        fig.entry(
            format!("survived every trial from {} up", bytes_label(s)),
            Swatch::Area(shade),
        );
        p.mark(Mark::VRule {
            x: s as f64,
            color: BLACK,
            width: 2,
            dash: Dash::Solid,
        });
        p.label(
            format!("smallest safe {}", bytes_label(s)),
            BLACK,
            Anchor::Above(s as f64),
            Swatch::Line(BLACK, Dash::Solid),
        );
    }
    let (mut left, mut right) = (0, 0);
    for s in &r.per_limit {
        let v = s.limit_bytes as f64;
        if v < x.lo {
            left += s.trials;
            continue;
        }
        if v > x.hi {
            right += s.trials;
            continue;
        }
        let (shape, color) = match s.survived {
            0 => (Shape::Cross, KILL),
            n if n == s.trials => (Shape::Dot, GREEN),
            _ => (Shape::Ring, ORANGE),
        };
        p.mark(Mark::Marker {
            at: (v, s.survival_rate),
            shape,
            color,
        });
        if s.survived > 0 && s.survived < s.trials {
            p.label(
                format!(
                    "{}/{} survived at {}",
                    s.survived,
                    s.trials,
                    bytes_label(s.limit_bytes)
                ),
                ORANGE,
                Anchor::Point(v, s.survival_rate),
                Swatch::Marker(Shape::Ring, ORANGE),
            );
        }
    }
    if left + right > 0 {
        fig.entry(
            format!(
                "off the chart: {left} trial(s) below {}, {right} above {}",
                bytes_label(x.lo as u64),
                bytes_label(x.hi as u64)
            ),
            Swatch::Marker(Shape::Dot, BLACK),
        );
    }
    let mut fits: Vec<Fit> = Vec::new();
    for f in &formulas {
        let v = f.recommended_bytes as f64;
        let color = fit_color(f.fit);
        let text = format!(
            "{} {} {}",
            f.name,
            bytes_label(f.recommended_bytes),
            f.fit.as_str()
        );
        if v > x.hi || v < x.lo {
            fig.entry(
                format!("{text}, off the chart"),
                Swatch::Line(color, Dash::Dashed),
            );
        } else {
            p.mark(Mark::VRule {
                x: v,
                color,
                width: 2,
                dash: Dash::Dashed,
            });
            p.label(
                text,
                color,
                Anchor::Above(v),
                Swatch::Line(color, Dash::Dashed),
            );
        }
        if !fits.contains(&f.fit) {
            fits.push(f.fit);
        }
    }
    for fit in fits {
        fig.entry(fit_meaning(fit), Swatch::Line(fit_color(fit), Dash::Dashed));
    }
    for f in r.formulas.iter().filter(|f| f.fit == Fit::Failed) {
        fig.entry(
            format!("{}: not evaluated", f.name),
            Swatch::Line(KILL, Dash::Dotted),
        );
    }
    fig.panels.push(p);
    fig
}

fn title(r: &SearchResult) -> String {
    let safe_formulas = r
        .formulas
        .iter()
        .filter(|f| matches!(f.fit, Fit::Tight | Fit::Fine | Fit::Wasteful))
        .count();
    match r.min_safe_limit_bytes {
        Some(s) => format!(
            "{}: smallest safe limit {}{}; {safe_formulas} of {} formulas safe",
            r.pod,
            bytes_label(s),
            r.oom_limit_bytes
                .map(|k| format!(", OOMKilled at {}", bytes_label(k)))
                .unwrap_or_default(),
            r.formulas.len()
        ),
        None => format!(
            "{}: no limit up to {} survived every trial",
            r.pod,
            bytes_label(r.range_bytes.1)
        ),
    }
}
