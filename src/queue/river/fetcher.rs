//! River's producer, one per process as one River client with one queue runs it
//! (producer.go at fdf6cdf): a background loop fetches up to the free worker slots
//! (MaxWorkers − jobs active) in one claim statement, at most once per FetchCooldown.
//! A fetch is called for at start, by an insert notification (notify mode), every
//! FetchPollInterval (plus up to 10 % jitter), and, after a fetch that filled every free
//! slot, by the next job handed to the completer. Calls within a cooldown collapse into
//! one at its end, as River's debounced channel does. qbench's workers are the slots:
//! each takes one fetched job at a time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::Notify;
use tokio_postgres::{Client, Row, Statement};
use tokio_util::sync::CancellationToken;

use crate::config::Postgres;
use crate::queue::pg::{self, Listener};
use crate::queue::{Claimed, Handle};

/// What the fetch loop and the workers of one process share.
pub struct Fetched {
    /// Fetched jobs not yet taken by a worker, each with its fetch's round trip.
    jobs: Mutex<VecDeque<(Claimed, Duration)>>,
    /// Wakes idle workers when jobs arrive (or a fetch failed).
    arrived: Notify,
    /// River's fetchLimiter.Call(): asks for a fetch.
    trigger: Notify,
    /// Jobs fetched and not yet handed to the completer: the slots in use.
    active: AtomicUsize,
    /// The last fetch filled every free slot (or found none): fetch again when a slot
    /// frees.
    fetch_when_slots: AtomicBool,
    /// Fetches called for, and those answered (the calls made before each fetch fired):
    /// a claim that finds no job waits while a call is unanswered.
    calls: AtomicU64,
    answered: AtomicU64,
    /// A failed fetch, for the next worker's claim to report (it counts the error).
    failed: Mutex<Option<anyhow::Error>>,
    max_workers: usize,
    pub poll_interval: Duration,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fetched {
    pub fn new(max_workers: usize, poll_interval: Duration) -> Arc<Fetched> {
        let f = Arc::new(Fetched {
            jobs: Mutex::default(),
            arrived: Notify::new(),
            trigger: Notify::new(),
            active: AtomicUsize::new(0),
            fetch_when_slots: AtomicBool::new(false),
            calls: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            failed: Mutex::default(),
            max_workers,
            poll_interval,
        });
        // River primes a fetch when its producer starts.
        f.call();
        f
    }

    /// One fetched job for a worker, with its fetch's round trip; none once no fetch
    /// called for is still to answer (a claim never calls for one: River's executors
    /// wait for the producer). A failed fetch is reported once.
    pub async fn take(&self) -> Result<Option<(Claimed, Duration)>> {
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(e) = lock(&self.failed).take() {
                return Err(e);
            }
            if let Some(job) = lock(&self.jobs).pop_front() {
                return Ok(Some(job));
            }
            if self.answered.load(Ordering::Acquire) >= self.calls.load(Ordering::Acquire) {
                return Ok(None);
            }
            arrived.await;
        }
    }

    /// A worker handed `n` jobs to the completer: their slots are free (River's JobDone).
    pub fn done(&self, n: usize) {
        self.active.fetch_sub(n, Ordering::AcqRel);
        if self.fetch_when_slots.swap(false, Ordering::AcqRel) {
            self.call();
        }
    }

    /// An idle worker waits for fetched jobs, or `fallback` at most.
    pub async fn wait(&self, fallback: Duration) {
        let arrived = self.arrived.notified();
        tokio::pin!(arrived);
        // Registered before looking: jobs pushed in between still wake this worker.
        arrived.as_mut().enable();
        if !lock(&self.jobs).is_empty() || lock(&self.failed).is_some() {
            return;
        }
        tokio::select! {
            _ = arrived => {}
            _ = tokio::time::sleep(fallback) => {}
        }
    }

    /// Asks for a fetch (an insert notification, the poll timer, a freed slot).
    pub fn call(&self) {
        self.calls.fetch_add(1, Ordering::AcqRel);
        self.trigger.notify_one();
    }
}

/// The fetch statement on a connection of the fetch loop's own.
pub struct FetchConn {
    pub pg: Postgres,
    pub sql: String,
    pub client_id: String,
    conn: Option<(Client, Statement)>,
}

