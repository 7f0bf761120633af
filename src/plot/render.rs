//! Lays a `Figure` out and draws it: title, panels with their grids and
//! ticks, marks clipped to their panel, labels put where they cover nothing
//! (or moved to the legend), and the legend in a band under the chart,
//! never on the data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axes::Axis;
use super::draw::{marker, polyline, pt, style, swatch, text};
use super::figure::{Anchor, Entry, Figure, GREY, Label, Mark, Panel};
use super::text::{Align, Placer, Rect, Spot, along, around, text_box, width};
use super::{PlotError, err};

const PAD: f64 = 12.0;
const TITLE: f64 = 19.0;
const SMALL: f64 = 13.0;
const TICK: f64 = 12.0;
const ROW: f64 = 18.0;
/// A row of labels above a panel: a label's box and the placer's padding.
const ROW_ABOVE: f64 = 19.0;

/// The canvas a figure is drawn on: taller for each panel after the first.
pub fn size(fig: &Figure) -> (u32, u32) {
    (1000, 560 + 190 * fig.panels.len().saturating_sub(1) as u32)
}

/// A panel's place on the canvas.
struct Frame {
    rect: Rect,
}

impl Frame {
    fn px(&self, p: &Panel, (x, y): (f64, f64)) -> (f64, f64) {
        let r = &self.rect;
        let fx = p.x.frac(x).clamp(0.0, 1.0);
        let fy = p.y.frac(y).clamp(0.0, 1.0);
        (r.x0 + fx * (r.x1 - r.x0), r.y1 - fy * (r.y1 - r.y0))
    }
}

struct Layout {
    frames: Vec<Frame>,
    legend_top: f64,
    legend_rows: Vec<Vec<(f64, usize)>>,
    title_size: f64,
}

fn entry_width(e: &Entry) -> f64 {
    26.0 + width(&e.text, SMALL) + 18.0
}

fn layout(fig: &Figure, legend: &[Entry], (w, h): (f64, f64)) -> Layout {
    // Legend rows, flowing left to right.
    let mut rows: Vec<Vec<(f64, usize)>> = Vec::new();
    let mut x = PAD;
    for (i, e) in legend.iter().enumerate() {
        let ew = entry_width(e);
        if rows.is_empty() || (x + ew > w - PAD && x > PAD) {
            rows.push(Vec::new());
            x = PAD;
        }
        if let Some(row) = rows.last_mut() {
            row.push((x, i));
        }
        x += ew;
    }
    let legend_top = h - PAD - rows.len() as f64 * ROW;
    let x_title_y = legend_top - 12.0;
    let bottom = x_title_y - 38.0;
    let mut title_size = TITLE;
    while title_size > 13.0 && width(&fig.title, title_size) > w - 2.0 * PAD {
        title_size -= 1.0;
    }
    let top = PAD + title_size + 26.0;
    let left = PAD
        + fig
            .panels
            .iter()
            .flat_map(|p| {
                let widths: Vec<f64> =
                    p.y.ticks()
                        .iter()
                        .map(|t| width(&p.y.label(*t), TICK))
                        .collect();
                widths
            })
            .fold(24.0, f64::max)
        + 10.0;
    let right = w - PAD - 14.0;
    let n = fig.panels.len();
    let room: f64 = fig
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            28.0 + f64::from(p.rows_above) * ROW_ABOVE + if i + 1 < n { 30.0 } else { 0.0 }
        })
        .sum();
    let total: f64 = fig.panels.iter().map(|p| p.weight).sum::<f64>().max(1e-9);
    let usable = (bottom - top - room).max(40.0);
    let mut y = top;
    let frames = fig
        .panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            y += 28.0 + f64::from(p.rows_above) * ROW_ABOVE;
            let height = usable * p.weight / total;
            let rect = Rect::new(left, y, right, y + height);
            y += height + if i + 1 < n { 30.0 } else { 0.0 };
            Frame { rect }
        })
        .collect();
    Layout {
        frames,
        legend_top,
        legend_rows: rows,
        title_size,
    }
}

/// Points every few pixels along a polyline, for labels to keep off.
fn trace(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for pair in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()) / 4.0).ceil().max(1.0) as usize;
        for k in 0..steps {
            let f = k as f64 / steps as f64;
            out.push((x0 + (x1 - x0) * f, y0 + (y1 - y0) * f));
        }
    }
    out.extend(points.last().copied());
    out
}

