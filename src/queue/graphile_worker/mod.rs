//! graphile_worker: the protocol of graphile-worker v0.17.3 (github.com/graphile/worker at
//! abfb4cf, the 0.17.x branch; its SQL and worker loop unchanged since the tag), in
//! qbench's words; SQL: schema/pg_queue_graphile_worker.sql. One work process is one
//! WorkerPool with no local queue, its concurrency qbench's workers:
//! - enqueue (src/helpers.ts makeAddJob / makeAddJobs): one `add_job` call per job, or one
//!   `add_jobs` per batch; the function makes the task exist, NOTIFYs `jobs:insert` with
//!   the batch's count and inserts (sql/000018.sql);
//! - claim (src/sql/getJobs.ts, from src/worker.ts): each worker claims one job per
//!   statement, locked by the pool's id, its attempts counted (`consumer`);
//! - completion (src/sql/completeJobs.ts): the job deleted by id, not awaited: the worker
//!   claims its next job while its completion is in flight (`hand_off`); or, with
//!   completeJobBatchDelay ≥ 0, one DELETE per batch (`batcher`); claims and completions
//!   share the process's pool of maxPoolSize connections, through `withRetries`;
//! - wakeup (src/main.ts listenForChanges): one LISTEN connection per process; a
//!   notification wakes as many idle workers as it announces jobs; an idle worker claims
//!   again every pollInterval (2 s) anyway;
//! - recovery (src/sql/resetLockedAt.ts): a sweep every 8-10 minutes unlocks jobs locked
//!   longer than 4 hours. Nothing fences a completion: a late one deletes the job
//!   whoever holds it now (unfenced).
//!
//! graphile-worker keeps no record of a completed job; qbench's record (on by default)
//! is written by the same statement, so that the audit can tell lost from completed.

mod batcher;
mod consumer;

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::sync::OnceCell;
use tokio_postgres::{Client, Statement};

use super::pg::{self, PgBase, Wait, Waiting};
use super::registry::{Design, DesignInfo};
use super::{Backend, Consumer, NewJob, Producer, Queue, QueueState, Server, Snapshot};
use crate::config::{Config, GraphileRecord, Wakeup};
use crate::schema::{embedded, Embedded};
use batcher::Batcher;
use consumer::{Completion, GraphileConsumer, Shared};

pub(crate) static SQL: Embedded = embedded!("pg_queue_graphile_worker.sql");

const TABLE: &str = "graphile_jobs";
/// graphile-worker's insert channel, as LISTEN takes it.
const CHANNEL: &str = "\"jobs:insert\"";
/// The one task identifier qbench's jobs run as.
const TASK: &str = "qbench";

pub struct GraphileWorker {
    base: PgBase,
    payload: Arc<str>,
    poll: Duration,
    batch_delay: Option<Duration>,
    max_pool_size: u32,
    stale_after_s: f64,
    reset_interval: (Duration, Duration),
    record: bool,
    /// The WorkerPool's id: `pool-` and 18 hex digits, what locked_by holds.
    pool_id: Arc<str>,
    /// getTaskDetails' cache: the task ids, read once per process.
    task_ids: OnceCell<Arc<Vec<i32>>>,
    /// The WorkerPool's connections (maxPoolSize, the listener's counted) and batcher:
    /// made for the first consumer, closed with the last (its sessions end with the run).
    pool_size: usize,
    complete: &'static str,
    worker_pool: tokio::sync::Mutex<(Weak<Shared>, Weak<Batcher>)>,
    /// When this process sweeps stale locks next.
    next_sweep: Mutex<Instant>,
}

#[async_trait]
impl Design for GraphileWorker {
    const INFO: DesignInfo = DesignInfo::named("graphile_worker", Backend::Postgresql)
        .unfenced()
        .modelling("graphile-worker 0.17.3")
        .notifying_by_default();

