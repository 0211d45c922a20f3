//! `latency_distribution`: box plots per implementation and scenario from the summary's
//! quantiles, on a log scale.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{tick, legend_items};
use crate::graph::style::{self, bold, color, AXIS};
use crate::graph::{render, Chart, Data, DrawResult, Inputs};

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "latency_distribution",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn from the seed's scenarios in one tier, when the analysis has any.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) => render(&LatencyDistribution(d), dir),
        None => Ok(vec![]),
    }
}

struct LatencyDistribution<'a>(&'a Data);

impl Chart for LatencyDistribution<'_> {
    fn name(&self) -> String {
        "latency_distribution".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::open(
            root,
            "End-to-end latency distribution per implementation",
            &format!(
                "box p25–p75, line p50, whiskers min–p99, dot max; ms on a log scale — {}",
                d.load_text()
            ),
            &d.note(),
            &legend_items(d),
        )?;
        let lo = d
            .rows
            .iter()
            .filter_map(|r| r.min_ms)
            .fold(f64::MAX, f64::min)
            .clamp(0.01, 1e6)
            * 0.7;
        let hi = d
            .rows
            .iter()
            .filter_map(|r| r.max_ms)
            .fold(lo * 10.0, f64::max)
            * 1.6;
        let panels = body.split_evenly((1, d.scenarios.len()));
        for (si, sc) in d.scenarios.iter().enumerate() {
            let n = d.impls.len() as f64;
            let mut chart = ChartBuilder::on(&panels[si])
                .caption(sc.as_str(), bold(AXIS))
                .margin(30)
                .margin_right(50)
                .x_label_area_size(60)
                .y_label_area_size(if si == 0 { 190 } else { 120 })
                .build_cartesian_2d(-0.5f64..(n - 0.5), (lo..hi).log_scale())
                .drawn()?;
            style::mesh(&mut chart)
                .disable_x_mesh()
                .x_label_formatter(&|_| String::new())
                .y_label_formatter(&|v| tick(*v))
                .y_desc(if si == 0 {
                    "latency (ms, log scale)"
                } else {
                    ""
                })
                .draw()
                .drawn()?;
            for (i, imp) in d.impls.iter().enumerate() {
                let Some(r) = d.get(imp, sc) else { continue };
                let (Some(min), Some(p25), Some(p50), Some(p75), Some(p99), Some(max)) =
                    (r.min_ms, r.p25_ms, r.p50_ms, r.p75_ms, r.p99_ms, r.max_ms)
                else {
                    continue;
                };
                let x = i as f64;
                let c = color(imp);
                let line = c.stroke_width(5);
                let w = 0.28;
                chart
                    .draw_series([
                        PathElement::new(vec![(x, min.max(lo)), (x, p25)], line),
                        PathElement::new(vec![(x, p75), (x, p99)], line),
                        PathElement::new(
                            vec![(x - w / 2.0, min.max(lo)), (x + w / 2.0, min.max(lo))],
                            line,
                        ),
                        PathElement::new(vec![(x - w / 2.0, p99), (x + w / 2.0, p99)], line),
                    ])
                    .drawn()?;
                chart
                    .draw_series([
                        Rectangle::new([(x - w, p25), (x + w, p75)], c.mix(0.35).filled()),
                        Rectangle::new([(x - w, p25), (x + w, p75)], c.stroke_width(5)),
                    ])
                    .drawn()?;
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![(x - w, p50), (x + w, p50)],
                        BLACK.stroke_width(7),
                    )))
                    .drawn()?;
                chart
                    .draw_series(std::iter::once(Circle::new((x, max), 11, c.filled())))
                    .drawn()?;
            }
        }
        Ok(())
    }
}

