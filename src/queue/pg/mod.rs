//! PostgreSQL, the server: connections, errors that tell the user what to do, what the
//! manifest records of it, its processes and statistics; and what the PostgreSQL designs
//! share (a pool for setup and counting, the batch producer: one unnest INSERT).

mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::{Client, NoTls, Row, Statement};

use super::{Backend, NewJob, Producer, ServerInfo};
use crate::config::{Config, Postgres};
use crate::error::UsageError;
use crate::format::durability::Durability;
use crate::format::manifest::LocalInfo;
use crate::samplers::system::ServerProcs;
use crate::samplers::StatsSampler;
use crate::schema::SqlFile;

/// A connection of its own (workers and producers never share one).
/// Dropping the client closes it, which rolls back any open transaction on the server.
pub async fn connect(pg: &Postgres) -> Result<Client> {
    let (client, conn) = pg
        .client_config()
        .connect(NoTls)
        .await
        .map_err(|e| connect_error(&e, pg))?;
    tokio::spawn(async move {
        // The error, if any, surfaces on the client's next call.
        let _ = conn.await;
    });
    Ok(client)
}

/// A small shared pool for setup, sampling and the reaper.
pub fn pool(pg: &Postgres, max_size: usize) -> Result<Pool> {
    let mgr = Manager::from_config(
        pg.client_config(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(max_size)
        .build()
        .context("building the PostgreSQL connection pool")
}

/// The shared pool, checked at once so an unreachable server fails with one clear line.
pub async fn open_pool(pg: &Postgres) -> Result<Pool> {
    let pool = pool(pg, 4)?;
    drop(pooled(&pool, pg).await?);
    Ok(pool)
}

pub async fn pooled(pool: &Pool, pg: &Postgres) -> Result<Object> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => connect_error(&e, pg),
        other => anyhow::anyhow!("PostgreSQL pool for {}: {other}", pg.display()),
    })
}

/// Turns a failed connection into one line that says what to do (exit code 2).
pub fn connect_error(e: &tokio_postgres::Error, pg: &Postgres) -> anyhow::Error {
    let at = pg.display();
    let msg = if let Some(db) = e.as_db_error() {
        match db.code().code() {
            "28P01" | "28000" => format!(
                "PostgreSQL at {at} refused the login: {}; check postgres.password or PGPASSWORD",
                db.message()
            ),
            "3D000" => format!(
                "PostgreSQL at {at}: {}; create it (setup/install_pg.sh) or set postgres.database",
                db.message()
            ),
            _ => format!("PostgreSQL at {at}: {}", db.message()),
        }
    } else {
        let cause = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        format!(
            "cannot connect to PostgreSQL at {at}: {cause}; is the server running? \
             (qbench --local starts one; setup/install_pg.sh installs one)"
        )
    };
    anyhow::Error::new(UsageError::new(msg))
}

pub async fn query_i64(client: &Client, sql: &str) -> Result<i64> {
    let row = client.query_one(sql, &[]).await?;
    Ok(row.try_get::<_, i64>(0)?)
}

/// The PostgreSQL server behind a design.
pub struct PgServer {
    pg: Postgres,
    pool: Pool,
    /// A regular expression naming the design's tables, for its statistics.
    tables: &'static str,
}

#[async_trait]
impl super::Server for PgServer {
    fn backend(&self) -> Backend {
        Backend::Postgresql
    }

    async fn info(&self) -> Result<ServerInfo> {
        let c = pooled(&self.pool, &self.pg).await?;
        let row = c
            .query_one(
                "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit')",
                &[],
            )
            .await?;
        Ok(ServerInfo {
            version: row.try_get(0)?,
            durability: Some(Durability::Postgres {
                fsync: row.try_get(1)?,
                synchronous_commit: row.try_get(2)?,
            }),
        })
    }

