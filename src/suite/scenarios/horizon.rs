//! The horizon scenario in a suite: a steady rate (the sweep's MST halved, if one of the
//! same workload is found) while a transaction is held open elsewhere; the holder and the
//! once-a-second sampler run beside the test (`crate::horizon`).

use anyhow::Result;

use super::{Scenario, Test};
use crate::config::Benchmark;
use crate::format::files::OutputDir;
use crate::suite::SuiteOptions;
use crate::workload::{self, Env, Report, Spec};

pub struct Horizon;

#[async_trait::async_trait(?Send)]
impl Scenario for Horizon {
    fn extra_s(&self, b: &Benchmark, o: &SuiteOptions) -> f64 {
        o.horizon.as_ref().map_or(0.0, |h| h.phases.total_s()) - b.production_duration
    }

    async fn run(&self, t: Test<'_>) -> Result<Report> {
        let Some(h) = t.opts.horizon.as_ref() else {
            return Err(anyhow::anyhow!(
                "{}: the horizon scenario needs its schedule (a bug: the plan named it without one)",
                t.planned.name
            ));
        };
        let mut env = Env {
            extra: t.extra.clone(),
            ..t.env()
        };
        let cfg = env.cfg.clone();
        let dirs = crate::horizon::sweep_dirs(&t.opts.out, t.dir());
        let rate = crate::horizon::rate(env.queue.as_ref(), &cfg, h.rate, &dirs).await?;
        env.warnings
            .extend(workload::announce(cfg.benchmark.capacity_warning(rate.0)));
        let out = OutputDir::prepare(t.dir(), &t.planned.name, true)?;
        let p = match crate::horizon::prepare(&env.queue, &cfg, &out, h, rate).await {
            Ok(p) => p,
            Err(e) => {
                out.discard();
                return Err(e);
            }
        };
        env.output = Some(out);
        env.sidecar = Some(p.sidecar);
        env.ticks = Some(p.ticks);
        workload::run(Spec {
            id: t.id(t.planned.name.clone(), t.label.clone()),
            plan: p.plan,
            env,
        })
        .await
    }
}
