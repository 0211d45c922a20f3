//! pgbench alone, for the same window as a test: what the queue costs the database.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use super::{fmt_duration, is_complete, pgbench, SuiteOptions};
use crate::clock::rfc3339;
use crate::error::Interrupted;
use crate::format::baseline::{BaselineManifest, BASELINE, BASELINE_FORMAT};
use crate::format::files::{write_atomic, OutputDir};
use crate::format::manifest::Host;
use crate::format::FORMAT_VERSION;
use crate::text::ms;
use crate::Ctx;

/// Runs pgbench alone once per suite, for the measured window of one test.
pub async fn run(
    ctx: &Ctx,
    p: &pgbench::Pgbench,
    dirs: &[PathBuf],
    opts: &SuiteOptions,
) -> Result<()> {
    let Some(first) = dirs.first() else {
        return Ok(());
    };
    if !opts.force && dirs.iter().all(|d| is_complete(d, BASELINE, opts.quick)) {
        println!("{BASELINE}: already complete, skipped");
        return Ok(());
    }
    let window = Duration::from_secs_f64(ctx.cfg.benchmark.production_duration);
    if !ctx.global.quiet {
        eprintln!(
            "qbench: {BASELINE}: pgbench alone ({} clients) for {}",
            ctx.cfg.pgbench.clients,
            fmt_duration(window)
        );
    }
    let out = OutputDir::prepare(first, BASELINE, true)?;
    let started_at = SystemTime::now();
    let running = p.start(out.create("pgbench.csv")?).await?;
    let began = Instant::now();
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(window) => false,
        _ = ctx.shutdown.cancelled() => true,
    };
    let stats = running.stop().await;
    let files = out.finish()?;
    let manifest = BaselineManifest {
        format: BASELINE_FORMAT.into(),
        version: FORMAT_VERSION,
        test: BASELINE.into(),
        complete: !interrupted,
        smoke: opts.quick,
        started_at: rfc3339(started_at),
        ended_at: rfc3339(SystemTime::now()),
        window_s: began.elapsed().as_secs_f64(),
        pgbench: stats.clone(),
        qbench_version: env!("CARGO_PKG_VERSION").into(),
        host: tokio::task::spawn_blocking(Host::this).await?,
        config: ctx.cfg.masked(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    for d in dirs {
        if d != first {
            for f in &files {
                std::fs::copy(first.join(f), d.join(f))?;
            }
        }
        write_atomic(&d.join(format!("{BASELINE}_manifest.json")), &bytes)?;
    }
    println!(
        "{BASELINE}: pgbench alone: {} tps, latency {} ms",
        stats.tps_mean.map_or("-".into(), |t| format!("{t:.1}")),
        ms(stats.latency_ms_mean)
    );
    if interrupted {
        return Err(Interrupted.into());
    }
    Ok(())
}