/// A series in pixels, one point per pixel column at most (its first,
/// lowest and highest there kept, so spikes survive).
fn pixels(frame: &Frame, p: &Panel, points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(points.len().min(4096));
    let mut column: Option<(i64, f64, f64)> = None;
    for &d in points {
        let (x, y) = frame.px(p, d);
        let col = x.round() as i64;
        match column {
            Some((c, lo, hi)) if c == col => {
                if y < lo || y > hi {
                    out.push((x, y));
                    column = Some((c, lo.min(y), hi.max(y)));
                }
            }
            _ => {
                out.push((x, y));
                column = Some((col, y, y));
            }
        }
    }
    out
}

fn marker_box((x, y): (f64, f64)) -> Rect {
    Rect::new(x - 7.0, y - 7.0, x + 7.0, y + 7.0)
}

fn rule_points(frame: &Frame, p: &Panel, m: &Mark) -> Vec<(f64, f64)> {
    let r = &frame.rect;
    match *m {
        Mark::HRule { y, .. } if in_range(&p.y, y) => {
            let (_, py) = frame.px(p, (p.x.lo, y));
            trace(&[(r.x0, py), (r.x1, py)])
        }
        Mark::VRule { x, .. } if in_range(&p.x, x) => {
            let (px, _) = frame.px(p, (x, p.y.lo));
            trace(&[(px, r.y0), (px, r.y1)])
        }
        _ => Vec::new(),
    }
}

fn in_range(a: &Axis, v: f64) -> bool {
    (-1e-9..=1.0 + 1e-9).contains(&a.frac(v))
}

/// Where each label went: on the chart, or (None) to the legend.
fn place_labels(fig: &Figure, lay: &Layout, w: f64, moved: &[usize]) -> Vec<Option<Spot>> {
    let mut placer = Placer::new(Rect::new(0.0, 0.0, w, lay.legend_top - 2.0));
    placer.block(text_box(
        w / 2.0,
        PAD + lay.title_size / 2.0,
        Align::Center,
        lay.title_size,
        &fig.title,
    ));
    placer.block(text_box(
        w / 2.0,
        PAD + lay.title_size + 12.0,
        Align::Center,
        SMALL,
        &fig.subtitle,
    ));
    let last = lay.frames.len().saturating_sub(1);
    for (i, (p, f)) in fig.panels.iter().zip(&lay.frames).enumerate() {
        for (s, (x, y), a, size) in furniture(p, f, i == last, &fig.x_title) {
            placer.block(text_box(x, y, a, size, &s));
        }
        for m in &p.marks {
            match m {
                Mark::Line { points, .. } => placer.avoid(trace(&pixels(f, p, points))),
                Mark::Area { points, .. } => placer.avoid(pixels(f, p, points)),
                Mark::Marker { at, .. } => placer.block(marker_box(f.px(p, *at))),
                Mark::HRule { .. } | Mark::VRule { .. } => placer.avoid(rule_points(f, p, m)),
                Mark::Bar { x0, x1, y, .. } => {
                    let (a, b) = (f.px(p, (*x0, p.y.lo.max(0.0))), f.px(p, (*x1, *y)));
                    placer.block(Rect::new(
                        a.0.min(b.0),
                        a.1.min(b.1),
                        a.0.max(b.0),
                        a.1.max(b.1),
                    ));
                }
                Mark::Shade { .. } => {}
            }
        }
    }
    let mut out = Vec::new();
    let mut k = 0;
    for (p, f) in fig.panels.iter().zip(&lay.frames) {
        for l in &p.labels {
            let spot = if moved.contains(&k) {
                None
            } else {
                placer.place(&l.text, SMALL, &tries(p, f, l))
            };
            out.push(spot);
            k += 1;
        }
    }
    out
}

fn tries(p: &Panel, f: &Frame, l: &Label) -> Vec<(f64, f64, Align)> {
    let r = &f.rect;
    match l.at {
        Anchor::Point(x, y) => around(f.px(p, (x, y)), SMALL),
        Anchor::HRule(y) => {
            let (_, py) = f.px(p, (p.x.lo, y));
            along(r.x0, r.x1, py, SMALL)
        }
        Anchor::Above(x) => {
            let (px, _) = f.px(p, (x, p.y.lo));
            let mut t = Vec::new();
            for shift in
                (0..30).map(|k| f64::from((k + 1) / 2) * 14.0 * if k % 2 == 0 { 1.0 } else { -1.0 })
            {
                for row in 0..p.rows_above.max(1) {
                    t.push((
                        px + shift,
                        r.y0 - 9.0 - f64::from(row) * ROW_ABOVE,
                        Align::Center,
                    ));
                }
            }
            t
        }
        Anchor::Below(x) => {
            let (px, _) = f.px(p, (x, p.y.lo));
            vec![
                (px, r.y1 + 12.0, Align::Center),
                (px, r.y1 + 27.0, Align::Center),
            ]
        }
    }
}

