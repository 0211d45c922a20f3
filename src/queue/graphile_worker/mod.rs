//! graphile_worker: the protocol of graphile-worker v0.17.3 (github.com/graphile/worker at
//! abfb4cf, the 0.17.x branch; its SQL and worker loop unchanged since the tag), in
//! qbench's words; SQL: schema/pg_queue_graphile_worker.sql. One work process is one
//! WorkerPool with no local queue, its concurrency qbench's workers:
//! - enqueue (src/helpers.ts makeAddJob / makeAddJobs): one `add_job` call per job, or one
//!   `add_jobs` per batch; the function makes the task exist, NOTIFYs `jobs:insert` with
//!   the batch's count and inserts (sql/000018.sql);
//! - claim (src/sql/getJobs.ts, from src/worker.ts): each worker claims one job per
//!   statement, locked by the pool's id, its attempts counted;
//! - completion (src/sql/completeJobs.ts): the job deleted by id, not awaited: the worker
//!   claims its next job while its completion is in flight (`hand_off`), on another
//!   connection; or, with completeJobBatchDelay ≥ 0, one DELETE per batch (`batcher`);
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

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::sync::OnceCell;
use tokio_postgres::{Client, Row, Statement};

use super::pg::{self, Claims, PgBase, Wait, Waiting};
use super::registry::{Design, DesignInfo};
use super::{
    Backend, Claimed, Consumer, HandOff, Handle, NewJob, Producer, Queue, QueueState, Server,
    Snapshot,
};
use crate::config::{Config, GraphileRecord, Wakeup};
use crate::schema::{embedded, Embedded};
use batcher::Batcher;

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
    stale_after_s: f64,
    reset_interval: (Duration, Duration),
    record: bool,
    /// The WorkerPool's id: `pool-` and 18 hex digits, what locked_by holds.
    pool_id: Arc<str>,
    /// getTaskDetails' cache: the task ids, read once per process.
    task_ids: OnceCell<Arc<Vec<i32>>>,
    batcher: OnceCell<Arc<Batcher>>,
    /// When this process sweeps stale locks next.
    next_sweep: Mutex<Instant>,
}

