//! One test: producer and/or workers against one queue, a collector that writes one
//! interval per second, a stop rule, an audit verdict, and the result files.
//! `produce`, `work` and `run-suite` all run [`run`] with different specs.

pub mod audit;
mod collector;
mod load;
pub mod outages;
pub mod producer;
mod report;
mod spec;
mod stop;
mod verdict;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::clock::Clock;
use crate::progress::{Progress, Snapshot};
use crate::queue::Queue;
use crate::stats::Recorders;
use collector::Collector;
use load::Load;
pub use report::Report;
pub use spec::{Env, Identity, Plan, Sidecar, Spec};
pub use stop::StopRule;
use stop::Stopper;

/// Prints a warning at most every 5 s, so a failing server cannot flood the terminal.
pub fn warn_limited(msg: &str) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
        *last = Some(Instant::now());
        eprintln!("\nqbench: warning: {msg}");
    }
}

/// Prints warnings made before a test once (even with --quiet, which only silences
/// progress) and keeps them for the manifest.
pub fn announce(warnings: impl IntoIterator<Item = String>) -> Vec<String> {
    warnings
        .into_iter()
        .inspect(|w| eprintln!("qbench: warning: {w}"))
        .collect()
}

/// The queue's depth, or `None` if it could not be read within 2 s.
async fn depth_of(queue: &Arc<dyn Queue>) -> Option<u64> {
    tokio::time::timeout(Duration::from_secs(2), queue.depth())
        .await
        .ok()?
        .ok()
}

/// Runs one test to its stop rule (or Ctrl-C) and writes its files.
pub async fn run(spec: Spec) -> Result<Report> {
    let mut test = Running::start(spec).await?;
    let interrupted = test.drive().await?;
    test.finish(interrupted).await
}

/// A test between its start and its files.
struct Running {
    id: Identity,
    plan: Plan,
    env: Env,
    load: Load,
    recorders: Recorders,
    outages: Arc<outages::Outages>,
    collector: Collector,
    stopper: Stopper,
    server: Option<crate::queue::ServerInfo>,
    started: Instant,
    started_at: SystemTime,
}

impl Running {
    /// Opens every connection (a wrong server or a missing schema fails here, before any
    /// file exists), then the result files; the clock starts with the load.
    async fn start(spec: Spec) -> Result<Running> {
        let Spec { id, plan, mut env } = spec;
        let recorders = Recorders::new(8);
        let outages = Arc::new(outages::Outages::default());
        let visibility = Duration::from_secs_f64(env.cfg.benchmark.visibility_timeout_s);
        let load = Load::start(&plan, &env.queue, &recorders, &outages, visibility).await?;
        let server = env.queue.server().info().await.ok();
        // The test starts when load starts: after every connection is open (SCRAM logins
        // of dozens of connections take a noticeable time), at the producer's t0.
        let started = load.t0();
        let started_at = Clock::get().system_time(started);
        let collector = match Collector::open(&id, &mut env, started, started_at) {
            Ok(c) => c,
            Err(e) => {
                load.stop().await;
                return Err(e.context("opening the result files"));
            }
        };
        Ok(Running {
            stopper: Stopper::new(plan.stop.clone()),
            id,
            plan,
            env,
            load,
            recorders,
            outages,
            collector,
            server,
            started,
            started_at,
        })
    }

    /// An interval and a progress line each second, the stop rule every 100 ms, until the
    /// rule says stop or Ctrl-C. Returns whether it was interrupted.
    async fn drive(&mut self) -> Result<bool> {
        let mut progress = Progress::new(self.env.progress, self.id.label.clone());
        let planned = self.plan.planned();
        let started = self.started;
        let mut tick = crate::samplers::every_second(started);
        let mut check = tokio::time::interval(Duration::from_millis(100));
        let interrupted = loop {
            tokio::select! {
                _ = tick.tick() => {
                    let counts = self.load.counts();
                    let depth = depth_of(&self.env.queue).await;
                    let line = self.collector.collect(&self.recorders, counts, depth)?;
                    progress.update(&Snapshot {
                        elapsed: started.elapsed(),
                        remaining: planned.map(|d| d.saturating_sub(started.elapsed())),
                        produced_s: self.load.produces().then_some(line.produced),
                        completed_s: self.load.works().then_some(line.completed),
                        depth,
                        p99_ms: line.e2e_ms.map(|l| l.p99),
                        errors: counts.errors,
                    });
                }
                _ = check.tick() => {
                    let seen = self.load.observe(started);
                    if self.stopper.check(&seen, &self.env.queue).await {
                        break false;
                    }
                }
                _ = self.env.shutdown.cancelled() => break true,
            }
        };
        progress.finish();
        Ok(interrupted)
    }

    /// Stops the load (producer first, then workers finish the jobs in hand), audits,
    /// and writes the summary, the files and the manifest.
    async fn finish(self, interrupted: bool) -> Result<Report> {
        let Running {
            id,
            plan,
            mut env,
            load,
            recorders,
            outages,
            mut collector,
            stopper,
            server,
            started,
            started_at,
        } = self;
        let done = load.stop().await;
        let ended_at = SystemTime::now();
        if let Some(sidecar) = env.sidecar.take() {
            let (key, value) = sidecar.stop().await;
            env.extra.insert(key, value);
        }
        let depth = depth_of(&env.queue).await;
        collector.collect(&recorders, done.counts(), depth)?;
        let errors = report::errors(&done);
        let windows = outages.windows();
        let ending = verdict::Ending {
            depth,
            interrupted,
            drain_timed_out: stopper.drain_timed_out,
            outages: &windows,
            errors: &errors,
            server: server.as_ref(),
            started_epoch_s: Clock::get().wall_us(started) as f64 / 1e6,
        };
        let verdict = verdict::judge(&env.queue, &done, &ending).await;
        let summary = report::summary(
            &id,
            env.queue.kind().name(),
            started,
            interrupted,
            &done,
            &verdict,
            &collector.totals,
            errors,
            windows,
        );
        // What the run found goes to stderr whichever command ran it (the warnings the
        // caller passed in were printed when they were made).
        for w in &verdict.warnings {
            eprintln!("qbench: warning: {w}");
        }
        let mut warnings = env.warnings.clone();
        warnings.extend(verdict.warnings);
        let parts = report::ManifestParts {
            id: &id,
            plan: &plan,
            env: &env,
            summary: &summary,
            warnings: vec![],
            files: vec![],
            interrupted,
            started_at,
            ended_at,
            server,
        };
        let (files, warnings) = report::close(collector, parts, warnings).await?;
        Ok(Report {
            summary,
            interrupted,
            files,
            warnings,
            started_at,
            ended_at,
        })
    }
}
