//! `graph`: the seed's six charts from `summary.csv`, each as a 300-DPI PNG and an SVG.
//! Reads the CSV only. Fonts are embedded, so it works on a machine with none installed.

pub mod capacity;
pub mod charts;
pub mod horizon;
pub mod style;
pub mod timeline;

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::UsageError;
use crate::format::summary::Row;

/// 10 inches at 300 DPI.
pub const WIDTH: u32 = 3000;
pub const DPI: u32 = 300;

/// The rows a chart draws, and what is missing from them.
pub struct Data {
    /// One row per test; repeated runs pooled into their medians (intervals kept).
    pub rows: Vec<Row>,
    /// Every run, for the per-run spread.
    pub runs: Vec<Row>,
    pub impls: Vec<String>,
    pub scenarios: Vec<String>,
    /// Said on the charts and on the console: backends, scenarios or tests not drawn.
    pub missing: Vec<String>,
    pub smoke: bool,
}

pub const SCENARIOS: [&str; 3] = ["cold", "warm", "load"];

impl Data {
    /// The rows of one durability tier (`tier`, or the strictest both backends ran in,
    /// else the strictest): designs of different tiers are never drawn as one ranking.
    /// `None` when no complete cold, warm or load test is among them.
    pub fn from_rows(all: Vec<Row>, tier: Option<&str>) -> Result<Option<Data>, UsageError> {
        let mut missing = vec![];
        let all = one_tier(all, tier, &mut missing)?;
        let incomplete: Vec<String> = all
            .iter()
            .filter(|r| !r.complete)
            .map(|r| r.test.clone())
            .collect();
        if !incomplete.is_empty() {
            missing.push(format!(
                "incomplete tests left out: {}",
                incomplete.join(", ")
            ));
        }
        let runs: Vec<Row> = all
            .into_iter()
            .filter(|r| r.complete && SCENARIOS.contains(&r.scenario.as_str()))
            .collect();
        let rows = crate::format::summary::pooled(&runs);
        if rows.is_empty() {
            return Ok(None);
        }
        // In summary.csv's order (analyze sorts the designs).
        let mut impls: Vec<String> = vec![];
        for r in &rows {
            if !impls.contains(&r.variant()) {
                impls.push(r.variant());
            }
        }
        let scenarios: Vec<String> = SCENARIOS
            .iter()
            .filter(|s| rows.iter().any(|r| r.scenario == **s))
            .map(|s| s.to_string())
            .collect();
        if !rows.iter().any(|r| r.backend == "valkey") {
            missing.push("no Valkey results".into());
        }
        if !rows.iter().any(|r| r.backend == "postgresql") {
            missing.push("no PostgreSQL results".into());
        }
        let absent: Vec<&str> = SCENARIOS
            .iter()
            .copied()
            .filter(|s| !scenarios.iter().any(|x| x == s))
            .collect();
        if !absent.is_empty() {
            missing.push(format!("no {} scenario", absent.join("/")));
        }
        let smoke = rows.iter().any(|r| r.smoke);
        Ok(Some(Data {
            rows,
            runs,
            impls,
            scenarios,
            missing,
            smoke,
        }))
    }

    /// The Valkey design's row in a scenario.
    pub fn valkey(&self, scenario: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.backend == "valkey" && r.scenario == scenario)
    }

    /// The 95 % interval of `get`'s median over a variant's clean runs in a scenario
    /// (none with a single run): the error bar.
    pub fn interval(
        &self,
        imp: &str,
        scenario: &str,
        get: fn(&Row) -> Option<f64>,
    ) -> Option<(f64, f64)> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.variant() == imp && r.scenario == scenario && r.comparable())
            .filter_map(get)
            .collect();
        let e = crate::stats::confidence::estimate(&v)?;
        Some((e.low?, e.high?))
    }

    /// Whether any test ran more than once: the charts then show medians and intervals.
    pub fn repeated(&self) -> bool {
        self.runs.len() > self.rows.len()
    }

    pub fn get(&self, imp: &str, scenario: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.variant() == imp && r.scenario == scenario)
    }

    /// "offered 1000 jobs/s to 20 workers × 10 ms (capacity 2000 jobs/s)".
    pub fn load_text(&self) -> String {
        let r = self.rows.iter().find(|r| r.offered_rate.is_some());
        let Some(r) = r else {
            return "offered load unknown".into();
        };
        let mut s = format!("offered {:.0} jobs/s", r.offered_rate.unwrap_or(0.0));
        if let (Some(w), Some(p), Some(c)) = (r.workers, r.processing_ms, r.capacity_jobs_s) {
            s.push_str(&format!(
                " to {w} workers × {p:.0} ms (capacity {c:.0} jobs/s)"
            ));
        }
        s
    }

    /// The line under every title: smoke runs and what is missing.
    pub fn note(&self) -> String {
        let mut parts = vec![];
        if self.smoke {
            parts.push("smoke run (--quick): not for conclusions".to_string());
        }
        if self.repeated() {
            parts.push(
                "medians across repeated runs; error bars: 95 % bootstrap interval".to_string(),
            );
        }
        parts.extend(self.missing.iter().cloned());
        parts.join(" · ")
    }
}

