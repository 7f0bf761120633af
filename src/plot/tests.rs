//! Charts checked from the SVG they write, over reports of the shipped
//! scenarios (tests/fixtures/plots: real runs, samples thinned): every text
//! inside the canvas and over no other text, the limit line and the kill
//! marker where the data says, titles that state the finding, and colours
//! a colour-blind reader tells apart.

use std::path::Path;

use super::figure::{BLACK, BLUE, Figure, GREEN, KILL, ORANGE, PURPLE, SERIES, SKY};
use super::text::{Align, Rect, text_box};
use super::{compare, distribution, safe_region, search, svg, timeline};
use crate::report::{Report, Saved, search::SearchResult};

fn fixture(name: &str) -> Saved {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plots")
        .join(name);
    crate::report::load(&path).unwrap()
}

fn report(name: &str) -> Report {
    match fixture(&format!("{name}.report.json")) {
        Saved::Report(r) => *r,
        Saved::Search(_) => panic!("{name}: a report"),
    }
}

fn search_result(name: &str) -> SearchResult {
    match fixture(&format!("{name}.search.json")) {
        Saved::Search(s) => *s,
        Saved::Report(_) => panic!("{name}: a search"),
    }
}

const REPORTS: [&str; 8] = [
    "leak-ramp",
    "node-pressure",
    "api-rollout",
    "jvm-heap-70",
    "vllm-paged-preempt",
    "model-load-small",
    "node-allocatable",
    "burst",
];

/// One `<text>` of the SVG, and the box it takes.
#[derive(Debug)]
struct SvgText {
    text: String,
    /// Its anchor, as written.
    at: (f64, f64),
    rect: Rect,
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let end = tag[start..].find('"')? + start;
    Some(&tag[start..end])
}

fn num(tag: &str, name: &str) -> f64 {
    attr(tag, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The texts of a plotters SVG, each boxed as the bitmap draws it (the
/// SVG writes font-size as the size / 1.24; its glyphs are smaller still).
fn texts(doc: &str) -> Vec<SvgText> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find("<text ") {
        let tag_end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i..tag_end];
        let close = rest[tag_end..].find("</text>").unwrap() + tag_end;
        let text = unescape(rest[tag_end + 1..close].trim());
        assert_eq!(
            attr(tag, "dy"),
            Some("0.5ex"),
            "every text is centred on its anchor: {tag}"
        );
        assert!(attr(tag, "transform").is_none(), "no rotated text: {tag}");
        let align = match attr(tag, "text-anchor") {
            Some("start") => Align::Left,
            Some("end") => Align::Right,
            _ => Align::Center,
        };
        let size = num(tag, "font-size") * 1.24;
        let at = (num(tag, "x"), num(tag, "y"));
        let rect = text_box(at.0, at.1, align, size, &text);
        out.push(SvgText { text, at, rect });
        rest = &rest[close..];
    }
    out
}

fn canvas(doc: &str) -> Rect {
    let tag = &doc[..doc.find('>').unwrap()];
    Rect::new(0.0, 0.0, num(tag, "width"), num(tag, "height"))
}

/// No text leaves the canvas or overlaps another; returns the texts.
fn check_labels(what: &str, fig: &Figure) -> (String, Vec<SvgText>) {
    let doc = svg(fig).unwrap();
    let all = texts(&doc);
    let bounds = canvas(&doc);
    assert!(all.len() > 5, "{what}: texts were drawn");
    for t in &all {
        assert!(t.rect.inside(&bounds), "{what}: {:?} leaves the canvas", t);
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            assert!(!a.rect.overlaps(&b.rect), "{what}: {a:?} overlaps {b:?}");
        }
    }
    (doc, all)
}

