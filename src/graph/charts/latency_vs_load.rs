//! `latency_vs_load`: each sweep step's p50, p99 and p99.9 against the offered rate,
//! passed and failed steps apart, the SLO and the MST marked.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::format::capacity::StepRow;
use crate::graph::bars::{tick, upper};
use crate::graph::inputs::CapacityData;
use crate::graph::style::{self, anchored, bold, color, coloured, legend_of, text, GREY, TICK, VALUE};
use crate::graph::{render, Chart, DrawResult, Inputs};
use crate::text::thousands;

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "latency_vs_load",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn when the analysis holds a sweep.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    let d = &inputs.capacity;
    if d.steps.is_empty() {
        return Ok(vec![]);
    }
    render(&LatencyVsLoad(d), dir)
}

struct LatencyVsLoad<'a>(&'a CapacityData);

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
            series(&mut chart, &steps, color(q), (lo, hi))?;
        }
        Ok(())
    }
}


/// A step's p50, p99 and p99.9.
fn pick(s: &StepRow) -> [Option<f64>; 3] {
    [s.p50_ms, s.p99_ms, s.p999_ms]
}

/// One design's steps: p50 thin, p99 thick, p99.9 dashed, each step a dot (hollow when it
/// failed), and its MST marked from `lo` to `hi`.
fn series<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    steps: &[&StepRow],
    c: RGBColor,
    (lo, hi): (f64, f64),
) -> Result<()> {
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
    Ok(())
}
