//! `TEST_timeline`: one test's seconds in stacked panels on one time axis (end-to-end
//! p50/p99, produced against completed, depth, dead tuples or Valkey memory), with the
//! server's events as labelled bands and the latency spikes shaded. Read from the
//! test's own per-second files (the folder summary.csv names), never a server.

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::tick;
use crate::graph::style::{self, color, GREY};
use crate::graph::{render, Chart, DrawResult, Drawn, Inputs};
use crate::text::thousands;
use crate::timeline::spikes::{self, Spikes};
use crate::timeline::{quantile_ms, Event, Timeline};

/// A timeline for every row of summary.csv, from its results folder, shading the
/// spikes found with the factor analyze recorded in the row; a test whose per-second
/// files cannot be read is one line in `out.failed`.
pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "timeline",
    draw: crate::graph::charts::Draw::PerTest(draw),
};

fn draw(inputs: &Inputs, dir: &Path, out: &mut Drawn) -> Result<()> {
    if !inputs.per_test {
        return Ok(());
    }
    let rows = &inputs.rows;
    let mut names = std::collections::BTreeSet::new();
    for r in rows {
        if r.results_dir.is_empty() {
            out.failed.push(format!(
                "{}: summary.csv names no results folder for it (written by an older qbench): run analyze again",
                r.test
            ));
            continue;
        }
        let t = match crate::timeline::load(Path::new(&r.results_dir), &r.test) {
            Ok(t) => t,
            Err(e) => {
                out.failed.push(crate::error::one_line(&e, &[]));
                continue;
            }
        };
        // Two folders may hold a test of the same name (two hosts): keep both.
        let mut name = format!("{}_timeline", r.test);
        if !names.insert(name.clone()) {
            let folder = Path::new(&r.results_dir)
                .file_name()
                .map_or("dup".into(), |f| f.to_string_lossy().into_owned());
            name = format!("{folder}_{}_timeline", r.test);
            names.insert(name.clone());
        }
        let s = spikes::find(&t, r.spike_factor.unwrap_or(spikes::FACTOR));
        out.files
            .extend(render(&TestTimeline { t: &t, s: &s, name }, dir)?);
    }
    Ok(())
}

struct TestTimeline<'a> {
    t: &'a Timeline,
    s: &'a Spikes,
    name: String,
}

/// The colour of an event's band.
fn event_color(kind: &str) -> RGBColor {
    match kind {
        "autovacuum" => RGBColor(230, 140, 20),
        "vacuum" => RGBColor(150, 85, 30),
        "autoanalyze" => RGBColor(215, 195, 40),
        "checkpoint" => RGBColor(40, 110, 200),
        "lock_wait" => RGBColor(130, 60, 170),
        "aof_rewrite" | "rdb_save" | "fsync_delay" | "latency_monitor" => RGBColor(20, 150, 140),
        "outage" => RGBColor(200, 30, 30),
        _ => RGBColor(150, 150, 150),
    }
}

/// A named line of points and its colour.
type Series<'a> = (&'a str, Vec<(f64, f64)>, RGBColor);

const SPIKE: RGBColor = RGBColor(220, 40, 40);

impl Chart for TestTimeline<'_> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn height(&self) -> u32 {
        2900
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let t = self.t;
        let sub = match (self.s.list.len(), self.s.threshold_ms) {
            (0, _) => "no latency spike".to_string(),
            (n, th) => format!(
                "{n} spike(s) shaded red: seconds with p99 over {} ({:.0}× the median second's); outside them p99 was {}",
                crate::text::ms_unit(th, 1),
                self.s.factor,
                crate::text::ms_unit(self.s.p99_outside_ms, 1)
            ),
        };
        let body = style::header(
            root,
            &format!("{}: second by second ({})", t.test, t.queue),
            &sub,
            if t.smoke {
                "smoke run (--quick): not for conclusions"
            } else {
                ""
            },
        )?;
        let mut kinds: Vec<(String, RGBColor)> = vec![];
        for e in &t.events {
            if !kinds.iter().any(|(k, _)| k == e.kind) {
                kinds.push((e.kind.to_string(), event_color(e.kind)));
            }
        }
        kinds.push(("latency spike".into(), SPIKE));
        let body = style::legend(&body, &kinds)?;
        let panels = body.split_evenly((4, 1));
        let tmax = t.seconds.last().map_or(1.0, |s| s.t_s).max(1.0);
        self.latency(&panels[0], tmax)?;
        let per_s = |f: fn(&crate::timeline::Second) -> Option<f64>| -> Vec<(f64, f64)> {
            t.seconds
                .iter()
                .filter_map(|s| f(s).map(|v| (s.t_s, v)))
                .collect()
        };
        let produced = per_s(|s| Some(s.produced as f64));
        let completed = per_s(|s| Some(s.completed as f64));
        self.linear(
            &panels[1],
            tmax,
            "jobs per second",
            &[
                ("produced", produced, GREY),
                ("completed", completed, color(&t.queue)),
            ],
        )?;
        let depth = per_s(|s| s.depth.map(|d| d as f64));
        self.linear(
            &panels[2],
            tmax,
            "queue depth (jobs)",
            &[("depth", depth, color(&t.queue))],
        )?;
        let dead = per_s(|s| s.dead_tuples.map(|d| d as f64));
        let (what, series) = if dead.is_empty() {
            ("Valkey used memory (MB)", per_s(|s| s.valkey_memory_mb))
        } else {
            ("dead tuples (queue tables)", dead)
        };
        self.linear(&panels[3], tmax, what, &[("", series, GREY)])
    }
}

