//! pgbench alone, before each load test's warmup and for its production window: the
//! difference between it and pgbench beside the queue over the same window is what the
//! queue costs the database.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::{fmt_duration, pgbench};
use crate::clock::{rfc3339, Clock};
use crate::session::Session;
use crate::text::ms;

/// Runs pgbench alone for `window` into `csv`; returns what the load test's manifest
/// records as `extra.pgbench_alone`, or `None` when Ctrl-C stopped it.
pub async fn alone<W: Write + Send + 'static>(
    s: &Session,
    p: &pgbench::Pgbench,
    csv: BufWriter<W>,
    window: Duration,
    label: &str,
) -> Result<Option<serde_json::Value>> {
    s.note(&format!(
        "qbench: {label}: pgbench alone ({} clients) for {}, then beside the queue",
        p.clients(),
        fmt_duration(window)
    ));
    let running = p.start(csv).await?;
    let started = running.started;
    let began = Instant::now();
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(window) => false,
        _ = s.shutdown.cancelled() => true,
    };
    let stats = running.stop().await;
    if interrupted {
        return Ok(None);
    }
    eprintln!(
        "qbench: {label}: pgbench alone: {} tps, latency {} ms",
        stats.tps_mean.map_or("-".into(), |t| format!("{t:.1}")),
        ms(stats.latency_ms_mean)
    );
    Ok(Some(json!({
        "stats": stats,
        "started_at": rfc3339(Clock::get().system_time(started)),
        "ran_s": began.elapsed().as_secs_f64(),
    })))
}
