//! Charts, one file per chart, each drawn as PNG and SVG beside the JSON it
//! was drawn from. Text is drawn with DejaVu Sans, vendored under `assets/`
//! (its licence beside it) and embedded, so PNGs render without system font
//! libraries and the build needs no font installed.

mod axes;
mod compare;
mod distribution;
mod draw;
mod figure;
mod gpu;
mod matrix;
mod render;
mod runtime;
mod safe_region;
mod search;
mod text;
mod timeline;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;

pub use compare::compare;
pub use figure::Figure;
pub use matrix::matrix;
pub use safe_region::{KvPoint, kv_points, safe_region};
pub use search::search;
pub use timeline::timeline;

/// The figures themselves, for pages that inline them.
pub mod figures {
    pub use super::compare::figure as compare;
    pub use super::distribution::figure as distribution;
    pub use super::matrix::figure as matrix;
    pub use super::safe_region::figure as safe_region;
    pub use super::search::figure as search;
    pub use super::timeline::figure as timeline;
}

static FONT: &[u8] = include_bytes!("assets/DejaVuSans.ttf");

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

/// One figure as an SVG document, for pages that inline it.
pub fn svg(fig: &Figure) -> Result<String, PlotError> {
    register_font()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, render::size(fig)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        render::render(fig, &root)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

/// Draw one figure as `stem.png` and `stem.svg`; returns both paths.
fn both(stem: &Path, fig: &Figure) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    if let Some(dir) = stem.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| PlotError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    let size = render::size(fig);
    // The bitmap takes most of the time: the vector copy is drawn meanwhile.
    std::thread::scope(|s| {
        let bitmap = s.spawn(|| {
            let mut pixels = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
                root.fill(&WHITE).map_err(err)?;
                render::render(fig, &root)?;
                root.present().map_err(err)?;
            }
            write_png(&png, &pixels, size)
        });
        let vector = (|| {
            let root = SVGBackend::new(&svg, size).into_drawing_area();
            root.fill(&WHITE).map_err(err)?;
            render::render(fig, &root)?;
            root.present().map_err(err)
        })();
        bitmap
            .join()
            .unwrap_or_else(|_| Err(PlotError::Draw("the bitmap thread panicked".into())))
            .and(vector)
    })?;
    Ok(vec![png, svg])
}

/// A chart's pixels as a PNG: fast deflate (a chart is mostly flat colour,
/// so it compresses well without the default level's search).
fn write_png(path: &Path, rgb: &[u8], size: (u32, u32)) -> Result<(), PlotError> {
    use image::ImageEncoder;
    use image::codecs::png::{CompressionType, FilterType, PngEncoder};
    let io = |e: &dyn std::fmt::Display| PlotError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::create(path).map_err(|e| io(&e))?;
    let mut out = std::io::BufWriter::new(file);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(rgb, size.0, size.1, image::ColorType::Rgb8)
        .map_err(|e| io(&e))?;
    std::io::Write::flush(&mut out).map_err(|e| io(&e))
}
