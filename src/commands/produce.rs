//! `qbench produce`: offer jobs open loop and report how well the schedule was kept.

use std::time::Duration;

use anyhow::Result;

use super::test_setup;
use crate::cli::ProduceArgs;
use crate::error::{usage, Interrupted};
use crate::format::manifest::Role;
use crate::queue::{self, QueueKind};
use crate::text::ms;
use crate::workload::producer::ProducePlan;
use crate::workload::{self, Plan, StopRule};
use crate::Ctx;

pub async fn run(ctx: &Ctx, args: &ProduceArgs) -> Result<()> {
    let kind = QueueKind::parse(&args.queue)?;
    let b = &ctx.cfg.benchmark;
    let rate = b.rate_jobs_s();
    if args.count == Some(0) {
        return Err(usage("--count must be at least 1"));
    }
    let plan = ProducePlan {
        count: args.count,
        duration: match args.count {
            Some(_) => None,
            None => Some(Duration::from_secs_f64(b.production_duration)),
        },
        ..ProducePlan::paced(rate, Duration::ZERO, b)
    };
    // A results folder that cannot take the files is refused before anything runs.
    let output = test_setup::output(&args.out, Some("producer"))?;
    let warnings = workload::announce(rate.and_then(|r| b.capacity_warning(r)));
    let queue = queue::open(kind, &ctx.cfg).await?;
    let plan = Plan {
        produce: Some(plan),
        work: None,
        stop: StopRule::ProducerDone,
    };
    let report =
        test_setup::run(ctx, queue, &args.out, Role::Produce, plan, output, warnings).await?;

    let s = &report.summary;
    let lag = s.schedule_lag_ms;
    if args.out.json {
        test_setup::print_json(&report)?;
    } else {
        println!(
            "produced {} jobs to {kind} at {:.1} jobs/s (offered: {})",
            s.produced.unwrap_or(0),
            s.achieved_rate_jobs_s.unwrap_or(0.0),
            rate.map_or("max".into(), |r| format!("{r} jobs/s")),
        );
        println!(
            "schedule lag ms: p50 {}  p99 {}  max {}",
            ms(lag.map(|l| l.p50)),
            ms(lag.map(|l| l.p99)),
            ms(lag.map(|l| l.max)),
        );
        if let Some(dir) = &args.out.out {
            println!("files: {} in {}", report.files.join(", "), dir.display());
        }
    }
    if report.interrupted {
        return Err(Interrupted.into());
    }
    Ok(())
}
