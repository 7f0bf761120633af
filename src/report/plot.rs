//! Charts, one file per chart, each as PNG and SVG beside the JSON it was
//! drawn from. Text is drawn with an embedded DejaVu Sans, so PNGs render
//! without system font libraries.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::compare::Row;
use crate::report::Report;
use crate::search::SearchResult;

static FONT: &[u8] = include_bytes!("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1000, 560);
const MIB: f64 = 1024.0 * 1024.0;

fn register_font() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| "the embedded font did not load".to_string())
    })
    .clone()
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// A chart that can be drawn on any backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draw one chart as `stem.png` and `stem.svg`; returns both paths.
fn both(stem: &Path, chart: &impl Chart) -> Result<Vec<PathBuf>, String> {
    register_font()?;
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        chart.draw(&root)?;
        root.present().map_err(err)?;
    }
    {
        let root = SVGBackend::new(&svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        chart.draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(vec![png, svg])
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Memory charged per pod over time, with request and limit lines and a
/// marker where the kill hit.
pub fn timeline(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, String> {
    both(&dir.join("timeline"), &Timeline(report))
}

struct Timeline<'a>(&'a Report);

impl Chart for Timeline<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let report = self.0;
        let t_max = report
            .pods
            .iter()
            .flat_map(|p| p.samples.iter().map(|s| s.t_s))
            .fold(0.1, f64::max)
            * 1.12;
        let y_max = report
            .pods
            .iter()
            .flat_map(|p| {
                p.samples
                    .iter()
                    .map(|s| s.bytes.max(s.device_bytes.unwrap_or(0)))
                    .chain(p.limit_bytes)
                    .chain(std::iter::once(p.peak_bytes))
            })
            .chain(report.node.as_ref().map(|n| n.capacity_bytes))
            .max()
            .unwrap_or(1) as f64
            / MIB
            * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "{}: memory charged per pod (cgroup {}){}",
                    report.scenario,
                    report.host.cgroup_version,
                    if report.gpu.is_some() {
                        ", dashed: GPU"
                    } else {
                        ""
                    }
                ),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the pod started")
            .y_desc("MiB")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        if let Some(node) = &report.node {
            let series = node
                .samples
                .iter()
                .map(|s| (s.t_s, s.available_bytes.max(0) as f64 / MIB));
            chart
                .draw_series(LineSeries::new(series, BLACK.stroke_width(2)))
                .map_err(err)?
                .label("node memory.available")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
            let y = node.hard_threshold_bytes as f64 / MIB;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, y), (t_max, y)],
                    4,
                    4,
                    RED.stroke_width(1),
                ))
                .map_err(err)?
                .label("eviction threshold")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(1)));
            for e in &node.evictions {
                let at = (e.t_s, e.available_bytes.max(0) as f64 / MIB);
                chart
                    .draw_series(std::iter::once(Circle::new(at, 6, RED.filled())))
                    .map_err(err)?;
                let label = Text::new(
                    format!("evicted {}", e.pod),
                    (at.0, at.1 + y_max * 0.03),
                    ("sans-serif", 14).into_font().color(&RED),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
        }
        for (i, pod) in report.pods.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            if let Some(d) = &pod.dual_residency {
                let shade = Rectangle::new(
                    [(d.start_s, 0.0), (d.end_s, y_max)],
                    color.mix(0.10).filled(),
                );
                chart.draw_series(std::iter::once(shade)).map_err(err)?;
                let label = Text::new(
                    format!("{} dual residency", pod.name),
                    (d.start_s, y_max * 0.97),
                    ("sans-serif", 13).into_font().color(&color),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
            let device: Vec<(f64, f64)> = pod
                .samples
                .iter()
                .filter_map(|s| s.device_bytes.map(|d| (s.t_s, d as f64 / MIB)))
                .collect();
            if !device.is_empty() {
                let gpu = report
                    .gpu
                    .as_ref()
                    .map_or("GPU".into(), |g| format!("GPU {} ({})", g.index, g.backend));
                chart
                    .draw_series(DashedLineSeries::new(device, 4, 3, color.stroke_width(2)))
                    .map_err(err)?
                    .label(format!("{} on {gpu}", pod.name))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 6, y)], color.stroke_width(2))
                    });
            }
            chart
                .draw_series(LineSeries::new(
                    pod.samples.iter().map(|s| (s.t_s, s.bytes as f64 / MIB)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(format!("{} ({})", pod.name, pod.verdict.reason))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            for (value, what, style) in [
                (pod.limit_bytes, "limit", color.stroke_width(2)),
                (pod.request_bytes, "request", color.mix(0.5).stroke_width(1)),
            ] {
                if let Some(v) = value {
                    let y = v as f64 / MIB;
                    chart
                        .draw_series(DashedLineSeries::new(
                            vec![(0.0, y), (t_max, y)],
                            8,
                            6,
                            style,
                        ))
                        .map_err(err)?;
                    let label = Text::new(
                        format!("{} {what}", pod.name),
                        (t_max * 0.01, y),
                        ("sans-serif", 13).into_font().color(&color),
                    );
                    chart.draw_series(std::iter::once(label)).map_err(err)?;
                }
            }
            if pod.verdict.reason != "Completed" {
                let y = pod
                    .samples
                    .iter()
                    .map(|s| s.bytes)
                    .max()
                    .unwrap_or(pod.peak_bytes) as f64
                    / MIB;
                let at = (pod.verdict.at_s, y);
                chart
                    .draw_series(std::iter::once(Cross::new(at, 8, RED.stroke_width(3))))
                    .map_err(err)?;
                let label = Text::new(
                    format!("{} at {:.2}s", pod.verdict.reason, pod.verdict.at_s),
                    (at.0, at.1 * 1.03),
                    ("sans-serif", 14).into_font().color(&RED),
                );
                chart.draw_series(std::iter::once(label)).map_err(err)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}

/// Survival rate against the limit, with each formula's recommendation as a
/// labelled vertical line.
pub fn search(result: &SearchResult, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = both(&dir.join("search"), &SearchChart(result))?;
    files.extend(both(&dir.join("distribution"), &Distribution(result))?);
    Ok(files)
}

struct SearchChart<'a>(&'a SearchResult);

impl Chart for SearchChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
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

/// Peaks of surviving trials and time-to-OOM of killed ones, as percentile
/// curves from hdrhistograms.
struct Distribution<'a>(&'a SearchResult);

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
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
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
                .filter(|t| t.reason == "OOMKilled")
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
                            r.trials.iter().filter(|t| t.reason == "OOMKilled").count()
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

/// Baseline and current side by side, one pair of bars per check.
pub fn compare(rows: &[Row], stem: &Path) -> Result<Vec<PathBuf>, String> {
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    both(stem, &Compare(rows))
}

struct Compare<'a>(&'a [Row]);

