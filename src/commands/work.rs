//! `qbench work`: workers that claim, simulate work and complete, with an audit at the end.

use std::time::Duration;

use anyhow::Result;

use super::test_setup;
use crate::cli::WorkArgs;
use crate::error::{usage, AuditFailed, Interrupted};
use crate::format::manifest::Role;
use crate::queue::{self, QueueKind};
use crate::session::Session;
use crate::text::ms;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Plan, StopRule};

/// `work --burndown N`: empty the queue, pre-fill N jobs, drain them, report jobs/s.
async fn burndown(s: &Session, kind: QueueKind, args: &WorkArgs, n: u64) -> Result<()> {
    if n == 0 {
        return Err(usage(
            "--burndown 0 drains nothing: give a number of jobs above 0",
        ));
    }
    if args.out.start_at.is_some() || args.out.run_id.is_some() {
        return Err(usage(
            "--start-at and --run-id coordinate open-loop produce and work processes; a \
             burn-down pre-fills and drains by itself",
        ));
    }
    s.cfg.benchmark.wakeup.single()?;
    let name = args
        .out
        .name
        .clone()
        .unwrap_or_else(|| format!("{kind}_burndown"));
    let dir = args.out.out.as_deref();
    if let Some(d) = dir {
        crate::format::files::OutputDir::prepare(d, &name, args.out.force)?;
    }
    let bd = crate::capacity::burndown::run(
        s,
        kind,
        &s.cfg,
        n,
        dir,
        &name,
        dir.unwrap_or(std::path::Path::new("")),
    )
    .await?;
    if let Some(d) = dir {
        crate::format::capacity::write(&bd, &d.join(format!("{name}_burndown.json")))?;
    }
    if args.out.json {
        println!("{}", serde_json::to_string(&bd)?);
    } else {
        println!("{}", crate::capacity::burndown::describe(&bd));
    }
    test_setup::end(s, &args.out);
    if bd.audit != "exact" {
        return Err(AuditFailed(format!("burn-down audit failed: {}", bd.audit)).into());
    }
    Ok(())
}

pub async fn run(s: &Session, args: &WorkArgs) -> Result<()> {
    let kind = QueueKind::parse(&args.queue)?;
    if let Some(n) = args.burndown {
        return burndown(s, kind, args, n).await;
    }
    let b = &s.cfg.benchmark;
    // A duration counts only when some layer set it; the default 180 s is the producer's.
    let duration = s
        .cfg
        .benchmark_set
        .contains("production_duration")
        .then_some(b.production_duration);
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
    // A results folder that cannot take the files is refused before anything runs.
    let output = test_setup::output(&args.out, None)?;
    // Workers offer no load themselves: warn when a rate was actually set for this run.
    let rate = b
        .rate_jobs_s()
        .filter(|_| s.cfg.benchmark_set.contains("production_rate"));
    let warnings = workload::announce(rate.and_then(|r| b.capacity_warning(r)));
    let queue = queue::open(kind, &s.cfg).await?;
    let plan = Plan {
        produce: None,
        work: Some(WorkPlan::from_config(b)),
        stop,
    };
    let report = test_setup::run(s, queue, &args.out, Role::Work, plan, output, warnings).await?;

    let sum = &report.summary;
    let e2e = sum.e2e_ms;
    if args.out.json {
        test_setup::print_json(&report)?;
    } else {
        println!(
            "completed {} jobs from {kind}: duplicated {}, still queued {}, redelivered {}, late {}",
            sum.completed.unwrap_or(0),
            sum.duplicated.unwrap_or(0),
            sum.left_in_queue.unwrap_or(0),
            sum.redelivered.unwrap_or(0),
            sum.late_completions.unwrap_or(0),
        );
        match sum.lost {
            Some(lost) => println!("lost {lost} (audit: exact)"),
            None => println!(
                "lost: {}",
                sum.audit_note
                    .as_deref()
                    .unwrap_or("not judged by this process")
            ),
        }
        println!(
            "throughput {:.1} jobs/s; end-to-end ms: p50 {}  p95 {}  p99 {}  p99.9 {}  max {}",
            sum.throughput_jobs_s.unwrap_or(0.0),
            ms(e2e.map(|l| l.p50)),
            ms(e2e.map(|l| l.p95)),
            ms(e2e.map(|l| l.p99)),
            ms(e2e.map(|l| l.p999)),
            ms(e2e.map(|l| l.max)),
        );
        if let (Some(a), Some(b)) = (sum.first_redelivery_epoch_s, sum.last_redelivery_epoch_s) {
            println!(
                "recovered {} redelivered job(s), claimed between {} and {} (UTC)",
                sum.redelivered.unwrap_or(0),
                crate::clock::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs_f64(a)),
                crate::clock::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs_f64(b)),
            );
        }
        if let Some(dir) = &args.out.out {
            println!("files: {} in {}", report.files.join(", "), dir.display());
        }
    }
    if sum.lost.unwrap_or(0) > 0 {
        return Err(AuditFailed(format!(
            "audit failed: {} job(s) lost",
            sum.lost.unwrap_or(0)
        ))
        .into());
    }
    if report.interrupted {
        return Err(Interrupted.into());
    }
    test_setup::end(s, &args.out);
    Ok(())
}
