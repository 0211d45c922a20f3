//! `horizon_timeline`: claim p99 and dead tuples against time, the hold shaded, one
//! panel per horizon test, from analyze's `horizon_timeline.csv` beside summary.csv.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::format::horizon::TimelineRow;
use crate::graph::bars::tick;
use crate::graph::inputs::Timelines;
use crate::graph::style::{self, color, GREY};
use crate::graph::{render, Chart, DrawResult, Inputs};
use crate::text::thousands;

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "horizon_timeline",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn when the analysis holds a horizon test.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    if inputs.horizon.0.is_empty() {
        return Ok(vec![]);
    }
    render(&HorizonTimeline(&inputs.horizon), dir)
}

struct HorizonTimeline<'a>(&'a Timelines);

impl Chart for HorizonTimeline<'_> {
    fn name(&self) -> String {
        "horizon_timeline".into()
    }

    fn height(&self) -> u32 {
        400 + 900 * self.0 .0.len() as u32
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let tests = &self.0 .0;
        let smoke = tests.iter().any(|(_, r)| r.iter().any(|x| x.smoke));
        let body = style::header(
            root,
            "A transaction held open: claim latency and dead tuples over time",
            "per second: claim p99 (solid, log scale, left), dead tuples of the queue's tables (dashed, right); the hold is shaded",
            if smoke { "smoke run (--quick): not for conclusions" } else { "" },
        )?;
        let panels = body.split_evenly((tests.len(), 1));
        for (area, (test, rows)) in panels.iter().zip(tests) {
            panel(area, test, rows)?;
        }
        Ok(())
    }
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    test: &str,
    rows: &[TimelineRow],
) -> Result<()> {
    let Some(first) = rows.first() else {
        return Ok(());
    };
    let c = color(&first.queue);
    let tmax = rows.iter().map(|r| r.t_s).fold(1.0, f64::max);
    let claims: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.claim_p99_ms)
        .filter(|v| *v > 0.0)
        .collect();
    let lo = claims.iter().copied().fold(f64::MAX, f64::min).min(1.0) / 1.5;
    let hi = claims.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 1.5;
    let dead_max = rows.iter().filter_map(|r| r.dead_tuples).max().unwrap_or(0);
    let dmax = (dead_max as f64 * 1.1).max(10.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{test} ({} holder)", first.holder),
            style::bold(style::AXIS),
        )
        .margin(30)
        .x_label_area_size(120)
        .y_label_area_size(190)
        .right_y_label_area_size(220)
        .build_cartesian_2d(0f64..tmax, (lo..hi).log_scale())
        .drawn()?
        .set_secondary_coord(0f64..tmax, 0f64..dmax);
    style::mesh(&mut chart)
        .x_desc("seconds since the test started")
        .y_desc("claim p99 (ms)")
        .y_label_formatter(&|v| tick(*v))
        .draw()
        .drawn()?;
    chart
        .configure_secondary_axes()
        .axis_desc_style(style::text(style::AXIS))
        .label_style(style::text(style::TICK))
        .y_desc("dead tuples")
        .y_label_formatter(&|v| thousands(*v))
        .draw()
        .drawn()?;
    let shade = RGBColor(225, 225, 225).mix(0.6).filled();
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(first.hold_started_s, lo), (first.released_s, hi)],
            shade,
        )))
        .drawn()?;
    let line: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.claim_p99_ms.filter(|v| *v > 0.0).map(|v| (r.t_s, v)))
        .collect();
    chart
        .draw_series(LineSeries::new(line, c.stroke_width(5)))
        .drawn()?;
    let dead: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.dead_tuples.map(|d| (r.t_s, d as f64)))
        .collect();
    if dead.is_empty() {
        area.draw(&Text::new(
            "no dead tuples: a stream keeps no old versions",
            (260, 140),
            style::text(style::TICK).color(&GREY),
        ))
        .drawn()?;
    } else {
        chart
            .draw_secondary_series(DashedLineSeries::new(dead, 16, 10, GREY.stroke_width(5)))
            .drawn()?;
    }
    Ok(())
}
