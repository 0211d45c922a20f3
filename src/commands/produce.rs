//! `qbench produce`: offer jobs open loop and report how well the schedule was kept.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::test_setup::{self, capacity_warnings, ms, stem};
use crate::cli::{ProduceArgs, Rate};
use crate::error::{usage, Interrupted};
use crate::output::manifest::Role;
use crate::output::OutputDir;
use crate::queue::{self, QueueKind};
use crate::workload::producer::ProducePlan;
use crate::workload::{self, Spec, StopRule};
use crate::Ctx;

pub async fn run(ctx: &Ctx, args: &ProduceArgs) -> Result<()> {
    let kind = QueueKind::parse(&args.queue)?;
    let b = &ctx.cfg.benchmark;
    let rate = match ctx.global.workload.rate {
        Some(Rate::Max) => None,
        _ => Some(b.production_rate),
    };
    if args.count == Some(0) {
        return Err(usage("--count must be at least 1"));
    }
    let plan = ProducePlan {
        rate,
        count: args.count,
        duration: match args.count {
            Some(_) => None,
            None => Some(Duration::from_secs_f64(b.production_duration)),
        },
        connections: b.producer_connections as usize,
        max_batch: 500,
    };
    let output = match (&args.out.out, &args.out.name) {
        (Some(dir), Some(name)) => Some(OutputDir::prepare(
            dir,
            &stem(name, Some("producer"), args.out.instance.as_deref()),
            args.out.force,
        )?),
        _ => None,
    };
    let mut warnings = capacity_warnings(&ctx.cfg, rate);
    let queue = queue::open(kind, &ctx.cfg).await?;
    // Sequence numbers start at 0 in every produce run: jobs of an earlier run still
    // counted by the queue share them, and a worker that completes both would count the
    // overlap as duplicates.
    if let Ok(st) = queue.state().await {
        if st.produced > 0 {
            let w = format!(
                "{kind} already received {} job(s) since its last reset; this run's sequence numbers repeat theirs, so a work process that completes jobs of both runs counts the overlap as duplicated: reset it first (qbench setup-schema --queue {kind} --reset)",
                st.produced
            );
            eprintln!("qbench: warning: {w}");
            warnings.push(w);
        }
    }
    let report = workload::run(Spec {
        produce: Some(plan),
        stop: StopRule::ProducerDone,
        output,
        warnings,
        ..test_setup::spec(ctx, kind, queue, &args.out, Role::Produce)
    })
    .await?;

    let s = &report.summary;
    let lag = s.schedule_lag_ms;
    if args.out.json {
        println!(
            "{}",
            json!({
                "produced": s.produced,
                "achieved_rate_jobs_s": s.achieved_rate_jobs_s,
                "schedule_lag_ms": {
                    "p50": lag.map(|l| l.p50),
                    "p99": lag.map(|l| l.p99),
                    "max": lag.map(|l| l.max),
                },
                "errors": s.errors.producer,
                "complete": s.complete,
                "files": report.files,
            })
        );
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
