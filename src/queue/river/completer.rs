//! River's BatchCompleter (internal/jobcompleter/job_completer.go at fdf6cdf), one per
//! process: a worker hands its finished job over, stamped with its finalized time, and is
//! free at once; the completer writes every job handed over in one statement per 5,000,
//! on a 50-ms tick, when 100 or more wait, and otherwise on every fifth tick (250 ms).
//! At 10,000 waiting, hand-overs wait until a write leaves fewer than 5,000 (or the run
//! stops). A failed write is tried three times, 1 and 2 s apart (River's withRetries
//! waits 1, 2 and 4 s with jitter), each bounded by 10 s, then put back for a later tick. A job counts as completed only when a statement has written it: each
//! hand-over gets its outcome then.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

use super::{lock, Prepared};

const TICK: Duration = Duration::from_millis(50);
/// A tick writes when this many wait (batchCompleterStartThreshold)…
const START_THRESHOLD: usize = 100;
/// …and otherwise every this many ticks.
const EVERY_TICKS: u64 = 5;
/// Jobs per statement (completionMaxSize).
const MAX_BATCH: usize = 5_000;
/// Hand-overs wait from this backlog (backlogWaitThreshold) until a write halves it.
const BACKLOG_WAIT: usize = 2 * MAX_BATCH;
/// River's withRetries: the waits between a failed write's attempts.
const RETRY_WAITS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// One hand-over: its jobs (id, seq), when they finished, and where the outcome goes.
struct HandedOver {
    jobs: Vec<(i64, i64)>,
    finalized_at: SystemTime,
    outcome: oneshot::Sender<Result<Vec<i64>>>,
}

#[derive(Default)]
struct Backlog {
    waiting: Vec<HandedOver>,
    jobs: usize,
    /// Hand-overs wait while set (from BACKLOG_WAIT until a write leaves half of it).
    gated: bool,
}

pub struct Completer {
    backlog: Mutex<Backlog>,
    /// The run is stopping: hand-overs no longer wait at the gate.
    stopping: std::sync::atomic::AtomicBool,
    /// The backlog reached a full statement (River's batchReadyChan).
    full: Notify,
    /// The gate opened.
    opened: Notify,
}

