//! The chart registry: one line per chart, in the order report.html shows them. A chart
//! is one file here, named as its output (`throughput_comparison.rs` draws
//! `throughput_comparison.png`/`.svg`), declaring its [`Chart`] constant; `graph`, run-suite
//! and every command's ending draw them all, and report.html inlines them in this order.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Drawn, Inputs};

/// How a chart draws: one page from the whole analysis, or one page per test.
#[derive(Clone, Copy)]
pub enum Draw {
    /// `NAME.png`/`.svg`, or nothing when the analysis has no data for it.
    Page(fn(&Inputs, &Path) -> Result<Vec<PathBuf>>),
    /// `TEST_NAME.png`/`.svg` for each test (tests whose files cannot be read are named in
    /// `Drawn::failed`).
    PerTest(fn(&Inputs, &Path, &mut Drawn) -> Result<()>),
}

/// A registered chart.
#[derive(Clone, Copy)]
pub struct Chart {
    /// The file name (a per-test chart's files are `TEST_NAME`).
    pub name: &'static str,
    pub draw: Draw,
}

impl Chart {
    /// Draws it into `dir`, adding its files to `drawn`.
    pub fn draw(&self, inputs: &Inputs, dir: &Path, drawn: &mut Drawn) -> Result<()> {
        match self.draw {
            Draw::Page(f) => drawn.files.extend(f(inputs, dir)?),
            Draw::PerTest(f) => f(inputs, dir, drawn)?,
        }
        Ok(())
    }
}

macro_rules! charts {
    ($($module:ident),+ $(,)?) => {
        $(pub mod $module;)+

        /// Every chart, in the order report.html shows them.
        pub const CHARTS: &[Chart] = &[$($module::CHART),+];
    };
}

charts! {
    valkey_vs_best_pg,
    latency_comparison,
    throughput_comparison,
    scenario_comparison,
    latency_distribution,
    cpu_usage,
    run_spread,
    capacity_comparison,
    latency_vs_load,
    worker_scaling,
    horizon_timeline,
    timeline,
}
