//! The timeline: what memory did and when the pod died. A node panel (its
//! working set against capacity, allocatable and the eviction line) when
//! the scenario has a node; the pods' cgroup charge with their requests,
//! limits, the runtime's own parts, kills and restarts; the GPU's memory
//! against its capacity, with CUDA OOMs and preemptions, when a device ran.

use std::path::{Path, PathBuf};

use super::axes::{Axis, Scale, Unit, bytes_label, seconds_label};
use super::figure::{Anchor, BLACK, Dash, Figure, KILL, Mark, Panel, SERIES, Swatch, light};
use super::{PlotError, both};
use crate::k8s::Reason;
use crate::report::{PodReport, Report};
use crate::verdict::{Cause, Verdict};

/// The timeline of a run, as `timeline.png` and `timeline.svg`.
pub fn timeline(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, PlotError> {
    both(&dir.join("timeline"), &figure(report))
}

/// A limit or request further above the data than this is named at the
/// top of the chart instead of stretching the axis.
const STRETCH: f64 = 1.6;

pub fn figure(report: &Report) -> Figure {
    let t_hi = report
        .pods
        .iter()
        .flat_map(|p| p.samples.iter().map(|s| s.t_s).chain([p.verdict.at_s]))
        .chain(
            report
                .node
                .iter()
                .flat_map(|n| n.samples.iter().map(|s| s.t_s)),
        )
        .fold(0.1, f64::max);
    let x = Axis::linear(0.0, t_hi, Unit::Seconds);
    let mut fig = Figure {
        title: title(report),
        subtitle: subtitle(report),
        panels: Vec::new(),
        x_title: "time since the pods started".into(),
        legend: Vec::new(),
    };
    if let Some(node) = &report.node {
        fig.panels.push(node_panel(node, &x));
    }
    let pods = pods_panel(report, &x, &mut fig);
    fig.panels.push(pods);
    if let Some(gpu) = super::gpu::panel(report, &x, &mut fig) {
        fig.panels.push(gpu);
    }
    fig
}

/// The pod whose end is the story: the first that did not complete.
fn story(report: &Report) -> Option<&PodReport> {
    report
        .pods
        .iter()
        .filter(|p| !matches!(p.verdict.reason, Reason::Completed))
        .min_by(|a, b| a.verdict.at_s.total_cmp(&b.verdict.at_s))
}

fn title(report: &Report) -> String {
    let Some(pod) = story(report) else {
        if let Some(gpu) = super::gpu::summary(report) {
            return gpu;
        }
        let peak = report.pods.iter().map(|p| p.peak_bytes).max().unwrap_or(0);
        return match report.pods.as_slice() {
            [one] => format!(
                "{} Completed: peak {}{}",
                one.name,
                bytes_label(one.peak_bytes),
                one.limit_bytes
                    .map(|l| format!(" of its {} limit", bytes_label(l)))
                    .unwrap_or_default()
            ),
            all => format!(
                "All {} pods Completed; the largest peaked at {}",
                all.len(),
                bytes_label(peak)
            ),
        };
    };
    let v = &pod.verdict;
    let at = seconds_label(v.at_s);
    let what = match v.cause {
        Cause::CgroupOomKill | Cause::CgroupOomKillOfOtherProcess => {
            format!("OOMKilled at {at}{}", limit_reached(pod))
        }
        Cause::NodeOomKill => format!("OOMKilled at {at} by the node's OOM killer, not its limit"),
        Cause::AllocatableOomKill => {
            format!("OOMKilled at {at} at the node's allocatable, below its own limit")
        }
        Cause::Evicted => evicted(report, pod, &at),
        Cause::CudaOom => format!(
            "Error at {at}: CUDA out of memory{}",
            report
                .gpu
                .as_ref()
                .map(|g| format!(" on a {} GPU", bytes_label(g.total_bytes)))
                .unwrap_or_default()
        ),
        Cause::RuntimeOom => format!(
            "Error at {at}: {} ran out of memory of its own",
            v.runtime_oom
                .as_ref()
                .map_or("the runtime", |r| r.runtime.name())
        ),
        _ => format!("{} (exit {}) at {at}", v.reason, v.exit_code),
    };
    let others = report.pods.iter().filter(|p| !p.survived()).count();
    let more = match others.saturating_sub(1) {
        0 => String::new(),
        1 => " (and 1 more pod)".into(),
        n => format!(" (and {n} more pods)"),
    };
    format!("{} {what}{more}", pod.name)
}

/// Whose limit the kill hit: the container's own when it has one below
/// the pod's, else the pod's.
fn limit_reached(pod: &PodReport) -> String {
    let own = pod
        .containers
        .iter()
        .find(|c| c.name == pod.container_name())
        .and_then(|c| c.limit_bytes)
        .filter(|l| Some(*l) != pod.limit_bytes && pod.containers.len() > 1);
    match (own, pod.limit_bytes) {
        (Some(l), _) => format!(
            ", container {}'s {} limit reached",
            pod.container_name(),
            bytes_label(l)
        ),
        (None, Some(l)) => format!(", {} limit reached", bytes_label(l)),
        (None, None) => String::new(),
    }
}

fn evicted(report: &Report, pod: &PodReport, at: &str) -> String {
    match report
        .node
        .as_ref()
        .and_then(|n| n.evictions.iter().find(|e| e.pod == pod.name))
    {
        Some(e) => format!(
            "Evicted at {at}: node memory.available {} under the {} threshold",
            bytes_label(e.available_bytes.max(0) as u64),
            bytes_label(e.threshold_bytes)
        ),
        None => format!("Evicted at {at}"),
    }
}

fn subtitle(report: &Report) -> String {
    let device = match &report.gpu {
        Some(g) => format!("GPU {} {} ({})", g.index, g.name, g.backend),
        None => "no GPU".into(),
    };
    format!(
        "scenario {} · cgroup {} · {}",
        report.scenario, report.host.cgroup_version, device
    )
}

pub(super) fn bytes_axis(hi: f64) -> Axis {
    Axis::linear(0.0, hi.max(1.0), Unit::Bytes(Scale::for_max(hi)))
}

fn node_panel(node: &crate::report::node::NodeReport, x: &Axis) -> Panel {
    let cap = node.capacity_bytes as f64;
    let mut p = Panel::new(x.clone(), bytes_axis(cap * 1.04), "node working set");
    p.weight = 0.8;
    let line: Vec<(f64, f64)> = node
        .samples
        .iter()
        .map(|s| (s.t_s, s.working_set_bytes as f64))
        .collect();
    p.mark(Mark::Line {
        points: line,
        color: BLACK,
        width: 2,
        dash: Dash::Solid,
    });
    let mut rule = |y: f64, text: String, color, dash| {
        p.mark(Mark::HRule {
            y,
            color,
            width: 1,
            dash,
        });
        p.label(text, color, Anchor::HRule(y), Swatch::Line(color, dash));
    };
    rule(
        cap,
        format!("capacity {}", bytes_label(node.capacity_bytes)),
        BLACK,
        Dash::Solid,
    );
    if let Some(a) = node.allocatable_bytes.filter(|a| *a < node.capacity_bytes) {
        rule(
            a as f64,
            format!("allocatable {} (kubepods limit)", bytes_label(a)),
            SERIES[4],
            Dash::Dashed,
        );
    }
    let evict_at = node
        .capacity_bytes
        .saturating_sub(node.hard_threshold_bytes);
    rule(
        evict_at as f64,
        format!(
            "eviction: memory.available < {}",
            bytes_label(node.hard_threshold_bytes)
        ),
        KILL,
        Dash::Dotted,
    );
    for e in &node.evictions {
        p.kill(
            (e.t_s, cap - e.available_bytes as f64),
            format!("{} Evicted at {}", e.pod, seconds_label(e.t_s)),
        );
    }
    p
}

/// The largest charge in the half second before `t`: where a kill lands.
fn charge_at(pod: &PodReport, t: f64) -> f64 {
    pod.samples
        .iter()
        .filter(|s| s.t_s <= t + 1e-3 && s.t_s >= t - 0.5)
        .map(|s| s.bytes)
        .max()
        .or_else(|| pod.samples.iter().map(|s| s.bytes).max())
        .unwrap_or(pod.peak_bytes) as f64
}

fn pods_panel(report: &Report, x: &Axis, fig: &mut Figure) -> Panel {
    let data_hi = report
        .pods
        .iter()
        .flat_map(|p| p.samples.iter().map(|s| s.bytes).chain([p.peak_bytes]))
        .max()
        .unwrap_or(1) as f64;
    let shown = |v: u64| (v as f64) <= data_hi * STRETCH;
    let hi = report
        .pods
        .iter()
        .flat_map(|p| [p.limit_bytes, p.request_bytes])
        .flatten()
        .filter(|v| shown(*v))
        .fold(data_hi, |m, v| m.max(v as f64));
    let y = bytes_axis(hi * 1.08);
    let mut p = Panel::new(x.clone(), y.clone(), "memory charged per pod");
    for (i, pod) in report.pods.iter().enumerate() {
        let color = SERIES[i % SERIES.len()];
        if let Some(d) = &pod.dual_residency {
            let shade = light(color, 0.15);
            p.mark(Mark::Shade {
                x0: d.start_s,
                x1: d.end_s,
                color: shade,
            });
            fig.entry(
                format!("{}: weights on host and GPU at once", pod.name),
                Swatch::Area(shade),
            );
        }
        super::runtime::areas(&mut p, fig, pod);
        p.mark(Mark::Line {
            points: pod
                .samples
                .iter()
                .map(|s| (s.t_s, s.bytes as f64))
                .collect(),
            color,
            width: 2,
            dash: Dash::Solid,
        });
        fig.entry(
            format!("{} ({}, {})", pod.name, pod.qos, pod.verdict.reason),
            Swatch::Line(color, Dash::Solid),
        );
        resource_lines(&mut p, pod, color, &y, &shown);
        container_limits(&mut p, pod, color, &shown);
        kills(&mut p, pod);
    }
    p
}

/// The pod's limit and request: one line when they are equal; named at the
/// top of the chart when they are far above the data.
fn resource_lines(
    p: &mut Panel,
    pod: &PodReport,
    color: plotters::style::RGBColor,
    y: &Axis,
    shown: &impl Fn(u64) -> bool,
) {
    let both_equal = pod.limit_bytes.is_some() && pod.limit_bytes == pod.request_bytes;
    let lines = [
        (
            pod.limit_bytes,
            if both_equal {
                "limit = request"
            } else {
                "limit"
            },
            Dash::Dashed,
        ),
        (
            pod.request_bytes.filter(|_| !both_equal),
            "request",
            Dash::Dotted,
        ),
    ];
    for (value, what, dash) in lines {
        let Some(v) = value else { continue };
        let text = format!("{} {what} {}", pod.name, bytes_label(v));
        if shown(v) {
            p.mark(Mark::HRule {
                y: v as f64,
                color,
                width: if dash == Dash::Dashed { 2 } else { 1 },
                dash,
            });
            p.label(
                text,
                color,
                Anchor::HRule(v as f64),
                Swatch::Line(color, dash),
            );
        } else {
            p.label(
                format!("↑ {text}, above the chart"),
                color,
                Anchor::HRule(y.hi),
                Swatch::Line(color, dash),
            );
        }
    }
}

/// A container's own limit, where it is not the pod's: the line its kills
/// happen at.
fn container_limits(
    p: &mut Panel,
    pod: &PodReport,
    color: plotters::style::RGBColor,
    shown: &impl Fn(u64) -> bool,
) {
    for c in &pod.containers {
        let Some(l) = c
            .limit_bytes
            .filter(|l| Some(*l) != pod.limit_bytes && shown(*l))
        else {
            continue;
        };
        p.mark(Mark::HRule {
            y: l as f64,
            color,
            width: 1,
            dash: Dash::Dashed,
        });
        p.label(
            format!("{} container limit {}", c.name, bytes_label(l)),
            color,
            Anchor::HRule(l as f64),
            Swatch::Line(color, Dash::Dashed),
        );
    }
}

/// Each run of each container that ended badly, marked where it ended;
/// restarts numbered. Reports before containers: the pod's own verdict.
fn kills(p: &mut Panel, pod: &PodReport) {
    let several = pod.containers.len() > 1;
    // (who, which run, how it ended, when on the pod's clock)
    let mut ends: Vec<(&str, Option<usize>, &Verdict, f64)> = Vec::new();
    for c in &pod.containers {
        let runs = c.terminations.len();
        for (k, t) in c.terminations.iter().enumerate() {
            let who = if several && c.name != pod.name {
                c.name.as_str()
            } else {
                ""
            };
            let when = t.started_s + t.verdict.at_s;
            ends.push((who, (runs > 1).then_some(runs - k), &t.verdict, when));
        }
    }
    if pod.containers.is_empty() {
        ends.push(("", None, &pod.verdict, pod.verdict.at_s));
    }
    for (who, run, v, when) in ends {
        // Stops the harness asked for (the end of the pod, a timeout, Ctrl-C)
        // are not failures to mark.
        if matches!(
            v.cause,
            Cause::Completed | Cause::Sigterm | Cause::Timeout | Cause::Interrupted
        ) {
            continue;
        }
        let at = (when, charge_at(pod, when));
        let mut text = format!("{}: ", pod.name);
        if !who.is_empty() {
            text.push_str(&format!("{who} "));
        }
        text.push_str(&format!("{} at {}", v.reason, seconds_label(when)));
        if let Some(run) = run {
            text.push_str(&format!(" (run {run})"));
        }
        p.kill(at, text);
    }
}
