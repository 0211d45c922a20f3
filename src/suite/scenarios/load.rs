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
        });
        measured::window(t, out, Some(sidecar), warnings).await
    }
}

/// pgbench beside the queue; its figure is the production window's, the same length
/// as pgbench alone ran (the drain after is not the load it is compared under).
struct PgbenchSidecar {
    running: pgbench::Running,
    window_s: f64,
}

#[async_trait::async_trait]
impl Sidecar for PgbenchSidecar {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value) {
        let mut running = self.running;
        let started = running.started;
        // The lines covering the window may lag a short drain on a loaded machine.
        let _ = tokio::time::timeout(Duration::from_secs(15), running.lines(lines_for(self.window_s))).await;
        let stats = running.stop_within(self.window_s).await;
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
    let mut running = p.start(csv).await?;
    let started = running.started;
    let began = Instant::now();
    // The window, and then the progress lines that cover it: a loaded machine can print
    // them late. Bounded, so a pgbench that stops printing still ends the wait (its
    // figure is then absent).
    let measured = async {
        tokio::time::sleep(window).await;
        let lines = lines_for(window.as_secs_f64());
        let _ = tokio::time::timeout(Duration::from_secs(15), running.lines(lines)).await;
    };
    let interrupted = tokio::select! {
        _ = measured => false,
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

/// Progress lines that cover a window of `window_s`: pgbench's first line, which its
/// summary skips as the ramp, and one per second after it.
fn lines_for(window_s: f64) -> usize {
    1 + window_s.ceil().max(1.0) as usize
}
