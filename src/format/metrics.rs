//! `TEST_metrics.jsonl`: one interval line per second, then the summary line (also
//! embedded in the manifest), with their reader.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use super::audit::AuditKind;
use super::read::{bad, read_text};
use super::FORMAT_VERSION;
use crate::stats::Percentiles;

pub const METRICS_FORMAT: &str = "qbench.metrics";

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub producer: u64,
    pub worker: u64,
    pub reaper: u64,
}

/// The last line of `TEST_metrics.jsonl`, also embedded in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub test: String,
    /// The design's name.
    pub queue: String,
    pub role: super::manifest::Role,
    pub complete: bool,
    /// Seconds from the start of the measured window to its end.
    pub duration_s: f64,
    pub produced: Option<u64>,
    /// Completions the queue accepted from this process's workers.
    pub completed: Option<u64>,
    /// Produced, acknowledged, never completed and not in the queue; null unless the
    /// audit is exact.
    pub lost: Option<u64>,
    /// The first lost sequence numbers (at most 10).
    pub lost_seqs: Vec<i64>,
    /// Jobs completed more than once (this process's view, or every process's when exact).
    pub duplicated: Option<u64>,
    /// Jobs of this test still pending or in flight when it ended (not drained).
    pub left_in_queue: Option<u64>,
    /// Of those, the ones recorded as censored samples (tag `e2e_censored`).
    pub censored: Option<u64>,
    /// Completions refused because the lease had run out.
    pub late_completions: Option<u64>,
    /// Completed or queued jobs this test never produced (an earlier run's).
    pub foreign: Option<u64>,
    /// Jobs sent but given up on after an error of unknown outcome (never counted lost).
    pub uncertain: Option<u64>,
    pub redelivered: Option<u64>,
    pub reaped: Option<u64>,
    pub audit: AuditKind,
    /// Why the audit is inconclusive or deferred.
    pub audit_note: Option<String>,
    /// completed / (last completion − first claim).
    pub throughput_jobs_s: Option<f64>,
    /// What the workers could take, from the measured service time: workers / mean
    /// service (the nominal workers × 1000 / processing_ms is in the knobs).
    pub capacity_measured_jobs_s: Option<f64>,
    /// `--rate max`: the producer sent as fast as the server took jobs, so its stamps are
    /// send times and queueing behind a slow server is not in the latencies.
    pub closed_loop: bool,
    /// First claim and last completion, seconds since the epoch: the measured window
    /// (lets a reader combine several work processes of one test).
    pub window_start_epoch_s: Option<f64>,
    pub window_end_epoch_s: Option<f64>,
    /// When this process first and last claimed a redelivered job (recovery after a dead
    /// worker or a restarted server), seconds since the epoch.
    pub first_redelivery_epoch_s: Option<f64>,
    pub last_redelivery_epoch_s: Option<f64>,
    /// Windows during which the server could not be reached.
    pub outages: Vec<Outage>,
    pub achieved_rate_jobs_s: Option<f64>,
    pub e2e_ms: Option<Percentiles>,
    pub queue_wait_ms: Option<Percentiles>,
    pub service_ms: Option<Percentiles>,
    pub enqueue_ms: Option<Percentiles>,
    pub schedule_lag_ms: Option<Percentiles>,
    pub e2e_censored_ms: Option<Percentiles>,
    /// Queue wait of the jobs a worker picked up while it was idle (tag `pickup`): how
    /// fast the wakeup is, apart from queueing behind busy workers.
    #[serde(default)]
    pub pickup_ms: Option<Percentiles>,
    /// The claim call's round trip (tag `claim`).
    #[serde(default)]
    pub claim_ms: Option<Percentiles>,
    /// Claims that found the queue empty (polls, or blocking reads that timed out).
    #[serde(default)]
    pub empty_claims: Option<u64>,
    /// The most jobs per second the design's protocol lets these workers take, whatever
    /// the server does (River: workers / FetchCooldown); null when it sets none.
    #[serde(default)]
    pub protocol_bound_jobs_s: Option<f64>,
    /// How this process's idle workers learned of new jobs.
    #[serde(default)]
    pub wakeup: Option<WakeupReport>,
    /// Per tag, values above an hour (recorded as an hour) and below zero (clock skew
    /// between hosts, recorded as 0).
    pub clamped: BTreeMap<String, u64>,
    pub negative: BTreeMap<String, u64>,
    /// Warnings this process printed about saturation (arrivals outpacing completions).
    pub saturation: Option<String>,
    pub errors: Errors,
}

