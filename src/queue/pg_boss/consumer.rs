//! A pg-boss worker (src/worker.ts `run`): fetch a batch, work it, complete it (awaited),
//! then sleep until pollingInterval after the fetch began, whatever the fetch found. The
//! sleep is skipped when it would be 100 ms or less, when the batch came back full with
//! burstWhenBatchFull, or when a notification came since the fetch began; a notification
//! during the sleep ends it. Here the sleep happens at the start of the next claim (the
//! same instants: the worker claims again as soon as its completion answered), so that
//! `idle` has nothing left to wait for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;
use tokio_util::sync::CancellationToken;

use super::{job_id, QUEUE};
use crate::config::Postgres;
use crate::queue::pg::{self, Listener};
use crate::queue::{Claimed, Consumer, Handle};

/// The process's connections (pg-boss's pool of `max`), its statements, and the signal
/// that the run's workers are stopping (pg-boss's stop() aborts a worker's sleep).
pub struct Shared {
    pub pool: deadpool_postgres::Pool,
    pub pg: Postgres,
    /// `fetchNextJob`, its literals written in.
    pub fetch: String,
    pub complete: String,
    pub stop: CancellationToken,
}

/// With LISTEN/NOTIFY active, pg-boss relaxes the poll to notifyPollingInterval: 30 s, or
/// the polling interval if longer.
const NOTIFY_POLL: Duration = Duration::from_secs(30);
/// A sleep this short or shorter is skipped.
pub const SKIP_BELOW: Duration = Duration::from_millis(100);

pub struct PgBossConsumer {
    shared: Arc<Shared>,
    listener: Option<Arc<Listener>>,
    interval: Duration,
    batch: usize,
    burst: bool,
    /// When the next fetch is due: the last fetch's start plus the interval; none after a
    /// full batch that bursts.
    due: Option<Instant>,
    /// The listener's generation when the last fetch began.
    seen: u64,
    /// The last fetch's round trip; none when the claim ended before fetching.
    round_trip: Option<Duration>,
}

impl PgBossConsumer {
    pub fn new(
        shared: Arc<Shared>,
        listener: Option<Arc<Listener>>,
        poll: Duration,
        batch: usize,
        burst: bool,
    ) -> PgBossConsumer {
        let interval = match listener {
            Some(_) => NOTIFY_POLL.max(poll),
            None => poll,
        };
        PgBossConsumer {
            shared,
            listener,
            interval,
            batch,
            burst,
            due: None,
            seen: 0,
            round_trip: None,
        }
    }

    /// The rest of the loop's sleep; false when the run stopped during it.
    async fn sleep(&mut self) -> bool {
        let Some(due) = self.due.take() else {
            return true;
        };
        let left = due.saturating_duration_since(Instant::now());
        if left <= SKIP_BELOW {
            return true;
        }
        let wait = async {
            match &self.listener {
                // Returns at once if a notification came since the fetch began.
                Some(l) => l.wait(self.seen, left).await,
                None => tokio::time::sleep(left).await,
            }
        };
        tokio::select! {
            _ = wait => true,
            _ = self.shared.stop.cancelled() => false,
        }
    }

    /// One fetch: the jobs it locked, as qbench's claims.
    async fn fetch(&mut self) -> Result<Vec<Claimed>> {
        if let Some(l) = &self.listener {
            self.seen = l.generation();
        }
        let started = Instant::now();
        let c = pg::pooled(&self.shared.pool, &self.shared.pg).await?;
        let messages = c.simple_query(&self.shared.fetch).await?;
        drop(c);
        self.round_trip = Some(started.elapsed());
        let mut jobs = vec![];
        for m in messages {
            if let SimpleQueryMessage::Row(r) = m {
                jobs.push(claimed(&r)?);
            }
        }
        let full = self.batch > 1 && jobs.len() >= self.batch;
        self.due = (!(self.burst && full)).then(|| started + self.interval);
        Ok(jobs)
    }
}

/// A fetched row (text, as a simple query answers): its data's seq and time, and the
/// delivery it is (retry_count counts the re-runs).
fn claimed(r: &tokio_postgres::SimpleQueryRow) -> Result<Claimed> {
    let data = r.get("data").context("a fetched job without data")?;
    let msg: serde_json::Value = serde_json::from_str(data).context("a job's data")?;
    let (seq, enqueued_at_us) = pg::message_fields(&msg, "job", 0)?;
    let retries: u32 = r
        .get("retry_count")
        .and_then(|v| v.parse().ok())
        .context("a fetched job without its retry count")?;
    Ok(Claimed {
        seq,
        enqueued_at_us,
        attempts: retries + 1,
        payload_len: msg["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id: seq, part: 0 },
    })
}

#[async_trait]
impl Consumer for PgBossConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        if !self.sleep().await {
            self.round_trip = None;
            return Ok(vec![]);
        }
        self.fetch().await
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let ids: Vec<String> = jobs.iter().map(|j| job_id(j.seq)).collect();
        let output: Option<&str> = None;
        let c = pg::pooled(&self.shared.pool, &self.shared.pg).await?;
        let rows = c
            .query_typed(
                &self.shared.complete,
                &[
                    (&QUEUE, Type::TEXT),
                    (&ids, Type::TEXT_ARRAY),
                    (&output, Type::TEXT),
                ],
            )
            .await?;
        let mut done = std::collections::HashSet::with_capacity(rows.len());
        for r in &rows {
            done.insert(r.try_get::<_, String>(0)?);
        }
        // A job no longer active (the monitor retried it, or another run completed it).
        Ok(jobs
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !done.contains(*id))
            .map(|(j, _)| j.seq)
            .collect())
    }

    /// The loop's sleep is in the next claim.
    async fn idle(&mut self) {}

    fn claim_round_trip(&self, _call: Duration) -> Option<Duration> {
        self.round_trip
    }
}
