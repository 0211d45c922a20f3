//! The capacity charts, from analyze's `capacity.csv` and `scaling.csv` beside
//! summary.csv: latency against offered load, MST per design, and worker scaling with
//! the USL fit.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::charts::{bar_panel, fmt, tick, upper, Bar};
use super::style::{self, anchored, bold, color, text, AXIS, GREY, TICK, VALUE};
use super::{render, Chart, DrawResult};
use crate::format::capacity::{ScalingRow, StepRow, CAPACITY_CSV, SCALING_CSV};
use crate::text::thousands;

/// What the capacity charts draw.
#[derive(Debug, Default)]
pub struct CapacityData {
    pub steps: Vec<StepRow>,
    pub scaling: Vec<ScalingRow>,
}

impl CapacityData {
    /// Reads the two CSVs beside `summary` if they are there.
    pub fn beside(summary: &Path) -> Result<CapacityData> {
        let dir = summary.parent().unwrap_or(Path::new("."));
        let read = |name: &str| dir.join(name);
        let steps = match read(CAPACITY_CSV) {
            p if p.exists() => crate::format::read::read_csv(&p)?,
            _ => vec![],
        };
        let scaling = match read(SCALING_CSV) {
            p if p.exists() => crate::format::read::read_csv(&p)?,
            _ => vec![],
        };
        Ok(CapacityData { steps, scaling })
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.scaling.is_empty()
    }

    /// A design's series name: its queue, with the tier when several tiers were swept.
    fn series<'a>(
        &self,
        rows: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Vec<(String, String, String)> {
        let all: Vec<(&str, &str)> = rows.collect();
        let several = all.iter().any(|(_, t)| *t != all[0].1);
        let mut out: Vec<(String, String, String)> = vec![];
        for (q, t) in all {
            let name = if several {
                format!("{q} ({t})")
            } else {
                q.to_string()
            };
            if !out.iter().any(|(_, _, n)| *n == name) {
                out.push((q.to_string(), t.to_string(), name));
            }
        }
        out
    }

    fn designs(&self) -> Vec<(String, String, String)> {
        self.series(
            self.steps
                .iter()
                .map(|s| (s.queue.as_str(), s.tier.as_str())),
        )
    }

    fn note(&self) -> String {
        if self.steps.iter().any(|s| s.smoke) {
            "smoke sweep (--quick): not for conclusions".into()
        } else {
            String::new()
        }
    }
}

/// Draws whichever capacity charts there is data for.
pub fn draw(data: &CapacityData, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![];
    if !data.steps.is_empty() {
        files.extend(render(&LatencyVsLoad(data), dir)?);
        files.extend(render(&CapacityComparison(data), dir)?);
    }
    if !data.scaling.is_empty() {
        files.extend(render(&WorkerScaling(data), dir)?);
    }
    Ok(files)
}

/// A text style in a design's colour (the shared helpers take only fixed colours).
fn coloured<'a>(base: TextStyle<'static>, c: &'a RGBColor, h: HPos, v: VPos) -> TextStyle<'a> {
    base.color(c)
        .pos(plotters::style::text_anchor::Pos::new(h, v))
}

fn legend_of(names: &[(String, String, String)]) -> Vec<(String, RGBColor)> {
    names
        .iter()
        .map(|(q, _, n)| (n.clone(), color(q)))
        .collect()
}

pub struct LatencyVsLoad<'a>(pub &'a CapacityData);

