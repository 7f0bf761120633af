//! The drawing primitives every chart is made of, in canvas pixels: text
//! centred on its anchor, solid, dashed and dotted lines, markers, and the
//! legend's swatches.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::figure::{Dash, Shape, Swatch};
use super::text::Align;
use super::{PlotError, err};

/// A text at (x, y), centred vertically, as every label on a chart is.
pub(super) fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    (x, y): (f64, f64),
    align: Align,
    size: f64,
    color: RGBColor,
) -> Result<(), PlotError> {
    let h = match align {
        Align::Left => HPos::Left,
        Align::Center => HPos::Center,
        Align::Right => HPos::Right,
    };
    let style = ("sans-serif", size)
        .into_font()
        .color(&color)
        .pos(Pos::new(h, VPos::Center));
    root.draw(&Text::new(s.to_string(), (x as i32, y as i32), style))
        .map_err(err)
}

pub(super) fn pt((x, y): (f64, f64)) -> (i32, i32) {
    (x.round() as i32, y.round() as i32)
}

pub(super) fn style(color: RGBColor, width: u32) -> ShapeStyle {
    color.stroke_width(width)
}

pub(super) fn polyline<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    points: Vec<(i32, i32)>,
    s: ShapeStyle,
    dash: Dash,
) -> Result<(), PlotError> {
    match dash {
        Dash::Solid => root.draw(&PathElement::new(points, s)).map_err(err),
        Dash::Dashed => root
            .draw(&plotters::element::DashedPathElement::new(points, 8, 5, s))
            .map_err(err),
        Dash::Dotted => root
            .draw(&plotters::element::DashedPathElement::new(points, 2, 4, s))
            .map_err(err),
    }
}

pub(super) fn marker<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    shape: Shape,
    color: RGBColor,
) -> Result<(), PlotError> {
    match shape {
        Shape::Cross => root.draw(&Cross::new((x, y), 6, color.stroke_width(3))),
        Shape::Dot => root.draw(&Circle::new((x, y), 5, color.filled())),
        Shape::Ring => root.draw(&Circle::new((x, y), 5, color.stroke_width(2))),
        Shape::Triangle => root.draw(&TriangleMarker::new((x, y), 7, color.filled())),
        Shape::Diamond => root.draw(&Polygon::new(
            vec![(x, y - 6), (x + 6, y), (x, y + 6), (x - 6, y)],
            color.filled(),
        )),
    }
    .map_err(err)
}

pub(super) fn swatch<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    (x, y): (f64, f64),
    s: Swatch,
) -> Result<(), PlotError> {
    let (x, y) = pt((x, y));
    match s {
        Swatch::Line(c, dash) => polyline(root, vec![(x, y), (x + 20, y)], style(c, 2), dash),
        Swatch::Area(c) => root
            .draw(&Rectangle::new([(x, y - 5), (x + 20, y + 5)], c.filled()))
            .map_err(err),
        Swatch::Marker(shape, c) => marker(root, (x + 10, y), shape, c),
    }
}
