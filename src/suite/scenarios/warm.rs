//! The warm scenario: a warmup at `warmup_rate` (its numbers thrown away, the queue not
//! reset after), then the measured window.

use anyhow::Result;

use super::{Scenario, Test};
use crate::config::Benchmark;
use crate::format::files::OutputDir;
use crate::suite::{measured, SuiteOptions};
use crate::workload::Report;

pub struct Warm;

#[async_trait::async_trait(?Send)]
impl Scenario for Warm {
    fn extra_s(&self, b: &Benchmark, _o: &SuiteOptions) -> f64 {
        b.warmup_duration + 1.0
    }

    async fn run(&self, mut t: Test<'_>) -> Result<Report> {
        let out = OutputDir::prepare(t.dir(), &t.planned.name, true)?;
        let warnings = match measured::warm_up(&mut t).await {
            Ok(w) => w,
            Err(e) => {
                out.discard();
                return Err(e);
            }
        };
        measured::window(t, out, None, warnings).await
    }
}
