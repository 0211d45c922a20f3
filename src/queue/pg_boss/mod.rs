//! pg_boss: the protocol of pg-boss 12.27.0 (github.com/timgit/pg-boss, tag 12.27.0 =
//! aa1ce16, schema version 37), in qbench's words; SQL: schema/pg_queue_pg_boss.sql. One
//! work process is one PgBoss instance with one queue, `qbench`, and one `work()` call
//! whose localConcurrency is qbench's workers:
//! - enqueue (src/manager.ts `send` / `insert` → src/plans.ts `insertJobs`): one INSERT per
//!   job (`send`) or per batch (`insert`), autocommit, an unnamed statement parsed and
//!   planned every time (node-postgres sends pg-boss's SQL unprepared);
//! - the worker loop (src/worker.ts `run`, src/manager.ts `work`): each worker fetches up
//!   to batchSize (qbench's dequeue_batch) jobs in one simple query
//!   (`fetchNextJob`), works them, completes them in one statement (`completeJobs`),
//!   awaited, then sleeps until pollingInterval (2 s) after its fetch began, jobs or
//!   not (`consumer`);
//! - wakeup: none by default; with `--wakeup notify` (useListenNotify and the queue's
//!   `notify`), the insert NOTIFYs the queue's name, every worker of the queue wakes, and
//!   the poll relaxes to 30 s;
//! - the instance's background loops (src/boss.ts supervise, src/timekeeper.ts,
//!   src/navigator.ts, src/bam.ts), run by the reaper (`maintenance`): the monitor's
//!   counts and expiry every minute (a dead worker's job comes back when its
//!   expireInSeconds, 900 s, has passed), the deletion of completed jobs after 7 days
//!   once a day, the gates of the flow, cron and BAM timers, and the cron worker's fetch.
//!
//! A completed job stays in the table (state `completed`), so the queue records its
//! completions. A completion is fenced by state alone: a late one lands if the job is
//! active again under a re-run (unfenced), and is refused once the monitor retried it.
//! The process's workers and maintenance share a pool of `max` (10) connections in
//! pg-boss; here the maintenance has its own (the reaper's), the workers share `max`.

mod consumer;
mod maintenance;

use std::sync::{Arc, Weak};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::types::Type;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

use super::pg::{self, PgBase};
use super::registry::{Design, DesignInfo};
use super::{Backend, Consumer, NewJob, Producer, Queue, QueueState, Server, Snapshot};
use crate::config::{Config, OnOff, Wakeup};
use crate::schema::{embedded, Embedded};
use consumer::{PgBossConsumer, Shared};
use maintenance::Maintenance;

pub(crate) static SQL: Embedded = embedded!("pg_queue_pg_boss.sql");

/// The shared partition of every queue made without `partition: true`.
const COMMON: &str = "pgboss_job_common";
/// The table of its own that `partition: true` gives the queue `qbench`: pg-boss's name,
/// `j` and the hex SHA-224 of the queue's name (unprefixed: 57 bytes of PostgreSQL's 63).
const OWN: &str = "jde4122c14d69d475f9df6e8795f3d9df72a859e1dba7cfcbc787c3a0";
const TABLES: &str = "^(pgboss_(job_common|queue|version|schedule|bam|job_dependency)|jde4122c14d69d475f9df6e8795f3d9df72a859e1dba7cfcbc787c3a0)$";
const VOLATILE: &str =
    "^(pgboss_job_common|jde4122c14d69d475f9df6e8795f3d9df72a859e1dba7cfcbc787c3a0)$";
/// qbench's queue, and the Timekeeper's, which every instance creates and works.
const QUEUE: &str = "qbench";
const SEND_IT: &str = "__pgboss__send-it";
/// The channel pg-boss's default schema `pgboss` listens on: `pgboss_` and the first 24
/// hex digits of the schema name's SHA-224.
const CHANNEL: &str = "pgboss_454650302e472074f72063fd";
/// deleteAfterSeconds' default: 7 days.
const DEFAULT_DELETION_S: u32 = 604_800;
/// Completed rows kept this long or longer are the queue's record of its completions.
const RECORD_FOR_S: u32 = 86_400;

