//! River's BatchCompleter (internal/jobcompleter/job_completer.go at fdf6cdf), one per
//! process: a worker hands its finished job over and is free at once; the completer
//! writes every job handed over in one statement per 5,000, on a 50-ms tick, when 100 or
//! more wait, and otherwise on every fifth tick (250 ms). More than 10,000 waiting makes
//! a hand-over wait until fewer than 5,000 do. A job counts as completed only when its
//! statement has answered: each hand-over gets its outcome then.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use tokio::sync::{oneshot, Notify};
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

use crate::config::Postgres;
use crate::queue::pg;

const TICK: Duration = Duration::from_millis(50);
/// A tick writes when this many wait (batchCompleterStartThreshold)…
const START_THRESHOLD: usize = 100;
/// …and otherwise every this many ticks.
const EVERY_TICKS: u64 = 5;
/// Jobs per statement (completionMaxSize).
const MAX_BATCH: usize = 5_000;
/// Hand-overs wait above this backlog (backlogWaitThreshold) until it halves.
const BACKLOG_WAIT: usize = 2 * MAX_BATCH;

/// One hand-over: its jobs (id, seq) and where its outcome goes.
struct HandedOver {
    jobs: Vec<(i64, i64)>,
    outcome: oneshot::Sender<Result<Vec<i64>>>,
}

#[derive(Default)]
struct Backlog {
    waiting: Vec<HandedOver>,
    jobs: usize,
}

pub struct Completer {
    backlog: Mutex<Backlog>,
    /// The backlog reached a full statement (River's batchReadyChan).
    full: Notify,
    /// The backlog fell below half the wait threshold.
    drained: Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Completer {
    pub fn new() -> Arc<Completer> {
        Arc::new(Completer {
            backlog: Mutex::default(),
            full: Notify::new(),
            drained: Notify::new(),
        })
    }

    /// Hands jobs (id, seq) over; waits while the backlog is over its threshold. The
    /// receiver gets the seqs the statement found no longer running.
    pub async fn hand_over(&self, jobs: Vec<(i64, i64)>) -> oneshot::Receiver<Result<Vec<i64>>> {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if lock(&self.backlog).jobs < BACKLOG_WAIT {
                break;
            }
            drained.await;
        }
        let (tx, rx) = oneshot::channel();
        let mut b = lock(&self.backlog);
        b.jobs += jobs.len();
        b.waiting.push(HandedOver { jobs, outcome: tx });
        if b.jobs >= MAX_BATCH {
            self.full.notify_one();
        }
        rx
    }

    fn pending(&self) -> usize {
        lock(&self.backlog).jobs
    }

    fn take(&self) -> Vec<HandedOver> {
        let mut b = lock(&self.backlog);
        b.jobs = 0;
        std::mem::take(&mut b.waiting)
    }

    fn put_back(&self, mut failed: Vec<HandedOver>) {
        let mut b = lock(&self.backlog);
        b.jobs += failed.iter().map(|h| h.jobs.len()).sum::<usize>();
        failed.append(&mut b.waiting);
        b.waiting = failed;
    }
}

/// The completion statement on a connection of the completer's own.
pub struct CompleteConn {
    pg: Postgres,
    sql: String,
    conn: Option<(Client, Statement)>,
}

impl CompleteConn {
    pub fn new(pg: Postgres, sql: String) -> CompleteConn {
        CompleteConn { pg, sql, conn: None }
    }

    /// One statement for `ids`: the ids it made completed.
    async fn complete(&mut self, ids: &[i64]) -> Result<std::collections::HashSet<i64>> {
        if self.conn.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            let c = pg::connect(&self.pg).await?;
            let st = c
                .prepare(&self.sql)
                .await
                .context("preparing River's completion (did setup-schema run?)")?;
            self.conn = Some((c, st));
        }
        let Some((c, st)) = &self.conn else {
            unreachable!("connected above")
        };
        // River stamps finalized_at with the client's clock.
        let rows = match c.query(st, &[&ids, &SystemTime::now()]).await {
            Ok(rows) => rows,
            Err(e) => {
                self.conn = None;
                return Err(e).context("River's completion");
            }
        };
        let mut done = std::collections::HashSet::with_capacity(rows.len());
        for r in rows {
            if r.try_get::<_, bool>(1)? {
                done.insert(r.try_get::<_, i64>(0)?);
            }
        }
        Ok(done)
    }
}

/// The completer's loop; on stop, it writes what is waiting once more, then ends.
pub async fn run(c: Arc<Completer>, mut conn: CompleteConn, stop: CancellationToken) {
    let mut tick = tokio::time::interval(TICK);
    let mut ticks = 0u64;
    loop {
        let full = tokio::select! {
            _ = tick.tick() => { ticks += 1; false }
            _ = c.full.notified() => true,
            _ = stop.cancelled() => {
                flush(&c, &mut conn, true).await;
                return;
            }
        };
        // The first tick, every fifth, a full statement, or enough waiting.
        if full || ticks % EVERY_TICKS == 1 || c.pending() >= START_THRESHOLD {
            flush(&c, &mut conn, false).await;
            while c.pending() >= START_THRESHOLD && flush(&c, &mut conn, false).await {}
        }
    }
}

/// Writes everything waiting, 5,000 jobs a statement; returns whether it all went. A
/// failed statement's hand-overs wait for the next flush (River retries them), but on
/// the last one, their workers learn of the failure.
async fn flush(c: &Completer, conn: &mut CompleteConn, last: bool) -> bool {
    let mut waiting = c.take();
    let mut ok = true;
    while !waiting.is_empty() {
        let (mut n, mut cut) = (0, 0);
        while cut < waiting.len() && (cut == 0 || n + waiting[cut].jobs.len() <= MAX_BATCH) {
            n += waiting[cut].jobs.len();
            cut += 1;
        }
        let rest = waiting.split_off(cut);
        let ids: Vec<i64> = waiting.iter().flat_map(|h| h.jobs.iter().map(|j| j.0)).collect();
        match conn.complete(&ids).await {
            Ok(done) => {
                for h in waiting {
                    let late = h.jobs.iter().filter(|j| !done.contains(&j.0)).map(|j| j.1);
                    let _ = h.outcome.send(Ok(late.collect()));
                }
            }
            Err(e) if last => {
                for h in waiting {
                    let _ = h.outcome.send(Err(anyhow::anyhow!("{e:#}")));
                }
                ok = false;
            }
            Err(_) => {
                c.put_back(waiting);
                c.put_back(rest);
                c.drained.notify_waiters();
                return false;
            }
        }
        waiting = rest;
    }
    if c.pending() < BACKLOG_WAIT / 2 {
        c.drained.notify_waiters();
    }
    ok
}