impl TestTimeline<'_> {
    /// Event bands and spike shading on a panel with `y` from `lo` to `hi`.
    fn bands<DB: DrawingBackend, Y: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
        &self,
        chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
        lo: f64,
        hi: f64,
    ) -> Result<()> {
        for sp in &self.s.list {
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(sp.start_s, lo), (sp.end_s, hi)],
                    SPIKE.mix(0.18).filled(),
                )))
                .drawn()?;
        }
        for e in &self.t.events {
            let c = event_color(e.kind);
            if e.end_s - e.start_s < 0.01 {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(e.start_s, lo), (e.start_s, hi)],
                        c.stroke_width(4),
                    )))
                    .drawn()?;
                continue;
            }
            let alpha = if e.phase { 0.08 } else { 0.25 };
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(e.start_s, lo), (e.end_s, hi)],
                    c.mix(alpha).filled(),
                )))
                .drawn()?;
        }
        Ok(())
    }

    fn latency<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, tmax: f64) -> Result<()> {
        let t = self.t;
        let pct = |q: f64| -> Vec<(f64, f64)> {
            t.seconds
                .iter()
                .filter_map(|s| quantile_ms(&s.e2e, q).map(|v| (s.t_s, v.max(0.001))))
                .collect()
        };
        let (p50, p99) = (pct(0.5), pct(0.99));
        let lo = p50.iter().map(|p| p.1).fold(f64::MAX, f64::min).min(1.0) / 1.5;
        let hi = p99.iter().map(|p| p.1).fold(0.0, f64::max).max(lo * 10.0) * 1.5;
        let mut chart = ChartBuilder::on(area)
            .margin(25)
            .x_label_area_size(60)
            .y_label_area_size(190)
            .build_cartesian_2d(0f64..tmax, (lo..hi).log_scale())
            .drawn()?;
        style::mesh(&mut chart)
            .y_desc("end-to-end p50 / p99 (ms)")
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .drawn()?;
        self.bands(&mut chart, lo, hi)?;
        let c = color(&t.queue);
        chart
            .draw_series(LineSeries::new(p50, c.stroke_width(3)))
            .drawn()?
            .label("p50");
        chart
            .draw_series(LineSeries::new(p99, c.stroke_width(7)))
            .drawn()?
            .label("p99");
        self.event_labels(area, &chart, hi)?;
        Ok(())
    }

    /// The non-phase events' labels along the top of the latency panel, staggered.
    fn event_labels<DB: DrawingBackend, Y: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
        &self,
        area: &DrawingArea<DB, Shift>,
        chart: &ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
        hi: f64,
    ) -> Result<()> {
        let events: Vec<&Event> = self.t.events.iter().filter(|e| !e.phase).collect();
        // Many events label nothing readable: the legend names their kinds instead.
        if events.len() > 12 {
            return Ok(());
        }
        let (_, top) = chart.backend_coord(&(0.0, hi));
        for (i, e) in events.iter().enumerate() {
            let (x, _) = chart.backend_coord(&(e.start_s, hi));
            let (ax, ay) = area.get_base_pixel();
            let y = top - ay + 10 + (i % 3) as i32 * 42;
            area.draw(&Text::new(
                e.label.clone(),
                (x - ax + 6, y),
                style::text(style::VALUE).color(&event_color(e.kind)),
            ))
            .drawn()?;
        }
        Ok(())
    }

    fn linear<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        tmax: f64,
        what: &str,
        series: &[Series],
    ) -> Result<()> {
        let hi = series
            .iter()
            .flat_map(|(_, v, _)| v.iter().map(|p| p.1))
            .fold(0.0, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .margin(25)
            .x_label_area_size(100)
            .y_label_area_size(190)
            .build_cartesian_2d(0f64..tmax, 0f64..hi)
            .drawn()?;
        let small = hi < 20.0;
        style::mesh(&mut chart)
            .x_desc("seconds since the test started")
            .y_desc(what)
            .y_label_formatter(&|v| {
                if small {
                    format!("{v:.1}")
                } else {
                    thousands(*v)
                }
            })
            .draw()
            .drawn()?;
        self.bands(&mut chart, 0.0, hi)?;
        for (name, points, c) in series {
            if points.is_empty() {
                style::message(area, &format!("no {what} recorded"))?;
                continue;
            }
            let s = chart
                .draw_series(LineSeries::new(points.clone(), c.stroke_width(5)))
                .drawn()?;
            if !name.is_empty() {
                s.label(*name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 40, y)], c.stroke_width(5))
                });
            }
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .label_font(style::text(style::TICK))
                .border_style(GREY)
                .background_style(WHITE.mix(0.85))
                .draw()
                .drawn()?;
        }
        Ok(())
    }
}