/// The fixed texts of a panel: tick labels, the y title, the x title
/// under the bottom panel.
fn furniture(
    p: &Panel,
    f: &Frame,
    bottom: bool,
    x_title: &str,
) -> Vec<(String, (f64, f64), Align, f64)> {
    let r = &f.rect;
    let mut out = Vec::new();
    for t in p.y.ticks() {
        let (_, y) = f.px(p, (p.x.lo, t));
        out.push((p.y.label(t), (r.x0 - 6.0, y), Align::Right, TICK));
    }
    if !p.categories {
        let ticks = p.x.ticks();
        for t in &ticks {
            let (x, _) = f.px(p, (*t, p.y.lo));
            out.push((p.x.label(*t), (x, r.y1 + 15.0), Align::Center, TICK));
        }
    }
    let unit = p.y.unit_name();
    let title = match (p.y_title.is_empty(), unit.is_empty()) {
        (_, true) => p.y_title.clone(),
        (true, false) => unit.to_string(),
        (false, false) => format!("{} ({unit})", p.y_title),
    };
    out.push((
        title,
        (PAD, r.y0 - 18.0 - f64::from(p.rows_above) * ROW_ABOVE),
        Align::Left,
        SMALL,
    ));
    if bottom && !x_title.is_empty() {
        let unit = p.x.unit_name();
        let t = if unit.is_empty() || p.categories {
            x_title.to_string()
        } else {
            format!("{x_title} ({unit})")
        };
        out.push((t, ((r.x0 + r.x1) / 2.0, r.y1 + 34.0), Align::Center, SMALL));
    }
    out
}

fn draw_marks<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    p: &Panel,
    f: &Frame,
) -> Result<(), PlotError> {
    let r = &f.rect;
    // Shades and areas first, lines over them, markers on top.
    for m in &p.marks {
        match m {
            Mark::Shade { x0, x1, color } => {
                let (a, _) = f.px(p, (*x0, p.y.lo));
                let (b, _) = f.px(p, (*x1, p.y.lo));
                root.draw(&Rectangle::new(
                    [pt((a, r.y0)), pt((b, r.y1))],
                    color.filled(),
                ))
                .map_err(err)?;
            }
            Mark::Area {
                points,
                base,
                color,
            } if !points.is_empty() => {
                let mut poly: Vec<(i32, i32)> = Vec::with_capacity(points.len() + 2);
                poly.push(pt(f.px(p, (points[0].0, *base))));
                poly.extend(pixels(f, p, points).into_iter().map(pt));
                poly.push(pt(f.px(p, (points[points.len() - 1].0, *base))));
                root.draw(&Polygon::new(poly, color.filled()))
                    .map_err(err)?;
            }
            Mark::Bar { x0, x1, y, color } => {
                let a = f.px(p, (*x0, p.y.lo.max(0.0)));
                let b = f.px(p, (*x1, *y));
                root.draw(&Rectangle::new([pt(a), pt(b)], color.filled()))
                    .map_err(err)?;
            }
            _ => {}
        }
    }
    for t in p.y.ticks() {
        let (_, y) = f.px(p, (p.x.lo, t));
        root.draw(&PathElement::new(
            vec![pt((r.x0, y)), pt((r.x1, y))],
            RGBColor(225, 225, 225).stroke_width(1),
        ))
        .map_err(err)?;
    }
    for m in &p.marks {
        match m {
            Mark::Line {
                points,
                color,
                width,
                dash,
            } if points.len() > 1 => {
                let px: Vec<(i32, i32)> = pixels(f, p, points).into_iter().map(pt).collect();
                polyline(root, px, style(*color, *width), *dash)?;
            }
            Mark::HRule {
                y,
                color,
                width,
                dash,
            } if in_range(&p.y, *y) => {
                let (_, py) = f.px(p, (p.x.lo, *y));
                polyline(
                    root,
                    vec![pt((r.x0, py)), pt((r.x1, py))],
                    style(*color, *width),
                    *dash,
                )?;
            }
            Mark::VRule {
                x,
                color,
                width,
                dash,
            } if in_range(&p.x, *x) => {
                let (px, _) = f.px(p, (*x, p.y.lo));
                polyline(
                    root,
                    vec![pt((px, r.y0)), pt((px, r.y1))],
                    style(*color, *width),
                    *dash,
                )?;
            }
            _ => {}
        }
    }
    for m in &p.marks {
        if let Mark::Marker { at, shape, color } = m {
            marker(root, pt(f.px(p, *at)), *shape, *color)?;
        }
    }
    let axis = BLACK.stroke_width(1);
    root.draw(&PathElement::new(
        vec![pt((r.x0, r.y0)), pt((r.x0, r.y1)), pt((r.x1, r.y1))],
        axis,
    ))
    .map_err(err)
}

