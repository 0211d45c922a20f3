//! What a finished test reports: its summary line, the knobs that moved it, and the
//! manifest that explains it a year later.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use super::load::Done;
use super::spec::{Env, Identity, Plan};
use super::verdict::Verdict;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::format::manifest::{Host, Knobs, Manifest, MANIFEST_FORMAT};
use crate::format::metrics::{Errors, Outage, Summary};
use crate::format::FORMAT_VERSION;
use crate::queue::ServerInfo;
use crate::stats::{HistSet, Metric, Percentiles};

/// What a test returns to its caller.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    pub interrupted: bool,
    pub files: Vec<String>,
    pub warnings: Vec<String>,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
}

fn epoch_s(us: i64) -> Option<f64> {
    (us > 0).then(|| us as f64 / 1e6)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub fn errors(done: &Done) -> Errors {
    let s = done.state.as_ref();
    Errors {
        producer: done.outcome.map_or(0, |o| o.errors),
        worker: s.map_or(0, |s| s.errors.load(Ordering::Relaxed)),
        reaper: s.map_or(0, |s| s.reap_errors.load(Ordering::Relaxed)),
    }
}

/// The summary line of `TEST_metrics.jsonl`.
#[allow(clippy::too_many_arguments)]
pub fn summary(
    id: &Identity,
    queue: &str,
    started: Instant,
    interrupted: bool,
    done: &Done,
    verdict: &Verdict,
    totals: &HistSet,
    errors: Errors,
    outages: Vec<Outage>,
) -> Summary {
    let pct = |m: Metric| Percentiles::of(totals.get(m));
    let state = done.state.as_ref();
    let at = |f: fn(&super::worker::WorkState) -> i64| state.and_then(|s| epoch_s(f(s)));
    let report = verdict.report;
    Summary {
        v: FORMAT_VERSION,
        kind: "summary".into(),
        test: id.test.clone(),
        queue: queue.to_string(),
        role: id.role,
        complete: !interrupted,
        duration_s: round3(started.elapsed().as_secs_f64()),
        produced: done.outcome.map(|o| o.produced),
        completed: state.map(|s| s.completed.load(Ordering::Acquire)),
        lost: report.map(|r| r.lost),
        duplicated: report.map(|r| r.duplicated),
        left_in_queue: report.map(|r| r.left_in_queue),
        redelivered: state.map(|s| s.redelivered.load(Ordering::Relaxed)),
        reaped: state.map(|s| s.reaped.load(Ordering::Relaxed)),
        audit: verdict.kind,
        queue_state: verdict.queue_state,
        throughput_jobs_s: state.map(|s| s.throughput()),
        window_start_epoch_s: at(|s| s.first_claim_us.load(Ordering::Acquire)),
        window_end_epoch_s: at(|s| s.last_complete_us.load(Ordering::Acquire)),
        first_redelivery_epoch_s: at(|s| s.first_redelivery_us.load(Ordering::Acquire)),
        last_redelivery_epoch_s: at(|s| s.last_redelivery_us.load(Ordering::Acquire)),
        outages,
        achieved_rate_jobs_s: done.outcome.map(|o| o.achieved_rate),
        e2e_ms: pct(Metric::E2e),
        queue_wait_ms: pct(Metric::QueueWait),
        service_ms: pct(Metric::Service),
        enqueue_ms: pct(Metric::Enqueue),
        schedule_lag_ms: pct(Metric::ScheduleLag),
        errors,
    }
}

/// The knobs that move results 10–45×, as this test ran with them.
pub fn knobs(cfg: &Config, plan: &Plan) -> Knobs {
    let b = &cfg.benchmark;
    let (produce, work) = (plan.produce.as_ref(), plan.work.as_ref());
    Knobs {
        offered_rate_jobs_s: produce.map_or(b.rate_jobs_s(), |p| p.rate),
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

/// Everything the manifest holds.
pub struct ManifestParts<'a> {
    pub id: &'a Identity,
    pub plan: &'a Plan,
    pub env: &'a Env,
    pub summary: &'a Summary,
    pub warnings: Vec<String>,
    pub files: Vec<String>,
    pub interrupted: bool,
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub server: Option<ServerInfo>,
}

pub async fn manifest(p: ManifestParts<'_>) -> Result<Manifest> {
    let kind = p.env.queue.kind();
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        version: FORMAT_VERSION,
        test: p.id.test.clone(),
        instance: p.id.instance.clone(),
        role: p.id.role,
        queue: kind.name().into(),
        backend: kind.backend().name().into(),
        scenario: p.id.scenario.clone(),
        complete: p.summary.complete,
        interrupted: p.interrupted,
        smoke: p.id.smoke,
        started_at: rfc3339(p.started_at),
        ended_at: rfc3339(p.ended_at),
        knobs: knobs(&p.env.cfg, p.plan),
        qbench_version: env!("CARGO_PKG_VERSION").into(),
        server_version: p.server.as_ref().map(|s| s.version.clone()),
        server_durability: p.server.and_then(|s| s.durability).map(|d| d.to_string()),
        host: tokio::task::spawn_blocking(Host::this)
            .await
            .context("reading host information")?,
        config: p.env.cfg.masked(),
        local_servers: p.env.local.clone(),
        warnings: p.warnings,
        files: p.files,
        extra: p.env.extra.clone(),
        summary: p.summary.clone(),
    })
}

/// Closes the collector's files and writes the manifest beside them; returns the files
/// and every warning (the samplers' included).
pub async fn close(
    collector: super::collector::Collector,
    mut parts: ManifestParts<'_>,
    mut warnings: Vec<String>,
) -> Result<(Vec<String>, Vec<String>)> {
    let closed = collector.close(parts.summary, &mut warnings).await?;
    if let Some(path) = &closed.manifest {
        parts.warnings = warnings.clone();
        parts.files = closed.files.clone();
        let m = manifest(parts).await?;
        crate::format::files::write_atomic(path, &serde_json::to_vec_pretty(&m)?)?;
    }
    Ok((closed.files, warnings))
}