    async fn now_us(&self) -> Result<i64> {
        let c = pooled(&self.pool, &self.pg).await?;
        let row = c
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint",
                &[],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    fn procs(&self, local: Option<&LocalInfo>) -> ServerProcs {
        match local {
            Some(l) => ServerProcs::family("postgres", Some(l.postgres_pid)),
            None if self.pg.is_local() => ServerProcs::family("postgres", None),
            None => ServerProcs::Remote,
        }
    }

    fn stats(&self) -> Box<dyn StatsSampler> {
        Box::new(stats::DbStats {
            pg: self.pg.clone(),
            tables: self.tables,
        })
    }
}

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
        let pool = open_pool(&cfg.postgres).await?;
        let b = &cfg.benchmark;
        Ok(PgBase {
            server: PgServer {
                pg: cfg.postgres.clone(),
                pool,
                tables,
            },
            sql,
            table,
            payload: super::payload(b.job_size_bytes),
            batch: b.dequeue_batch as usize,
            visibility_timeout_s: b.visibility_timeout_s,
            poll_interval: Duration::from_secs_f64(b.poll_interval_ms / 1000.0),
        })
    }

    pub fn pg(&self) -> &Postgres {
        &self.server.pg
    }

    /// A pooled connection for setup, counting and the reaper.
    pub async fn pooled(&self) -> Result<Object> {
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
        if reset {
            truncate(&c, self.sql.get("reset")).await?;
            return Ok(format!("{what} ready, emptied"));
        }
        Ok(format!("{what} ready"))
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

    /// The lease designs' snapshot: every row's seq, enqueue time and whether completed.
    pub async fn lease_snapshot(&self) -> Result<super::Snapshot> {
        let c = self.pooled().await?;
        let mut snap = super::Snapshot::default();
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

    /// The lease designs' `state` statement: pending, processing, completed, all.
    pub async fn lease_state(&self) -> Result<super::QueueState> {
        let c = self.pooled().await?;
        let r = c.query_one(self.sql.get("state"), &[]).await?;
        Ok(super::QueueState {
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
        let p = PgProducer::new(self, partitions).await?;
        Ok(Box::new(p))
    }

    /// A design's consumer, with PostgreSQL's wait for work.
    pub fn consumer(&self, inner: impl Claims) -> Box<dyn super::Consumer> {
        Box::new(Polled {
            inner,
            poll: self.poll_interval,
        })
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

/// What a PostgreSQL design's consumer does itself; [`PgBase::consumer`] adds how a
/// worker waits when the queue is empty, the same for every PostgreSQL design.
#[async_trait]
pub trait Claims: Send + 'static {
    async fn claim(&mut self) -> Result<Vec<super::Claimed>>;
    /// Returns the seqs the queue refused (their lease ran out).
    async fn complete(&mut self, jobs: Vec<super::Claimed>) -> Result<Vec<i64>>;
}

struct Polled<C> {
    inner: C,
    poll: Duration,
}

#[async_trait]
impl<C: Claims> super::Consumer for Polled<C> {
    async fn claim(&mut self) -> Result<Vec<super::Claimed>> {
        self.inner.claim().await
    }

    async fn complete(&mut self, jobs: Vec<super::Claimed>) -> Result<Vec<i64>> {
        self.inner.complete(jobs).await
    }

    /// Polls again after `poll_interval_ms`: a floor on pickup latency that Valkey's
    /// blocking read does not have.
    async fn idle(&mut self) {
        tokio::time::sleep(self.poll).await;
    }
}

/// Empties tables without waiting forever behind a stuck transaction.
pub async fn truncate(client: &Client, sql: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "SET lock_timeout = '15s'; {sql}; RESET lock_timeout"
        ))
        .await
        .context("emptying the queue (a transaction holding the table for 15 s blocks this)")
}

/// Converts a non-negative count column.
pub fn count(row: &Row, idx: usize) -> Result<u64> {
    let v: i64 = row.try_get(idx)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// The one producer of all three PostgreSQL designs: `INSERT … SELECT FROM unnest(…)`,
/// one round trip per batch, skipping a seq already there. `partitions` is passed as `$4`
/// to the partitioned design. A design whose queued rows leave the table when claimed
/// (delete_returning) has an `enqueue_retry` that also checks where they go.
pub struct PgProducer {
    client: Client,
    stmt: Statement,
    retry: Statement,
    /// Run after `retry` in its transaction, where the design has one.
    undo: Option<Statement>,
    payload: Arc<[u8]>,
    partitions: Option<i64>,
    seqs: Vec<i64>,
    times: Vec<i64>,
}

impl PgProducer {
    pub async fn new(base: &PgBase, partitions: Option<i64>) -> Result<PgProducer> {
        let client = connect(base.pg()).await?;
        let prepare = |name: &'static str| {
            let client = &client;
            async move {
                client
                    .prepare(base.sql.get(name))
                    .await
                    .context("preparing the enqueue statement (did setup-schema run?)")
            }
        };
        let stmt = prepare("enqueue").await?;
        let retry = match base.sql.try_get("enqueue_retry") {
            Some(_) => prepare("enqueue_retry").await?,
            None => stmt.clone(),
        };
        let undo = match base.sql.try_get("enqueue_retry_undo") {
            Some(_) => Some(prepare("enqueue_retry_undo").await?),
            None => None,
        };
        Ok(PgProducer {
            client,
            stmt,
            retry,
            undo,
            payload: base.payload.clone(),
            partitions,
            seqs: Vec::new(),
            times: Vec::new(),
        })
    }
}

#[async_trait]
impl Producer for PgProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()> {
        self.seqs.clear();
        self.times.clear();
        self.seqs.extend(jobs.iter().map(|j| j.seq));
        self.times.extend(jobs.iter().map(|j| j.enqueued_at_us));
        let payloads: Vec<&[u8]> = vec![&self.payload[..]; jobs.len()];
        if let (true, Some(undo)) = (retry, &self.undo) {
            let tx = self.client.transaction().await?;
            tx.execute(&self.retry, &[&self.seqs, &self.times, &payloads])
                .await?;
            tx.execute(undo, &[&self.seqs]).await?;
            tx.commit().await?;
            return Ok(());
        }
        let stmt = if retry { &self.retry } else { &self.stmt };
        match self.partitions {
            None => {
                self.client
                    .execute(stmt, &[&self.seqs, &self.times, &payloads])
                    .await?
            }
            Some(n) => {
                self.client
                    .execute(stmt, &[&self.seqs, &self.times, &payloads, &n])
                    .await?
            }
        };
        Ok(())
    }
}

/// Runs `sql` and hands each row to `f` as it arrives: a snapshot of millions of rows
/// keeps a number per job, not a row object per job.
pub async fn each_row(
    c: &tokio_postgres::Client,
    sql: &str,
    mut f: impl FnMut(&tokio_postgres::Row) -> Result<()>,
) -> Result<()> {
    use futures_util::TryStreamExt;
    let rows = c
        .query_raw(sql, std::iter::empty::<i64>())
        .await
        .context("reading the queue")?;
    futures_util::pin_mut!(rows);
    while let Some(r) = rows.try_next().await? {
        f(&r)?;
    }
    Ok(())
}
