//! What a finished test reports: its summary line, the knobs that moved it, and the
//! manifest that explains it a year later.

use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use anyhow::{Context, Result};

use super::load::Done;
use super::spec::{Env, Identity, Plan};
use crate::clock::rfc3339;
use crate::config::Config;
use crate::format::audit::{AuditKind, Judgement};
use crate::format::manifest::{ClockOffset, Host, Knobs, Manifest, MANIFEST_FORMAT};
use crate::format::metrics::{Errors, Outage, Summary, WakeupReport};
use crate::format::FORMAT_VERSION;
use crate::queue::ServerInfo;
use crate::stats::{HistSet, Metric, Percentiles};

/// What a test returns to its caller.
#[derive(Debug)]
pub struct Report {
    pub summary: Summary,
    /// Every seq the audit found lost (the summary names the first ten).
    pub lost: crate::format::audit::SeqSet,
    /// The producer's schedule, when this process produced at a rate.
    pub schedule: Option<super::producer::Schedule>,
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
        producer: done.outcome.as_ref().map_or(0, |o| o.errors),
        worker: s.map_or(0, |s| s.errors.load(Ordering::Relaxed)),
        reaper: s.map_or(0, |s| s.reap_errors.load(Ordering::Relaxed)),
    }
}

/// What the summary line is made of.
pub struct Outcome<'a> {
    pub id: &'a Identity,
    pub queue: &'a str,
    pub started: Instant,
    pub interrupted: bool,
    pub done: &'a Done,
    pub judgement: &'a Judgement,
    /// Jobs left in the queue recorded as censored samples.
    pub censored: u64,
    pub totals: &'a HistSet,
    pub errors: Errors,
    pub outages: Vec<Outage>,
    pub saturation: Option<String>,
    pub workers: Option<usize>,
    pub wakeup: Option<WakeupReport>,
}

