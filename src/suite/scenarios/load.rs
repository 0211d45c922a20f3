//! The load scenario (the seed's contention test): pgbench alone for the test's length on
//! the emptied queue, then the same warmup as warm, then the measured window with pgbench
//! beside it. pgbench's TPS beside the queue against alone is what the queue costs the
//! database.

use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;

use super::{Scenario, Test};
use crate::clock::{rfc3339, Clock};
use crate::config::Benchmark;
use crate::format::files::OutputDir;
use crate::session::Session;
use crate::shutdown::Shutdown;
use crate::suite::{fmt_duration, measured, pgbench, SuiteOptions};
use crate::text::ms;
use crate::workload::{Report, Sidecar};

pub struct Load;

#[async_trait::async_trait(?Send)]
impl Scenario for Load {
    fn extra_s(&self, b: &Benchmark, _o: &SuiteOptions) -> f64 {
        // The warmup, then pgbench alone for the test's length.
        b.warmup_duration + b.production_duration + 2.5
    }

    fn needs_pgbench(&self) -> bool {
        true
    }

    async fn run(&self, mut t: Test<'_>) -> Result<Report> {
        let Some(p) = t.pgbench else {
            return Err(anyhow::anyhow!(
                "{}: the load scenario runs pgbench, and the suite found none (a bug)",
                t.planned.name
            ));
        };
        let out = OutputDir::prepare(t.dir(), &t.planned.name, true)?;
        // pgbench alone first, on the reset queue: the warmup's own aftermath (autovacuum
        // of the queue's tables) belongs to what the queue costs, so it falls beside.
        let window_s = t.cfg.benchmark.production_duration;
        let alone = out.create("pgbench_alone.csv")?;
        let window = Duration::from_secs_f64(window_s);
        match alone_run(t.session, p, alone, window, &t.planned.name).await? {
            Some(v) => t.extra.insert("pgbench_alone".into(), v),
            None => return Err(measured::interrupted(out)),
        };
        let warnings = match measured::warm_up(&mut t).await {
            Ok(w) => w,
            Err(e) => {
                out.discard();
                return Err(e);
            }
        };
        let csv = out.create("pgbench.csv")?;
        let sidecar: Box<dyn Sidecar> = Box::new(PgbenchSidecar {
            running: p.start(csv).await?,
            window_s,
            shutdown: t.session.shutdown.clone(),
        });
        measured::window(t, out, Some(sidecar), warnings).await
    }
}

/// pgbench beside the queue; its figure is the production window's, the same length
/// as pgbench alone ran (the drain after is not the load it is compared under).
struct PgbenchSidecar {
    running: pgbench::Running,
    window_s: f64,
    shutdown: Shutdown,
}

#[async_trait::async_trait]
impl Sidecar for PgbenchSidecar {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value) {
        let started = self.running.started;
        let stats = self
            .running
            .stop_after_window(self.window_s, &self.shutdown)
            .await;
        // pgbench.csv counts seconds from pgbench's own start, just before the test's.
        (
            "pgbench".into(),
            json!({
                "stats": stats,
                "started_at": rfc3339(crate::clock::Clock::get().system_time(started)),
                "ran_s": started.elapsed().as_secs_f64(),
                "window_s": self.window_s,
            }),
        )
    }
}

/// Runs pgbench alone for `window` into `csv`; returns what the load test's manifest
/// records as `extra.pgbench_alone`, or `None` when Ctrl-C stopped it.
async fn alone_run<W: Write + Send + 'static>(
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
    if interrupted {
        running.stop().await;
        return Ok(None);
    }
    let stats = running
        .stop_after_window(window.as_secs_f64(), &s.shutdown)
        .await;
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