pub struct PgBoss {
    base: PgBase,
    payload: Arc<str>,
    /// The queue's table: the shared job_common, or its own with `partition`.
    table: &'static str,
    poll: Duration,
    burst: bool,
    batch: usize,
    max: u32,
    expire_s: u32,
    deletion_s: u32,
    partition: bool,
    /// The process's pool and stop signal, made for the first consumer, gone with the last.
    process: tokio::sync::Mutex<Weak<Shared>>,
    live: std::sync::Mutex<Weak<Shared>>,
    maintenance: tokio::sync::Mutex<Maintenance>,
}

#[async_trait]
impl Design for PgBoss {
    const INFO: DesignInfo =
        DesignInfo::named("pg_boss", Backend::Postgresql).unfenced().modelling("pg-boss 12.27.0");

    async fn open(cfg: &Config) -> Result<PgBoss> {
        let b = &cfg.benchmark;
        let base = PgBase::open(cfg, &SQL, COMMON, TABLES)
            .await?
            .volatile_tables(VOLATILE);
        let payload = std::str::from_utf8(&base.payload)
            .context("the job payload is not text")?
            .into();
        let partition = b.pg_boss_partition == OnOff::On;
        let table = if partition { OWN } else { COMMON };
        Ok(PgBoss {
            maintenance: tokio::sync::Mutex::new(Maintenance::new(
                table,
                Duration::from_secs_f64(b.pg_boss_monitor_interval_s),
                Duration::from_secs_f64(b.pg_boss_maintenance_interval_s),
            )),
            base,
            payload,
            table,
            poll: Duration::from_secs_f64(b.pg_boss_polling_interval_ms / 1000.0),
            burst: b.pg_boss_burst_when_batch_full == OnOff::On,
            batch: b.dequeue_batch as usize,
            max: b.pg_boss_max,
            expire_s: b.pg_boss_expire_s,
            deletion_s: b.pg_boss_deletion_s,
            partition,
            process: tokio::sync::Mutex::default(),
            live: std::sync::Mutex::default(),
        })
    }
}

impl PgBoss {
    fn notify(&self) -> bool {
        self.base.server.wakeup_counts().mode == Wakeup::Notify
    }

    /// `insertJobs` for the queue's table: `send`'s (the id returned) or `insert`'s.
    fn insert_sql(&self, send: bool) -> String {
        let plain = SQL.get("enqueue").replace("{table}", self.table);
        if self.notify() {
            return SQL
                .get("enqueue_notify")
                .replace("{insert}", &plain.replace("{returning}", ""))
                .replace("{compare}", if send { ">= 0" } else { "< 0" });
        }
        plain.replace("{returning}", if send { "RETURNING id" } else { "" })
    }

    /// The process's pool and statements, made by the first consumer.
    async fn shared(&self) -> Result<Arc<Shared>> {
        let mut held = self.process.lock().await;
        if let Some(s) = held.upgrade() {
            return Ok(s);
        }
        let s = Arc::new(Shared {
            pool: pg::pool(self.base.pg(), self.max as usize)?,
            pg: self.base.pg().clone(),
            fetch: fetch_sql(self.table, QUEUE, self.batch),
            complete: SQL.get("complete").replace("{table}", self.table),
            stop: CancellationToken::new(),
        });
        *held = Arc::downgrade(&s);
        *self.live.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(&s);
        Ok(s)
    }

