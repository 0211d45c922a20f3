//! What every PostgreSQL design holds: its server, its SQL file and payload; setup (the
//! durability tier's table persistence included), counting, the sequence counter, the
//! lease designs' snapshot, state and reaper, and its workers' wait for work.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, Statement};

use super::server::{set_persistence, PgServer};
use super::wakeup::{self, Claims, Listener, Wait, Waiting, WakeupCounts};
use super::{count, each_row, pooled, truncate};
use crate::config::{Config, Postgres, Wakeup};
use crate::format::durability::Tier;
use crate::queue::{Consumer, Producer};
use crate::schema::SqlFile;

/// SQL: schema/pg_seq.sql.
static SEQ: crate::schema::Embedded = crate::schema::embedded!("pg_seq.sql");

/// The sequence counter every design's producers take blocks from (idempotent).
pub async fn seq_ddl(c: &Client) -> Result<()> {
    c.batch_execute(SEQ.ddl)
        .await
        .with_context(|| format!("applying {}", SEQ.file))
}

/// What every PostgreSQL design holds: its server, its SQL file, and the job payload.
pub struct PgBase {
    pub server: PgServer,
    pub sql: &'static SqlFile,
    /// The design's queue table: the name its sequence numbers are counted under.
    pub table: &'static str,
    pub payload: Arc<[u8]>,
    pub batch: usize,
    pub visibility_timeout_s: f64,
    pub poll_interval: Duration,
    /// The tier asked for: the persistence setup gives the design's tables.
    tier: Tier,
    /// Started by the first consumer in notify mode, shared by all of this process's.
    listener: OnceCell<Arc<Listener>>,
}

impl PgBase {
    /// Connects (checked at once, so an unreachable server fails with one clear line).
    /// `table` is the design's queue table (its sequence numbers are counted under that
    /// name); `tables` a regular expression naming all its tables, for its statistics.
    pub async fn open(
        cfg: &Config,
        sql: &'static SqlFile,
        table: &'static str,
        tables: &'static str,
    ) -> Result<PgBase> {
        let b = &cfg.benchmark;
        let wakeup = b.wakeup.single()?;
        let tier = b.durability.postgres();
        // The tier's commit setting for every qbench session; the sequence counter's
        // allocations stay synchronous whatever it is.
        let pg = Postgres {
            synchronous_commit: Some(tier == Tier::Strict),
            ..cfg.postgres.clone()
        };
        let pool = super::open_pool(&pg).await?;
        Ok(PgBase {
            server: PgServer {
                pg,
                pool,
                tables,
                volatile: tables,
                wakeup: Arc::new(WakeupCounts::new(wakeup)),
            },
            sql,
            table,
            payload: crate::queue::payload(b.job_size_bytes),
            batch: b.dequeue_batch as usize,
            visibility_timeout_s: b.visibility_timeout_s,
            poll_interval: Duration::from_secs_f64(b.poll_interval_ms / 1000.0),
            tier,
            listener: OnceCell::new(),
        })
    }

    /// Only the tables `regex` names become UNLOGGED in the volatile tier (a library
    /// that keeps some tables logged whatever the queue's persistence).
    pub fn volatile_tables(mut self, regex: &'static str) -> PgBase {
        self.server.volatile = regex;
        self
    }

    pub fn pg(&self) -> &Postgres {
        &self.server.pg
    }

    /// The horizon scenario's probe, explaining the named claim statement.
    pub async fn horizon(
        &self,
        claim: &str,
        extra: &[(&str, usize)],
    ) -> Result<Box<dyn crate::queue::Horizon>> {
        let mut values = vec![("batch", self.batch)];
        values.extend_from_slice(extra);
        let sql = crate::schema::fill(self.sql.get(claim), &values);
        let probe =
            super::PgHorizon::open(&self.server.pg, self.server.tables, self.table, sql).await?;
        Ok(Box::new(probe))
    }

    /// A pooled connection for setup, counting and the reaper.
    pub async fn pooled(&self) -> Result<deadpool_postgres::Object> {
        pooled(&self.server.pool, &self.server.pg).await
    }

    /// Applies the sequence counter's and the file's DDL (idempotent), then empties the
    /// tables if `reset` (the counter is kept: numbers stay unique across runs).
    pub async fn setup(&self, reset: bool, what: &str) -> Result<String> {
        let c = self.pooled().await?;
        seq_ddl(&c).await?;
        c.batch_execute(self.sql.ddl)
            .await
            .with_context(|| format!("applying {}", self.sql.file))?;
        self.apply_persistence(&c).await?;
        if reset {
            truncate(&c, self.sql.get("reset")).await?;
            return Ok(format!("{what} ready, emptied"));
        }
        Ok(format!("{what} ready"))
    }

    /// Gives the design's tables the persistence of the tier asked for (after its DDL).
    pub async fn apply_persistence(&self, c: &Client) -> Result<()> {
        set_persistence(c, self.server.volatile, self.tier).await
    }

    pub async fn reset(&self) -> Result<()> {
        let c = self.pooled().await?;
        truncate(&c, self.sql.get("reset")).await
    }

    /// A named count statement of the file.
    pub async fn count(&self, name: &str) -> Result<u64> {
        let c = self.pooled().await?;
        let st = c.prepare_cached(self.sql.get(name)).await?;
        count(&c.query_one(&st, &[]).await?, 0)
    }

