//! One test: producer and/or workers against one queue, samplers beside them, a collector
//! that writes one interval per second, a stop rule, an audit, and the result files.
//! `produce`, `work` and `run-suite` are all this function with different plans.

pub mod audit;
pub mod outages;
pub mod producer;
pub mod worker;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use tokio_util::sync::CancellationToken;

use crate::clock::rfc3339;
use crate::config::Config;
use crate::local::LocalInfo;
use crate::output::manifest::{
    AuditKind, Errors, Host, IntervalLatency, IntervalLine, Knobs, Manifest, Role, Summary,
    FORMAT_VERSION, MANIFEST_FORMAT,
};
use crate::output::progress::{self, Progress, Snapshot};
use crate::output::OutputDir;
use crate::queue::{Backend, Queue, QueueState};
use crate::samplers::system::{ServerProcs, SystemSampler};
use crate::samplers::{pg_stats, valkey_stats};
use crate::shutdown::Shutdown;
use crate::stats::hlog::HlogWriter;
use crate::stats::{HistSet, Metric, Percentiles, Recorders};
use producer::{ProducePlan, ProducerHandle};
use worker::{WorkPlan, Workers};

/// Prints a warning at most every 5 s, so a failing server cannot flood the terminal.
pub fn warn_limited(msg: &str) {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
        *last = Some(Instant::now());
        eprintln!("\nqbench: warning: {msg}");
    }
}

/// When a test ends.
#[derive(Debug, Clone)]
pub enum StopRule {
    /// Producer only: when every job has been sent.
    ProducerDone,
    /// After this long.
    Duration(Duration),
    /// Workers only: once the queue has been empty, with no job in hand, for `idle`.
    /// Time before the first job does not count, so workers may start before producers.
    UntilIdle {
        idle: Duration,
        max: Option<Duration>,
    },
    /// Producer and workers: when producing is done and the queue has drained,
    /// waiting at most `timeout` for the drain. What is left is reported.
    Drain { timeout: Duration },
}

/// Something that runs beside a test for its measured window (pgbench), stopped right
/// after the workers, before the files are closed; its account goes into `extra`.
#[async_trait::async_trait]
pub trait Sidecar: Send {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value);
}

pub struct Spec {
    pub test: String,
    pub instance: Option<String>,
    pub role: Role,
    pub scenario: Option<String>,
    pub smoke: bool,
    pub queue: Arc<dyn Queue>,
    pub cfg: Config,
    pub produce: Option<ProducePlan>,
    pub work: Option<WorkPlan>,
    pub stop: StopRule,
    pub output: Option<OutputDir>,
    pub progress: progress::Mode,
    pub label: String,
    pub local: Option<LocalInfo>,
    pub server: ServerProcs,
    pub warnings: Vec<String>,
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub sidecar: Option<Box<dyn Sidecar>>,
    pub shutdown: Shutdown,
}

#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    pub interrupted: bool,
    pub files: Vec<String>,
    pub warnings: Vec<String>,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
}

/// Files and samplers of a test that writes results.
struct Sink {
    out: OutputDir,
    metrics: std::io::BufWriter<std::fs::File>,
    hlog: HlogWriter<std::io::BufWriter<std::fs::File>>,
    system: SystemSampler,
    server_stats: tokio::task::JoinHandle<Result<std::io::BufWriter<std::fs::File>>>,
    stats_stop: CancellationToken,
}

/// The per-second collector's running state.
struct Collector {
    started: Instant,
    last: Instant,
    interval: HistSet,
    totals: HistSet,
    metrics: &'static [Metric],
    last_produced: u64,
    last_completed: u64,
}

impl Collector {
    /// Drains the recorders into one interval, writes it, and returns its line.
    fn collect(
        &mut self,
        recorders: &Recorders,
        sink: Option<&mut Sink>,
        produced_total: u64,
        completed_total: u64,
        depth: Option<u64>,
        errors: u64,
    ) -> Result<IntervalLine> {
        let now = Instant::now();
        recorders.drain_into(&mut self.interval);
        let e2e = self.interval.get(Metric::E2e);
        let e2e_ms = Percentiles::of(e2e).map(|p| IntervalLatency {
            p50: p.p50,
            p95: p.p95,
            p99: p.p99,
            max: p.max,
        });
        let line = IntervalLine {
            v: FORMAT_VERSION,
            kind: "interval".into(),
            t_s: round3((now - self.started).as_secs_f64()),
            interval_s: round3((now - self.last).as_secs_f64()),
            produced: produced_total - self.last_produced,
            completed: completed_total - self.last_completed,
            produced_total,
            completed_total,
            depth,
            e2e_ms,
            errors,
        };
        if let Some(sink) = sink {
            for &m in self.metrics {
                sink.hlog.write(
                    m,
                    self.interval.get(m),
                    self.last - self.started,
                    now - self.last,
                )?;
            }
            sink.hlog.flush()?;
            serde_json::to_writer(&mut sink.metrics, &line)?;
            sink.metrics.write_all(b"\n")?;
            sink.metrics.flush()?;
        }
        self.totals.add(&self.interval);
        self.interval.reset();
        self.last = now;
        self.last_produced = produced_total;
        self.last_completed = completed_total;
        Ok(line)
    }
}

