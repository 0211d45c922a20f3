//! `qbench produce`: offer jobs open loop and report how well the schedule was kept.

use std::time::Duration;

use anyhow::Result;

use super::test_setup;
use crate::cli::{GlobalArgs, ProduceArgs};
use crate::config::Config;
use crate::error::{usage, Interrupted};
use crate::format::manifest::Role;
use crate::queue::{self, QueueKind};
use crate::session::Session;
use crate::text::ms;
use crate::workload::producer::ProducePlan;
use crate::workload::{self, Plan, StopRule};

/// `--count` or `--duration`, one worker count; `--rate max` is produce's own.
pub fn check(args: ProduceArgs, cfg: &Config, global: &GlobalArgs) -> Result<ProduceArgs> {
    // clap cannot see a global flag from a subcommand's definition.
    if args.count.is_some() && global.benchmark.production_duration.is_some() {
        return Err(usage(
            "the argument '--count <N>' cannot be used with '--duration <S>'; see `qbench produce --help`",
        ));
    }
    if args.count == Some(0) {
        return Err(usage("--count must be at least 1"));
    }
    cfg.benchmark.num_workers.single()?;
    super::reachable(cfg, global)?;
    Ok(args)
}

pub async fn run(s: &Session, args: &ProduceArgs) -> Result<()> {
    let kind = QueueKind::parse(&args.queue)?;
    let b = &s.cfg.benchmark;
    let rate = b.rate_jobs_s();
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
    let queue = queue::open(kind, &s.cfg).await?;
    let plan = Plan {
        produce: Some(plan),
        work: None,
        stop: StopRule::ProducerDone,
    };
    let report =
        test_setup::run(s, queue, &args.out, Role::Produce, plan, output, warnings).await?;

    let sum = &report.summary;
    let lag = sum.schedule_lag_ms;
    if args.out.json {
        test_setup::print_json(&report)?;
    } else {
        println!(
            "produced {} jobs to {kind} at {:.1} jobs/s (offered: {})",
            sum.produced.unwrap_or(0),
            sum.achieved_rate_jobs_s.unwrap_or(0.0),
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
    test_setup::end(s, &args.out);
    Ok(())
}
