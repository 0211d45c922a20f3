//! `latency_comparison`: a scenarios × p50/p95/p99 grid of horizontal bars per
//! implementation, each panel on its own scale.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{PERCENTILES, fmt, tick, upper, legend_items};
use crate::graph::style::{self, anchored, bold, color, text, AXIS, TICK, VALUE};
use crate::graph::{render, Chart, Data, DrawResult, Inputs};
use plotters::style::text_anchor::{HPos, VPos};

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "latency_comparison",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn from the seed's scenarios in one tier, when the analysis has any.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) => render(&LatencyComparison(d), dir),
        None => Ok(vec![]),
    }
}

struct LatencyComparison<'a>(&'a Data);

impl Chart for LatencyComparison<'_> {
    fn name(&self) -> String {
        "latency_comparison".into()
    }

    fn height(&self) -> u32 {
        2600
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::open(
            root,
            "End-to-end latency by scenario and percentile",
            &format!(
                "intended enqueue → completed, ms (rows: scenarios; columns: percentiles; each panel its own scale) — {}",
                d.load_text()
            ),
            &d.note(),
            &legend_items(d),
        )?;
        let pcts = PERCENTILES;
        let cells = body.split_evenly((d.scenarios.len(), 3));
        for (si, sc) in d.scenarios.iter().enumerate() {
            for (pi, (pname, get)) in pcts.iter().enumerate() {
                // Each panel its own scale: on one scale across scenarios, cold and warm
                // were a few pixels wide beside a load test's seconds-long backlog.
                let xmax = upper(
                    d.impls
                        .iter()
                        .filter_map(|imp| {
                            let v = d.get(imp, sc).and_then(get)?;
                            Some(d.interval(imp, sc, *get).map_or(v, |e| v.max(e.1)))
                        })
                        .fold(0.0f64, f64::max),
                );
                let cell = &cells[si * 3 + pi];
                let n = d.impls.len() as f64;
                let mut chart = ChartBuilder::on(cell)
                    .caption(format!("{sc} · {pname}"), bold(AXIS))
                    .margin(24)
                    .margin_right(50)
                    .x_label_area_size(110)
                    .y_label_area_size(if pi == 0 { 330 } else { 20 })
                    .build_cartesian_2d(0f64..xmax, -0.5f64..(n - 0.5))
                    .drawn()?;
                style::mesh(&mut chart)
                    .disable_y_mesh()
                    .y_label_formatter(&|_| String::new())
                    .x_label_formatter(&|v| tick(*v))
                    .x_labels(5)
                    .x_desc("latency (ms)")
                    .axis_desc_style(text(TICK))
                    .draw()
                    .drawn()?;
                for (i, imp) in d.impls.iter().enumerate() {
                    // First implementation on top.
                    let y = n - 1.0 - i as f64;
                    if let Some(v) = d.get(imp, sc).and_then(get) {
                        chart
                            .draw_series(std::iter::once(Rectangle::new(
                                [(0.0, y - 0.36), (v, y + 0.36)],
                                color(imp).filled(),
                            )))
                            .drawn()?;
                        let mut end = v;
                        if let Some((lo, hi)) = d.interval(imp, sc, *get) {
                            let w = BLACK.stroke_width(4);
                            chart
                                .draw_series([
                                    PathElement::new(vec![(lo, y), (hi, y)], w),
                                    PathElement::new(vec![(lo, y - 0.15), (lo, y + 0.15)], w),
                                    PathElement::new(vec![(hi, y - 0.15), (hi, y + 0.15)], w),
                                ])
                                .drawn()?;
                            end = end.max(hi);
                        }
                        chart
                            .draw_series(std::iter::once(Text::new(
                                format!(" {}", fmt(v)),
                                (end, y),
                                anchored(text(VALUE), HPos::Left, VPos::Center),
                            )))
                            .drawn()?;
                    }
                    if pi == 0 {
                        let (px, py) = chart.backend_coord(&(0.0, y));
                        let (bx, by) = cell.get_base_pixel();
                        cell.draw(&Text::new(
                            imp.clone(),
                            (px - bx - 14, py - by),
                            anchored(text(TICK), HPos::Right, VPos::Center),
                        ))
                        .drawn()?;
                    }
                }
            }
        }
        Ok(())
    }
}

