//! partitioned: the skip_locked design over N list partitions of queue_jobs_part.
//! The producer puts job seq in partition seq % N. Worker i claims from its home child
//! table (i mod N) directly and steals through the parent when home is empty, so more
//! workers than partitions leave none starved. SQL: schema/pg_queue_partitioned.sql.

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::{Client, Statement};

use super::pg::{self, PgProducer};
use super::skip_locked::leased_job;
use super::{Claimed, Consumer, Handle, Producer, Queue, QueueKind, QueueState, ServerInfo};
use crate::config::{Config, Postgres};
use crate::error::usage;
use crate::schema::PARTITIONED as SQL;

pub struct Partitioned {
    pg: Postgres,
    pool: Pool,
    payload: Arc<[u8]>,
    partitions: u32,
    visibility_timeout_s: f64,
    batch: usize,
}

impl Partitioned {
    pub async fn open(cfg: &Config) -> Result<Partitioned> {
        let pool = pg::open_pool(&cfg.postgres).await?;
        Ok(Partitioned {
            pg: cfg.postgres.clone(),
            pool,
            payload: super::payload(cfg.benchmark.job_size_bytes),
            partitions: cfg.benchmark.partitions,
            visibility_timeout_s: cfg.benchmark.visibility_timeout_s,
            batch: cfg.benchmark.dequeue_batch as usize,
        })
    }

    async fn apply_ddl(&self, c: &Client) -> Result<()> {
        // `partitions` is a validated integer (1-256), so formatting it into SQL is safe.
        c.batch_execute(&format!(
            "SET qbench.partitions = '{}'; {}",
            self.partitions, SQL.ddl
        ))
        .await
        .with_context(|| format!("applying {}", SQL.file))
    }
}

#[async_trait]
impl Queue for Partitioned {
    fn kind(&self) -> QueueKind {
        QueueKind::Partitioned
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        let c = pg::pooled(&self.pool, &self.pg).await?;
        let existing = pg::query_i64(&c, SQL.get("partition_count")).await?;
        let want = i64::from(self.partitions);
        if existing != 0 && existing != want {
            if !reset {
                return Err(usage(format!(
                    "queue_jobs_part has {existing} partitions but benchmark.partitions = {want}; \
                     run `qbench setup-schema --queue partitioned --reset` to recreate it (this empties it)"
                )));
            }
            c.batch_execute(SQL.get("drop")).await?;
        }
        self.apply_ddl(&c).await?;
        if reset {
            pg::truncate(&c, SQL.get("reset")).await?;
            return Ok(format!(
                "queue_jobs_part ready ({want} partitions), emptied"
            ));
        }
        Ok(format!("queue_jobs_part ready ({want} partitions)"))
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
        let p = PgProducer::new(
            &self.pg,
            SQL.get("enqueue"),
            self.payload.clone(),
            Some(i64::from(self.partitions)),
        )
        .await?;
        Ok(Box::new(p))
    }

    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>> {
        let home = worker % self.partitions as usize;
        let client = pg::connect(&self.pg).await?;
        let fill =
            |name| crate::schema::fill(SQL.get(name), &[("batch", self.batch), ("part", home)]);
        let claim_home = client.prepare(&fill("claim_home")).await.with_context(|| {
            format!("preparing the claim on partition {home} (did setup-schema run?)")
        })?;
        let claim_any = client.prepare(&fill("claim_any")).await?;
        let complete = client.prepare(SQL.get("complete")).await?;
        Ok(Box::new(PartConsumer {
            client,
            claim_home,
            claim_any,
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

struct PartConsumer {
    client: Client,
    claim_home: Statement,
    claim_any: Statement,
    complete: Statement,
}

#[async_trait]
impl Consumer for PartConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let mut rows = self.client.query(&self.claim_home, &[]).await?;
        if rows.is_empty() {
            rows = self.client.query(&self.claim_any, &[]).await?;
        }
        rows.iter().map(|r| leased_job(r, true)).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<()> {
        // One UPDATE per partition in the batch; with dequeue_batch 1 that is one.
        let mut by_part: Vec<(i16, Vec<i64>)> = Vec::new();
        for j in &jobs {
            if let Handle::Row { id, part } = j.handle {
                match by_part.iter_mut().find(|(p, _)| *p == part) {
                    Some((_, ids)) => ids.push(id),
                    None => by_part.push((part, vec![id])),
                }
            }
        }
        for (part, ids) in &by_part {
            self.client.execute(&self.complete, &[part, ids]).await?;
        }
        Ok(())
    }
}