impl Chart for LatencyVsLoad<'_> {
    fn name(&self) -> String {
        "latency_vs_load".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let mut slos: Vec<f64> = d.steps.iter().map(|s| s.slo_p99_ms).collect();
        slos.sort_by(f64::total_cmp);
        slos.dedup();
        let slo_text: Vec<String> = slos.iter().map(|v| tick(*v)).collect();
        let body = style::header(
            root,
            "End-to-end latency against offered load",
            &format!(
                "each sweep step: p50 (thin), p99 (thick), p99.9 (dashed); filled = passed, hollow = failed; SLO p99 ≤ {} ms; MST marked",
                slo_text.join(" / ")
            ),
            &d.note(),
        )?;
        let names = d.designs();
        let body = style::legend(&body, &legend_of(&names))?;
        let pick = |s: &StepRow| [s.p50_ms, s.p99_ms, s.p999_ms];
        let values: Vec<f64> = d
            .steps
            .iter()
            .flat_map(pick)
            .flatten()
            .filter(|v| *v > 0.0)
            .chain(slos.iter().copied())
            .collect();
        let lo = values.iter().copied().fold(f64::MAX, f64::min) / 1.5;
        let hi = values.iter().copied().fold(0.0, f64::max) * 2.0;
        let xmax = upper(d.steps.iter().map(|s| s.rate_jobs_s).fold(0.0, f64::max));
        let mut chart = ChartBuilder::on(&body)
            .margin(40)
            .margin_right(80)
            .x_label_area_size(150)
            .y_label_area_size(190)
            .build_cartesian_2d(0f64..xmax, (lo..hi).log_scale())
            .drawn()?;
        style::mesh(&mut chart)
            .x_label_formatter(&|v| thousands(*v))
            .y_label_formatter(&|v| tick(*v))
            .x_desc("offered load (jobs/s)")
            .y_desc("end-to-end latency (ms, log scale)")
            .draw()
            .drawn()?;
        for &slo in &slos {
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.0, slo), (xmax, slo)],
                    20,
                    14,
                    GREY.stroke_width(4),
                ))
                .drawn()?;
            let (px, py) = chart.backend_coord(&(xmax, slo));
            let (bx, by) = body.get_base_pixel();
            body.draw(&Text::new(
                format!("SLO {} ms", tick(slo)),
                (px - bx - 10, py - by - 8),
                anchored(text(TICK).color(&GREY), HPos::Right, VPos::Bottom),
            ))
            .drawn()?;
        }
        for (q, id, _) in &names {
            let mut steps: Vec<&StepRow> = d.steps.iter().filter(|s| &s.sweep == id).collect();
            steps.sort_by(|a, b| a.rate_jobs_s.total_cmp(&b.rate_jobs_s));
            let c = color(q);
            for (i, width) in [(0usize, 3u32), (1, 7), (2, 4)] {
                let pts: Vec<(f64, f64, bool)> = steps
                    .iter()
                    .filter_map(|s| {
                        pick(s)[i]
                            .filter(|v| *v > 0.0)
                            .map(|v| (s.rate_jobs_s, v, s.pass))
                    })
                    .collect();
                let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
                if i == 2 {
                    chart
                        .draw_series(DashedLineSeries::new(line, 16, 10, c.stroke_width(width)))
                        .drawn()?;
                } else {
                    chart
                        .draw_series(LineSeries::new(line, c.stroke_width(width)))
                        .drawn()?;
                }
                let r = if i == 1 { 14 } else { 9 };
                chart
                    .draw_series(pts.iter().map(|&(x, y, pass)| {
                        let style = if pass { c.filled() } else { c.stroke_width(4) };
                        Circle::new((x, y), r, style)
                    }))
                    .drawn()?;
            }
            if let Some(m) = steps.first().and_then(|s| s.mst_jobs_s) {
                chart
                    .draw_series(DashedLineSeries::new(
                        vec![(m, lo), (m, hi)],
                        12,
                        10,
                        c.stroke_width(4),
                    ))
                    .drawn()?;
                chart
                    .draw_series(std::iter::once(Text::new(
                        format!("MST {}", thousands(m)),
                        (m, hi / 1.3),
                        coloured(bold(VALUE), &c, HPos::Right, VPos::Top),
                    )))
                    .drawn()?;
            }
        }
        Ok(())
    }
}

pub struct CapacityComparison<'a>(pub &'a CapacityData);

impl Chart for CapacityComparison<'_> {
    fn name(&self) -> String {
        "capacity_comparison".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let names = d.designs();
        let first = |id: &str| d.steps.iter().find(|s| s.sweep == id);
        let mut slos: Vec<String> = d.steps.iter().map(|s| tick(s.slo_p99_ms)).collect();
        slos.dedup();
        let body = style::header(
            root,
            "Maximum sustainable throughput within the latency goal",
            &format!("highest offered rate that passed (p99 ≤ {} ms, completions ≥ 99 %, flat depth, clean audit); pale bar: burn-down, closed loop", slos.join(" / ")),
            &d.note(),
        )?;
        let body = style::legend(&body, &legend_of(&names))?;
        let (mut bars, mut notes, mut groups) = (vec![], vec![], vec![]);
        let mut max = 0.0f64;
        for (g, (q, id, name)) in names.iter().enumerate() {
            let Some(s) = first(id) else { continue };
            groups.push(name.clone());
            let c = color(q);
            let mst = s.mst_jobs_s.unwrap_or(0.0);
            max = max.max(mst).max(s.burndown_jobs_s.unwrap_or(0.0));
            bars.push(Bar {
                group: g,
                slot: 0,
                slots: 2,
                value: mst,
                err: None,
                color: c,
                label: match (s.outcome.as_str(), s.confirmed) {
                    ("found", Some(false)) => format!("{} (approximate)", fmt(mst)),
                    ("found", _) => fmt(mst),
                    ("no_failure", _) => format!("≥ {}", fmt(mst)),
                    (o, _) => format!("no MST ({o})"),
                },
            });
            if let Some(b) = s.burndown_jobs_s {
                bars.push(Bar {
                    group: g,
                    slot: 1,
                    slots: 2,
                    value: b,
                    err: None,
                    color: c.mix(0.35).to_rgba().into_rgb(),
                    label: format!("{} (burn-down)", fmt(b)),
                });
            }
            notes.push(match (s.outcome.as_str(), s.limited_by.as_str()) {
                ("no_failure", _) => "no failure up to --max-rate".to_string(),
                (_, "") => "not limited".to_string(),
                (_, l) => format!("limited by {l}"),
            });
        }
        bar_panel(
            &body,
            None,
            &groups,
            &bars,
            "jobs/s",
            upper(max) * 1.1,
            &[],
            "Design",
            &notes,
        )
    }
}

