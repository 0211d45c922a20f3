//! River's producer, one per process as one River client with one queue runs it
//! (producer.go at fdf6cdf): a background loop fetches up to the free worker slots
//! (MaxWorkers − jobs active) in one claim statement, at most once per FetchCooldown.
//! A fetch is called for by the first claim, by an insert notification (notify mode),
//! every FetchPollInterval (plus up to 10 % jitter), and, after a fetch that filled every
//! free slot, by the next job handed to the completer. Calls within a cooldown collapse
//! into one at its end, as River's debounced channel does. qbench's workers are the slots:
//! each takes one fetched job at a time. At stop, fetching ends and the workers work
//! every job already fetched, as River's executors do.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Notify;
use tokio_postgres::Row;
use tokio_util::sync::CancellationToken;

use super::{lock, Prepared};
use crate::queue::pg::Listener;
use crate::queue::{Claimed, Handle};

/// The slots in use, and whether a freed one calls for a fetch: changed together, as
/// River's producer changes them on its one goroutine.
#[derive(Default)]
struct Slots {
    /// Jobs fetched and not yet handed to the completer.
    active: usize,
    /// The last fetch filled every free slot (or found none free).
    fetch_when_freed: bool,
}

/// What the fetch loop and the workers of one process share.
pub struct Fetched {
    /// Fetched jobs not yet taken by a worker; the first of each fetch carries the fetch's
    /// round trip (one claim sample per fetch).
    jobs: Mutex<VecDeque<(Claimed, Option<Duration>)>>,
    /// Round trips of fetches that found nothing, for the next empty claims to report.
    empty: Mutex<VecDeque<Duration>>,
    /// Wakes workers when a fetch has answered.
    arrived: Notify,
    /// River's fetchLimiter.Call(): asks for a fetch.
    trigger: Notify,
    slots: Mutex<Slots>,
    /// Fetches called for, and those answered (the calls made before each fetch fired):
    /// a claim that finds no job waits while a call is unanswered.
    calls: AtomicU64,
    answered: AtomicU64,
    /// The first claim calls for the first fetch (never before a start gate opens).
    primed: AtomicBool,
    /// The run is stopping: no more fetches. `fetching` says one is under way.
    stopping: AtomicBool,
    fetching: AtomicBool,
    /// A failed fetch, for the next worker's claim to report (it counts the error).
    failed: Mutex<Option<anyhow::Error>>,
    max_workers: usize,
    pub poll_interval: Duration,
}

impl Fetched {
    pub fn new(max_workers: usize, poll_interval: Duration) -> Arc<Fetched> {
        Arc::new(Fetched {
            jobs: Mutex::default(),
            empty: Mutex::default(),
            arrived: Notify::new(),
            trigger: Notify::new(),
            slots: Mutex::default(),
            calls: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            primed: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            fetching: AtomicBool::new(false),
            failed: Mutex::default(),
            max_workers,
            poll_interval,
        })
    }