fn epoch_s(us: i64) -> Option<f64> {
    (us > 0).then(|| us as f64 / 1e6)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn depth_of(queue: &Arc<dyn Queue>) -> Option<u64> {
    tokio::time::timeout(Duration::from_secs(2), queue.depth())
        .await
        .ok()?
        .ok()
}

pub fn knobs(cfg: &Config, produce: Option<&ProducePlan>, work: Option<&WorkPlan>) -> Knobs {
    let b = &cfg.benchmark;
    Knobs {
        offered_rate_jobs_s: produce.map_or(Some(b.production_rate), |p| p.rate),
        rate_max: produce.is_some_and(|p| p.rate.is_none()),
        production_duration_s: produce
            .and_then(|p| p.duration.map(|d| d.as_secs_f64()))
            .or(Some(b.production_duration)),
        workers: work.map(|w| w.workers as u32),
        processing_ms: work.map(|w| w.processing.as_secs_f64() * 1000.0),
        capacity_jobs_s: b.capacity_jobs_s(),
        job_size_bytes: b.job_size_bytes,
        dequeue_batch: b.dequeue_batch,
        poll_interval_ms: b.poll_interval_ms,
        valkey_block_ms: cfg.valkey.block_ms,
        producer_connections: b.producer_connections,
        partitions: b.partitions,
        visibility_timeout_s: b.visibility_timeout_s,
        runtime_threads: crate::RUNTIME_THREADS.get().copied(),
    }
}

/// Runs one test to its stop rule (or Ctrl-C) and writes its files.
pub async fn run(mut spec: Spec) -> Result<Report> {
    let recorders = Recorders::new(8);
    let outages = Arc::new(outages::Outages::default());
    let visibility = Duration::from_secs_f64(spec.cfg.benchmark.visibility_timeout_s);

    // Connections first: a wrong server or a missing schema fails before any file exists.
    let workers = match &spec.work {
        Some(plan) => Some(
            worker::start(
                spec.queue.clone(),
                plan,
                &recorders,
                visibility,
                outages.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let producer = match &spec.produce {
        Some(plan) => {
            match producer::start(spec.queue.clone(), plan, &recorders, outages.clone()).await {
                Ok(p) => Some(p),
                Err(e) => {
                    if let Some(w) = workers {
                        w.stop().await;
                    }
                    return Err(e);
                }
            }
        }
        None => None,
    };
    let server = spec.queue.server_info().await.ok();
    // The test starts when load starts: after every connection is open (SCRAM logins of
    // dozens of connections take a noticeable time), at the producer's t0 if there is one.
    let started = producer
        .as_ref()
        .map_or_else(Instant::now, ProducerHandle::t0);
    let started_at = crate::clock::Clock::get().system_time(started);

    let metrics: &'static [Metric] = match spec.role {
        Role::Suite => &Metric::ALL,
        Role::Produce => &Metric::PRODUCER,
        Role::Work => &Metric::WORKER,
    };
    let mut sink = match spec.output.take() {
        Some(out) => match open_sink(out, &spec.cfg, &spec, started, started_at) {
            Ok(s) => Some(s),
            Err(e) => {
                if let Some(p) = producer {
                    p.stop().await;
                }
                if let Some(w) = workers {
                    w.stop().await;
                }
                return Err(e.context("opening the result files"));
            }
        },
        None => None,
    };
    let mut collector = Collector {
        started,
        last: started,
        interval: HistSet::default(),
        totals: HistSet::default(),
        metrics,
        last_produced: 0,
        last_completed: 0,
    };
    let mut progress = Progress::new(spec.progress, spec.label.clone());
    let counts = |p: &Option<ProducerHandle>, w: &Option<Workers>| {
        let produced = p.as_ref().map_or(0, ProducerHandle::produced);
        let completed = w
            .as_ref()
            .map_or(0, |w| w.state.completed.load(Ordering::Acquire));
        let errors = p.as_ref().map_or(0, ProducerHandle::errors)
            + w.as_ref()
                .map_or(0, |w| w.state.errors.load(Ordering::Relaxed));
        (produced, completed, errors)
    };

    let planned = match &spec.stop {
        StopRule::Duration(d) => Some(*d),
        StopRule::UntilIdle { max, .. } => *max,
        _ => spec.produce.as_ref().and_then(|p| {
            p.duration.or_else(|| {
                p.rate
                    .zip(p.count)
                    .map(|(r, n)| Duration::from_secs_f64(n as f64 / r))
            })
        }),
    };
    let mut tick = crate::samplers::every_second(started);
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let mut interrupted = false;
    let mut idle_since: Option<Instant> = None;
    let mut produced_at: Option<Instant> = None;
    let mut drain_timed_out = false;

    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (p, c, e) = counts(&producer, &workers);
                let depth = depth_of(&spec.queue).await;
                let line = collector.collect(&recorders, sink.as_mut(), p, c, depth, e)?;
                progress.update(&Snapshot {
                    elapsed: started.elapsed(),
                    remaining: planned.map(|d| d.saturating_sub(started.elapsed())),
                    produced_s: producer.as_ref().map(|_| line.produced),
                    completed_s: workers.as_ref().map(|_| line.completed),
                    depth,
                    p99_ms: line.e2e_ms.map(|l| l.p99),
                    errors: e,
                });
            }
            _ = check.tick() => {
                let producer_done = producer.as_ref().is_none_or(ProducerHandle::is_done);
                if producer_done && produced_at.is_none() {
                    produced_at = Some(Instant::now());
                }
                let stop = match &spec.stop {
                    StopRule::ProducerDone => producer_done,
                    StopRule::Duration(d) => started.elapsed() >= *d,
                    StopRule::UntilIdle { idle, max } => {
                        if max.is_some_and(|m| started.elapsed() >= m) {
                            true
                        } else {
                            let st = workers.as_ref().map(|w| &w.state);
                            let started_work = st.is_some_and(|s| s.first_claim_us.load(Ordering::Acquire) != 0);
                            let in_hand = st.map_or(0, |s| s.in_hand.load(Ordering::Acquire));
                            if started_work && in_hand == 0 && depth_of(&spec.queue).await == Some(0) {
                                let since = *idle_since.get_or_insert_with(Instant::now);
                                since.elapsed() >= *idle
                            } else {
                                idle_since = None;
                                false
                            }
                        }
                    }
                    StopRule::Drain { timeout } => {
                        if !producer_done {
                            false
                        } else if produced_at.is_some_and(|t| t.elapsed() >= *timeout) {
                            drain_timed_out = true;
                            true
                        } else {
                            let in_hand = workers.as_ref().map_or(0, |w| w.state.in_hand.load(Ordering::Acquire));
                            in_hand == 0 && depth_of(&spec.queue).await == Some(0)
                        }
                    }
                };
                if stop {
                    break;
                }
            }
            _ = spec.shutdown.cancelled() => {
                interrupted = true;
                break;
            }
        }
    }

    // Stop offering first, then let workers finish the jobs in their hands.
    let outcome = match producer {
        Some(p) => Some(p.stop().await),
        None => None,
    };
    let state = match workers {
        Some(w) => Some(w.stop().await),
        None => None,
    };
    let ended_at = SystemTime::now();
    if let Some(sidecar) = spec.sidecar.take() {
        let (key, value) = sidecar.stop().await;
        spec.extra.insert(key, value);
    }
    let produced_total = outcome.map_or(0, |o| o.produced);
    let completed_total = state
        .as_ref()
        .map_or(0, |s| s.completed.load(Ordering::Acquire));
    let errors = Errors {
        producer: outcome.map_or(0, |o| o.errors),
        worker: state
            .as_ref()
            .map_or(0, |s| s.errors.load(Ordering::Relaxed)),
        reaper: state
            .as_ref()
            .map_or(0, |s| s.reap_errors.load(Ordering::Relaxed)),
    };
    let depth = depth_of(&spec.queue).await;
    collector.collect(
        &recorders,
        sink.as_mut(),
        produced_total,
        completed_total,
        depth,
        errors.producer + errors.worker,
    )?;
    progress.finish();

    let mut warnings = spec.warnings.clone();
    // The audit: exact when this process both produced and worked.
    let (audit_kind, report, queue_state) = match (&outcome, &state) {
        (Some(o), Some(s)) => {
            let left = depth.unwrap_or(0);
            let mut r = s.audit.report(o.taken, left);
            r.lost = r.lost.saturating_sub(o.unsent);
            if r.lost > 0 {
                let missing = s.audit.missing(o.taken, 10);
                warnings.push(format!(
                    "{} job(s) LOST: produced and never completed, not in the queue (first seqs: {missing:?})",
                    r.lost
                ));
            }
            (AuditKind::Exact, Some(r), None)
        }
        (None, Some(s)) => {
            let qs = spec.queue.state().await.ok();
            let mut r = s.audit.report(0, 0);
            if let Some(q) = qs {
                r.left_in_queue = q.pending + q.in_flight;
                r.lost = q.produced.saturating_sub(q.completed + r.left_in_queue);
                if r.lost > 0 {
                    warnings.push(format!(
                        "{} job(s) LOST according to the queue: produced {}, completed {}, still queued {}",
                        r.lost, q.produced, q.completed, r.left_in_queue
                    ));
                }
            }
            (AuditKind::QueueState, Some(r), qs)
        }
        _ => (AuditKind::None, None, None::<QueueState>),
    };
    if let Some(r) = &report {
        if r.left_in_queue > 0 && !interrupted {
            warnings.push(format!(
                "{} job(s) were still in the queue when the test ended{}",
                r.left_in_queue,
                if drain_timed_out {
                    " (drain timeout reached)"
                } else {
                    ""
                }
            ));
        }
        if r.duplicated > 0 {
            warnings.push(format!(
                "{} job(s) were completed more than once ({} extra completions)",
                r.duplicated, r.extra_completions
            ));
        }
    }
    let outage_windows = outages.windows();
    let started_epoch_s = crate::clock::Clock::get().wall_us(started) as f64 / 1e6;
    for o in &outage_windows {
        let at = |e: f64| e - started_epoch_s;
        warnings.push(format!(
            "the server was unreachable or failing from t={:.1} s to {} ({} failed calls); producer and workers reconnected",
            at(o.start_epoch_s),
            o.end_epoch_s.map_or("the end of the test".into(), |e| format!("t={:.1} s", at(e))),
            o.errors
        ));
    }
    if spec.queue.kind().backend() == Backend::Valkey
        && !outage_windows.is_empty()
        && report.is_some_and(|r| r.lost > 0)
    {
        let lost = report.map_or(0, |r| r.lost);
        let durability = server.as_ref().and_then(|s| s.durability.as_deref());
        warnings.push(match durability {
            Some(d) if d.contains("appendonly=\"no\"") => format!(
                "{lost} job(s) were lost while Valkey was unreachable: it runs without persistence ({d}), so a restart drops what it held; the server lost them, not qbench"
            ),
            _ => format!(
                "{lost} job(s) were lost while Valkey was unreachable ({}): jobs it held when it went down did not survive its restart",
                durability.unwrap_or("persistence settings unknown")
            ),
        });
    }
    if errors.producer + errors.worker + errors.reaper > 0 {
        warnings.push(format!(
            "errors during the run: producer {}, workers {}, reaper {}",
            errors.producer, errors.worker, errors.reaper
        ));
    }

    let totals = &collector.totals;
    let pct = |m: Metric| Percentiles::of(totals.get(m));
    let summary = Summary {
        v: FORMAT_VERSION,
        kind: "summary".into(),
        test: spec.test.clone(),
        queue: spec.queue.kind(),
        role: spec.role,
        complete: !interrupted,
        duration_s: round3(started.elapsed().as_secs_f64()),
        produced: outcome.map(|o| o.produced),
        completed: state.as_ref().map(|_| completed_total),
        lost: report.map(|r| r.lost),
        duplicated: report.map(|r| r.duplicated),
        left_in_queue: report.map(|r| r.left_in_queue),
        redelivered: state
            .as_ref()
            .map(|s| s.redelivered.load(Ordering::Relaxed)),
        reaped: state.as_ref().map(|s| s.reaped.load(Ordering::Relaxed)),
        audit: audit_kind,
        queue_state,
        throughput_jobs_s: state.as_ref().map(|s| s.throughput()),
        window_start_epoch_s: state
            .as_ref()
            .and_then(|s| epoch_s(s.first_claim_us.load(Ordering::Acquire))),
        window_end_epoch_s: state
            .as_ref()
            .and_then(|s| epoch_s(s.last_complete_us.load(Ordering::Acquire))),
        first_redelivery_epoch_s: state
            .as_ref()
            .and_then(|s| epoch_s(s.first_redelivery_us.load(Ordering::Acquire))),
        last_redelivery_epoch_s: state
            .as_ref()
            .and_then(|s| epoch_s(s.last_redelivery_us.load(Ordering::Acquire))),
        outages: outage_windows,
        achieved_rate_jobs_s: outcome.map(|o| o.achieved_rate),
        e2e_ms: pct(Metric::E2e),
        queue_wait_ms: pct(Metric::QueueWait),
        service_ms: pct(Metric::Service),
        enqueue_ms: pct(Metric::Enqueue),
        schedule_lag_ms: pct(Metric::ScheduleLag),
        errors,
    };

    // What the run found goes to stderr whichever command ran it (the warnings the caller
    // passed in were printed when they were made).
    for w in &warnings[spec.warnings.len().min(warnings.len())..] {
        eprintln!("qbench: warning: {w}");
    }
    let mut files = vec![];
    if let Some(sink) = sink {
        files = close_sink(
            sink,
            &spec,
            &summary,
            &warnings,
            interrupted,
            started_at,
            ended_at,
            server,
        )
        .await?;
    }
    Ok(Report {
        summary,
        interrupted,
        files,
        warnings,
        started_at,
        ended_at,
    })
}