/// Keeps one durability tier per backend and says what was left out: the tier asked
/// for, else the strictest both backends ran in, else each backend's strictest (the
/// seed's mix: PostgreSQL strict, Valkey volatile), marked as not like for like.
fn one_tier(
    all: Vec<Row>,
    want: Option<&str>,
    missing: &mut Vec<String>,
) -> Result<Vec<Row>, UsageError> {
    use crate::format::durability::strictness;
    let tiers_of = |backend: Option<&str>| {
        let mut t: Vec<String> = all
            .iter()
            .filter(|r| backend.is_none_or(|b| r.backend == b))
            .map(|r| r.durability_tier.clone())
            .collect();
        t.sort_by_key(|x| (strictness(x), x.clone()));
        t.dedup();
        t
    };
    let (every, pg, vk) = (
        tiers_of(None),
        tiers_of(Some("postgresql")),
        tiers_of(Some("valkey")),
    );
    let chosen = |side: &[String]| -> Option<String> {
        if let Some(t) = want {
            return side.iter().find(|x| *x == t).cloned();
        }
        let shared = pg.iter().find(|t| vk.contains(t));
        shared.or(side.first()).cloned()
    };
    if let Some(t) = want.filter(|t| !every.iter().any(|x| x == t)) {
        return Err(UsageError::new(format!(
            "--tier {t}: summary.csv has rows of {} only",
            every.join(", ")
        )));
    }
    let (pg_t, vk_t) = (chosen(&pg), chosen(&vk));
    let left: Vec<String> = every
        .iter()
        .filter(|t| Some(*t) != pg_t.as_ref() && Some(*t) != vk_t.as_ref())
        .cloned()
        .collect();
    if !left.is_empty() {
        missing.push(format!(
            "durability {} left out (graph --tier draws another)",
            left.join("/")
        ));
    }
    if let (Some(p), Some(v)) = (&pg_t, &vk_t) {
        if p != v {
            missing.push(format!("NOT LIKE FOR LIKE: PostgreSQL {p}, Valkey {v}"));
        }
    }
    Ok(all
        .into_iter()
        .filter(|r| {
            let t = if r.backend == "valkey" { &vk_t } else { &pg_t };
            t.as_deref() == Some(r.durability_tier.as_str())
        })
        .collect())
}

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

/// Draws every chart the analysis beside `summary` (summary.csv) has data for into `out`:
/// the seed's (in one durability tier: `tier`, else the strictest both backends ran in),
/// the capacity and horizon charts, and one timeline per test with `timelines`, or when
/// the folder's tests are none of the seed's (tests run by hand with produce and work).
pub fn draw_folder(
    summary: &Path,
    out: &Path,
    tier: Option<&str>,
    timelines: bool,
) -> Result<Drawn> {
    let capacity = capacity::CapacityData::beside(summary)?;
    let horizons = horizon::Timelines::beside(summary)?;
    // analyze writes an empty summary.csv when its folders held sweeps or crashes only.
    let empty = std::fs::metadata(summary).is_ok_and(|m| m.len() == 0);
    let rows = if empty {
        vec![]
    } else {
        read_summary(summary)?
    };
    let data = Data::from_rows(rows.clone(), tier)?;
    let per_test = timelines || data.is_none();
    if data.is_none() && capacity.is_empty() && horizons.0.is_empty() && rows.is_empty() {
        return Err(UsageError::new(format!(
            "{}: no test, sweep or horizon run to draw; run a command that writes results, then analyze",
            summary.display()
        ))
        .into());
    }
    crate::format::files::ensure_writable(out, "--output")?;
    let mut drawn = Drawn::default();
    if let Some(d) = &data {
        drawn.files.extend(draw_all(d, out)?);
        drawn.missing = d.missing.clone();
    }
    drawn.files.extend(capacity::draw(&capacity, out)?);
    drawn.files.extend(horizon::draw(&horizons, out)?);
    if per_test {
        let tests = timeline::draw_all(&rows, out)?;
        drawn.files.extend(tests.files);
        drawn.failed = tests.failed;
    }
    Ok(drawn)
}

/// Draws all six charts into `dir`; returns the files written.
pub fn draw_all(data: &Data, dir: &Path) -> Result<Vec<PathBuf>> {
    crate::format::files::ensure_writable(dir, "--output")?;
    let mut files = vec![];
    files.extend(render(&charts::Throughput(data), dir)?);
    files.extend(render(&charts::LatencyComparison(data), dir)?);
    files.extend(render(&charts::LatencyDistribution(data), dir)?);
    files.extend(render(&charts::CpuUsage(data), dir)?);
    files.extend(render(&charts::ScenarioComparison(data), dir)?);
    files.extend(render(&charts::ValkeyVsBestPg(data), dir)?);
    if data.repeated() {
        files.extend(render(&charts::RunSpread(data), dir)?);
    }
    Ok(files)
}