    /// One fetched job for a worker (with its fetch's round trip if it is the fetch's
    /// first), or, once no fetch called for is still to answer, none (with the round trip
    /// of a fetch that found nothing, if one is unreported). A claim never calls for a
    /// fetch but the first: River's executors wait for the producer. A failed fetch is
    /// reported once, after the jobs already fetched.
    pub async fn take(&self) -> Result<Result<(Claimed, Option<Duration>), Option<Duration>>> {
        if !self.primed.swap(true, Ordering::AcqRel) {
            self.call();
        }
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if let Some(job) = lock(&self.jobs).pop_front() {
                return Ok(Ok(job));
            }
            if let Some(e) = lock(&self.failed).take() {
                return Err(e);
            }
            if self.answered.load(Ordering::Acquire) >= self.calls.load(Ordering::Acquire) {
                return Ok(Err(lock(&self.empty).pop_front()));
            }
            arrived.await;
        }
    }

    /// The run is stopping: no more fetches.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// At stop: fetching ends (after the fetch under way, if any); returns one job
    /// already fetched, if any is left, with its fetch's round trip if it is the first.
    pub async fn drain(&self) -> Option<(Claimed, Option<Duration>)> {
        self.stop();
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            if !self.fetching.load(Ordering::SeqCst) {
                break;
            }
            arrived.await;
        }
        lock(&self.jobs).pop_front()
    }

    /// A worker handed `n` jobs to the completer: their slots are free (River's JobDone).
    pub fn done(&self, n: usize) {
        let mut s = lock(&self.slots);
        s.active = s.active.saturating_sub(n);
        if std::mem::take(&mut s.fetch_when_freed) {
            self.call();
        }
    }

    /// An idle worker waits for a fetch to answer, or `fallback` at most.
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

    /// Asks for a fetch from a timer or a notification: none before the first claim, so
    /// nothing is fetched (and no empty fetch counted) before a start gate opens.
    fn call_if_primed(&self) {
        if self.primed.load(Ordering::Acquire) {
            self.call();
        }
    }

    /// Asks for a fetch (the first claim, a freed slot, and the above).
    pub fn call(&self) {
        self.calls.fetch_add(1, Ordering::AcqRel);
        self.trigger.notify_one();
    }

    /// One fetch, if slots are free and the run is not stopping.
    async fn fetch(&self, conn: &mut Prepared, client_id: &str) {
        self.fetching.store(true, Ordering::SeqCst);
        if self.stopping.load(Ordering::SeqCst) {
            self.fetching.store(false, Ordering::SeqCst);
            return;
        }
        let limit = {
            let mut s = lock(&self.slots);
            let limit = self.max_workers.saturating_sub(s.active);
            s.fetch_when_freed |= limit == 0;
            limit
        };
        if limit > 0 {
            let began = Instant::now();
            let limit_i32 = i32::try_from(limit).unwrap_or(i32::MAX);
            let rows = conn.query(&[&limit_i32, &client_id]).await;
            let rt = began.elapsed();
            match rows.and_then(|rows| rows.iter().map(job).collect::<Result<Vec<_>>>()) {
                Ok(jobs) => self.fetched(jobs, limit, rt),
                Err(e) => *lock(&self.failed) = Some(e),
            }
        }
        self.fetching.store(false, Ordering::SeqCst);
    }

    /// Publishes a fetch's jobs: their slots taken first, so a worker freeing one of them
    /// sees whether to call for the next fetch.
    fn fetched(&self, jobs: Vec<Claimed>, limit: usize, rt: Duration) {
        let n = jobs.len();
        {
            let mut s = lock(&self.slots);
            s.active += n;
            s.fetch_when_freed |= n == limit;
        }
        if n == 0 {
            lock(&self.empty).push_back(rt);
            return;
        }
        let mut rts = std::iter::once(Some(rt)).chain(std::iter::repeat(None));
        lock(&self.jobs).extend(jobs.into_iter().map(|j| (j, rts.next().flatten())));
    }
}

/// The fetch loop: waits for a call, fetches, then lets a cooldown pass before the next.
pub async fn fetch_loop(
    f: Arc<Fetched>,
    mut conn: Prepared,
    client_id: String,
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
        f.fetch(&mut conn, &client_id).await;
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
        let wait = every + jitter.mul_f64(crate::queue::pg::jitter_fraction());
        tokio::select! {
            _ = tokio::time::sleep(wait) => f.call_if_primed(),
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
            f.call_if_primed();
        }
    }
}

/// A fetched row as a job: River's row carries everything; qbench reads its id, attempt
/// and args.
fn job(row: &Row) -> Result<Claimed> {
    let id: i64 = row.try_get("id")?;
    let attempt: i16 = row.try_get("attempt")?;
    let args: serde_json::Value = row.try_get("args")?;
    let (seq, enqueued_at_us) = crate::queue::pg::message_fields(&args, "river_job", id)?;
    Ok(Claimed {
        seq,
        enqueued_at_us,
        attempts: u32::try_from(attempt).unwrap_or(0),
        payload_len: args["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id, part: 0 },
    })
}