impl FetchConn {
    pub fn new(pg: Postgres, sql: String, client_id: String) -> FetchConn {
        FetchConn {
            pg,
            sql,
            client_id,
            conn: None,
        }
    }

    async fn fetch(&mut self, limit: usize) -> Result<(Vec<Row>, Duration)> {
        if self.conn.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            let c = pg::connect(&self.pg).await?;
            let st = c
                .prepare(&self.sql)
                .await
                .context("preparing River's fetch (did setup-schema run?)")?;
            self.conn = Some((c, st));
        }
        let Some((c, st)) = &self.conn else {
            unreachable!("connected above")
        };
        let limit = i32::try_from(limit).context("MaxWorkers beyond i32")?;
        let began = Instant::now();
        let rows = c.query(st, &[&limit, &self.client_id]).await;
        let rt = began.elapsed();
        match rows {
            Ok(rows) => Ok((rows, rt)),
            Err(e) => {
                self.conn = None;
                Err(e).context("River's fetch")
            }
        }
    }
}

/// The fetch loop: waits for a call, fetches, then lets a cooldown pass before the next.
pub async fn fetch_loop(
    f: Arc<Fetched>,
    mut conn: FetchConn,
    cooldown: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = f.trigger.notified() => {}
            _ = stop.cancelled() => return,
        }
        let fired = Instant::now();
        let calls = f.calls.load(Ordering::Acquire);
        let limit = f.max_workers.saturating_sub(f.active.load(Ordering::Acquire));
        if limit == 0 {
            f.fetch_when_slots.store(true, Ordering::Release);
        } else {
            match conn.fetch(limit).await.and_then(|(rows, rt)| {
                let jobs = rows.iter().map(job).collect::<Result<Vec<_>>>()?;
                Ok((jobs, rt))
            }) {
                Ok((jobs, rt)) => {
                    let n = jobs.len();
                    f.active.fetch_add(n, Ordering::AcqRel);
                    lock(&f.jobs).extend(jobs.into_iter().map(|j| (j, rt)));
                    if n == limit {
                        f.fetch_when_slots.store(true, Ordering::Release);
                    }
                }
                Err(e) => *lock(&f.failed) = Some(e),
            }
        }
        f.answered.store(calls, Ordering::Release);
        f.arrived.notify_waiters();
        tokio::select! {
            _ = tokio::time::sleep_until((fired + cooldown).into()) => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// River's fetchPollLoop: a call every poll interval, plus jitter in [0, max(10 %, 10 ms)).
pub async fn poll_loop(f: Arc<Fetched>, stop: CancellationToken) {
    let every = f.poll_interval;
    let jitter = (every / 10).max(Duration::from_millis(10));
    loop {
        let wait = every + jitter.mul_f64(super::jitter_fraction());
        tokio::select! {
            _ = tokio::time::sleep(wait) => f.call(),
            _ = stop.cancelled() => return,
        }
    }
}

/// Insert notifications on River's topic call for a fetch (River's producer ignores other
/// queues'; this one has one queue).
pub async fn notified_loop(f: Arc<Fetched>, listener: Arc<Listener>, stop: CancellationToken) {
    let mut seen = listener.generation();
    loop {
        tokio::select! {
            _ = listener.wait(seen, Duration::from_secs(3600)) => {}
            _ = stop.cancelled() => return,
        }
        let now = listener.generation();
        if now != seen {
            seen = now;
            f.call();
        }
    }
}

/// A fetched row as a job: River's row carries everything; qbench reads its id, attempt
/// and args.
fn job(row: &Row) -> Result<Claimed> {
    let id: i64 = row.try_get("id")?;
    let attempt: i16 = row.try_get("attempt")?;
    let args: serde_json::Value = row.try_get("args")?;
    let field = |name: &str| {
        args[name].as_i64().ok_or_else(|| {
            anyhow::anyhow!("river_job {id} has no {name} in its args: not a qbench job; empty the queue with setup-schema --reset")
        })
    };
    Ok(Claimed {
        seq: field("seq")?,
        enqueued_at_us: field("enqueued_at_us")?,
        attempts: u32::try_from(attempt).unwrap_or(0),
        payload_len: args["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id, part: 0 },
    })
}
