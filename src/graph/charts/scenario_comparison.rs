//! `scenario_comparison`: p99 and throughput from cold to warm to load, a line per
//! implementation.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{Getter, tick, upper, legend_items, x_label};
use crate::graph::style::{self, bold, color, AXIS};
use crate::graph::{render, Chart, Data, DrawResult, Inputs};
use crate::format::summary::Row;

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "scenario_comparison",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn from the seed's scenarios in one tier, when the analysis has any.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) => render(&ScenarioComparison(d), dir),
        None => Ok(vec![]),
    }
}

struct ScenarioComparison<'a>(&'a Data);

impl Chart for ScenarioComparison<'_> {
    fn name(&self) -> String {
        "scenario_comparison".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::open(
            root,
            "How each implementation changes from cold to warm to load",
            &format!(
                "p99 end-to-end latency and throughput per scenario — {}",
                d.load_text()
            ),
            &d.note(),
            &legend_items(d),
        )?;
        let panels = body.split_evenly((1, 2));
        let n = d.scenarios.len() as f64;
        let x = -0.3f64..(n - 0.7);
        // p99 on a log axis: a load test's backlog (seconds) beside cold and warm (ms)
        // would flatten them into the floor on a linear one.
        let p99 = |r: &Row| r.p99_ms;
        // The axes hold the error bars too, so no whisker is clipped.
        let (lo, hi) = d
            .rows
            .iter()
            .flat_map(|r| {
                let e = d.interval(&r.variant(), &r.scenario, p99);
                [p99(r), e.map(|e| e.0), e.map(|e| e.1)]
            })
            .flatten()
            .filter(|v| *v > 0.0)
            .fold((f64::MAX, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = if hi > 0.0 {
            (lo / 1.5, hi * 1.5)
        } else {
            (0.1, 10.0)
        };
        let mut chart = scenario_axes(&panels[0], "p99 end-to-end latency (log scale)")
            .build_cartesian_2d(x.clone(), (lo..hi).log_scale())
            .drawn()?;
        style::mesh(&mut chart)
            .disable_x_mesh()
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|v| tick(*v))
            .y_desc("latency (ms)")
            .x_desc("Scenario")
            .draw()
            .drawn()?;
        scenario_lines(d, &panels[0], &mut chart, p99)?;
        let tput = |r: &Row| r.throughput_jobs_s;
        let ymax = upper(
            d.rows
                .iter()
                .filter_map(|r| {
                    let e = d.interval(&r.variant(), &r.scenario, tput);
                    Some(tput(r)?.max(e.map_or(0.0, |e| e.1)))
                })
                .fold(0.0f64, f64::max),
        );
        let mut chart = scenario_axes(&panels[1], "Throughput")
            .build_cartesian_2d(x, 0f64..ymax)
            .drawn()?;
        style::mesh(&mut chart)
            .disable_x_mesh()
            .x_label_formatter(&|_| String::new())
            .y_label_formatter(&|v| tick(*v))
            .y_desc("throughput (jobs/s)")
            .x_desc("Scenario")
            .draw()
            .drawn()?;
        scenario_lines(d, &panels[1], &mut chart, tput)?;
        Ok(())
    }
}

fn scenario_axes<'a, 'b, DB: DrawingBackend>(
    panel: &'a DrawingArea<DB, Shift>,
    caption: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(panel);
    b.caption(caption, bold(AXIS))
        .margin(30)
        .margin_right(60)
        .x_label_area_size(150)
        .y_label_area_size(190);
    b
}

/// One line per implementation across the scenarios, on any y axis.
fn scenario_lines<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    d: &Data,
    panel: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    get: Getter,
) -> Result<()> {
    for imp in &d.impls {
        let pts: Vec<(f64, f64)> = d
            .scenarios
            .iter()
            .enumerate()
            .filter_map(|(i, sc)| Some((i as f64, get(d.get(imp, sc)?)?)))
            .collect();
        let c = color(imp);
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(6)))
            .drawn()?;
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 14, c.filled())))
            .drawn()?;
        let whiskers = d.scenarios.iter().enumerate().filter_map(|(i, sc)| {
            let (lo, hi) = d.interval(imp, sc, get)?;
            Some(PathElement::new(
                vec![(i as f64, lo), (i as f64, hi)],
                c.stroke_width(5),
            ))
        });
        chart.draw_series(whiskers).drawn()?;
    }
    let y0 = chart.y_range().start;
    for (i, sc) in d.scenarios.iter().enumerate() {
        x_label(panel, chart, i as f64, y0, sc)?;
    }
    Ok(())
}

