//! What a chart says, as data: a title that states the finding, panels
//! with their axes, marks and labels, and a legend. Each chart builds one
//! of these from a report; `render` lays it out, places the labels and
//! draws it, the same way on every backend.

use plotters::style::RGBColor;

use super::axes::Axis;

/// Okabe-Ito's colours (Color Universal Design), told apart by readers with
/// any of the common colour-vision deficiencies; yellow is left out (too
/// light on white), vermillion is kept for kills.
pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const PURPLE: RGBColor = RGBColor(204, 121, 167);
pub const SKY: RGBColor = RGBColor(86, 180, 233);
pub const BLACK: RGBColor = RGBColor(0, 0, 0);
pub const KILL: RGBColor = RGBColor(213, 94, 0);
pub const GREY: RGBColor = RGBColor(120, 120, 120);

/// Colours for series, in order; kills keep `KILL` to themselves.
pub const SERIES: [RGBColor; 6] = [BLUE, ORANGE, GREEN, PURPLE, SKY, BLACK];

/// A colour mixed toward white: `keep` of it, the rest white.
pub fn light(c: RGBColor, keep: f64) -> RGBColor {
    let mix = |v: u8| (f64::from(v) * keep + 255.0 * (1.0 - keep)).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dash {
    Solid,
    Dashed,
    Dotted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A kill.
    Cross,
    /// A point that held.
    Dot,
    /// A point that held with a cost (preemptions).
    Ring,
    /// The settings asked about.
    Triangle,
    /// An event on the way (a preemption, a restart).
    Diamond,
}

/// Something drawn in data coordinates, clipped to its panel.
#[derive(Debug, Clone, PartialEq)]
pub enum Mark {
    Line {
        points: Vec<(f64, f64)>,
        color: RGBColor,
        width: u32,
        dash: Dash,
    },
    /// Filled from `base` up to the points.
    Area {
        points: Vec<(f64, f64)>,
        base: f64,
        color: RGBColor,
    },
    /// A full-height shade from x0 to x1.
    Shade { x0: f64, x1: f64, color: RGBColor },
    /// A horizontal line across the panel at y.
    HRule {
        y: f64,
        color: RGBColor,
        width: u32,
        dash: Dash,
    },
    /// A vertical line from the bottom to the top of the panel at x.
    VRule {
        x: f64,
        color: RGBColor,
        width: u32,
        dash: Dash,
    },
    Marker {
        at: (f64, f64),
        shape: Shape,
        color: RGBColor,
    },
    Bar {
        x0: f64,
        x1: f64,
        y: f64,
        color: RGBColor,
    },
}

/// Where a label wants to be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Anchor {
    /// Near a point, with a leader line if it had to move away.
    Point(f64, f64),
    /// Along a horizontal line at y.
    HRule(f64),
    /// In the room above the panel, over x, with a leader line down to it.
    Above(f64),
    /// Under the panel, centred on x (a category's name).
    Below(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub text: String,
    pub color: RGBColor,
    pub at: Anchor,
    /// How the legend shows it when it fits nowhere on the chart.
    pub swatch: Swatch,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Swatch {
    Line(RGBColor, Dash),
    Area(RGBColor),
    Marker(Shape, RGBColor),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub text: String,
    pub swatch: Swatch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub x: Axis,
    pub y: Axis,
    /// The y axis's name, written above it with its unit.
    pub y_title: String,
    /// Share of the height among the figure's panels.
    pub weight: f64,
    /// Rows of room above the panel for `Anchor::Above` labels.
    pub rows_above: u32,
    /// Category names under the x axis instead of numeric ticks.
    pub categories: bool,
    pub marks: Vec<Mark>,
    pub labels: Vec<Label>,
}

impl Panel {
    /// `n` categories side by side (slot i centred on x = i, at least three
    /// slots wide so one is not a wall) over a bytes axis from 0 to just
    /// above `hi`.
    pub fn categories(n: usize, hi: f64, y_title: impl Into<String>) -> Panel {
        use super::axes::{Scale, Unit};
        let n = n.max(1) as f64;
        let extra = ((3.0 - n) / 2.0).max(0.0);
        let x = Axis {
            lo: -0.5 - extra,
            hi: n - 0.5 + extra,
            log: false,
            unit: Unit::Count,
        };
        let y = Axis::linear(0.0, hi * 1.15, Unit::Bytes(Scale::for_max(hi)));
        let mut p = Panel::new(x, y, y_title);
        p.categories = true;
        p
    }

    pub fn new(x: Axis, y: Axis, y_title: impl Into<String>) -> Panel {
        Panel {
            x,
            y,
            y_title: y_title.into(),
            weight: 1.0,
            rows_above: 0,
            categories: false,
            marks: Vec::new(),
            labels: Vec::new(),
        }
    }

    pub fn mark(&mut self, m: Mark) {
        self.marks.push(m);
    }

    /// A kill (an OOM kill, an eviction, a CUDA OOM): a cross and its label.
    pub fn kill(&mut self, at: (f64, f64), text: impl Into<String>) {
        self.mark(Mark::Marker {
            at,
            shape: Shape::Cross,
            color: KILL,
        });
        self.label(
            text,
            KILL,
            Anchor::Point(at.0, at.1),
            Swatch::Marker(Shape::Cross, KILL),
        );
    }

    pub fn label(&mut self, text: impl Into<String>, color: RGBColor, at: Anchor, swatch: Swatch) {
        self.labels.push(Label {
            text: text.into(),
            color,
            at,
            swatch,
        });
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// The finding, in a user's words (`OOMKilled at 3.07 s, 64Mi limit reached`).
    pub title: String,
    /// What ran: scenario, cgroup version, device.
    pub subtitle: String,
    /// Stacked top to bottom; they share the bottom one's x axis title.
    pub panels: Vec<Panel>,
    pub x_title: String,
    pub legend: Vec<Entry>,
}

impl Figure {
    pub fn entry(&mut self, text: impl Into<String>, swatch: Swatch) {
        self.legend.push(Entry {
            text: text.into(),
            swatch,
        });
    }
}