#[test]
fn no_label_overlaps_another_or_leaves_the_canvas() {
    for name in REPORTS {
        check_labels(name, &timeline::figure(&report(name)));
    }
    for name in ["sizing-python", "jvm-heap-70"] {
        let r = search_result(name);
        check_labels(name, &search::figure(&r));
        check_labels(name, &distribution::figure(&r));
    }
    let base = search_result("sizing-python");
    let mut worse = base.clone();
    worse.min_safe_limit_bytes = base.min_safe_limit_bytes.map(|b| b * 2);
    let rows = vec![crate::compare::compare_searches(&base, &worse, 0.05)];
    check_labels("compare", &compare::figure(&rows));
    let mut inp = crate::llm::vllm::Inputs::new(crate::llm::tests::shipped("llama-3-8b"), 24 << 30);
    inp.utilization = 0.9;
    inp.max_model_len = 8192;
    inp.max_num_seqs = 256;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plots/vllm-paged-preempt.report.json");
    let points = safe_region::kv_points(&path).unwrap();
    assert!(!points.is_empty() && points[0].preemptions > 0);
    check_labels("safe-region", &safe_region::figure(&inp, &points));
}

/// The pixel position of a value, from two labelled ticks of an axis:
/// `ticks` are (value, pixel) pairs read off the SVG.
fn linear(ticks: &[(f64, f64)], v: f64) -> f64 {
    let (a, b) = (ticks[0], ticks[ticks.len() - 1]);
    a.1 + (v - a.0) * (b.1 - a.1) / (b.0 - a.0)
}

/// The y tick labels (right-aligned, left of the plot) as (value, y) and the
/// x tick labels (under the plot) as (value, x), in the axes' unit.
/// (value, pixel) pairs along an axis.
type Ticks = Vec<(f64, f64)>;

fn ticks(all: &[SvgText]) -> (Ticks, Ticks) {
    let number = |t: &SvgText| t.text.parse::<f64>().ok();
    let left = all
        .iter()
        .filter(|t| number(t).is_some())
        .map(|t| t.rect.x1)
        .fold(f64::MAX, f64::min);
    let y: Vec<(f64, f64)> = all
        .iter()
        .filter(|t| (t.rect.x1 - left).abs() < 1.0)
        .filter_map(|t| Some((number(t)?, t.at.1)))
        .collect();
    let bottom = all
        .iter()
        .filter(|t| number(t).is_some() && (t.rect.x1 - left).abs() >= 1.0)
        .map(|t| t.rect.y0)
        .fold(0.0, f64::max);
    let x: Vec<(f64, f64)> = all
        .iter()
        .filter(|t| number(t).is_some() && (t.rect.y0 - bottom).abs() < 1.0)
        .filter_map(|t| Some((number(t)?, t.at.0)))
        .collect();
    (y, x)
}

/// Every `<polyline>` and `<line>` of a colour, as its points.
fn strokes(doc: &str, color: &str) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    for line in doc.lines() {
        if !line.contains(&format!("stroke=\"{color}\"")) {
            continue;
        }
        if line.starts_with("<polyline") {
            let pts = attr(line, "points").unwrap();
            out.push(
                pts.split_whitespace()
                    .filter_map(|p| {
                        let (x, y) = p.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    })
                    .collect(),
            );
        } else if line.starts_with("<line") {
            out.push(vec![
                (num(line, "x1"), num(line, "y1")),
                (num(line, "x2"), num(line, "y2")),
            ]);
        }
    }
    out
}

