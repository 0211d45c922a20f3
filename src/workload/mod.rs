//! One test: producer and/or workers against one queue, a collector that writes one
//! interval per second, a stop rule, an audit verdict, and the result files.
//! `produce`, `work` and `run-suite` all run [`run`] with different specs.

pub mod audit;
mod collector;
pub mod key;
mod load;
pub mod outages;
pub mod producer;
mod report;
mod saturation;
mod spec;
mod stop;
pub mod tier;
mod verdict;
pub mod worker;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;

use crate::clock::Clock;
use crate::format::audit::AuditFile;
use crate::format::manifest::ClockOffset;
use crate::progress::{Progress, Snapshot};
use crate::queue::Queue;
use crate::stats::Metric;
use crate::stats::Recorders;
use collector::Collector;
use load::Load;
pub use report::Report;
pub use spec::{Env, Identity, Plan, Sidecar, Spec, Tick};
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
    saturation: saturation::Saturation,
    server: Option<crate::queue::ServerInfo>,
    /// The queue's wakeup counts before this test: a queue reused from a warmup has
    /// counted the warmup's notifications too.
    wakeup_before: crate::queue::WakeupReport,
    /// A cluster's per-stream counts before the load (a warm-up's jobs are not the test's).
    shards_before: Vec<crate::format::manifest::Shard>,
    clock: Option<ClockOffset>,
    /// This process's run: its manifest and audit file carry it.
    run_id: String,
    started: Instant,
    started_at: SystemTime,
}

/// This host's clock against the server's, read at the midpoint of a round trip: the
/// best of five readings, the one with the shortest round trip (as NTP does).
async fn clock_offset(queue: &Arc<dyn Queue>) -> Option<ClockOffset> {
    let clock = Clock::get();
    let mut best: Option<ClockOffset> = None;
    for _ in 0..5 {
        let sent = Instant::now();
        let Ok(server_us) = queue.server().now_us().await else {
            continue;
        };
        let back = Instant::now();
        let mid_us = clock.wall_us(sent + (back - sent) / 2);
        let reading = ClockOffset {
            offset_ms: (server_us - mid_us) as f64 / 1000.0,
            rtt_ms: (back - sent).as_secs_f64() * 1000.0,
        };
        if best.is_none_or(|b| reading.rtt_ms < b.rtt_ms) {
            best = Some(reading);
        }
    }
    best
}

/// An id no other process's run shares: host, process and start time.
fn run_id(started_at: SystemTime) -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "host".into());
    let ms = started_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{host}-{}-{ms}", std::process::id())
}

/// A burn-down (its queue pre-filled, no arrivals) or a producer at `--rate max` sets its
/// own pace: nothing can be past its capacity. A work process alone is open loop: its
/// arrivals come from producers elsewhere.
fn closed_loop(id: &Identity, plan: &Plan) -> bool {
    id.scenario.as_deref() == Some("burndown")
        || plan.produce.as_ref().is_some_and(|p| p.rate.is_none())
}

