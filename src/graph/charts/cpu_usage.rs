//! `cpu_usage`: machine, queue-server and the server's busiest thread, in cores, by
//! scenario.

use std::path::{Path, PathBuf};

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::graph::bars::{Getter, upper, legend_items, bar_panel, scenario_bars};
use crate::graph::style::{self};
use crate::graph::{render, Chart, Data, Inputs};

pub const CHART: crate::graph::charts::Chart = crate::graph::charts::Chart {
    name: "cpu_usage",
    draw: crate::graph::charts::Draw::Page(draw),
};

/// Drawn from the seed's scenarios in one tier, when the analysis has any.
fn draw(inputs: &Inputs, dir: &Path) -> Result<Vec<PathBuf>> {
    match &inputs.seed {
        Some(d) => render(&CpuUsage(d), dir),
        None => Ok(vec![]),
    }
}

struct CpuUsage<'a>(&'a Data);

impl Chart for CpuUsage<'_> {
    fn name(&self) -> String {
        "cpu_usage".into()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        let d = self.0;
        let body = style::open(
            root,
            "CPU use by scenario, in cores",
            &format!(
                "average over each test's measured window; 1 = one core busy — {}",
                d.load_text()
            ),
            &d.note(),
            &legend_items(d),
        )?;
        let panels = body.split_evenly((1, 3));
        let one_core = [(1.0, "one core".to_string())];
        let panel = |i: usize, caption: &str, get: Getter| {
            let (bars, max) = scenario_bars(d, get);
            bar_panel(
                &panels[i],
                Some(caption),
                &d.scenarios,
                &bars,
                "CPU (cores)",
                upper(max.max(1.0)),
                &one_core,
                "Scenario",
                &[],
            )
        };
        panel(0, "Whole machine", |r| r.cpu_cores)?;
        panel(1, "Queue server, all processes", |r| r.server_cores)?;
        // A server that runs commands on one thread saturates at one core here.
        panel(2, "Server's busiest thread (peak 3 s)", |r| {
            r.server_busiest_thread_cores
        })
    }
}