/// The summary line of `TEST_metrics.jsonl`.
pub fn summary(o: Outcome<'_>) -> Summary {
    let pct = |m: Metric| Percentiles::of(o.totals.get(m));
    let state = o.done.state.as_ref();
    let at = |f: fn(&super::worker::WorkState) -> i64| state.and_then(|s| epoch_s(f(s)));
    let j = o.judgement;
    let exact = j.kind == AuditKind::Exact;
    let workers = state.map(|_| ());
    let tags =
        |v: Vec<(&'static str, u64)>| v.into_iter().map(|(t, n)| (t.to_string(), n)).collect();
    Summary {
        v: FORMAT_VERSION,
        kind: "summary".into(),
        test: o.id.test.clone(),
        queue: o.queue.to_string(),
        role: o.id.role,
        complete: !o.interrupted,
        duration_s: round3(o.started.elapsed().as_secs_f64()),
        produced: o.done.outcome.as_ref().map(|p| p.produced),
        completed: state.map(|s| s.completed.load(Ordering::Acquire)),
        lost: exact.then_some(j.lost.len()),
        lost_seqs: j.lost.first(10),
        duplicated: workers.map(|_| j.duplicated.len() as u64),
        left_in_queue: workers.map(|_| j.left),
        censored: workers.map(|_| o.censored),
        late_completions: workers.map(|_| j.late),
        foreign: workers.map(|_| j.foreign),
        uncertain: o.done.outcome.as_ref().map(|_| j.uncertain),
        redelivered: state.map(|s| s.redelivered.load(Ordering::Relaxed)),
        reaped: state.map(|s| s.reaped.load(Ordering::Relaxed)),
        audit: j.kind,
        audit_note: j.note.clone(),
        throughput_jobs_s: state.map(|s| s.throughput()),
        capacity_measured_jobs_s: state.zip(o.workers).and_then(|(s, w)| s.capacity(w)),
        protocol_bound_jobs_s: state.and_then(|s| s.protocol_bound),
        closed_loop: o.done.outcome.as_ref().is_some_and(|p| p.closed_loop),
        window_start_epoch_s: at(|s| s.first_claim_us.load(Ordering::Acquire)),
        window_end_epoch_s: at(|s| s.last_complete_us.load(Ordering::Acquire)),
        first_redelivery_epoch_s: at(|s| s.first_redelivery_us.load(Ordering::Acquire)),
        last_redelivery_epoch_s: at(|s| s.last_redelivery_us.load(Ordering::Acquire)),
        outages: o.outages,
        achieved_rate_jobs_s: o.done.outcome.as_ref().map(|p| p.achieved_rate),
        e2e_ms: pct(Metric::E2e),
        queue_wait_ms: pct(Metric::QueueWait),
        service_ms: pct(Metric::Service),
        enqueue_ms: pct(Metric::Enqueue),
        schedule_lag_ms: pct(Metric::ScheduleLag),
        e2e_censored_ms: pct(Metric::E2eCensored),
        pickup_ms: pct(Metric::Pickup),
        claim_ms: pct(Metric::Claim),
        empty_claims: state.map(|s| s.empty_claims.load(Ordering::Relaxed)),
        wakeup: o.wakeup,
        clamped: tags(o.totals.clamped()),
        negative: tags(o.totals.negative()),
        saturation: o.saturation,
        errors: o.errors,
    }
}

/// The knobs that move results 10–45×, as this test ran with them.
pub fn knobs(
    cfg: &Config,
    plan: &Plan,
    build: crate::build::Build,
    queue: &dyn crate::queue::Queue,
) -> Knobs {
    let b = &cfg.benchmark;
    let (produce, work) = (plan.produce.as_ref(), plan.work.as_ref());
    Knobs {
        // Only a process that produced offered anything (a work process alone did not).
        offered_rate_jobs_s: produce.and_then(|p| p.rate),
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
        runtime_threads: build.runtime_threads,
        wakeup: b.wakeup.to_string(),
        durability: b.durability.name().to_string(),
        design_options: Some(queue.options()),
        design_variant: queue.variant(),
        library_wakeup: match queue.kind().info().notifies_by_default {
            true => crate::config::Wakeup::Notify.name().into(),
            false => String::new(),
        },
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
    pub run_id: &'a str,
    pub clock: Option<ClockOffset>,
    pub shards: Vec<crate::format::manifest::Shard>,
}

pub async fn manifest(p: ManifestParts<'_>) -> Result<Manifest> {
    let kind = p.env.queue.kind();
    let durability = p.server.as_ref().and_then(|s| s.durability.as_ref());
    Ok(Manifest {
        format: MANIFEST_FORMAT.into(),
        version: FORMAT_VERSION,
        test: p.id.test.clone(),
        instance: p.id.instance.clone(),
        run_id: p.run_id.to_string(),
        coordinated_run_id: p.id.coordinated_run_id.clone(),
        start_at: p.env.start_at.map(rfc3339),
        started_late_ms: p
            .env
            .start_at
            .map(|at| match p.started_at.duration_since(at) {
                Ok(late) => late.as_secs_f64() * 1000.0,
                Err(early) => -early.duration().as_secs_f64() * 1000.0,
            }),
        role: p.id.role,
        queue: kind.name().into(),
        backend: kind.backend().name().into(),
        scenario: p.id.scenario.clone(),
        complete: p.summary.complete,
        interrupted: p.interrupted,
        smoke: p.id.smoke,
        started_at: rfc3339(p.started_at),
        ended_at: rfc3339(p.ended_at),
        knobs: knobs(&p.env.cfg, p.plan, p.env.build, p.env.queue.as_ref()),
        qbench_version: p.env.build.version.into(),
        server_version: p.server.as_ref().map(|s| s.version.clone()),
        server_tls: p.server.as_ref().map(|s| s.tls.clone()),
        server_durability: durability.map(|d| d.to_string()),
        durability_tier: durability.map(|d| d.tier()),
        clock: p.clock,
        host: tokio::task::spawn_blocking(Host::this)
            .await
            .context("reading host information")?,
        config: p.env.cfg.snapshot(),
        local_servers: p.env.local.clone(),
        shards: p.shards,
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
    audit: &crate::format::audit::AuditFile,
    mut warnings: Vec<String>,
) -> Result<(Vec<String>, Vec<String>)> {
    let closed = collector.close(parts.summary, audit, &mut warnings).await?;
    if let Some(path) = &closed.manifest {
        parts.warnings = warnings.clone();
        parts.files = closed.files.clone();
        let m = manifest(parts).await?;
        crate::format::files::write_atomic(path, &serde_json::to_vec_pretty(&m)?)?;
    }
    Ok((closed.files, warnings))
}

/// Each stream's jobs during the test: its counts at the end less those at the start.
pub fn shards_since(
    mut end: Vec<crate::format::manifest::Shard>,
    before: &[crate::format::manifest::Shard],
) -> Vec<crate::format::manifest::Shard> {
    for s in &mut end {
        if let Some(b) = before.iter().find(|b| b.stream == s.stream) {
            s.at_start = crate::format::manifest::ShardStart {
                produced: b.produced,
                completed: b.completed,
                node_commands: b.node_commands,
            };
            s.produced = s.produced.saturating_sub(b.produced);
            s.completed = s.completed.saturating_sub(b.completed);
            s.node_commands = s.node_commands.saturating_sub(b.node_commands);
        }
    }
    end
}
