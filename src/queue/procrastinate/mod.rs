//! procrastinate: the protocol of Procrastinate 3.9.0 (github.com/procrastinate-org/
//! procrastinate, tag 3.9.0 = 28462ad6), in qbench's words; SQL:
//! schema/pg_queue_procrastinate.sql. One work process is one Procrastinate worker
//! listening on every queue, its `concurrency` qbench's workers:
//! - every query goes as Procrastinate's psycopg connector sends it (connector.py,
//!   psycopg_connector.py): a pooled connection checked with an empty query, then
//!   BEGIN, the statement, COMMIT: four round trips and one transaction per query;
//! - enqueue (manager.py `batch_defer_jobs_async`, queries.sql `defer_jobs`): one
//!   `procrastinate_defer_jobs_v1` call per defer (per batch for qbench's batches); its
//!   row triggers write a `deferred` event and send two notifications per job;
//! - claim (worker.py `_fetch_and_process_jobs`, `procrastinate_fetch_job_v2`): one job
//!   per call, one call at a time per process, for a free slot, while the process's one
//!   fetch loop is fetching (`consumer`); the status change writes a `started` event;
//! - completion (`procrastinate_finish_job_v1`): the job marked succeeded (kept, with its
//!   events) or, with `delete_jobs`, deleted; awaited before the slot is free again;
//! - wakeup: one LISTEN connection per process on `procrastinate_any_queue_v1`; once a
//!   fetch found nothing, the loop waits for a notification or its 5-s poll, then
//!   fetches until a fetch finds nothing again;
//! - the worker's side tasks (`consumer`): registration at start (after pruning stalled
//!   workers), a heartbeat every 10 s, the abort poll every 5 s while a job runs, and
//!   the unregistration when the run's workers have stopped;
//! - recovery: Procrastinate recovers nothing by itself; its documented recipe
//!   (docs/howto/production/retry_stalled_jobs.md), a task every 10 minutes retrying the
//!   running jobs of workers whose heartbeat is over 30 s old, is run by the reaper.

mod consumer;

use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::Client;

use super::pg::{self, PgBase, Wait};
use super::registry::{Design, DesignInfo, Recovery};
use super::{Backend, Consumer, NewJob, Producer, Queue, QueueState, Server, Snapshot};
use crate::config::{Config, ProcrastinateDelete, Wakeup};
use crate::schema::{embedded, Embedded};
use consumer::{call, ProcrastinateConsumer, Shared};

pub(crate) static SQL: Embedded = embedded!("pg_queue_procrastinate.sql");

const TABLE: &str = "procrastinate_jobs";
const TABLES: &str = "^procrastinate_(jobs|events|periodic_defers|workers)$";
/// The channel a worker of every queue listens on.
const CHANNEL: &str = "procrastinate_any_queue_v1";
/// The queue and task qbench's jobs are deferred to (Procrastinate's default queue).
const QUEUE: &str = "default";
const TASK: &str = "qbench";

pub struct Procrastinate {
    base: PgBase,
    payload: Arc<str>,
    delete: ProcrastinateDelete,
    poll: Duration,
    pool_size: u32,
    heartbeat: Duration,
    abort_poll: Duration,
    stalled_after_s: f64,
    retry_every: Duration,
    /// The process's worker: its pool, its id and side tasks, made for the first
    /// consumer and ended with the last.
    worker: tokio::sync::Mutex<Weak<Shared>>,
    /// The id this process registered, until its stop unregisters it.
    registered: std::sync::Mutex<Option<i64>>,
    next_retry: std::sync::Mutex<std::time::Instant>,
}

#[async_trait]
impl Design for Procrastinate {
    const INFO: DesignInfo = DesignInfo::named("procrastinate", Backend::Postgresql)
        .unfenced()
        .modelling("Procrastinate 3.9.0")
        .notifying_by_default()
        .recovered_by(Recovery::Heartbeat);

