//! partitioned: the skip_locked design over N list partitions of queue_jobs_part.
//! The producer puts job seq in partition seq % N. Worker i claims from its home child
//! table (i mod N) directly and steals through the parent when home is empty, so more
//! workers than partitions leave none starved. SQL: schema/pg_queue_partitioned.sql.

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::{Client, Statement};

use super::pg::{self, Claims, PgBase};
use super::registry::{Design, DesignInfo};
use super::skip_locked::{leased_job, leases, refused};
use super::{
    Backend, Claimed, Consumer, Handle, Producer, Queue, QueueState, Server, Snapshot,
};
use crate::config::Config;
use crate::error::usage;
use crate::schema::{embedded, Embedded};

pub(crate) static SQL: Embedded = embedded!("pg_queue_partitioned.sql");

pub struct Partitioned {
    base: PgBase,
    partitions: u32,
}

#[async_trait]
impl Design for Partitioned {
    const INFO: DesignInfo = DesignInfo::named("partitioned", Backend::Postgresql).of_the_seed();

    async fn open(cfg: &Config) -> Result<Partitioned> {
        Ok(Partitioned {
            base: PgBase::open(cfg, &SQL, "queue_jobs_part", "^queue_jobs_part(_[0-9]+)?$").await?,
            partitions: cfg.benchmark.partitions,
        })
    }
}

impl Partitioned {
    async fn apply_ddl(&self, c: &Client) -> Result<()> {
        pg::seq_ddl(c).await?;
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
    fn options(&self) -> String {
        format!("partitions={}", self.partitions)
    }

    fn server(&self) -> &dyn Server {
        &self.base.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        let c = self.base.pooled().await?;
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
        self.base.apply_persistence(&c).await?;
        if reset {
            pg::truncate(&c, SQL.get("reset")).await?;
            return Ok(format!(
                "queue_jobs_part ready ({want} partitions), emptied"
            ));
        }
        Ok(format!("queue_jobs_part ready ({want} partitions)"))
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
        self.base.producer(Some(i64::from(self.partitions))).await
    }

    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>> {
        let home = worker % self.partitions as usize;
        let client = pg::connect(self.base.pg()).await?;
        let claim_home = self
            .base
            .prepare(&client, "claim_home", &[("part", home)])
            .await?;
        let claim_any = self.base.prepare(&client, "claim_any", &[]).await?;
        let complete = client.prepare(SQL.get("complete")).await?;
        self.base.consumer(PartConsumer {
            client,
            claim_home,
            claim_any,
            complete,
        })
            .await
    }

    async fn reap(&self) -> Result<Option<u64>> {
        self.base.reap().await
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.base.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.base.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        self.base.lease_snapshot().await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.base.horizon("claim_home", &[("part", 0)]).await
    }
}

struct PartConsumer {
    client: Client,
    claim_home: Statement,
    claim_any: Statement,
    complete: Statement,
}
#[async_trait]
impl Claims for PartConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let mut rows = self.client.query(&self.claim_home, &[]).await?;
        if rows.is_empty() {
            rows = self.client.query(&self.claim_any, &[]).await?;
        }
        rows.iter().map(|r| leased_job(r, true)).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        // One fenced UPDATE per partition in the batch; with dequeue_batch 1 that is one.
        let mut parts: Vec<i16> = jobs
            .iter()
            .filter_map(|j| match j.handle {
                Handle::Row { part, .. } => Some(part),
                _ => None,
            })
            .collect();
        parts.sort_unstable();
        parts.dedup();
        let mut late = vec![];
        for part in parts {
            let mine = || {
                jobs.iter()
                    .filter(move |j| matches!(j.handle, Handle::Row { part: p, .. } if p == part))
            };
            let (ids, attempts) = leases(mine());
            let done = self
                .client
                .query(&self.complete, &[&part, &ids, &attempts])
                .await?;
            late.extend(refused(mine(), &done)?);
        }
        Ok(late)
    }
}
