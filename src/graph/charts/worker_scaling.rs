//! `worker_scaling`: burn-down throughput per worker count with the Universal Scalability
//! Law fitted to it.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::format::capacity::ScalingRow;
use crate::graph::bars::{tick, upper};
use crate::graph::inputs::CapacityData;
use crate::graph::style::{self, color, coloured, legend_of, text, AXIS};
use crate::graph::{render, Chart, DrawResult, Inputs};
use crate::text::thousands;

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "worker_scaling",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn when the analysis holds a worker-scaling run.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    let d = &inputs.capacity;
    if d.scaling.is_empty() {
        return Ok(vec![]);
    }
    render(&WorkerScaling(d), dir)
}

struct WorkerScaling<'a>(&'a CapacityData);

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
        let body = style::open(
            root,
            "Burn-down throughput per worker count, with the Universal Scalability Law fit",
            "dots: measured (closed loop, pre-filled queue; hollow: audit not exact); line: X(N) = λN / (1 + σ(N−1) + κN(N−1)); triangle: the fit's peak (hollow: projected beyond the counts measured)",
            "",
            &legend_of(&names),
        )?;
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
            draw_peak(&mut chart, p0, &c, (nmax, ymax))?;
        }
        Ok(())
    }
}

type Plane<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The fit's peak: a filled triangle where it was measured; a peak beyond the counts
/// measured is a projection, said, and drawn hollow at the edge of what was measured.
fn draw_peak<DB: DrawingBackend>(
    chart: &mut Plane<'_, DB>,
    p0: &ScalingRow,
    c: &RGBColor,
    (nmax, ymax): (f64, f64),
) -> Result<()> {
    let (Some(n), Some(x)) = (p0.peak_workers, p0.peak_jobs_s) else {
        return Ok(());
    };
    let projected = p0.peak_extrapolated.unwrap_or(false) || n > nmax;
    let (at, style, words) = if projected {
        let label = format!("projected peak {} @ {n:.0} (beyond the counts measured)", thousands(x));
        ((n.min(nmax), x.min(ymax)), c.stroke_width(3), label)
    } else {
        ((n, x), c.filled(), format!("peak {} @ {n:.0}", thousands(x)))
    };
    chart
        .draw_series(std::iter::once(TriangleMarker::new(at, 18, style)))
        .drawn()?;
    let pos = if projected { HPos::Right } else { HPos::Center };
    chart
        .draw_series(std::iter::once(Text::new(
            words,
            at,
            coloured(text(AXIS), c, pos, VPos::Bottom),
        )))
        .drawn()?;
    Ok(())
}
