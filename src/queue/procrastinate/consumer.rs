//! A Procrastinate worker's fetch and finish, and its side tasks. Every query goes as
//! Procrastinate's psycopg connector runs it: a connection from the pool (checked with an
//! empty query, psycopg_pool's `check_connection`), BEGIN, the statement, COMMIT.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::SQL;
use crate::config::{Postgres, ProcrastinateDelete};
use crate::queue::pg::{self, Wait};
use crate::queue::{Claimed, Consumer, Handle};

/// One query as the connector sends it: checked, BEGIN, the statement, COMMIT (its error
/// rolls the transaction back).
pub async fn call(
    c: &mut deadpool_postgres::Object,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    c.simple_query("").await.context("the pool's connection check")?;
    let st = c.prepare_cached(sql).await?;
    let tx = c.transaction().await?;
    let rows = tx.query(&st, params).await?;
    tx.commit().await?;
    Ok(rows)
}

/// The same on a client of its own (the producer's): BEGIN, the statement, COMMIT.
pub async fn in_transaction(
    c: &mut Client,
    st: &Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<Row>> {
    c.simple_query("").await.context("the pool's connection check")?;
    let tx = c.transaction().await?;
    let rows = tx.query(st, params).await?;
    tx.commit().await?;
    Ok(rows)
}

/// unregister_worker at the worker's stop, on a client of its own.
pub async fn unregister(c: &mut Client, worker_id: i64) -> Result<()> {
    let st = c.prepare(SQL.get("unregister")).await?;
    in_transaction(c, &st, &[&worker_id]).await?;
    Ok(())
}

/// The process's worker: its pool (psycopg_pool's, 4 connections), its id, its one fetch
/// loop, the jobs running, and its side task (heartbeat and abort poll).
///
/// Procrastinate's worker fetches in one loop (worker.py `_fetch_and_process_jobs`): for
/// a free slot it fetches one job, again and again until a fetch finds none; then it
/// waits for a notification or its poll (`_run_loop`), and a slot freed meanwhile fetches
/// nothing. Here each qbench worker is a slot: it fetches itself while the loop is
/// fetching (`more`); once a fetch found nothing, a worker that frees up goes idle
/// instead, and the idle workers take turns (`turn`) at the loop's one wait. The event is
/// cleared after every fetch (`cleared`): a notification that came during a fetch that
/// found nothing is lost, as in Procrastinate.
pub struct Shared {
    pool: deadpool_postgres::Pool,
    pg: Postgres,
    worker_id: i64,
    fetching: tokio::sync::Mutex<()>,
    turn: tokio::sync::Mutex<()>,
    more: AtomicBool,
    cleared: AtomicU64,
    /// A fetch or finish failed: Procrastinate's worker stops on such an error, its
    /// heartbeat with it; its running jobs wait for the recipe, and a new worker starts.
    dead: AtomicBool,
    running: Arc<AtomicUsize>,
    /// delete_job for a job that succeeded.
    delete: bool,
    side: JoinHandle<()>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Its heartbeat stops; the design unregisters the worker once the run's workers
        // have stopped (`Queue::stopped`). A killed process never does: the next
        // worker's start prunes it as stalled.
        self.side.abort();
    }
}

impl Shared {
    pub fn worker_id(&self) -> i64 {
        self.worker_id
    }

    /// Whether the worker stopped on an error (the design then starts another).
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Acquire)
    }

    /// The worker stops: no more fetches, no more heartbeats.
    fn stop(&self) {
        self.dead.store(true, Ordering::Release);
        self.side.abort();
    }

    /// Worker.run's start: stalled workers pruned, this one registered, its side task
    /// started.
    pub async fn start(
        pool: deadpool_postgres::Pool,
        pg: Postgres,
        stalled_after_s: f64,
        (heartbeat, abort_poll): (Duration, Duration),
        delete: ProcrastinateDelete,
    ) -> Result<Shared> {
        let mut c = pg::pooled(&pool, &pg).await?;
        call(&mut c, SQL.get("prune"), &[&stalled_after_s]).await?;
        let rows = call(&mut c, SQL.get("register"), &[]).await?;
        let worker_id: i64 = rows
            .first()
            .context("register_worker returned no id")?
            .try_get(0)?;
        drop(c);
        let running = Arc::new(AtomicUsize::new(0));
        let side = tokio::spawn(side_task(
            pool.clone(),
            pg.clone(),
            worker_id,
            (heartbeat, abort_poll),
            running.clone(),
        ));
        Ok(Shared {
            pool,
            pg,
            worker_id,
            fetching: tokio::sync::Mutex::new(()),
            turn: tokio::sync::Mutex::new(()),
            // The loop starts by fetching.
            more: AtomicBool::new(true),
            cleared: AtomicU64::new(0),
            dead: AtomicBool::new(false),
            running,
            delete: delete == ProcrastinateDelete::Always || delete == ProcrastinateDelete::Successful,
            side,
        })
    }
}

