//! delete_returning: claiming deletes the row, inside a transaction that stays open while
//! the job is processed; completion archives the job and commits. A dead worker's
//! transaction rolls back, so its job is back at once: no lease, no reaper.
//! SQL: schema/pg_queue_delete_returning.sql.

use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::{Client, Statement};

use super::pg::{self, PgProducer};
use super::{Claimed, Consumer, Handle, Producer, Queue, QueueKind, QueueState, ServerInfo};
use crate::config::{Config, Postgres};
use crate::schema::DELETE_RETURNING as SQL;

pub struct DeleteReturning {
    pg: Postgres,
    pool: Pool,
    payload: Arc<[u8]>,
    batch: usize,
}

impl DeleteReturning {
    pub async fn open(cfg: &Config) -> Result<DeleteReturning> {
        let pool = pg::open_pool(&cfg.postgres).await?;
        Ok(DeleteReturning {
            pg: cfg.postgres.clone(),
            pool,
            payload: super::payload(cfg.benchmark.job_size_bytes),
            batch: cfg.benchmark.dequeue_batch as usize,
        })
    }
}

#[async_trait]
impl Queue for DeleteReturning {
    fn kind(&self) -> QueueKind {
        QueueKind::DeleteReturning
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        c.batch_execute(SQL.ddl)
            .await
            .with_context(|| format!("applying {}", SQL.file))?;
        if reset {
            pg::truncate(&c, SQL.get("reset")).await?;
            return Ok("queue_jobs_dr and queue_jobs_archive ready, emptied".into());
        }
        Ok("queue_jobs_dr and queue_jobs_archive ready".into())
    }

    async fn reset(&self) -> Result<()> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        pg::truncate(&c, SQL.get("reset")).await
    }

    async fn depth(&self) -> Result<u64> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        let st = c.prepare_cached(SQL.get("depth")).await?;
        pg::count(&c.query_one(&st, &[]).await?, 0)
    }

    async fn state(&self) -> Result<QueueState> {
        let mut c = pg::pooled(&self.pool, &self.pg).await?;
        let queued = pg::count(&c.query_one(SQL.get("depth"), &[]).await?, 0)?;
        // Counting unlocked rows takes row locks for an instant; roll them back at once.
        let tx = c.transaction().await?;
        let free = pg::count(&tx.query_one(SQL.get("unlocked"), &[]).await?, 0)?;
        tx.rollback().await?;
        let completed = pg::count(&c.query_one(SQL.get("archived"), &[]).await?, 0)?;
        let in_flight = queued.saturating_sub(free);
        Ok(QueueState {
            pending: queued - in_flight,
            in_flight,
            completed,
            produced: queued + completed,
        })
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        let p = PgProducer::new(&self.pg, SQL.get("enqueue"), self.payload.clone(), None).await?;
        Ok(Box::new(p))
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let client = pg::connect(&self.pg).await?;
        let claim = client
            .prepare(&crate::schema::fill(
                SQL.get("claim"),
                &[("batch", self.batch)],
            ))
            .await?;
        let archive = client.prepare(SQL.get("archive")).await?;
        Ok(Box::new(TxConsumer {
            client,
            claim,
            archive,
            in_tx: false,
        }))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    async fn server_info(&self) -> Result<ServerInfo> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        pg::server_info(&c).await
    }
}

struct TxConsumer {
    client: Client,
    claim: Statement,
    archive: Statement,
    in_tx: bool,
}

impl TxConsumer {
    async fn rollback_if_open(&mut self) -> Result<()> {
        if self.in_tx {
            self.client.batch_execute("ROLLBACK").await?;
            self.in_tx = false;
        }
        Ok(())
    }
}

#[async_trait]
impl Consumer for TxConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        self.rollback_if_open().await?;
        // BEGIN and the DELETE are pipelined: one round trip.
        let (begun, rows) = tokio::join!(
            self.client.batch_execute("BEGIN"),
            self.client.query(&self.claim, &[])
        );
        self.in_tx = begun.is_ok();
        begun.context("BEGIN before the claim")?;
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                self.rollback_if_open().await?;
                return Err(e.into());
            }
        };
        if rows.is_empty() {
            self.rollback_if_open().await?;
            return Ok(Vec::new());
        }
        rows.iter()
            .map(|r| {
                let payload: Vec<u8> = r.try_get(3)?;
                Ok(Claimed {
                    seq: r.try_get(1)?,
                    enqueued_at_us: r.try_get(2)?,
                    // A rolled-back delivery leaves no trace in the row, so redeliveries
                    // of this design cannot be counted from the database.
                    attempts: 1,
                    payload_len: payload.len(),
                    handle: Handle::Archive {
                        id: r.try_get(0)?,
                        payload,
                        created_at: r.try_get::<_, SystemTime>(4)?,
                    },
                })
            })
            .collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<()> {
        let n = jobs.len();
        let (mut ids, mut seqs, mut times, mut payloads, mut created) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for j in jobs {
            if let Handle::Archive {
                id,
                payload,
                created_at,
            } = j.handle
            {
                ids.push(id);
                seqs.push(j.seq);
                times.push(j.enqueued_at_us);
                payloads.push(payload);
                created.push(created_at);
            }
        }
        // Archive and COMMIT are pipelined: one round trip.
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&ids, &seqs, &times, &payloads, &created];
        let (archived, committed) = tokio::join!(
            self.client.execute(&self.archive, &params),
            self.client.batch_execute("COMMIT")
        );
        self.in_tx = false;
        archived.context("archiving the completed jobs")?;
        committed.context("COMMIT of the completed jobs")?;
        Ok(())
    }
}