    /// The queues this design needs, made (or their options updated) as createQueue
    /// does; with `reset`, a queue made with the other layout (`partition`) is made again.
    async fn make_queues(&self, c: &Client, reset: bool) -> Result<()> {
        let expire = i32::try_from(self.expire_s).unwrap_or(i32::MAX);
        let deletion = i32::try_from(self.deletion_s).unwrap_or(i32::MAX);
        let queues = [
            (QUEUE, self.partition, self.notify()),
            (SEND_IT, false, false),
        ];
        for (name, part, notify) in queues {
            c.execute(
                SQL.get("make_queue"),
                &[&name, &part, &expire, &deletion, &notify, &reset],
            )
            .await
            .with_context(|| format!("creating pg-boss's queue {name}"))?;
        }
        Ok(())
    }
}

/// `fetchNextJob`'s text for one queue: its table, name and batch size written in.
fn fetch_sql(table: &str, name: &str, limit: usize) -> String {
    SQL.get("fetch")
        .replace("{table}", table)
        .replace("{name}", name)
        .replace("{limit}", &limit.to_string())
}

/// The job id qbench passes for a seq: a v4-shaped uuid whose bits are a hash of the seq,
/// spread over the key space as gen_random_uuid's are (pg-boss's primary key takes its
/// inserts at random places), and the same on every retry of the seq's insert.
pub(crate) fn job_id(seq: i64) -> String {
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let hi = mix(seq as u64);
    let lo = mix(hi ^ 0x5851_f42d_4c95_7f2d);
    // Version 4, variant 10xx: the bits a random uuid fixes.
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

#[async_trait]
impl Queue for PgBoss {
    fn options(&self) -> String {
        format!(
            "polling_interval={}ms batch_size={} burst_when_batch_full={} partition={} max={} expire={}s deletion={}s",
            self.poll.as_secs_f64() * 1000.0,
            self.batch,
            if self.burst { "on" } else { "off" },
            if self.partition { "on" } else { "off" },
            self.max,
            self.expire_s,
            self.deletion_s,
        )
    }

    fn variant(&self) -> String {
        // The options that differ from pg-boss's defaults name the variant (not the
        // recovery timers: tests recover in seconds, benchmarks run the defaults).
        let mut v = vec![];
        if self.poll != Duration::from_secs(2) {
            v.push(format!("poll={}ms", self.poll.as_secs_f64() * 1000.0));
        }
        if self.batch != 1 {
            v.push(format!("batch={}", self.batch));
        }
        if self.burst {
            v.push("burst".into());
        }
        if self.partition {
            v.push("partition".into());
        }
        if self.max != 10 {
            v.push(format!("max={}", self.max));
        }
        // How long completed rows stay shapes the table (and the monitor's counts).
        if self.deletion_s != DEFAULT_DELETION_S {
            v.push(format!("deletion={}s", self.deletion_s));
        }
        v.join("+")
    }

    fn records_completions(&self) -> bool {
        // A completed job is kept deleteAfterSeconds: a record for the audit if that
        // outlasts any run (a day or more, or 0: forever).
        self.deletion_s == 0 || self.deletion_s >= RECORD_FOR_S
    }

    fn throughput_bound(&self, workers: usize) -> Option<f64> {
        // Each worker fetches at most one batch per polling interval, unless full batches
        // burst or notifications cut its sleeps short. A cycle whose work leaves 100 ms
        // or less of the interval skips the sleep, so a cycle lasts at least the interval
        // less 100 ms (none below: nothing bounds it).
        let cycle = self.poll.saturating_sub(consumer::SKIP_BELOW);
        (!self.burst && !self.notify() && !cycle.is_zero())
            .then(|| (workers * self.batch) as f64 / cycle.as_secs_f64())
    }

    fn stopping(&self) {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = live.upgrade() {
            s.stop.cancel();
        }
    }

    fn server(&self) -> &dyn Server {
        &self.base.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        let done = self
            .base
            .setup(reset, "pgboss_job, its queues and pg-boss's other tables")
            .await?;
        let c = self.base.pooled().await?;
        self.make_queues(&c, reset).await?;
        // A queue's own table is made by create_queue, after the tier's persistence ran.
        self.base.apply_persistence(&c).await?;
        Ok(done)
    }

    async fn reset(&self) -> Result<()> {
        self.base.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.base.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        self.base.lease_state().await
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        Ok(Box::new(PgBossProducer {
            client: pg::connect(self.base.pg()).await?,
            send: self.insert_sql(true),
            insert: self.insert_sql(false),
            counts: self.notify().then(|| self.base.server.wakeup_counts()),
            payload: self.payload.clone(),
            jobs: String::new(),
        }))
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let shared = self.shared().await?;
        let listener = match self.notify() {
            true => Some(self.base.listener(&format!("\"{CHANNEL}\"")).await?),
            false => None,
        };
        Ok(Box::new(PgBossConsumer::new(
            shared,
            listener,
            self.poll,
            self.batch,
            self.burst,
        )))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        let c = self.base.pooled().await?;
        let mut m = self.maintenance.lock().await;
        Ok(Some(m.tick(&c).await?))
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
        let sql = SQL
            .get("claim_plan")
            .replace("{table}", self.table)
            .replace("{batch}", &self.batch.to_string());
        let probe = pg::PgHorizon::open(self.base.pg(), TABLES, self.table, sql).await?;
        Ok(Box::new(probe))
    }
}

struct PgBossProducer {
    client: Client,
    /// `send`: one job, its id returned.
    send: String,
    /// `insert`: a batch, nothing returned.
    insert: String,
    /// Notify mode: the process's counts (every insert notifies).
    counts: Option<Arc<pg::WakeupCounts>>,
    payload: Arc<str>,
    jobs: String,
}

#[async_trait]
impl Producer for PgBossProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], _retry: bool) -> Result<()> {
        // The ids are the seqs' (see job_id): a retry inserts nothing twice, by the key.
        self.jobs.clear();
        self.jobs.push('[');
        for (i, j) in jobs.iter().enumerate() {
            if i > 0 {
                self.jobs.push(',');
            }
            self.jobs.push_str("{\"id\":\"");
            self.jobs.push_str(&job_id(j.seq));
            self.jobs.push_str("\",\"data\":");
            self.jobs.push_str(&pg::message(j, &self.payload));
            self.jobs.push('}');
        }
        self.jobs.push(']');
        let sql = if jobs.len() == 1 { &self.send } else { &self.insert };
        self.client
            .query_typed(sql, &[(&self.jobs, Type::TEXT)])
            .await?;
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
            "make_queue",
            "enqueue",
            "enqueue_notify",
            "fetch",
            "complete",
            "monitor_gate",
            "maintain_gate",
            "cache_stats",
            "fail_expired",
            "deletion",
            "cleanup_dependencies",
            "queues",
            "version_gate",
            "resolve_flows",
            "schedules",
            "bam_next",
            "clock",
            "claim_plan",
            "depth",
            "state",
            "left",
            "completed",
            "sabotage",
            "reset",
        ]);
    }

    /// The horizon scenario explains the statement workers run.
    #[test]
    fn the_explained_claim_is_the_workers() {
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        let fetch = squash(&fetch_sql(COMMON, QUEUE, 1));
        let plan = squash(&SQL.get("claim_plan").replace("{table}", COMMON).replace("{batch}", "1"));
        let common = |a: &str, b: &str| a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
        // The same statement up to what each returns.
        assert!(common(&fetch, &plan) >= plan.find("RETURNING").expect("returning"), "{fetch}\n{plan}");
    }

    /// Ids are v4-shaped, distinct, and the same for the same seq.
    #[test]
    fn job_ids_are_uuids_of_their_seq() {
        let a = job_id(1);
        assert_eq!(a, job_id(1));
        assert_ne!(a, job_id(2));
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "{a}");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        let ids: std::collections::HashSet<String> = (0..10_000).map(job_id).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
