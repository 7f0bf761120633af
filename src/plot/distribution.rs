//! How much the trials varied, each against its own limit: the peak of
//! every surviving trial (with the line a peak cannot cross: its limit),
//! and how long every killed trial lived. One point a trial, so nine
//! trials read as nine points and a kill at 64Mi is not mixed with one at
//! 198Mi.

use super::axes::{Axis, Scale, Unit, bytes_label, trim};
use super::figure::{Anchor, Dash, Figure, GREEN, GREY, KILL, Mark, Panel, Shape, Swatch};
use crate::k8s::Reason;
use crate::report::search::SearchResult;

/// `lo-hi unit`, or one value when they are the same.
fn spread(values: &[f64], fmt: impl Fn(f64) -> String, unit: &str) -> String {
    let lo = values.iter().copied().fold(f64::MAX, f64::min);
    let hi = values.iter().copied().fold(0.0, f64::max);
    if fmt(hi) == fmt(lo) {
        format!("{}{unit}", fmt(hi))
    } else {
        format!("{}-{}{unit}", fmt(lo), fmt(hi))
    }
}

pub fn figure(r: &SearchResult) -> Figure {
    let peaks: Vec<(f64, f64)> = r
        .trials
        .iter()
        .filter(|t| t.survived)
        .map(|t| (t.limit_bytes as f64, t.peak_bytes as f64))
        .collect();
    let kills: Vec<(f64, f64)> = r
        .trials
        .iter()
        .filter(|t| t.reason == Reason::OomKilled)
        .map(|t| (t.limit_bytes as f64, t.at_s))
        .collect();
    let limits = r.trials.iter().map(|t| t.limit_bytes as f64);
    let x_lo = limits.clone().fold(f64::MAX, f64::min).min(f64::MAX / 2.0);
    let x_hi = limits.fold(0.0, f64::max);
    let pad = ((x_hi - x_lo) * 0.06).max(x_hi * 0.02).max(1.0);
    let x = Axis::linear(
        (x_lo - pad).max(0.0),
        x_hi + pad,
        Unit::Bytes(Scale::for_max(x_hi)),
    );
    let peak_vals: Vec<f64> = peaks.iter().map(|p| p.1).collect();
    let kill_vals: Vec<f64> = kills.iter().map(|k| k.1).collect();
    let bytes = |v: f64| bytes_label(v as u64);
    let mut parts = Vec::new();
    if !peaks.is_empty() {
        parts.push(format!(
            "surviving trials peaked at {} (n={})",
            spread(&peak_vals, bytes, ""),
            peaks.len()
        ));
    }
    if !kills.is_empty() {
        parts.push(format!(
            "killed trials lived {} (n={})",
            spread(&kill_vals, |v| trim(v, 2), " s"),
            kills.len()
        ));
    }
    let mut fig = Figure {
        title: if parts.is_empty() {
            format!("{}: no trial survived or was OOMKilled", r.pod)
        } else {
            format!("{}: {}", r.pod, parts.join("; "))
        },
        subtitle: format!(
            "scenario {} · pod {} · each point one trial",
            r.scenario, r.pod
        ),
        panels: Vec::new(),
        x_title: "the trial's memory limit".into(),
        legend: Vec::new(),
    };
    let peak_hi = peak_vals.iter().copied().fold(0.0, f64::max);
    let peak_lo = peak_vals.iter().copied().fold(peak_hi, f64::min);
    // Zoomed on the peaks, so a spread of a few MiB shows.
    let room = ((peak_hi - peak_lo) * 0.5).max(peak_hi * 0.05).max(1.0);
    let y = Axis::linear(
        (peak_lo - room).max(0.0),
        peak_hi + room,
        Unit::Bytes(Scale::for_max(peak_hi)),
    );
    // A peak cannot pass its limit: the diagonal shows the room left.
    let (d0, d1) = (x.lo.max(y.lo), x.hi.min(y.hi));
    let mut top = Panel::new(x.clone(), y, "peak of each surviving trial");
    top.mark(Mark::Line {
        points: if d1 > d0 {
            vec![(d0, d0), (d1, d1)]
        } else {
            Vec::new()
        },
        color: GREY,
        width: 1,
        dash: Dash::Dotted,
    });
    fig.entry("peak = limit", Swatch::Line(GREY, Dash::Dotted));
    for &at in &peaks {
        top.mark(Mark::Marker {
            at,
            shape: Shape::Dot,
            color: GREEN,
        });
    }
    if peak_hi > 0.0 {
        top.label(
            format!("largest peak {}", bytes(peak_hi)),
            GREEN,
            Anchor::HRule(peak_hi),
            Swatch::Marker(Shape::Dot, GREEN),
        );
        top.mark(Mark::HRule {
            y: peak_hi,
            color: GREEN,
            width: 1,
            dash: Dash::Dashed,
        });
    }
    fig.entry(
        "a trial that survived: its peak",
        Swatch::Marker(Shape::Dot, GREEN),
    );
    let kill_hi = kill_vals.iter().copied().fold(0.0, f64::max);
    let mut bottom = Panel::new(
        x,
        Axis::linear(0.0, kill_hi.max(0.01) * 1.15, Unit::Seconds),
        "time to OOMKilled",
    );
    for &at in &kills {
        bottom.mark(Mark::Marker {
            at,
            shape: Shape::Cross,
            color: KILL,
        });
    }
    fig.entry(
        "a trial that was OOMKilled: when",
        Swatch::Marker(Shape::Cross, KILL),
    );
    fig.panels.push(top);
    fig.panels.push(bottom);
    fig
}
