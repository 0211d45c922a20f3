//! `qbench work`: workers that claim, simulate work and complete, with an audit at the end.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::test_setup::{self, capacity_warnings, ms, stem};
use crate::cli::WorkArgs;
use crate::error::{usage, AuditFailed, Interrupted};
use crate::output::manifest::Role;
use crate::output::OutputDir;
use crate::queue::{self, QueueKind};
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Spec, StopRule};
use crate::Ctx;

pub async fn run(ctx: &Ctx, args: &WorkArgs) -> Result<()> {
    let kind = QueueKind::parse(&args.queue)?;
    let b = &ctx.cfg.benchmark;
    let duration = ctx.global.workload.duration;
    let stop = match (args.until_idle, duration) {
        (Some(i), _) if !(i.is_finite() && i > 0.0) => {
            return Err(usage("--until-idle must be a number of seconds above 0"))
        }
        (Some(i), d) => StopRule::UntilIdle {
            idle: Duration::from_secs_f64(i),
            max: d.map(Duration::from_secs_f64),
        },
        (None, Some(d)) => StopRule::Duration(Duration::from_secs_f64(d)),
        // Neither: a worker that runs until Ctrl-C or SIGTERM.
        (None, None) => StopRule::Duration(Duration::MAX),
    };
    let plan = WorkPlan {
        workers: b.num_workers as usize,
        processing: Duration::from_secs_f64(b.job_processing_time_ms / 1000.0),
        poll_interval: Duration::from_secs_f64(b.poll_interval_ms / 1000.0),
    };
    let output = match (&args.out.out, &args.out.name) {
        (Some(dir), Some(name)) => Some(OutputDir::prepare(
            dir,
            &stem(name, None, args.out.instance.as_deref()),
            args.out.force,
        )?),
        _ => None,
    };
    // Workers offer no load themselves: warn when a rate was actually set for this run.
    let rate_set = ctx.global.workload.rate.is_some()
        || b.production_rate != crate::config::Benchmark::default().production_rate;
    let warnings = capacity_warnings(&ctx.cfg, rate_set.then_some(b.production_rate));
    let queue = queue::open(kind, &ctx.cfg).await?;
    let report = workload::run(Spec {
        work: Some(plan),
        stop,
        output,
        warnings,
        ..test_setup::spec(ctx, kind, queue, &args.out, Role::Work)
    })
    .await?;

    let s = &report.summary;
    let e2e = s.e2e_ms;
    if args.out.json {
        println!(
            "{}",
            json!({
                "completed": s.completed,
                "lost": s.lost,
                "duplicated": s.duplicated,
                "left_in_queue": s.left_in_queue,
                "redelivered": s.redelivered,
                "throughput_jobs_s": s.throughput_jobs_s,
                "e2e_ms": {
                    "p50": e2e.map(|l| l.p50),
                    "p95": e2e.map(|l| l.p95),
                    "p99": e2e.map(|l| l.p99),
                    "p999": e2e.map(|l| l.p999),
                    "max": e2e.map(|l| l.max),
                },
                "errors": s.errors.worker,
                "first_redelivery_epoch_s": s.first_redelivery_epoch_s,
                "last_redelivery_epoch_s": s.last_redelivery_epoch_s,
                "outages": s.outages,
                "complete": s.complete,
                "files": report.files,
            })
        );
    } else {
        println!(
            "completed {} jobs from {kind}: lost {}, duplicated {}, still queued {}, redelivered {}",
            s.completed.unwrap_or(0),
            s.lost.unwrap_or(0),
            s.duplicated.unwrap_or(0),
            s.left_in_queue.unwrap_or(0),
            s.redelivered.unwrap_or(0),
        );
        println!(
            "throughput {:.1} jobs/s; end-to-end ms: p50 {}  p95 {}  p99 {}  p99.9 {}  max {}",
            s.throughput_jobs_s.unwrap_or(0.0),
            ms(e2e.map(|l| l.p50)),
            ms(e2e.map(|l| l.p95)),
            ms(e2e.map(|l| l.p99)),
            ms(e2e.map(|l| l.p999)),
            ms(e2e.map(|l| l.max)),
        );
        if let (Some(a), Some(b)) = (s.first_redelivery_epoch_s, s.last_redelivery_epoch_s) {
            println!(
                "recovered {} redelivered job(s), claimed between {} and {} (UTC)",
                s.redelivered.unwrap_or(0),
                crate::clock::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs_f64(a)),
                crate::clock::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs_f64(b)),
            );
        }
        if let Some(dir) = &args.out.out {
            println!("files: {} in {}", report.files.join(", "), dir.display());
        }
    }
    if s.lost.unwrap_or(0) > 0 {
        return Err(
            AuditFailed(format!("audit failed: {} job(s) lost", s.lost.unwrap_or(0))).into(),
        );
    }
    if report.interrupted {
        return Err(Interrupted.into());
    }
    Ok(())
}