impl Chart for Compare<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
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

/// A measured kv-cache run: the tokens each of its requests grows to, the
/// concurrency it reached, and whether it died there (CUDA OOM) or survived
/// (with preemptions).
#[derive(Debug, Clone, PartialEq)]
pub struct KvPoint {
    pub request_tokens: u64,
    pub concurrency: u64,
    pub failed: bool,
    pub label: String,
}

/// The kv-cache pods of a report.json, as points for the safe-region map.
pub fn kv_points(path: &Path) -> Result<Vec<KvPoint>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let report: Report = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not an oomsim report.json: {e}", path.display()))?;
    let mut points = Vec::new();
    for pod in &report.pods {
        let find = |name: &str| pod.events.iter().find(|e| e.event == name);
        let Some(start) = find("kv_start") else {
            continue;
        };
        let num = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_u64()).unwrap_or(0);
        let (concurrency, failed) = match (find("kv_oom"), find("kv_done")) {
            (Some(o), _) => (num(o.data.get("concurrency")), true),
            (None, Some(d)) => (num(d.data.get("peak_concurrency")), false),
            (None, None) => continue,
        };
        points.push(KvPoint {
            request_tokens: num(start.data.get("request_tokens")),
            concurrency,
            failed,
            label: format!("{}/{}", report.scenario, pod.name),
        });
    }
    Ok(points)
}