impl Completer {
    pub fn new() -> Arc<Completer> {
        Arc::new(Completer {
            backlog: Mutex::default(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            full: Notify::new(),
            opened: Notify::new(),
        })
    }

    /// Hands jobs (id, seq) over, finalized now; waits while the gate is shut. The
    /// receiver gets the seqs the write found no longer running (late).
    pub async fn hand_over(&self, jobs: Vec<(i64, i64)>) -> oneshot::Receiver<Result<Vec<i64>>> {
        let finalized_at = SystemTime::now();
        loop {
            let opened = self.opened.notified();
            tokio::pin!(opened);
            opened.as_mut().enable();
            if !lock(&self.backlog).gated || self.stopping.load(std::sync::atomic::Ordering::Acquire) {
                break;
            }
            opened.await;
        }
        let (tx, rx) = oneshot::channel();
        let mut b = lock(&self.backlog);
        b.jobs += jobs.len();
        b.waiting.push(HandedOver {
            jobs,
            finalized_at,
            outcome: tx,
        });
        b.gated |= b.jobs >= BACKLOG_WAIT;
        if b.jobs >= MAX_BATCH {
            self.full.notify_one();
        }
        rx
    }

    /// The run is stopping: a worker waiting at the gate hands over at once (else a gate
    /// that failed writes keep shut would hold the worker, and the stop, forever).
    pub fn stop_waiting(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.opened.notify_waiters();
    }

    fn pending(&self) -> usize {
        lock(&self.backlog).jobs
    }

    /// Up to one statement's hand-overs (at least one), oldest first.
    fn take_batch(&self) -> Vec<HandedOver> {
        let mut b = lock(&self.backlog);
        let (mut n, mut cut) = (0, 0);
        while cut < b.waiting.len() && (cut == 0 || n + b.waiting[cut].jobs.len() <= MAX_BATCH) {
            n += b.waiting[cut].jobs.len();
            cut += 1;
        }
        b.jobs -= n;
        b.waiting.drain(..cut).collect()
    }

    fn put_back(&self, mut failed: Vec<HandedOver>) {
        let mut b = lock(&self.backlog);
        b.jobs += failed.iter().map(|h| h.jobs.len()).sum::<usize>();
        failed.append(&mut b.waiting);
        b.waiting = failed;
    }

    /// After a write: the gate opens once fewer than half its threshold wait.
    fn maybe_open(&self) {
        let mut b = lock(&self.backlog);
        if b.gated && b.jobs < BACKLOG_WAIT / 2 {
            b.gated = false;
            self.opened.notify_waiters();
        }
    }
}

/// The completer's loop; on stop, it writes what is waiting once more, then ends.
pub async fn run(c: Arc<Completer>, mut conn: Prepared, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    // Go's ticker drops the ticks a slow write missed; so does this one.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks = 0u64;
    loop {
        let full = tokio::select! {
            // The stop first: the last write must not wait behind another's retries.
            biased;
            _ = stop.cancelled() => {
                flush(&c, &mut conn, true).await;
                return;
            }
            _ = tick.tick() => { ticks += 1; false }
            _ = c.full.notified() => true,
        };
        // The first tick, every fifth, a full statement, or enough waiting.
        if full || ticks % EVERY_TICKS == 1 || c.pending() >= START_THRESHOLD {
            while flush(&c, &mut conn, false).await && c.pending() >= START_THRESHOLD {}
        }
    }
}

/// Writes everything waiting, a statement at a time; returns whether it all went. A
/// statement that still fails after River's retries is put back for a later tick, but on
/// the last flush its workers learn of the failure.
async fn flush(c: &Completer, conn: &mut Prepared, last: bool) -> bool {
    // What waits now, as River takes its map: later hand-overs wait for the next flush.
    let mut left = c.pending();
    while left > 0 {
        let batch = c.take_batch();
        left = left.saturating_sub(batch.iter().map(|h| h.jobs.len()).sum());
        match write(conn, &batch).await {
            Ok(done) => {
                // A job is credited to its first hand-over only (see `write`).
                let mut credited = HashSet::new();
                for h in batch {
                    let late = h.jobs.iter().filter(|j| !(done.contains(&j.0) && credited.insert(j.0)));
                    let _ = h.outcome.send(Ok(late.map(|j| j.1).collect()));
                }
            }
            Err(e) if last => {
                for h in batch {
                    let _ = h.outcome.send(Err(anyhow::anyhow!("{e:#}")));
                }
            }
            Err(_) => {
                c.put_back(batch);
                return false;
            }
        }
        c.maybe_open();
    }
    true
}

/// One statement for a batch, with River's retries: the ids it found completed by this
/// hand-over (written now, or by an earlier attempt whose answer was lost). An id handed
/// over twice in one batch (an old attempt and a new one) is written once, for the first.
async fn write(conn: &mut Prepared, batch: &[HandedOver]) -> Result<HashSet<i64>> {
    let mut seen = HashSet::new();
    let (mut ids, mut at) = (vec![], vec![]);
    for h in batch {
        for &(id, _) in &h.jobs {
            if seen.insert(id) {
                ids.push(id);
                at.push(h.finalized_at);
            }
        }
    }
    let mut waits = RETRY_WAITS.iter();
    loop {
        match conn.query(&[&ids, &at]).await {
            Ok(rows) => {
                let mut done = HashSet::with_capacity(rows.len());
                for r in rows {
                    if r.try_get::<_, bool>(1)? {
                        done.insert(r.try_get::<_, i64>(0)?);
                    }
                }
                if done.len() < ids.len() {
                    // A failed try (this write's, or a put-back batch's earlier one) may
                    // have committed after this statement's snapshot: the rows it wrote
                    // are read again, as they are now. Rare: a late completion's row.
                    let rows = conn.query_text(WRITTEN, &[&ids, &at]).await?;
                    for r in rows {
                        done.insert(r.try_get::<_, i64>(0)?);
                    }
                }
                return Ok(done);
            }
            Err(e) => match waits.next() {
                Some(w) => tokio::time::sleep(*w).await,
                None => return Err(e),
            },
        }
    }
}

/// The ids of a batch completed with the batch's own finalized times.
const WRITTEN: &str = "SELECT j.id FROM river_job j \
    JOIN unnest($1::bigint[], $2::timestamptz[]) AS i(id, finalized_at) ON j.id = i.id \
    WHERE j.state = 'completed' AND j.finalized_at = i.finalized_at";
