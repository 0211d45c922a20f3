//! `throughput_comparison`: completed jobs/s per implementation, grouped by scenario, with
//! the offered rate (and the workers' capacity) marked.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{upper, legend_items, bar_panel, scenario_bars};
use crate::graph::style::{self};
use crate::graph::{render, Chart, Data, Inputs};

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "throughput_comparison",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn from the seed's scenarios in one tier, when the analysis has any.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) => render(&Throughput(d), dir),
        None => Ok(vec![]),
    }
}

struct Throughput<'a>(&'a Data);

impl Chart for Throughput<'_> {
    fn name(&self) -> String {
        "throughput_comparison".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::open(
            root,
            "Throughput by scenario",
            &format!(
                "completed jobs per second over each test's measured window — {}",
                d.load_text()
            ),
            &d.note(),
            &legend_items(d),
        )?;
        let (bars, max) = scenario_bars(d, |r| r.throughput_jobs_s);
        let mut lines = vec![];
        let r0 = d.rows.iter().find(|r| r.offered_rate.is_some());
        if let Some(o) = r0.and_then(|r| r.offered_rate) {
            lines.push((o, format!("offered {o:.0} jobs/s")));
        }
        let top = upper(max.max(r0.and_then(|r| r.offered_rate).unwrap_or(0.0)));
        if let Some(c) = r0.and_then(|r| r.capacity_jobs_s).filter(|c| *c <= top) {
            lines.push((c, format!("capacity {c:.0} jobs/s")));
        }
        bar_panel(
            &body,
            None,
            &d.scenarios,
            &bars,
            "Throughput (jobs/s)",
            top,
            &lines,
            "Scenario",
            &[],
        )
    }
}