fn hex(c: plotters::style::RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

#[test]
fn the_limit_line_and_the_kill_marker_are_where_the_data_says() {
    let r = report("leak-ramp");
    let pod = &r.pods[0];
    let fig = timeline::figure(&r);
    assert_eq!(
        fig.title,
        format!(
            "{} OOMKilled at {}, {} limit reached",
            pod.name,
            super::axes::seconds_label(pod.verdict.at_s),
            super::axes::bytes_label(pod.limit_bytes.unwrap())
        )
    );
    let (doc, all) = check_labels("leak-ramp", &fig);
    let (y_ticks, x_ticks) = ticks(&all);
    assert!(
        y_ticks.len() >= 3 && x_ticks.len() >= 3,
        "{y_ticks:?} {x_ticks:?}"
    );
    // The axis is in MiB: the limit's pixel row from the ticks.
    let limit_mib = pod.limit_bytes.unwrap() as f64 / (1 << 20) as f64;
    let want_y = linear(&y_ticks, limit_mib);
    let color = hex(SERIES[0]);
    let flat: Vec<_> = strokes(&doc, &color)
        .into_iter()
        .filter(|s| s.len() == 2 && s[0].1 == s[1].1)
        .collect();
    assert!(
        flat.iter().any(|s| (s[0].1 - want_y).abs() <= 1.5),
        "a dashed limit line at y={want_y:.1} ({limit_mib} MiB); flat strokes: {:?}",
        flat.iter().map(|s| s[0].1).collect::<Vec<_>>()
    );
    // The kill: a cross of two KILL lines centred on the verdict's time.
    let cross = strokes(&doc, &hex(KILL));
    let centre = |s: &Vec<(f64, f64)>| ((s[0].0 + s[1].0) / 2.0, (s[0].1 + s[1].1) / 2.0);
    let want_x = linear(&x_ticks, pod.verdict.at_s);
    let at_kill = pod
        .samples
        .iter()
        .filter(|s| s.t_s <= pod.verdict.at_s + 1e-3 && s.t_s >= pod.verdict.at_s - 0.5)
        .map(|s| s.bytes)
        .max()
        .unwrap() as f64
        / (1 << 20) as f64;
    let want_kill_y = linear(&y_ticks, at_kill);
    assert!(
        cross.iter().filter(|s| s.len() == 2).any(|s| {
            let (x, y) = centre(s);
            (x - want_x).abs() <= 1.5 && (y - want_kill_y).abs() <= 1.5
        }),
        "a kill cross at ({want_x:.1}, {want_kill_y:.1}); KILL strokes: {cross:?}"
    );
}

#[test]
fn search_draws_the_smallest_safe_limit_where_it_is_and_zooms_on_it() {
    let r = search_result("sizing-python");
    let fig = search::figure(&r);
    let safe = r.min_safe_limit_bytes.unwrap();
    assert!(
        fig.title.contains(&format!(
            "smallest safe limit {}",
            super::axes::bytes_label(safe)
        )),
        "{}",
        fig.title
    );
    let (doc, all) = check_labels("search", &fig);
    let (y_ticks, x_ticks) = ticks(&all);
    // Survival in percent, never past 100.
    assert_eq!(y_ticks.iter().map(|t| t.0).fold(0.0, f64::max), 100.0);
    let want_x = linear(&x_ticks, safe as f64 / (1 << 20) as f64);
    let black = strokes(&doc, &hex(BLACK));
    assert!(
        black
            .iter()
            .any(|s| s.len() == 2 && s[0].0 == s[1].0 && (s[0].0 - want_x).abs() <= 1.5),
        "the smallest safe limit's line at x={want_x:.1}"
    );
    // Zoomed: the bracket takes a good part of the width, not one stripe.
    let x = &fig.panels[0].x;
    let span = x.hi - x.lo;
    let bracket = safe as f64 - r.oom_limit_bytes.unwrap() as f64;
    assert!(span < (r.range_bytes.1 - r.range_bytes.0) as f64);
    assert!(bracket / span > 0.005, "{bracket} in {span}");
}

#[test]
fn titles_state_the_finding() {
    let t = |n| timeline::figure(&report(n)).title;
    assert!(
        t("node-pressure").contains("Evicted at"),
        "{}",
        t("node-pressure")
    );
    assert!(t("node-pressure").contains("memory.available"));
    assert!(
        t("api-rollout").contains("container api's"),
        "{}",
        t("api-rollout")
    );
    assert!(
        t("vllm-paged-preempt").contains("preemptions and no OOM"),
        "{}",
        t("vllm-paged-preempt")
    );
    assert!(
        t("jvm-heap-70").contains("Completed: peak"),
        "{}",
        t("jvm-heap-70")
    );
    let d = distribution::figure(&search_result("sizing-python")).title;
    assert!(d.contains("(n=") && d.contains(" s "), "{d}");
}

#[test]
fn a_guaranteed_pod_has_one_line_for_limit_and_request() {
    let r = report("jvm-heap-70");
    let pod = &r.pods[0];
    assert_eq!(
        pod.limit_bytes, pod.request_bytes,
        "the fixture is Guaranteed"
    );
    let fig = timeline::figure(&r);
    let labels: Vec<&str> = fig
        .panels
        .iter()
        .flat_map(|p| &p.labels)
        .map(|l| l.text.as_str())
        .collect();
    assert!(
        labels.iter().any(|l| l.contains("limit = request")),
        "{labels:?}"
    );
    assert!(
        !labels
            .iter()
            .any(|l| l.contains(" request ") && !l.contains("limit"))
    );
}

/// sRGB to CIELAB (D65).
fn lab(rgb: [f64; 3]) -> [f64; 3] {
    let m = [
        [0.4124, 0.3576, 0.1805],
        [0.2126, 0.7152, 0.0722],
        [0.0193, 0.1192, 0.9505],
    ];
    let xyz: Vec<f64> = m
        .iter()
        .map(|row| row.iter().zip(rgb).map(|(a, b)| a * b).sum::<f64>())
        .collect();
    let white = [0.95047, 1.0, 1.08883];
    let f = |t: f64| {
        if t > 0.008856 {
            t.cbrt()
        } else {
            7.787 * t + 16.0 / 116.0
        }
    };
    let (fx, fy, fz) = (
        f(xyz[0] / white[0]),
        f(xyz[1] / white[1]),
        f(xyz[2] / white[2]),
    );
    [116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)]
}