    async fn open(cfg: &Config) -> Result<Procrastinate> {
        let b = &cfg.benchmark;
        let base = PgBase::open(cfg, &SQL, TABLE, TABLES).await?;
        let payload = std::str::from_utf8(&base.payload)
            .context("the job payload is not text")?
            .into();
        let retry_every = Duration::from_secs_f64(b.procrastinate_retry_stalled_interval_s);
        Ok(Procrastinate {
            base,
            payload,
            delete: b.procrastinate_delete_jobs,
            poll: Duration::from_secs_f64(b.procrastinate_fetch_job_polling_interval_s),
            pool_size: b.procrastinate_pool_size,
            heartbeat: Duration::from_secs_f64(b.procrastinate_update_heartbeat_interval_s),
            abort_poll: Duration::from_secs_f64(b.procrastinate_abort_job_polling_interval_s),
            stalled_after_s: b.procrastinate_stalled_worker_timeout_s,
            retry_every,
            worker: tokio::sync::Mutex::default(),
            registered: std::sync::Mutex::default(),
            next_retry: std::sync::Mutex::new(std::time::Instant::now() + retry_every),
        })
    }
}

impl Procrastinate {
    fn notify(&self) -> bool {
        self.base.server.wakeup_counts().mode == Wakeup::Notify
    }

    /// The process's worker, started (pruned, registered, beating) by the first consumer.
    async fn worker(&self) -> Result<Arc<Shared>> {
        let mut held = self.worker.lock().await;
        // A worker stopped by an error is replaced, as a supervisor restarts one.
        if let Some(w) = held.upgrade().filter(|w| !w.is_dead()) {
            return Ok(w);
        }
        let w = Arc::new(
            Shared::start(
                pg::pool(self.base.pg(), self.pool_size as usize)?,
                self.base.pg().clone(),
                self.stalled_after_s,
                (self.heartbeat, self.abort_poll),
                self.delete,
            )
            .await?,
        );
        *held = Arc::downgrade(&w);
        *self.registered.lock().unwrap_or_else(|p| p.into_inner()) = Some(w.worker_id());
        Ok(w)
    }

    /// The recipe's task, when due: each running job of a stalled worker retried.
    async fn retry_stalled(&self) -> Result<u64> {
        {
            let mut next = self.next_retry.lock().unwrap_or_else(|p| p.into_inner());
            if std::time::Instant::now() < *next {
                return Ok(0);
            }
            *next = std::time::Instant::now() + self.retry_every;
        }
        let mut c = self.base.pooled().await?;
        let stalled = call(&mut c, SQL.get("stalled"), &[&self.stalled_after_s]).await?;
        let mut n = 0;
        for row in stalled {
            let id: i64 = row.try_get(0)?;
            call(&mut c, SQL.get("retry"), &[&id])
                .await
                .with_context(|| format!("retrying the stalled job {id}"))?;
            n += 1;
        }
        Ok(n)
    }
}

#[async_trait]
impl Queue for Procrastinate {
    fn options(&self) -> String {
        format!(
            "delete_jobs={} fetch_job_polling_interval={}s pool={} update_heartbeat_interval={}s stalled_worker_timeout={}s retry_stalled_interval={}s",
            self.delete.name(),
            self.poll.as_secs_f64(),
            self.pool_size,
            self.heartbeat.as_secs_f64(),
            self.stalled_after_s,
            self.retry_every.as_secs_f64(),
        )
    }

    fn variant(&self) -> String {
        // The options that differ from Procrastinate's defaults name the variant (not the
        // recovery timers: tests recover in seconds, benchmarks run the defaults).
        let mut v = vec![];
        if self.delete != ProcrastinateDelete::Never {
            v.push(format!("delete={}", self.delete.name()));
        }
        if self.pool_size != 4 {
            v.push(format!("pool={}", self.pool_size));
        }
        if self.poll != Duration::from_secs(5) {
            v.push(format!("poll={}s", self.poll.as_secs_f64()));
        }
        v.join("+")
    }

    fn records_completions(&self) -> bool {
        self.delete == ProcrastinateDelete::Never
    }

    fn server(&self) -> &dyn Server {
        &self.base.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        self.base
            .setup(reset, "procrastinate_jobs, its events and workers")
            .await
    }