/// One second of `TEST_metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntervalLine {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// End of this interval, seconds since the test started.
    pub t_s: f64,
    pub interval_s: f64,
    pub produced: u64,
    pub completed: u64,
    pub produced_total: u64,
    pub completed_total: u64,
    /// Jobs not completed yet at the end of the interval; null if it could not be read.
    pub depth: Option<u64>,
    pub e2e_ms: Option<IntervalLatency>,
    pub queue_wait_ms: Option<IntervalLatency>,
    /// The claim call's round trip this second (tag `claim`).
    #[serde(default)]
    pub claim_ms: Option<IntervalLatency>,
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct IntervalLatency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// How idle workers learned of new jobs: `poll`, `notify` (PostgreSQL LISTEN/NOTIFY,
/// with the notifications this process's producers sent and its listener received), or
/// `block` (Valkey's claim waits on the server).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WakeupReport {
    pub mode: String,
    pub notifications_sent: Option<u64>,
    pub notifications_received: Option<u64>,
}

impl WakeupReport {
    /// The counts since `before` (the same queue's earlier report).
    pub fn since(&self, before: &WakeupReport) -> WakeupReport {
        let minus =
            |now: Option<u64>, then: Option<u64>| now.map(|n| n.saturating_sub(then.unwrap_or(0)));
        WakeupReport {
            mode: self.mode.clone(),
            notifications_sent: minus(self.notifications_sent, before.notifications_sent),
            notifications_received: minus(
                self.notifications_received,
                before.notifications_received,
            ),
        }
    }
}

/// The queue's own counts of its jobs (progress and the `state` of tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    /// Waiting to be claimed.
    pub pending: u64,
    /// Claimed and not yet completed.
    pub in_flight: u64,
    pub completed: u64,
    /// Jobs the queue has received since its last reset.
    pub produced: u64,
}

/// A window during which the server could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outage {
    /// Wall-clock seconds since the epoch of the first failure.
    pub start_epoch_s: f64,
    /// Of the first success after it; null if the test ended before the server answered.
    pub end_epoch_s: Option<f64>,
    /// Failed calls during the window.
    pub errors: u64,
}

/// `TEST_metrics.jsonl`: interval lines, then a summary as the last line.
pub fn read_metrics(path: &Path) -> Result<(Vec<IntervalLine>, Summary)> {
    parse_metrics(&read_text(path)?, path)
}

/// Parses a metrics file's text; `path` only names it in errors.
pub fn parse_metrics(text: &str, path: &Path) -> Result<(Vec<IntervalLine>, Summary)> {
    if !text.is_empty() && !text.ends_with('\n') {
        let line = text.lines().count();
        return Err(bad(
            path,
            format!("line {line} is incomplete: the file is truncated"),
        ));
    }
    let mut intervals = vec![];
    let mut summary = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if summary.is_some() {
            return Err(bad(path, format!("line {n}: data after the summary line")));
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            bad(
                path,
                format!("line {n}: not JSON ({e}); the file is truncated or corrupt"),
            )
        })?;
        if v["v"].as_u64() != Some(u64::from(FORMAT_VERSION)) {
            return Err(bad(
                path,
                format!(
                    "line {n}: {METRICS_FORMAT} version {} is not the version this qbench reads ({FORMAT_VERSION})",
                    v["v"]
                ),
            ));
        }
        match v["type"].as_str() {
            Some("interval") => intervals.push(
                serde_json::from_value(v)
                    .map_err(|e| bad(path, format!("line {n}: malformed interval: {e}")))?,
            ),
            Some("summary") => {
                summary = Some(
                    serde_json::from_value(v)
                        .map_err(|e| bad(path, format!("line {n}: malformed summary: {e}")))?,
                )
            }
            other => return Err(bad(path, format!("line {n}: unknown line type {other:?}"))),
        }
    }
    let summary = summary.ok_or_else(|| {
        bad(
            path,
            "has no summary line: the file is truncated (the test did not finish writing)",
        )
    })?;
    Ok((intervals, summary))
}