fn linear_rgb(c: plotters::style::RGBColor) -> [f64; 3] {
    let l = |v: u8| {
        let s = f64::from(v) / 255.0;
        if s <= 0.04045 {
            s / 12.92
        } else {
            ((s + 0.055) / 1.055).powf(2.4)
        }
    };
    [l(c.0), l(c.1), l(c.2)]
}

/// Machado, Oliveira and Fernandes (2009), severity 1.0, on linear RGB.
const VISION: [(&str, [[f64; 3]; 3]); 4] = [
    (
        "normal",
        [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
    ),
    (
        "protanopia",
        [
            [0.152286, 1.052583, -0.204868],
            [0.114503, 0.786281, 0.099216],
            [-0.003882, -0.048116, 1.051998],
        ],
    ),
    (
        "deuteranopia",
        [
            [0.367322, 0.860646, -0.227968],
            [0.280085, 0.672501, 0.047413],
            [-0.011820, 0.042940, 0.968881],
        ],
    ),
    (
        "tritanopia",
        [
            [1.255528, -0.076749, -0.178779],
            [-0.078411, 0.930809, 0.147602],
            [0.004733, 0.691367, 0.303900],
        ],
    ),
];

#[test]
fn series_colours_stay_apart_for_colour_blind_readers() {
    let colours = [BLUE, ORANGE, GREEN, PURPLE, SKY, BLACK, KILL];
    for (vision, m) in VISION {
        let seen: Vec<[f64; 3]> = colours
            .iter()
            .map(|c| {
                let v = linear_rgb(*c);
                let s: Vec<f64> = m
                    .iter()
                    .map(|row| {
                        row.iter()
                            .zip(v)
                            .map(|(a, b)| a * b)
                            .sum::<f64>()
                            .clamp(0.0, 1.0)
                    })
                    .collect();
                lab([s[0], s[1], s[2]])
            })
            .collect();
        for i in 0..colours.len() {
            for j in i + 1..colours.len() {
                let d = (0..3)
                    .map(|k| (seen[i][k] - seen[j][k]).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    d > 8.0,
                    "{vision}: {:?} and {:?} are only {d:.1} apart (CIE76)",
                    colours[i],
                    colours[j]
                );
            }
        }
    }
}

#[test]
fn empty_results_draw_without_panicking() {
    let mut r = report("leak-ramp");
    for pod in &mut r.pods {
        pod.samples.clear();
        pod.containers.clear();
        pod.events.clear();
    }
    check_labels("no samples", &timeline::figure(&r));
    let mut s = search_result("sizing-python");
    s.per_limit.clear();
    s.trials.clear();
    s.formulas.clear();
    s.min_safe_limit_bytes = None;
    s.oom_limit_bytes = None;
    let fig = search::figure(&s);
    assert!(fig.title.contains("no limit up to"), "{}", fig.title);
    check_labels("empty search", &fig);
    svg(&distribution::figure(&s)).unwrap();
    svg(&compare::figure(&[])).unwrap();
}