    async fn open(cfg: &Config) -> Result<GraphileWorker> {
        let b = &cfg.benchmark;
        let base = PgBase::open(
            cfg,
            &SQL,
            TABLE,
            "^graphile_(jobs|job_queues|tasks|qbench_done)$",
        )
        .await?;
        let payload = std::str::from_utf8(&base.payload)
            .context("the job payload is not text")?
            .into();
        let min = Duration::from_secs_f64(b.graphile_min_reset_locked_interval_s);
        let max = Duration::from_secs_f64(b.graphile_max_reset_locked_interval_s);
        // The first sweep within min(60 s, the longest interval) of the pool's start.
        let first = max.min(Duration::from_secs(60)).mul_f64(pg::jitter_fraction());
        // 18 hex digits, as graphile-worker's nine random bytes give.
        let nine = || (pg::jitter_fraction() * (1u64 << 36) as f64) as u64;
        let pool_id = format!("pool-{:09x}{:09x}", nine(), nine());
        // The listener holds one of the pool's connections in graphile-worker.
        let notify = b.wakeup.single()? == Wakeup::Notify;
        let size = b.graphile_max_pool_size as usize - usize::from(notify);
        let complete = SQL.get(match b.graphile_completion_record {
            GraphileRecord::On => "complete_recorded",
            GraphileRecord::Off => "complete",
        });
        Ok(GraphileWorker {
            pool_size: size.max(1),
            complete,
            worker_pool: tokio::sync::Mutex::default(),
            base,
            payload,
            poll: Duration::from_secs_f64(b.graphile_poll_interval_ms / 1000.0),
            batch_delay: (b.graphile_complete_job_batch_delay_ms >= 0.0)
                .then(|| Duration::from_secs_f64(b.graphile_complete_job_batch_delay_ms / 1000.0)),
            max_pool_size: b.graphile_max_pool_size,
            stale_after_s: b.graphile_stale_lock_after_s,
            reset_interval: (min, max),
            record: b.graphile_completion_record == GraphileRecord::On,
            pool_id: pool_id.into(),
            task_ids: OnceCell::new(),
            next_sweep: Mutex::new(Instant::now() + first),
        })
    }
}

impl GraphileWorker {
    fn notify(&self) -> bool {
        self.base.server.wakeup_counts().mode == Wakeup::Notify
    }

    /// getTaskDetails: the task made to exist and its id read, once per process.
    async fn task_ids(&self) -> Result<Arc<Vec<i32>>> {
        let ids = self
            .task_ids
            .get_or_try_init(|| async {
                let c = self.base.pooled().await?;
                let names = vec![TASK.to_string()];
                c.execute(SQL.get("task_make"), &[&names]).await?;
                let rows = c.query(SQL.get("task_ids"), &[&names]).await?;
                let ids: Result<Vec<i32>> = rows.iter().map(|r| Ok(r.try_get(0)?)).collect();
                anyhow::Ok(Arc::new(ids?))
            })
            .await?;
        Ok(ids.clone())
    }

    /// The process's pool and how its workers' completions go (its own DELETE per job,
    /// or the batcher's), made by the first consumer and kept while one lives.
    async fn worker_pool(&self) -> Result<(Arc<Shared>, Completion)> {
        let mut held = self.worker_pool.lock().await;
        let shared = match held.0.upgrade() {
            Some(s) => s,
            None => {
                let s = Arc::new(Shared {
                    pool: pg::pool(self.base.pg(), self.pool_size)?,
                    pg: self.base.pg().clone(),
                    claim: SQL.get("claim"),
                    complete: self.complete,
                });
                held.0 = Arc::downgrade(&s);
                s
            }
        };
        let Some(delay) = self.batch_delay else {
            return Ok((shared, Completion::Own));
        };
        let batcher = match held.1.upgrade() {
            Some(b) => b,
            None => {
                let many = match self.record {
                    true => "complete_many_recorded",
                    false => "complete_many",
                };
                let b = Batcher::new(delay, SQL.get(many), shared.clone());
                held.1 = Arc::downgrade(&b);
                b
            }
        };
        Ok((shared, Completion::Batched(batcher)))
    }

    /// Sweeps stale locks when this process's random interval has passed.
    async fn sweep_if_due(&self) -> Result<u64> {
        {
            let next = self.next_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if Instant::now() < *next {
                return Ok(0);
            }
        }
        // The next sweep is due an interval on whatever this one does: graphile-worker
        // waits a fresh interval after a failed sweep too.
        let (min, max) = self.reset_interval;
        let every = min + (max - min).mul_f64(pg::jitter_fraction());
        *self.next_sweep.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + every;
        let c = self.base.pooled().await?;
        let st = c.prepare_cached(SQL.get("reset_locked")).await?;
        let row = c.query_one(&st, &[&self.stale_after_s]).await?;
        pg::count(&row, 0)
    }
}

#[async_trait]
impl Queue for GraphileWorker {
    fn options(&self) -> String {
        format!(
            "max_pool_size={} poll_interval={}ms complete_batch_delay={} stale_lock_after={}s reset_locked_interval={}-{}s record={}",
            self.max_pool_size,
            self.poll.as_secs_f64() * 1000.0,
            self.batch_delay
                .map_or("off".into(), |d| format!("{}ms", d.as_secs_f64() * 1000.0)),
            self.stale_after_s,
            self.reset_interval.0.as_secs_f64(),
            self.reset_interval.1.as_secs_f64(),
            if self.record { "on" } else { "off" },
        )
    }

