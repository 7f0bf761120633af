//! Text on a chart: how much room a label takes (measured with the embedded
//! font itself), and a placer that puts each label where it overlaps no
//! other label, no marker and no data, inside the canvas, or reports that
//! it found no such place (the chart then moves it to the legend).
//!
//! Every text is drawn centred vertically on its anchor point, so one box
//! rule covers it in both backends: the bitmap backend draws glyphs at the
//! style's size, the SVG backend writes `font-size` as that size / 1.24 with
//! `dy="0.5ex"`; the box below holds either.

use ab_glyph::{Font, FontRef, ScaleFont};
use std::sync::OnceLock;

/// A rectangle in canvas pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl Rect {
    pub fn new(x0: f64, y0: f64, x1: f64, y1: f64) -> Rect {
        Rect { x0, y0, x1, y1 }
    }

    pub fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    pub fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.x1 <= o.x1 && self.y0 >= o.y0 && self.y1 <= o.y1
    }

    pub fn contains(&self, (x, y): (f64, f64)) -> bool {
        x >= self.x0 && x <= self.x1 && y >= self.y0 && y <= self.y1
    }

    fn grow(&self, by: f64) -> Rect {
        Rect::new(self.x0 - by, self.y0 - by, self.x1 + by, self.y1 + by)
    }

    /// The point of this box nearest to `p`, for a leader line.
    pub fn nearest(&self, (x, y): (f64, f64)) -> (f64, f64) {
        (x.clamp(self.x0, self.x1), y.clamp(self.y0, self.y1))
    }
}

/// Where a text's x is: its start, middle or end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Center,
    Right,
}

fn font() -> Option<&'static FontRef<'static>> {
    static FONT: OnceLock<Option<FontRef<'static>>> = OnceLock::new();
    FONT.get_or_init(|| FontRef::try_from_slice(super::FONT).ok())
        .as_ref()
}

/// A text's advance width in pixels at `size`, as the bitmap backend lays
/// it out (the SVG's glyphs are 1/1.24 of it).
pub fn width(text: &str, size: f64) -> f64 {
    let Some(font) = font() else {
        return text.chars().count() as f64 * size * 0.65;
    };
    let scaled = font.as_scaled(size as f32);
    let mut w = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        if let Some(p) = prev {
            w += scaled.kern(p, id);
        }
        w += scaled.h_advance(id);
        prev = Some(id);
    }
    f64::from(w)
}

/// The box a text takes when drawn at (x, y) with `align`, vertically centred.
pub fn text_box(x: f64, y: f64, align: Align, size: f64, text: &str) -> Rect {
    let w = width(text, size);
    let x0 = match align {
        Align::Left => x,
        Align::Center => x - w / 2.0,
        Align::Right => x - w,
    };
    Rect::new(x0, y - 0.72 * size, x0 + w, y + 0.42 * size)
}

/// One label placed: where to draw it and the box it takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spot {
    pub x: f64,
    pub y: f64,
    pub align: Align,
    pub rect: Rect,
}

/// Keeps the boxes taken so far and the data points labels must not cover.
pub struct Placer {
    bounds: Rect,
    taken: Vec<Rect>,
    points: Vec<(f64, f64)>,
}

/// Room kept around each placed label.
const PAD: f64 = 2.0;

impl Placer {
    pub fn new(bounds: Rect) -> Placer {
        Placer {
            bounds,
            taken: Vec::new(),
            points: Vec::new(),
        }
    }

    /// Mark a box as taken (a marker, a drawn title, the axes' labels).
    pub fn block(&mut self, r: Rect) {
        self.taken.push(r);
    }

    /// Data a label must not cover, in canvas pixels.
    pub fn avoid(&mut self, points: impl IntoIterator<Item = (f64, f64)>) {
        self.points.extend(points);
    }

    /// Whether `r` is free: inside the canvas, over no label or marker,
    /// covering no data point.
    pub fn free(&self, r: &Rect) -> bool {
        let padded = r.grow(PAD);
        r.inside(&self.bounds)
            && !self.taken.iter().any(|t| t.overlaps(&padded))
            && !self.points.iter().any(|&p| padded.contains(p))
    }

    /// The first of `tries` (x, y, align) where `text` fits; taken if found.
    pub fn place(&mut self, text: &str, size: f64, tries: &[(f64, f64, Align)]) -> Option<Spot> {
        let spot = tries.iter().find_map(|&(x, y, align)| {
            let rect = text_box(x, y, align, size, text);
            self.free(&rect).then_some(Spot { x, y, align, rect })
        })?;
        self.taken.push(spot.rect);
        Some(spot)
    }
}

/// Places around a point: right, left, above, below and the corners, at
/// growing distances, the nearest first.
pub fn around((x, y): (f64, f64), size: f64) -> Vec<(f64, f64, Align)> {
    let mut tries = Vec::new();
    for step in 1..=6 {
        let d = 6.0 + f64::from(step - 1) * size;
        let v = 0.9 * size + f64::from(step - 1) * size;
        tries.extend([
            (x + d, y, Align::Left),
            (x - d, y, Align::Right),
            (x, y - v, Align::Center),
            (x, y + v, Align::Center),
            (x + d, y - v, Align::Left),
            (x - d, y - v, Align::Right),
            (x + d, y + v, Align::Left),
            (x - d, y + v, Align::Right),
        ]);
    }
    tries
}

/// Places along a horizontal line from x0 to x1 at y: just above it, then
/// just below, from the left end to the right.
pub fn along(x0: f64, x1: f64, y: f64, size: f64) -> Vec<(f64, f64, Align)> {
    let mut tries = Vec::new();
    for k in 0..=8 {
        let x = x0 + 4.0 + (x1 - x0 - 8.0) * f64::from(k) / 8.0;
        let align = if k == 8 { Align::Right } else { Align::Left };
        tries.push((x, y - 0.75 * size, align));
        tries.push((x, y + 0.95 * size, align));
    }
    tries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_come_from_the_font() {
        let narrow = width("iiii", 14.0);
        let wide = width("WWWW", 14.0);
        assert!(wide > 2.0 * narrow, "{wide} vs {narrow}");
        assert!((width("abc", 28.0) - 2.0 * width("abc", 14.0)).abs() < 1.0);
    }

    #[test]
    fn a_label_never_lands_on_another_or_on_data() {
        let mut p = Placer::new(Rect::new(0.0, 0.0, 400.0, 300.0));
        p.avoid([(120.0, 100.0)]);
        let first = p.place("limit 256Mi", 13.0, &around((100.0, 100.0), 13.0));
        let second = p.place("request 256Mi", 13.0, &around((100.0, 100.0), 13.0));
        let (a, b) = (first.unwrap().rect, second.unwrap().rect);
        assert!(!a.overlaps(&b));
        assert!(!a.contains((120.0, 100.0)) && !b.contains((120.0, 100.0)));
        // Off the canvas is never a place.
        assert!(p.place("x", 13.0, &[(399.0, 150.0, Align::Left)]).is_none());
    }
}