impl Running {
    /// Opens every connection (a wrong server or a missing schema fails here, before any
    /// file exists), then the result files; the clock starts with the load.
    async fn start(spec: Spec) -> Result<Running> {
        let Spec { id, plan, mut env } = spec;
        let recorders = Recorders::new(8);
        let outages = Arc::new(outages::Outages::default());
        let wakeup_before = env.queue.server().wakeup();
        let visibility = Duration::from_secs_f64(env.cfg.benchmark.visibility_timeout_s);
        // Read while the server is quiet (before the load, and before a --start-at wait
        // ends), so the clock offset's round trips are not widened by the load.
        let server = env.queue.server().info().await.ok();
        let clock = clock_offset(&env.queue).await;
        let shards_before = env.queue.shards().await.unwrap_or_default();
        let gate = load::Gate {
            at: env.start_at,
            shutdown: env.shutdown.clone(),
        };
        let load = Load::start(
            &plan,
            &env.queue,
            &recorders,
            &outages,
            visibility,
            env.acked.clone(),
            &gate,
        )
        .await?;
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
        let workers = plan.work.as_ref().map_or(0, |w| w.workers);
        Ok(Running {
            stopper: Stopper::new(
                plan.stop.clone(),
                plan.produce.as_ref().and_then(|p| p.duration),
            ),
            saturation: saturation::Saturation::new(workers, !closed_loop(&id, &plan)),
            clock,
            run_id: run_id(started_at),
            id,
            plan,
            env,
            load,
            recorders,
            outages,
            collector,
            server,
            wakeup_before,
            shards_before,
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
                    let depth = match self.load.local_depth() {
                        Some(d) => Some(d),
                        None => depth_of(&self.env.queue).await,
                    };
                    let line = self.collector.collect(&self.recorders, counts, depth)?;
                    if let Some(ticks) = &self.env.ticks {
                        // A listener that has gone away is no reason to stop the test.
                        let _ = ticks.send(Tick { started, line: line.clone() });
                    }
                    if let Some(w) = self.saturation.observe(&line) {
                        progress.message(&format!("qbench: warning: {w}"));
                    }
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

    /// Stops the load (producer first, then workers finish the jobs in hand), reads the
    /// queue by seq, audits, and writes the summary, the files and the manifest.
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
            saturation,
            server,
            wakeup_before,
            shards_before,
            clock,
            run_id,
            started,
            started_at,
        } = self;
        // Jobs still queued are censored at their age when the stop rule fired.
        let stop_rule_at = Clock::get().now_us();
        let done = load.stop().await;
        let stopped_us = Clock::get().now_us();
        let ended_at = SystemTime::now();
        if let Some(sidecar) = env.sidecar.take() {
            let (key, value) = sidecar.stop().await;
            env.extra.insert(key, value);
        }
        let (snap, audit) = look(&env.queue, &done, &id.test, &run_id, stopped_us).await;
        let judgement = verdict::judge_file(&audit);
        let censored = censor(&recorders, &done, snap.as_ref(), stop_rule_at);
        let depth = snap
            .as_ref()
            .and_then(|s| s.as_ref().ok())
            .map(|s| s.left.len() as u64);
        collector.collect(&recorders, done.counts(), depth)?;
        let errors = report::errors(&done);
        let windows = outages.windows();
        let ending = verdict::Ending {
            interrupted,
            drain_timed_out: stopper.drain_timed_out,
            outages: &windows,
            errors: &errors,
            server: server.as_ref(),
            started_epoch_s: Clock::get().wall_us(started) as f64 / 1e6,
        };
        let found = verdict::warnings(&env.queue, &judgement, &ending);
        let summary = report::summary(report::Outcome {
            id: &id,
            queue: env.queue.kind().name(),
            started,
            interrupted,
            done: &done,
            judgement: &judgement,
            censored,
            totals: &collector.totals,
            errors,
            outages: windows,
            saturation: saturation.warning.clone(),
            workers: plan.work.as_ref().map(|w| w.workers),
            wakeup: Some(env.queue.server().wakeup().since(&wakeup_before)),
        });
        let mut found = found;
        // A burn-down records its pre-fill in the manifest's extra.
        let prefilled = env.extra.contains_key("burndown");
        found.extend(verdict::silent_notify(&summary, prefilled));
        let mut warnings = announced(&env.warnings, saturation.warning, found);
        let shards = shards_since(&env.queue, &shards_before, &mut warnings).await;
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
            run_id: &run_id,
            clock,
            shards,
        };
        let (files, warnings) = report::close(collector, parts, &audit, warnings).await?;
        Ok(Report {
            summary,
            lost: judgement.lost.clone(),
            schedule: done.outcome.as_ref().and_then(|o| o.schedule.clone()),
            interrupted,
            files,
            warnings,
            started_at,
            ended_at,
        })
    }
}

/// Every warning of a test for its manifest: those made before it (printed when they
/// were made), then what the run found, which goes to stderr whichever command ran it.
fn announced(before: &[String], saturation: Option<String>, found: Vec<String>) -> Vec<String> {
    for w in &found {
        eprintln!("qbench: warning: {w}");
    }
    let mut all = before.to_vec();
    all.extend(saturation);
    all.extend(found);
    all
}

/// A cluster's per-stream counts during the test (end less start); a failed read is a
/// warning, not a failed test.
async fn shards_since(
    queue: &Arc<dyn Queue>,
    before: &[crate::format::manifest::Shard],
    warnings: &mut Vec<String>,
) -> Vec<crate::format::manifest::Shard> {
    match queue.shards().await {
        Ok(s) => report::shards_since(s, before),
        Err(e) => {
            warnings.push(format!("could not read the per-shard job counts: {e:#}"));
            vec![]
        }
    }
}

/// Reads the queue by seq at the end and writes this process's audit record.
async fn look(
    queue: &Arc<dyn Queue>,
    done: &load::Done,
    test: &str,
    run_id: &str,
    stopped_us: i64,
) -> (Option<Result<crate::queue::Snapshot, String>>, AuditFile) {
    // A read shows the queue as it was when it began: that is when we looked.
    let looked_at_us = Clock::get().now_us();
    let snap = verdict::snapshot(queue, done).await;
    let times = verdict::LookTimes {
        stopped_us,
        looked_at_us,
    };
    let audit = verdict::audit_file(test, run_id, done, snap.as_ref(), times);
    (snap, audit)
}

/// Records every job of this test still in the queue at the end as a censored sample at
/// its age then, so a drain that ran out of time cannot drop the slowest jobs from the
/// latencies. Returns how many. A producer alone leaves this to the workers.
fn censor(
    recorders: &Recorders,
    done: &load::Done,
    snap: Option<&Result<crate::queue::Snapshot, String>>,
    at_us: i64,
) -> u64 {
    let Some(Ok(snap)) = snap else { return 0 };
    let ours = |seq: i64| {
        done.outcome
            .as_ref()
            .is_none_or(|o| o.produced_seqs.contains(seq) || o.uncertain.contains(seq))
    };
    // A paged read can meet a job twice (moved while it read): one sample per job.
    let mut seen = std::collections::HashSet::new();
    let left: Vec<i64> = snap
        .left
        .iter()
        .filter(|(seq, _)| ours(*seq) && seen.insert(*seq))
        .map(|&(_, enq)| (at_us - enq).max(0))
        .collect();
    recorders.shard(0).with(|h| {
        for &age in &left {
            h.record(Metric::E2eCensored, age);
        }
    });
    left.len() as u64
}