    fn variant(&self) -> String {
        // The options that differ from graphile-worker's defaults name the variant (not
        // the lock sweep's: tests recover in seconds, benchmarks run the defaults).
        let mut v = vec![];
        if self.max_pool_size != 10 {
            v.push(format!("pool={}", self.max_pool_size));
        }
        if self.poll != Duration::from_secs(2) {
            v.push(format!("poll={}ms", self.poll.as_secs_f64() * 1000.0));
        }
        if let Some(d) = self.batch_delay {
            v.push(format!("batch={}ms", d.as_secs_f64() * 1000.0));
        }
        if !self.record {
            v.push("norecord".into());
        }
        v.join("+")
    }

    fn records_completions(&self) -> bool {
        self.record
    }

    fn server(&self) -> &dyn Server {
        &self.base.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        self.base
            .setup(reset, "graphile_jobs, its queues, tasks and qbench's record")
            .await
    }

    async fn reset(&self) -> Result<()> {
        self.base.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.base.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        let c = self.base.pooled().await?;
        let name = if self.record { "state" } else { "state_unrecorded" };
        let r = c.query_one(SQL.get(name), &[]).await?;
        let (pending, in_flight, completed) = (pg::count(&r, 0)?, pg::count(&r, 1)?, pg::count(&r, 2)?);
        Ok(QueueState {
            pending,
            in_flight,
            completed,
            produced: pending + in_flight + completed,
        })
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        let client = pg::connect(self.base.pg()).await?;
        let one = self.base.prepare(&client, "enqueue_one", &[]).await?;
        let many = self.base.prepare(&client, "enqueue", &[]).await?;
        let retry = self.base.prepare(&client, "enqueue_retry", &[]).await?;
        Ok(Box::new(GraphileProducer {
            client,
            one,
            many,
            retry,
            counts: self.notify().then(|| self.base.server.wakeup_counts()),
            payload: self.payload.clone(),
            specs: String::new(),
        }))
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let task_ids = self.task_ids().await?;
        let (shared, completion) = self.worker_pool().await?;
        let inner = GraphileConsumer {
            shared,
            pool_id: self.pool_id.clone(),
            task_ids,
            completion,
        };
        let wait = match self.notify() {
            true => Wait::Notify {
                listener: self.base.listener(CHANNEL).await?,
                fallback: self.poll,
            },
            false => Wait::Poll(self.poll),
        };
        Ok(Box::new(Waiting::new(inner, wait)))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        Ok(Some(self.sweep_if_due().await?))
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.base.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.base.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let record = self.record.then_some("completed");
        self.base.left_then_completed(record).await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.base.horizon("claim_plan", &[]).await
    }
}

struct GraphileProducer {
    client: Client,
    /// add_job: one job.
    one: Statement,
    /// add_jobs: a batch.
    many: Statement,
    retry: Statement,
    /// Notify mode: the process's counts (add_job notifies whatever the workers do).
    counts: Option<Arc<pg::WakeupCounts>>,
    payload: Arc<str>,
    specs: String,
}

impl GraphileProducer {
    /// The batch as add_jobs' json array of job specs (the payload is ASCII letters).
    fn write_specs(&mut self, jobs: &[NewJob]) {
        self.specs.clear();
        self.specs.push('[');
        for (i, j) in jobs.iter().enumerate() {
            if i > 0 {
                self.specs.push(',');
            }
            self.specs.push_str("{\"identifier\":\"qbench\",\"payload\":");
            self.specs.push_str(&pg::message(j, &self.payload));
            self.specs.push('}');
        }
        self.specs.push(']');
    }
}

#[async_trait]
impl Producer for GraphileProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()> {
        // add_jobs is not idempotent; a retry adds only what is neither queued nor
        // recorded (see the SQL file).
        if retry {
            self.write_specs(jobs);
            self.client.query(&self.retry, &[&self.specs]).await?;
        } else if let [one] = jobs {
            let msg = pg::message(one, &self.payload);
            self.client.query(&self.one, &[&msg]).await?;
        } else {
            self.write_specs(jobs);
            self.client.query(&self.many, &[&self.specs]).await?;
        }
        if let Some(c) = &self.counts {
            c.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
            "enqueue_one",
            "enqueue",
            "enqueue_retry",
            "claim",
            "task_make",
            "task_ids",
            "complete",
            "complete_recorded",
            "complete_many",
            "complete_many_recorded",
            "reset_locked",
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

    /// The horizon scenario explains the statement workers run, with literals for its
    /// parameters.
    #[test]
    fn the_explained_claim_is_the_workers() {
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        let claim = squash(SQL.get("claim"))
            .replace("$1::text", "'pool-qbench'")
            .replace(
                "any($2::int[])",
                "any(ARRAY(SELECTidFROMgraphile_tasksWHEREidentifier='qbench'))",
            );
        assert_eq!(claim, squash(SQL.get("claim_plan")));
    }
}