/// max_num_seqs against max_model_len: under each utilization's curve every
/// sequence can reach max_model_len without preemption; left of its
/// vertical line vLLM starts at all. Measured runs on top.
pub fn safe_region(
    inp: &crate::vllm::Inputs,
    points: &[KvPoint],
    dir: &Path,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    both(&dir.join("safe-region"), &SafeRegion { inp, points })
}

struct SafeRegion<'a> {
    inp: &'a crate::vllm::Inputs,
    points: &'a [KvPoint],
}

impl Chart for SafeRegion<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let inp = self.inp;
        let mut levels: Vec<f64> = vec![0.80, 0.85, 0.90, 0.95];
        if !levels.iter().any(|l| (l - inp.utilization).abs() < 1e-9) {
            levels.push(inp.utilization);
            levels.sort_by(f64::total_cmp);
        }
        let x_max = (inp.max_model_len as f64 * 1.5).max(
            self.points
                .iter()
                .map(|p| p.request_tokens)
                .max()
                .unwrap_or(0) as f64
                * 1.3,
        );
        let y_max = (inp.max_num_seqs as f64 * 1.2)
            .max(self.points.iter().map(|p| p.concurrency).max().unwrap_or(0) as f64 * 1.1);
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Safe vLLM settings: {} GPU, KV {} a token",
                    crate::units::fmt_human(inp.gpu_memory_bytes),
                    crate::units::fmt_human(inp.model.kv_bytes_per_token(inp.kv_dtype))
                ),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, 0.0..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("max_model_len; for measured runs, tokens per request")
            .y_desc("max_num_seqs")
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        for (i, &u) in levels.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let tokens = inp.tokens_in(inp.kv_budget_at(u)) as f64;
            let width = if (u - inp.utilization).abs() < 1e-9 {
                3
            } else {
                1
            };
            let x_end = tokens.min(x_max);
            let curve: Vec<(f64, f64)> = (1..=200)
                .map(|k| x_end * k as f64 / 200.0)
                .map(|x| (x, (tokens / x).min(y_max)))
                .collect();
            chart
                .draw_series(LineSeries::new(curve, color.stroke_width(width)))
                .map_err(err)?
                .label(format!("utilization {u:.2}: {} KV tokens", tokens as u64))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            if tokens < x_max {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(tokens, 0.0), (tokens, y_max)],
                        6,
                        4,
                        color.stroke_width(1),
                    ))
                    .map_err(err)?;
            }
        }
        let here = (inp.max_model_len as f64, inp.max_num_seqs as f64);
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                here,
                9,
                BLACK.filled(),
            )))
            .map_err(err)?
            .label("the settings asked about")
            .legend(|(x, y)| TriangleMarker::new((x + 9, y), 6, BLACK.filled()));
        for p in self.points {
            let at = (p.request_tokens as f64, p.concurrency as f64);
            if p.failed {
                chart
                    .draw_series(std::iter::once(Cross::new(at, 8, RED.stroke_width(3))))
                    .map_err(err)?;
            } else {
                chart
                    .draw_series(std::iter::once(Circle::new(at, 7, PALETTE[2].filled())))
                    .map_err(err)?;
            }
            let label = Text::new(
                format!(
                    "{} {}",
                    p.label,
                    if p.failed { "CUDA OOM" } else { "survived" }
                ),
                (at.0, at.1 * 1.03 + y_max * 0.01),
                ("sans-serif", 13).into_font().color(&BLACK),
            );
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    }
}