/// Draw `fig` on `root`, which must be `size(fig)`.
pub fn render<DB: DrawingBackend>(
    fig: &Figure,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), PlotError> {
    let (w, h) = root.dim_in_pixel();
    let (w, h) = (f64::from(w), f64::from(h));
    let labels: Vec<&Label> = fig.panels.iter().flat_map(|p| &p.labels).collect();
    // Labels that fit nowhere join the legend; the legend's new rows take
    // room from the chart, so place again until nothing more moves.
    let mut moved: Vec<usize> = Vec::new();
    let (lay, spots, legend) = loop {
        let mut legend = fig.legend.clone();
        legend.extend(moved.iter().map(|&k| Entry {
            text: labels[k].text.clone(),
            swatch: labels[k].swatch,
        }));
        let lay = layout(fig, &legend, (w, h));
        let spots = place_labels(fig, &lay, w, &moved);
        let more: Vec<usize> = (0..spots.len())
            .filter(|k| spots[*k].is_none() && !moved.contains(k))
            .collect();
        if more.is_empty() {
            break (lay, spots, legend);
        }
        moved.extend(more);
    };
    let last = lay.frames.len().saturating_sub(1);
    for (i, (p, f)) in fig.panels.iter().zip(&lay.frames).enumerate() {
        draw_marks(root, p, f)?;
        for (s, at, a, size) in furniture(p, f, i == last, &fig.x_title) {
            text(root, &s, at, a, size, BLACK)?;
        }
    }
    let mut k = 0;
    for (p, f) in fig.panels.iter().zip(&lay.frames) {
        for l in &p.labels {
            if let Some(spot) = spots[k] {
                leader(root, p, f, l, &spot)?;
                text(root, &l.text, (spot.x, spot.y), spot.align, SMALL, l.color)?;
            }
            k += 1;
        }
    }
    text(
        root,
        &fig.title,
        (w / 2.0, PAD + lay.title_size / 2.0),
        Align::Center,
        lay.title_size,
        BLACK,
    )?;
    text(
        root,
        &fig.subtitle,
        (w / 2.0, PAD + lay.title_size + 12.0),
        Align::Center,
        SMALL,
        GREY,
    )?;
    for (r, row) in lay.legend_rows.iter().enumerate() {
        let y = lay.legend_top + ROW * (r as f64 + 0.5);
        for &(x, i) in row {
            swatch(root, (x, y), legend[i].swatch)?;
            text(
                root,
                &legend[i].text,
                (x + 26.0, y),
                Align::Left,
                SMALL,
                BLACK,
            )?;
        }
    }
    Ok(())
}

/// A thin line from a label's anchor to a label that had to move away.
fn leader<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    p: &Panel,
    f: &Frame,
    l: &Label,
    spot: &Spot,
) -> Result<(), PlotError> {
    let from = match l.at {
        Anchor::Point(x, y) => f.px(p, (x, y)),
        Anchor::Above(x) => (f.px(p, (x, p.y.lo)).0, f.rect.y0),
        Anchor::HRule(_) | Anchor::Below(_) => return Ok(()),
    };
    let to = spot.rect.nearest(from);
    if ((to.0 - from.0).powi(2) + (to.1 - from.1).powi(2)).sqrt() < 12.0 {
        return Ok(());
    }
    root.draw(&PathElement::new(
        vec![pt(from), pt(to)],
        super::figure::light(l.color, 0.6).stroke_width(1),
    ))
    .map_err(err)
}