/// The heartbeat every `heartbeat` (sleeping first), and the abort poll (worker.py's
/// abort_job_polling_interval) while a job runs. A failed one is tried at its next tick,
/// as Procrastinate logs and goes on.
async fn side_task(
    pool: deadpool_postgres::Pool,
    pg: Postgres,
    worker_id: i64,
    (heartbeat, abort_poll): (Duration, Duration),
    running: Arc<AtomicUsize>,
) {
    let now = tokio::time::Instant::now();
    let mut beat = tokio::time::interval_at(now + heartbeat, heartbeat);
    let mut abort = tokio::time::interval_at(now + abort_poll, abort_poll);
    loop {
        let (sql, busy_only) = tokio::select! {
            _ = beat.tick() => ("heartbeat", false),
            _ = abort.tick() => ("to_abort", true),
        };
        if busy_only && running.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let Ok(mut c) = pg::pooled(&pool, &pg).await else {
            continue;
        };
        let _ = match sql {
            "heartbeat" => call(&mut c, SQL.get(sql), &[&worker_id]).await,
            _ => call(&mut c, SQL.get(sql), &[]).await,
        };
    }
}

pub struct ProcrastinateConsumer {
    shared: Arc<Shared>,
    wait: Wait,
    /// This worker holds the loop's wait and was woken: its next claim fetches.
    woken: bool,
    /// Whether the last claim ran a fetch (an idle loop's claim runs none).
    fetched: bool,
}

impl ProcrastinateConsumer {
    pub fn new(shared: Arc<Shared>, wait: Wait) -> ProcrastinateConsumer {
        ProcrastinateConsumer {
            shared,
            wait,
            woken: false,
            fetched: false,
        }
    }

    fn generation(&self) -> u64 {
        match &self.wait {
            Wait::Notify { listener, .. } => listener.generation(),
            Wait::Poll(_) => 0,
        }
    }

    /// One fetch, as the loop runs it.
    async fn fetch(&mut self) -> Result<Vec<Claimed>> {
        let _turn = self.shared.fetching.lock().await;
        let mut c = pg::pooled(&self.shared.pool, &self.shared.pg).await?;
        let rows = call(&mut c, SQL.get("fetch"), &[&self.shared.worker_id]).await;
        // `_new_job_event.clear()` in the fetch's finally: whatever it found.
        self.shared.cleared.store(self.generation(), Ordering::Release);
        let mut out = vec![];
        for r in &rows? {
            if let Some(job) = claimed(r)? {
                out.push(job);
            }
        }
        self.shared.more.store(!out.is_empty(), Ordering::Release);
        self.shared.running.fetch_add(out.len(), Ordering::Relaxed);
        Ok(out)
    }
}

/// A fetched row: its args' seq and time, and the delivery it is (attempts count the
/// finished and retried runs).
fn claimed(r: &Row) -> Result<Option<Claimed>> {
    let Some(id) = r.try_get::<_, Option<i64>>("id")? else {
        // The function's row of NULLs: nothing to fetch.
        return Ok(None);
    };
    let args: serde_json::Value = r.try_get("args")?;
    let (seq, enqueued_at_us) = pg::message_fields(&args, "job", id)?;
    let attempts: i32 = r.try_get("attempts")?;
    Ok(Some(Claimed {
        seq,
        enqueued_at_us,
        attempts: u32::try_from(attempts).unwrap_or(0) + 1,
        payload_len: args["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id, part: 0 },
    }))
}

#[async_trait]
impl Consumer for ProcrastinateConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        // The loop fetches while its fetches find jobs, and when woken; a slot freed while
        // it waits fetches nothing.
        if self.shared.is_dead() {
            self.fetched = false;
            anyhow::bail!("the Procrastinate worker stopped after an error; a new one starts");
        }
        let woken = std::mem::take(&mut self.woken);
        self.fetched = woken || self.shared.more.load(Ordering::Acquire);
        if !self.fetched {
            return Ok(vec![]);
        }
        let fetched = self.fetch().await;
        if fetched.is_err() {
            self.shared.stop();
        }
        fetched
    }

    /// The loop's one wait: for a notification since the event was last cleared, or the
    /// fetch poll; the other idle workers queue behind it.
    async fn idle(&mut self) {
        let _turn = self.shared.turn.lock().await;
        if !self.shared.more.load(Ordering::Acquire) {
            match &self.wait {
                Wait::Poll(d) => tokio::time::sleep(*d).await,
                Wait::Notify { listener, fallback } => {
                    let seen = self.shared.cleared.load(Ordering::Acquire);
                    listener.wait(seen, *fallback).await
                }
            }
        }
        self.woken = true;
    }

    fn claim_round_trip(&self, call: Duration) -> Option<Duration> {
        self.fetched.then_some(call)
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let mut late = vec![];
        let mut c = pg::pooled(&self.shared.pool, &self.shared.pg).await?;
        for j in jobs {
            self.shared.running.fetch_sub(1, Ordering::Relaxed);
            let Handle::Row { id, .. } = j.handle else {
                anyhow::bail!("procrastinate: a job without its row id");
            };
            let finished = call(
                &mut c,
                SQL.get("finish"),
                &[&id, &"succeeded", &self.shared.delete],
            )
            .await;
            match finished {
                Ok(_) => {}
                // The function's RAISE: the job is neither queued nor running any more
                // (another run finished it first).
                Err(e) if raised(&e) => late.push(j.seq),
                Err(e) => {
                    self.shared.stop();
                    return Err(e.context("finishing a job"));
                }
            }
        }
        Ok(late)
    }
}

/// Whether an error is a PL/pgSQL RAISE (SQLSTATE P0001).
fn raised(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<tokio_postgres::Error>()
            .and_then(|pe| pe.code())
            .is_some_and(|code| code.code() == "P0001")
    })
}