/// A number in [0, 1) for the sweep's random intervals and the pool id: a xorshift
/// seeded by the clock (spreads timers, as Math.random does there; not a statistic).
fn random_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
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
        let first = max.min(Duration::from_secs(60)).mul_f64(random_fraction());
        let bits = (random_fraction() * (1u64 << 52) as f64) as u64;
        let pool_id = format!("pool-{:018x}", (bits << 20) ^ u64::from(std::process::id()));
        Ok(GraphileWorker {
            base,
            payload,
            poll: Duration::from_secs_f64(b.graphile_poll_interval_ms / 1000.0),
            batch_delay: (b.graphile_complete_job_batch_delay_ms >= 0.0)
                .then(|| Duration::from_secs_f64(b.graphile_complete_job_batch_delay_ms / 1000.0)),
            stale_after_s: b.graphile_stale_lock_after_s,
            reset_interval: (min, max),
            record: b.graphile_completion_record == GraphileRecord::On,
            pool_id: pool_id.into(),
            task_ids: OnceCell::new(),
            batcher: OnceCell::new(),
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

    /// How this worker's completions are written: its own DELETE, or the batcher's.
    async fn completion(&self, client: &Arc<Client>) -> Result<Completion> {
        let (one, many) = match self.record {
            true => ("complete_recorded", "complete_many_recorded"),
            false => ("complete", "complete_many"),
        };
        let Some(delay) = self.batch_delay else {
            let st = self.base.prepare(client, one, &[]).await?;
            return Ok(Completion::Own {
                client: client.clone(),
                st,
            });
        };
        let b = self.batcher.get_or_init(|| async {
            Batcher::new(delay, SQL.get(many), self.base.pool(), self.base.pg().clone())
        });
        Ok(Completion::Batched(b.await.clone()))
    }

    /// Sweeps stale locks when this process's random interval has passed.
    async fn sweep_if_due(&self) -> Result<u64> {
        {
            let next = self.next_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if Instant::now() < *next {
                return Ok(0);
            }
        }
        let c = self.base.pooled().await?;
        let st = c.prepare_cached(SQL.get("reset_locked")).await?;
        let row = c.query_one(&st, &[&self.stale_after_s]).await?;
        let (min, max) = self.reset_interval;
        let every = min + (max - min).mul_f64(random_fraction());
        *self.next_sweep.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now() + every;
        pg::count(&row, 0)
    }
}

#[async_trait]
impl Queue for GraphileWorker {
    fn options(&self) -> String {
        format!(
            "poll_interval={}ms complete_batch_delay={} stale_lock_after={}s reset_locked_interval={}-{}s record={}",
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
        // The options that differ from graphile-worker's defaults name the variant
        // (the lock sweep's too: tests recover in seconds, benchmarks run the defaults).
        let mut v = vec![];
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
        let client = pg::connect(self.base.pg()).await?;
        let claim = self.base.prepare(&client, "claim", &[]).await?;
        // graphile-worker completes on whichever pool connection is free while the
        // worker claims on another: a second connection per worker.
        let done = Arc::new(pg::connect(self.base.pg()).await?);
        let completion = self.completion(&done).await?;
        let inner = GraphileConsumer {
            client,
            claim,
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

/// Where a worker's completions go.
enum Completion {
    /// Its own DELETE per job on its completion connection.
    Own { client: Arc<Client>, st: Statement },
    Batched(Arc<Batcher>),
}

struct GraphileConsumer {
    client: Client,
    claim: Statement,
    pool_id: Arc<str>,
    task_ids: Arc<Vec<i32>>,
    completion: Completion,
}

/// A claimed row as a job.
fn claimed(row: &Row) -> Result<Claimed> {
    let id: i64 = row.try_get("id")?;
    let attempts: i16 = row.try_get("attempts")?;
    let msg: serde_json::Value = row.try_get("payload")?;
    let (seq, enqueued_at_us) = pg::message_fields(&msg, "graphile-worker payload", id)?;
    Ok(Claimed {
        seq,
        enqueued_at_us,
        attempts: u32::try_from(attempts).unwrap_or(0),
        payload_len: msg["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id, part: 0 },
    })
}

/// The jobs' (id, seq).
fn ids(jobs: &[Claimed]) -> Result<Vec<(i64, i64)>> {
    jobs.iter()
        .map(|j| match j.handle {
            Handle::Row { id, .. } => Ok((id, j.seq)),
            _ => Err(anyhow::anyhow!("job {} was not claimed by graphile_worker", j.seq)),
        })
        .collect()
}

/// One job's DELETE: its seq back if another completion deleted it first.
async fn delete_one(client: &Client, st: &Statement, id: i64, seq: i64) -> Result<Vec<i64>> {
    let rows = client
        .query(st, &[&id])
        .await
        .context("graphile-worker's completion")?;
    Ok(if rows.is_empty() { vec![seq] } else { vec![] })
}

#[async_trait]
impl Claims for GraphileConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let pool_id: &str = &self.pool_id;
        let ids: &[i32] = &self.task_ids;
        let rows = self.client.query(&self.claim, &[&pool_id, &ids]).await?;
        rows.iter().map(claimed).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        self.hand_off(jobs).await?.outcome().await
    }

    async fn hand_off(&mut self, jobs: Vec<Claimed>) -> Result<HandOff> {
        let ids = ids(&jobs)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        match &self.completion {
            Completion::Own { client, st } => {
                // Not awaited by the worker, as graphile-worker's completeJob is not.
                let (client, st) = (client.clone(), st.clone());
                tokio::spawn(async move {
                    let mut refused = vec![];
                    for (id, seq) in ids {
                        match delete_one(&client, &st, id, seq).await {
                            Ok(r) => refused.extend(r),
                            Err(e) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                        }
                    }
                    let _ = tx.send(Ok(refused));
                });
            }
            Completion::Batched(b) => {
                let waits: Vec<_> = ids.into_iter().map(|(id, seq)| b.add(id, seq)).collect();
                tokio::spawn(async move {
                    let mut refused = vec![];
                    for w in waits {
                        match w.await {
                            Ok(Ok(r)) => refused.extend(r),
                            Ok(Err(e)) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                            Err(_) => {
                                let _ = tx.send(Err(anyhow::anyhow!(
                                    "graphile-worker's batched completion stopped before writing"
                                )));
                                return;
                            }
                        }
                    }
                    let _ = tx.send(Ok(refused));
                });
            }
        }
        Ok(HandOff::Later(rx))
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

    #[test]
    fn random_fractions_are_fractions() {
        for _ in 0..1000 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f), "{f}");
        }
    }
}