trait IntoRgb {
    fn into_rgb(self) -> RGBColor;
}

impl IntoRgb for RGBAColor {
    /// The colour blended onto white at its alpha (a bar needs an opaque colour).
    fn into_rgb(self) -> RGBColor {
        let a = self.3;
        let mix = |c: u8| (f64::from(c) * a + 255.0 * (1.0 - a)).round() as u8;
        RGBColor(mix(self.0), mix(self.1), mix(self.2))
    }
}

pub struct WorkerScaling<'a>(pub &'a CapacityData);

impl Chart for WorkerScaling<'_> {
    fn name(&self) -> String {
        "worker_scaling".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let names = d.series(
            d.scaling
                .iter()
                .map(|s| (s.queue.as_str(), s.tier.as_str())),
        );
        let body = style::header(
            root,
            "Burn-down throughput per worker count, with the Universal Scalability Law fit",
            "dots: measured (closed loop, pre-filled queue; hollow: audit not exact); line: X(N) = λN / (1 + σ(N−1) + κN(N−1)); triangle: the fit's peak",
            "",
        )?;
        let body = style::legend(&body, &legend_of(&names))?;
        let nmax = d
            .scaling
            .iter()
            .map(|s| f64::from(s.workers))
            .fold(1.0, f64::max)
            * 1.1;
        let ymax = upper(
            d.scaling
                .iter()
                .flat_map(|s| [Some(s.jobs_s), s.fit_jobs_s])
                .flatten()
                .fold(0.0, f64::max),
        );
        let mut chart = ChartBuilder::on(&body)
            .margin(40)
            .margin_right(80)
            .x_label_area_size(150)
            .y_label_area_size(190)
            .build_cartesian_2d(0f64..nmax, 0f64..ymax)
            .drawn()?;
        style::mesh(&mut chart)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| thousands(*v))
            .x_desc("workers (each on its own connection)")
            .y_desc("throughput (jobs/s)")
            .draw()
            .drawn()?;
        for (q, t, _) in &names {
            let pts: Vec<&ScalingRow> = d
                .scaling
                .iter()
                .filter(|s| &s.queue == q && &s.tier == t)
                .collect();
            let c = color(q);
            // A point whose audit was not exact is hollow: the fit leaves it out.
            chart
                .draw_series(pts.iter().map(|p| {
                    let style = if p.audit == "exact" {
                        c.filled()
                    } else {
                        c.stroke_width(4)
                    };
                    Circle::new((f64::from(p.workers), p.jobs_s), 14, style)
                }))
                .drawn()?;
            let Some(p0) = pts.first() else { continue };
            if let (Some(l), Some(s), Some(k)) = (p0.lambda, p0.sigma, p0.kappa) {
                let fit = crate::format::capacity::UslFit {
                    lambda: l,
                    sigma: s,
                    kappa: k,
                    peak_workers: None,
                    peak_jobs_s: None,
                    r2: 0.0,
                    peak_extrapolated: false,
                };
                let curve: Vec<(f64, f64)> = (0..=200)
                    .map(|i| {
                        let n = 1.0 + (nmax - 1.0) * f64::from(i) / 200.0;
                        (n, fit.at(n).min(ymax))
                    })
                    .collect();
                chart
                    .draw_series(LineSeries::new(curve, c.stroke_width(5)))
                    .drawn()?;
            }
            if let (Some(n), Some(x)) = (p0.peak_workers, p0.peak_jobs_s) {
                if n <= nmax {
                    chart
                        .draw_series(std::iter::once(TriangleMarker::new((n, x), 18, c.filled())))
                        .drawn()?;
                    chart
                        .draw_series(std::iter::once(Text::new(
                            format!("peak {} @ {n:.0}", thousands(x)),
                            (n, x),
                            coloured(text(AXIS), &c, HPos::Center, VPos::Bottom),
                        )))
                        .drawn()?;
                }
            }
        }
        Ok(())
    }
}