    /// A block of `n` sequence numbers; returns the first.
    pub async fn allocate(&self, n: u64) -> Result<i64> {
        let mut c = self.pooled().await?;
        let st = c.prepare_cached(SEQ.get("allocate")).await?;
        let n = i64::try_from(n).context("a block of sequence numbers beyond i64")?;
        // Durable whatever the session's tier: a crash that rolled the counter back would
        // hand a number out twice, and a reused number hides a lost job behind a new one.
        let tx = c.transaction().await?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .await?;
        let row = tx
            .query_one(&st, &[&self.table, &n])
            .await
            .context("taking a block of sequence numbers (did setup-schema run?)")?;
        tx.commit().await?;
        Ok(row.try_get(0)?)
    }

    /// The file's `sabotage` statement: one waiting job removed behind qbench's back.
    pub async fn sabotage(&self) -> Result<Option<i64>> {
        let c = self.pooled().await?;
        let row = c.query_opt(self.sql.get("sabotage"), &[]).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    /// The lease designs' snapshot: every row's seq, enqueue time and whether completed.
    pub async fn lease_snapshot(&self) -> Result<crate::queue::Snapshot> {
        let c = self.pooled().await?;
        let mut snap = crate::queue::Snapshot::default();
        each_row(&c, self.sql.get("snapshot"), |r| {
            let seq: i64 = r.try_get(0)?;
            if r.try_get::<_, bool>(2)? {
                snap.completed.push(seq);
            } else {
                snap.left.push((seq, r.try_get(1)?));
            }
            Ok(())
        })
        .await?;
        Ok(snap)
    }

    /// The snapshot of a design that moves a completed job to another table: the file's
    /// `left` (seq, enqueued_at_us), then its `completed` (seq). Left first: a job moving
    /// between the two reads is seen in the second, never in neither. Without a record of
    /// completions (`completed` is None) the snapshot says so.
    pub async fn left_then_completed(
        &self,
        completed: Option<&str>,
    ) -> Result<crate::queue::Snapshot> {
        let c = self.pooled().await?;
        let mut snap = crate::queue::Snapshot::default();
        each_row(&c, self.sql.get("left"), |r| {
            snap.left.push((r.try_get(0)?, r.try_get(1)?));
            Ok(())
        })
        .await?;
        let Some(completed) = completed else {
            snap.completions_unrecorded = true;
            return Ok(snap);
        };
        each_row(&c, self.sql.get(completed), |r| {
            snap.completed.push(r.try_get(0)?);
            Ok(())
        })
        .await?;
        Ok(snap)
    }

    /// The lease designs' `state` statement: pending, processing, completed, all.
    pub async fn lease_state(&self) -> Result<crate::queue::QueueState> {
        let c = self.pooled().await?;
        let r = c.query_one(self.sql.get("state"), &[]).await?;
        Ok(crate::queue::QueueState {
            pending: count(&r, 0)?,
            in_flight: count(&r, 1)?,
            completed: count(&r, 2)?,
            produced: count(&r, 3)?,
        })
    }

    /// The lease designs' reaper: leases older than the visibility timeout go back.
    pub async fn reap(&self) -> Result<Option<u64>> {
        let c = self.pooled().await?;
        let st = c.prepare_cached(self.sql.get("reap")).await?;
        Ok(Some(c.execute(&st, &[&self.visibility_timeout_s]).await?))
    }

    /// A producer on a connection of its own; `partitions` goes to the INSERT as `$4`.
    pub async fn producer(&self, partitions: Option<i64>) -> Result<Box<dyn Producer>> {
        let p = super::PgProducer::new(self, partitions).await?;
        Ok(Box::new(p))
    }

    /// A design's consumer, with the configured wait for work.
    pub async fn consumer(&self, inner: impl Claims) -> Result<Box<dyn Consumer>> {
        let wait = match self.server.wakeup.mode {
            Wakeup::Poll => Wait::Poll(self.poll_interval),
            Wakeup::Notify => Wait::Notify {
                listener: self.listener(&wakeup::channel(self.table)).await?,
                fallback: self.poll_interval * 10,
            },
        };
        Ok(Box::new(Waiting::new(inner, wait)))
    }

    /// The process's listener on `channel` (a design listens on one), started by the
    /// first consumer that asks.
    pub async fn listener(&self, channel: &str) -> Result<Arc<Listener>> {
        let l = self
            .listener
            .get_or_try_init(|| async {
                let l = Listener::start(self.pg(), channel.into(), self.server.wakeup.clone());
                anyhow::Ok(Arc::new(l.await?))
            })
            .await?;
        Ok(l.clone())
    }

    /// The pool of setup and counting connections (a background task's own handle).
    pub fn pool(&self) -> deadpool_postgres::Pool {
        self.server.pool.clone()
    }

    /// A named statement with `{batch}` (and `extra`) filled in, prepared on `client`.
    pub async fn prepare(
        &self,
        client: &Client,
        name: &str,
        extra: &[(&str, usize)],
    ) -> Result<Statement> {
        let mut values = vec![("batch", self.batch)];
        values.extend_from_slice(extra);
        client
            .prepare(&crate::schema::fill(self.sql.get(name), &values))
            .await
            .with_context(|| {
                format!(
                    "preparing {name} of {} (did setup-schema run?)",
                    self.sql.file
                )
            })
    }
}
