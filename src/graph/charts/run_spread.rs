//! `run_spread`: every run's p99 and throughput, one dot per run, per implementation and
//! scenario: the scatter the intervals summarise. Drawn when some test ran more than once.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{Getter, tick, upper, legend_items};
use crate::graph::style::{self, bold, color, text, AXIS, TICK};
use crate::graph::{render, Chart, Data, DrawResult, Inputs};
use crate::format::summary::Row;
use plotters::coord::ranged1d::ValueFormatter;

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "run_spread",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn when some test of the seed's scenarios ran more than once.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) if d.repeated() => render(&RunSpread(d), dir),
        _ => Ok(vec![]),
    }
}

/// Every run's p99 and throughput, one dot per run, per implementation and scenario: the
/// scatter the intervals summarise. Drawn when some test ran more than once.
struct RunSpread<'a>(&'a Data);

impl Chart for RunSpread<'_> {
    fn name(&self) -> String {
        "run_spread".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::open(
            root,
            "Every run, per implementation and scenario",
            &format!(
                "dots: runs (hollow: left out of the intervals); bar: median of the clean runs — {}",
                d.load_text()
            ),
            &d.note(),
            &legend_items(d),
        )?;
        let rows = body.split_evenly((2, d.scenarios.len()));
        let figures: [(&str, Getter, bool); 2] = [
            ("p99 (ms, log scale)", |r| r.p99_ms, true),
            ("throughput (jobs/s)", |r| r.throughput_jobs_s, false),
        ];
        for (fi, (desc, get, log)) in figures.iter().enumerate() {
            for (si, sc) in d.scenarios.iter().enumerate() {
                let cell = &rows[fi * d.scenarios.len() + si];
                let caption = format!("{sc} · {}", desc.split(' ').next().unwrap_or(desc));
                let vals: Vec<f64> = d
                    .runs
                    .iter()
                    .filter(|r| r.scenario == *sc)
                    .filter_map(get)
                    .filter(|v| *v > 0.0)
                    .collect();
                let (lo, hi) = vals
                    .iter()
                    .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(*v), b.max(*v)));
                let n = d.impls.len() as f64;
                if *log {
                    let (lo, hi) = if hi > 0.0 {
                        (lo / 1.3, hi * 1.3)
                    } else {
                        (0.1, 10.0)
                    };
                    let mut chart = spread_axes(cell, &caption)
                        .build_cartesian_2d(-0.5f64..(n - 0.5), (lo..hi).log_scale())
                        .drawn()?;
                    spread_mesh(&mut chart, desc)?;
                    spread_dots(d, sc, *get, &mut chart)?;
                } else {
                    let mut chart = spread_axes(cell, &caption)
                        .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..upper(hi))
                        .drawn()?;
                    spread_mesh(&mut chart, desc)?;
                    spread_dots(d, sc, *get, &mut chart)?;
                }
            }
        }
        Ok(())
    }
}

fn spread_axes<'a, 'b, DB: DrawingBackend>(
    cell: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(cell);
    b.caption(caption, bold(AXIS))
        .margin(24)
        .x_label_area_size(60)
        .y_label_area_size(170);
    b
}

fn spread_mesh<DB: DrawingBackend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    desc: &str,
) -> Result<()> {
    style::mesh(chart)
        .disable_x_mesh()
        .x_label_formatter(&|_| String::new())
        .y_label_formatter(&|v| tick(*v))
        .y_desc(desc)
        .axis_desc_style(text(TICK))
        .draw()
        .drawn()
}

fn spread_dots<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    d: &Data,
    sc: &str,
    get: Getter,
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
) -> Result<()> {
    for (i, imp) in d.impls.iter().enumerate() {
        let c = color(imp);
        let runs: Vec<&Row> = d
            .runs
            .iter()
            .filter(|r| r.variant() == *imp && r.scenario == sc)
            .collect();
        let k = runs.len().max(1) as f64;
        for (j, r) in runs.iter().enumerate() {
            let Some(v) = get(r).filter(|v| *v > 0.0) else {
                continue;
            };
            // Spread side by side so equal values stay visible.
            let x = i as f64 + (j as f64 - (k - 1.0) / 2.0) * (0.5 / k);
            let style = if r.comparable() {
                c.filled()
            } else {
                c.stroke_width(4)
            };
            chart
                .draw_series(std::iter::once(Circle::new((x, v), 12, style)))
                .drawn()?;
        }
        if let Some(m) = d.get(imp, sc).and_then(get).filter(|v| *v > 0.0) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(i as f64 - 0.32, m), (i as f64 + 0.32, m)],
                    BLACK.stroke_width(5),
                )))
                .drawn()?;
        }
    }
    Ok(())
}