fn open_sink(
    out: OutputDir,
    cfg: &Config,
    spec: &Spec,
    started: Instant,
    started_at: SystemTime,
) -> Result<Sink> {
    let metrics = out.create("metrics.jsonl")?;
    let about = format!(
        "qbench {} test={} queue={} role={:?}",
        env!("CARGO_PKG_VERSION"),
        spec.test,
        spec.queue.kind(),
        spec.role
    );
    let hlog = HlogWriter::new(out.create("latency.hlog")?, started_at, &about)?;
    let system = SystemSampler::start(out.create("system.csv")?, started, spec.server.clone())?;
    let stats_stop = CancellationToken::new();
    let server_stats = match spec.queue.kind().backend() {
        Backend::Postgresql => pg_stats::start(
            out.create("db_stats.csv")?,
            cfg.postgres.clone(),
            started,
            stats_stop.clone(),
        ),
        Backend::Valkey => valkey_stats::start(
            out.create("valkey_stats.csv")?,
            cfg.valkey.clone(),
            started,
            stats_stop.clone(),
        ),
    };
    Ok(Sink {
        out,
        metrics,
        hlog,
        system,
        server_stats,
        stats_stop,
    })
}

#[allow(clippy::too_many_arguments)]
async fn close_sink(
    mut sink: Sink,
    spec: &Spec,
    summary: &Summary,
    warnings: &[String],
    interrupted: bool,
    started_at: SystemTime,
    ended_at: SystemTime,
    server: Option<crate::queue::ServerInfo>,
) -> Result<Vec<String>> {
    serde_json::to_writer(&mut sink.metrics, summary)?;
    sink.metrics.write_all(b"\n")?;
    sink.metrics.flush()?;
    sink.hlog.flush()?;
    sink.stats_stop.cancel();
    let mut warnings = warnings.to_vec();
    match sink.server_stats.await {
        Ok(Ok(mut w)) => w.flush()?,
        Ok(Err(e)) => warnings.push(format!("server statistics stopped early: {e:#}")),
        Err(e) => warnings.push(format!("server statistics sampler failed: {e}")),
    }
    let system = tokio::task::spawn_blocking(move || sink.system.stop()).await;
    if let Ok(Err(e)) | Err(e) = system.map_err(anyhow::Error::from) {
        warnings.push(format!("system sampler: {e:#}"));
    }
    let mut files = sink.out.finish()?;
    let manifest_path = sink.out.path("manifest.json");
    if let Some(n) = manifest_path.file_name() {
        files.push(n.to_string_lossy().into_owned());
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        version: FORMAT_VERSION,
        test: spec.test.clone(),
        instance: spec.instance.clone(),
        role: spec.role,
        queue: spec.queue.kind(),
        backend: spec.queue.kind().backend(),
        scenario: spec.scenario.clone(),
        complete: summary.complete,
        interrupted,
        smoke: spec.smoke,
        started_at: rfc3339(started_at),
        ended_at: rfc3339(ended_at),
        knobs: knobs(&spec.cfg, spec.produce.as_ref(), spec.work.as_ref()),
        qbench_version: env!("CARGO_PKG_VERSION").into(),
        server_version: server.as_ref().map(|s| s.version.clone()),
        server_durability: server.and_then(|s| s.durability),
        host: tokio::task::spawn_blocking(Host::this)
            .await
            .context("reading host information")?,
        config: spec.cfg.masked(),
        local_servers: spec.local.clone(),
        warnings,
        files: files.clone(),
        extra: spec.extra.clone(),
        summary: summary.clone(),
    };
    crate::output::write_atomic(&manifest_path, &serde_json::to_vec_pretty(&manifest)?)?;
    Ok(files)
}
