//! Charts, one file per chart, each drawn as PNG and SVG beside the JSON it
//! was drawn from. Text is drawn with DejaVu Sans, vendored under `assets/`
//! (its licence beside it) and embedded, so PNGs render without system font
//! libraries and the build needs no font installed.

mod compare;
mod distribution;
mod runtime;
mod safe_region;
mod search;
mod timeline;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use compare::compare;
pub use safe_region::{kv_points, safe_region};
pub use search::search;
pub use timeline::timeline;

static FONT: &[u8] = include_bytes!("assets/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1000, 560);
const MIB: f64 = 1024.0 * 1024.0;

#[derive(Debug, Clone, thiserror::Error)]
pub enum PlotError {
    #[error("the embedded font did not load")]
    Font,
    #[error("drawing failed: {0}")]
    Draw(String),
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error(transparent)]
    Report(std::sync::Arc<crate::report::ReportError>),
    #[error("{0}: not a report.json (a search.json has no kv-cache runs)")]
    NotAReport(String),
}

fn register_font() -> Result<(), PlotError> {
    static DONE: OnceLock<Result<(), PlotError>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| PlotError::Font)
    })
    .clone()
}

fn err<E: std::fmt::Debug>(e: E) -> PlotError {
    PlotError::Draw(format!("{e:?}"))
}

/// A chart that can be drawn on any backend.
trait Chart {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError>;
}

/// Draw one chart as `stem.png` and `stem.svg`; returns both paths.
fn both(stem: &Path, chart: &impl Chart) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| PlotError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
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
