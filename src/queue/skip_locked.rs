//! skip_locked: one table with a status column (pending → processing → completed).
//! Claim = one round trip (MATERIALIZED CTE with FOR UPDATE SKIP LOCKED, then UPDATE …
//! RETURNING); completion = one UPDATE. A dead worker's lease is reaped after the
//! visibility timeout. SQL: schema/pg_queue_basic.sql.

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::{Client, Row, Statement};

use super::pg::{self, PgProducer};
use super::{Claimed, Consumer, Handle, Producer, Queue, QueueKind, QueueState, ServerInfo};
use crate::config::{Config, Postgres};
use crate::schema::SKIP_LOCKED as SQL;

pub struct SkipLocked {
    pg: Postgres,
    pool: Pool,
    payload: Arc<[u8]>,
    visibility_timeout_s: f64,
    batch: usize,
}

impl SkipLocked {
    pub async fn open(cfg: &Config) -> Result<SkipLocked> {
        let pool = pg::open_pool(&cfg.postgres).await?;
        Ok(SkipLocked {
            pg: cfg.postgres.clone(),
            pool,
            payload: super::payload(cfg.benchmark.job_size_bytes),
            visibility_timeout_s: cfg.benchmark.visibility_timeout_s,
            batch: cfg.benchmark.dequeue_batch as usize,
        })
    }
}

/// A leased row: (id, seq, enqueued_at_us, attempts, payload), plus part when `part_col`.
pub(crate) fn leased_job(row: &Row, part_col: bool) -> Result<Claimed> {
    let o = usize::from(part_col);
    let id: i64 = row.try_get(0)?;
    let part: i16 = if part_col { row.try_get(1)? } else { 0 };
    let payload: &[u8] = row.try_get(4 + o)?;
    Ok(Claimed {
        seq: row.try_get(1 + o)?,
        enqueued_at_us: row.try_get(2 + o)?,
        attempts: u32::try_from(row.try_get::<_, i32>(3 + o)?).unwrap_or(0),
        payload_len: payload.len(),
        handle: Handle::Row { id, part },
    })
}

pub(crate) fn row_ids(jobs: &[Claimed]) -> Vec<i64> {
    jobs.iter()
        .filter_map(|j| match j.handle {
            Handle::Row { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

#[async_trait]
impl Queue for SkipLocked {
    fn kind(&self) -> QueueKind {
        QueueKind::SkipLocked
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        c.batch_execute(SQL.ddl)
            .await
            .with_context(|| format!("applying {}", SQL.file))?;
        if reset {
            pg::truncate(&c, SQL.get("reset")).await?;
            return Ok("queue_jobs ready, emptied".into());
        }
        Ok("queue_jobs ready".into())
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
        let c = pg::pooled(&self.pool, &self.pg).await?;
        let r = c.query_one(SQL.get("state"), &[]).await?;
        Ok(QueueState {
            pending: pg::count(&r, 0)?,
            in_flight: pg::count(&r, 1)?,
            completed: pg::count(&r, 2)?,
            produced: pg::count(&r, 3)?,
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
        let complete = client.prepare(SQL.get("complete")).await?;
        Ok(Box::new(LeaseConsumer {
            client,
            claim,
            complete,
        }))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        let st = c.prepare_cached(SQL.get("reap")).await?;
        Ok(Some(c.execute(&st, &[&self.visibility_timeout_s]).await?))
    }

    async fn server_info(&self) -> Result<ServerInfo> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        pg::server_info(&c).await
    }
}

struct LeaseConsumer {
    client: Client,
    claim: Statement,
    complete: Statement,
}

#[async_trait]
impl Consumer for LeaseConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let rows = self.client.query(&self.claim, &[]).await?;
        rows.iter().map(|r| leased_job(r, false)).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<()> {
        let ids = row_ids(&jobs);
        self.client.execute(&self.complete, &[&ids]).await?;
        Ok(())
    }
}
