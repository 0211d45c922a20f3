//! `graph`: every chart the analysis has data for, each as a 300-DPI PNG and an SVG.
//! Reads files only. Fonts are embedded, so it works on a machine with none installed.
//! A chart is one file under `charts/` and one line in its registry (`charts::CHARTS`),
//! which `graph` and report.html both read.

pub mod bars;
pub mod charts;
pub mod data;
pub mod inputs;
pub mod style;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::UsageError;
use crate::format::summary::Row;
pub use data::{Data, SCENARIOS};
pub use inputs::Inputs;

/// 10 inches at 300 DPI.
pub const WIDTH: u32 = 3000;
pub const DPI: u32 = 300;

/// Reads `summary.csv`; a malformed file is one line naming it (and the line).
pub fn read_summary(path: &Path) -> Result<Vec<Row>> {
    crate::format::summary::read_csv(path)
}

/// A chart that can draw itself on any backend.
pub trait Chart {
    /// The file name, without extension.
    fn name(&self) -> String;
    fn height(&self) -> u32 {
        1800
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Turns plotters' backend-generic errors into anyhow errors.
pub trait DrawResult<T> {
    fn drawn(self) -> Result<T>;
}

impl<T, E: std::fmt::Debug> DrawResult<T> for std::result::Result<T, E> {
    fn drawn(self) -> Result<T> {
        self.map_err(|e| anyhow!("drawing failed: {e:?}"))
    }
}

/// Writes `NAME.png` (300 DPI in the file itself) and `NAME.svg`; returns both paths.
pub fn render<C: Chart>(chart: &C, dir: &Path) -> Result<Vec<PathBuf>> {
    style::register_fonts();
    let (w, h) = (WIDTH, chart.height());
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).drawn()?;
        chart.draw(&root)?;
        // present() reports errors the backend's Drop would swallow.
        root.present().drawn()?;
    }
    let png_path = dir.join(format!("{}.png", chart.name()));
    crate::format::files::write_atomic(&png_path, &encode_png(&buf, w, h)?)?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        root.fill(&WHITE).drawn()?;
        chart.draw(&root)?;
        root.present().drawn()?;
    }
    let svg_path = dir.join(format!("{}.svg", chart.name()));
    crate::format::files::write_atomic(&svg_path, svg.as_bytes())?;
    Ok(vec![png_path, svg_path])
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        // 300 dots per inch = 11811 per metre, the unit PNG's pHYs chunk uses.
        enc.set_pixel_dims(Some(png::PixelDimensions {
            xppu: 11811,
            yppu: 11811,
            unit: png::Unit::Meter,
        }));
        let mut writer = enc.write_header().context("encoding PNG")?;
        writer.write_image_data(rgb).context("encoding PNG")?;
        writer.finish().context("encoding PNG")?;
    }
    Ok(out)
}

/// What drawing an analysis folder came to: the files, the tests whose timelines could
/// not be drawn (one line each), and what the seed's charts lack.
#[derive(Default)]
pub struct Drawn {
    pub files: Vec<PathBuf>,
    pub failed: Vec<String>,
    pub missing: Vec<String>,
}

/// Draws every registered chart the analysis beside `summary` (summary.csv) has data
/// for into `out`: the seed's (in one durability tier: `tier`, else the strictest both
/// backends ran in), the capacity and horizon charts, and one timeline per test with
/// `timelines`, or when the folder's tests are none of the seed's (run by hand).
pub fn draw_folder(
    summary: &Path,
    out: &Path,
    tier: Option<&str>,
    timelines: bool,
) -> Result<Drawn> {
    let inputs = Inputs::read(summary, tier, timelines)?;
    if inputs.is_empty() {
        return Err(UsageError::new(format!(
            "{}: no test, sweep or horizon run to draw; run a command that writes results, then analyze",
            summary.display()
        ))
        .into());
    }
    crate::format::files::ensure_writable(out, "--output")?;
    let mut drawn = Drawn {
        missing: inputs
            .seed
            .as_ref()
            .map(|d| d.missing.clone())
            .unwrap_or_default(),
        ..Drawn::default()
    };
    for chart in charts::CHARTS {
        chart.draw(&inputs, out, &mut drawn)?;
    }
    Ok(drawn)
}
