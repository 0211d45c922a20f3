//! skip_locked: one table with a status column (pending → processing → completed).
//! Claim = one round trip (MATERIALIZED CTE with FOR UPDATE SKIP LOCKED, then UPDATE …
//! RETURNING); completion = one UPDATE. A dead worker's lease is reaped after the
//! visibility timeout. SQL: schema/pg_queue_basic.sql.

use anyhow::Result;
use async_trait::async_trait;
use tokio_postgres::{Client, Row, Statement};

use super::pg::{Claims, PgBase};
use super::registry::{Design, DesignInfo};
use super::{
    Backend, Claimed, Consumer, Handle, Producer, Queue, QueueState, Server, Snapshot,
};
use crate::config::Config;
use crate::schema::{embedded, Embedded};

pub(crate) static SQL: Embedded = embedded!("pg_queue_basic.sql");

pub struct SkipLocked(PgBase);

#[async_trait]
impl Design for SkipLocked {
    const INFO: DesignInfo = DesignInfo::named("skip_locked", Backend::Postgresql).of_the_seed();

    async fn open(cfg: &Config) -> Result<SkipLocked> {
        Ok(SkipLocked(PgBase::open(cfg, &SQL, "queue_jobs", "^queue_jobs$").await?))
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

/// The fenced completion's arguments: ids and the attempts they were claimed at.
pub(crate) fn leases<'a>(jobs: impl Iterator<Item = &'a Claimed>) -> (Vec<i64>, Vec<i32>) {
    jobs.filter_map(|j| match j.handle {
        Handle::Row { id, .. } => Some((id, i32::try_from(j.attempts).unwrap_or(i32::MAX))),
        _ => None,
    })
    .unzip()
}

/// The seqs of `jobs` whose ids the fenced completion did not return: refused as late.
pub(crate) fn refused<'a>(
    jobs: impl Iterator<Item = &'a Claimed>,
    done: &[tokio_postgres::Row],
) -> Result<Vec<i64>> {
    let done: std::collections::HashSet<i64> =
        done.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    Ok(jobs
        .filter(|j| matches!(j.handle, Handle::Row { id, .. } if !done.contains(&id)))
        .map(|j| j.seq)
        .collect())
}

#[async_trait]
impl Queue for SkipLocked {
    fn server(&self) -> &dyn Server {
        &self.0.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        self.0.setup(reset, "queue_jobs").await
    }

    async fn reset(&self) -> Result<()> {
        self.0.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.0.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        self.0.lease_state().await
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        self.0.producer(None).await
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let client = super::pg::connect(self.0.pg()).await?;
        let claim = self.0.prepare(&client, "claim", &[]).await?;
        let complete = client.prepare(SQL.get("complete")).await?;
        self.0.consumer(LeaseConsumer {
            client,
            claim,
            complete,
        })
            .await
    }

    async fn reap(&self) -> Result<Option<u64>> {
        self.0.reap().await
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.0.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.0.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        self.0.lease_snapshot().await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.0.horizon("claim", &[]).await
    }
}

struct LeaseConsumer {
    client: Client,
    claim: Statement,
    complete: Statement,
}

#[async_trait]
impl Claims for LeaseConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let rows = self.client.query(&self.claim, &[]).await?;
        rows.iter().map(|r| leased_job(r, false)).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let (ids, attempts) = leases(jobs.iter());
        let done = self.client.query(&self.complete, &[&ids, &attempts]).await?;
        refused(jobs.iter(), &done)
    }
}
