//! delete_returning: claiming deletes the row, inside a transaction that stays open while
//! the job is processed; completion archives the job and commits. A dead worker's
//! transaction rolls back, so its job is back at once: no lease, no reaper.
//! SQL: schema/pg_queue_delete_returning.sql.

use std::time::SystemTime;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::{Client, Statement};

use super::pg::{self, Claims, PgBase};
use super::registry::{Design, DesignInfo, Recovery};
use super::{
    Backend, Claimed, Consumer, Handle, Producer, Queue, QueueState, Server, Snapshot,
};
use crate::config::Config;
use crate::schema::{embedded, Embedded};

pub(crate) static SQL: Embedded = embedded!("pg_queue_delete_returning.sql");

pub struct DeleteReturning(PgBase);

#[async_trait]
impl Design for DeleteReturning {
    const INFO: DesignInfo = DesignInfo::named("delete_returning", Backend::Postgresql)
        .recovered_by(Recovery::Rollback)
        .of_the_seed();

    async fn open(cfg: &Config) -> Result<DeleteReturning> {
        Ok(DeleteReturning(PgBase::open(cfg, &SQL, "queue_jobs_dr", "^queue_jobs_(dr|archive)$").await?))
    }
}

#[async_trait]
impl Queue for DeleteReturning {
    fn server(&self) -> &dyn Server {
        &self.0.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        self.0
            .setup(reset, "queue_jobs_dr and queue_jobs_archive")
            .await
    }

    async fn reset(&self) -> Result<()> {
        self.0.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.0.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        let mut c = self.0.pooled().await?;
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
        self.0.producer(None).await
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let client = pg::connect(self.0.pg()).await?;
        let claim = self.0.prepare(&client, "claim", &[]).await?;
        let archive = client.prepare(SQL.get("archive")).await?;
        self.0.consumer(TxConsumer {
            client,
            claim,
            archive,
            in_tx: false,
        })
            .await
    }

    async fn reap(&self) -> Result<Option<u64>> {
        Ok(None)
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.0.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.0.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        self.0.left_then_completed(Some("completed")).await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.0.horizon("claim", &[]).await
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
impl Claims for TxConsumer {
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

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
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
            self.client.query(&self.archive, &params),
            self.client.batch_execute("COMMIT")
        );
        self.in_tx = false;
        let archived = archived.context("archiving the completed jobs")?;
        committed.context("COMMIT of the completed jobs")?;
        // A job archived already was delivered twice: its second completion is refused.
        let kept: std::collections::HashSet<i64> = archived
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok(seqs.into_iter().filter(|s| !kept.contains(s)).collect())
    }
}