    async fn reset(&self) -> Result<()> {
        self.base.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.base.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        if self.records_completions() {
            return self.base.lease_state().await;
        }
        let c = self.base.pooled().await?;
        let r = c.query_one(SQL.get("state_unrecorded"), &[]).await?;
        Ok(QueueState {
            pending: pg::count(&r, 0)?,
            in_flight: pg::count(&r, 1)?,
            completed: pg::count(&r, 2)?,
            produced: pg::count(&r, 3)?,
        })
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        let client = pg::connect(self.base.pg()).await?;
        let defer = client.prepare(SQL.get("defer")).await?;
        let retry = client.prepare(SQL.get("defer_retry")).await?;
        Ok(Box::new(ProcrastinateProducer {
            client,
            defer,
            retry,
            counts: self.notify().then(|| self.base.server.wakeup_counts()),
            payload: self.payload.clone(),
            jobs: String::new(),
        }))
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let wait = match self.notify() {
            true => Wait::Notify {
                listener: self.base.listener(CHANNEL).await?,
                fallback: self.poll,
            },
            false => Wait::Poll(self.poll),
        };
        Ok(Box::new(ProcrastinateConsumer::new(self.worker().await?, wait)))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        Ok(Some(self.retry_stalled().await?))
    }

    async fn stopped(&self) -> Result<()> {
        // Worker.run's end: the worker's row deleted (its jobs' worker_id cleared).
        let id = self.registered.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(id) = id {
            // On a session of its own, closed at once: its statistics (the foreign key's
            // update of every job the worker ran) are flushed as it ends, inside the run.
            let mut c = pg::connect(self.base.pg()).await?;
            consumer::unregister(&mut c, id)
                .await
                .context("unregistering the worker")?;
        }
        Ok(())
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.base.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.base.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let record = self.records_completions().then_some("completed");
        self.base.left_then_completed(record).await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.base.horizon("claim_plan", &[]).await
    }
}

struct ProcrastinateProducer {
    client: Client,
    defer: tokio_postgres::Statement,
    retry: tokio_postgres::Statement,
    /// Notify mode: the process's counts (each job notifies, whatever the workers do).
    counts: Option<Arc<pg::WakeupCounts>>,
    payload: Arc<str>,
    jobs: String,
}

#[async_trait]
impl Producer for ProcrastinateProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()> {
        self.jobs.clear();
        self.jobs.push('[');
        for (i, j) in jobs.iter().enumerate() {
            if i > 0 {
                self.jobs.push(',');
            }
            // Procrastinate's defaults: the default queue, priority 0, no locks, due now.
            self.jobs.push_str("{\"queue_name\":\"");
            self.jobs.push_str(QUEUE);
            self.jobs.push_str("\",\"task_name\":\"");
            self.jobs.push_str(TASK);
            self.jobs
                .push_str("\",\"priority\":0,\"lock\":null,\"queueing_lock\":null,\"args\":");
            self.jobs.push_str(&pg::message(j, &self.payload));
            self.jobs.push_str(",\"scheduled_at\":null}");
        }
        self.jobs.push(']');
        // defer is not idempotent: a retry adds only the seqs no row holds.
        let st = if retry { &self.retry } else { &self.defer };
        consumer::in_transaction(&mut self.client, st, &[&self.jobs]).await?;
        if let Some(c) = &self.counts {
            // One notification per job on the channel workers listen on.
            c.sent.fetch_add(jobs.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_exist() {
        SQL.assert_statements(&[
            "defer",
            "defer_retry",
            "fetch",
            "finish",
            "register",
            "prune",
            "heartbeat",
            "unregister",
            "to_abort",
            "stalled",
            "retry",
            "claim_plan",
            "depth",
            "state",
            "state_unrecorded",
            "left",
            "completed",
            "sabotage",
            "reset",
        ]);
    }

    /// The horizon scenario explains the fetch function's own statement.
    #[test]
    fn the_explained_claim_is_the_fetch_functions() {
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        let function = squash(SQL.ddl);
        let plan = squash(SQL.get("claim_plan"));
        let candidate = &plan[..plan.find("UPDATE").expect("update")];
        // The function's CTE, but for the queue filter its NULL argument removes.
        let without_queues = function.replace(
            "AND(target_queue_namesISNULLORj.queue_name=ANY(target_queue_names))",
            "",
        );
        assert!(without_queues.contains(candidate), "{candidate}");
    }
}
