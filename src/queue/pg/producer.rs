//! The one producer of all three PostgreSQL designs: `INSERT … SELECT FROM unnest(…)`,
//! one round trip per batch, skipping a seq already there. With `wakeup = notify` the
//! same statement NOTIFYs the queue's channel once per batch that added jobs.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::{Client, Statement};

use super::wakeup::WakeupCounts;
use super::PgBase;
use crate::config::Wakeup;
use crate::queue::{NewJob, Producer};

/// `partitions` is passed as `$4` to the partitioned design. A design whose queued rows
/// leave the table when claimed (delete_returning) has an `enqueue_retry` that also
/// checks where they go, and an `enqueue_retry_undo` run after it.
pub struct PgProducer {
    client: Client,
    stmt: Statement,
    retry: Statement,
    /// Run after `retry` in its transaction, where the design has one.
    undo: Option<Statement>,
    /// `SELECT pg_notify(channel, $1)`, after a retry in notify mode.
    notify: Option<Statement>,
    counts: Arc<WakeupCounts>,
    payload: Arc<[u8]>,
    partitions: Option<i64>,
    seqs: Vec<i64>,
    times: Vec<i64>,
}

/// The enqueue, notifying in the same statement (so in the same transaction, at the
/// same commit) when it added jobs; the payload is how many.
fn notifying(enqueue: &str, channel: &str) -> String {
    format!(
        "WITH ins AS ({enqueue} RETURNING 1) \
         SELECT pg_notify('{channel}', count(*)::text) FROM ins HAVING count(*) > 0"
    )
}

impl PgProducer {
    pub async fn new(base: &PgBase, partitions: Option<i64>) -> Result<PgProducer> {
        let client = super::connect(base.pg()).await?;
        let notify = base.server.wakeup.mode == Wakeup::Notify;
        let channel = super::wakeup::channel(base.table);
        let prepare = |sql: String| {
            let client = &client;
            async move {
                client
                    .prepare(&sql)
                    .await
                    .context("preparing the enqueue statement (did setup-schema run?)")
            }
        };
        let enqueue = base.sql.get("enqueue");
        let stmt = prepare(if notify {
            notifying(enqueue, &channel)
        } else {
            enqueue.to_string()
        })
        .await?;
        let retry = match base.sql.try_get("enqueue_retry") {
            Some(sql) => prepare(sql.to_string()).await?,
            None => prepare(enqueue.to_string()).await?,
        };
        let undo = match base.sql.try_get("enqueue_retry_undo") {
            Some(sql) => Some(prepare(sql.to_string()).await?),
            None => None,
        };
        let notify = match notify {
            true => Some(prepare(format!("SELECT pg_notify('{channel}', $1::text)")).await?),
            false => None,
        };
        Ok(PgProducer {
            client,
            stmt,
            retry,
            undo,
            notify,
            counts: base.server.wakeup.clone(),
            payload: base.payload.clone(),
            partitions,
            seqs: Vec::new(),
            times: Vec::new(),
        })
    }

    /// A retry after an error of unknown outcome: idempotent by seq, and (delete_returning)
    /// in one transaction with the removal of copies a worker archived meanwhile.
    async fn retry(&mut self, payloads: &[&[u8]]) -> Result<()> {
        let tx = self.client.transaction().await?;
        match self.partitions {
            None => {
                tx.execute(&self.retry, &[&self.seqs, &self.times, &payloads])
                    .await?
            }
            Some(n) => {
                tx.execute(&self.retry, &[&self.seqs, &self.times, &payloads, &n])
                    .await?
            }
        };
        if let Some(undo) = &self.undo {
            tx.execute(undo, &[&self.seqs]).await?;
        }
        if let Some(notify) = &self.notify {
            let n = self.seqs.len().to_string();
            tx.execute(notify, &[&n]).await?;
        }
        tx.commit().await?;
        // Counted once committed: a NOTIFY is sent at commit, or not at all.
        if self.notify.is_some() {
            self.counts.sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[async_trait]
impl Producer for PgProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()> {
        self.seqs.clear();
        self.times.clear();
        self.seqs.extend(jobs.iter().map(|j| j.seq));
        self.times.extend(jobs.iter().map(|j| j.enqueued_at_us));
        let payload = self.payload.clone();
        let payloads: Vec<&[u8]> = vec![&payload[..]; jobs.len()];
        if retry {
            return self.retry(&payloads).await;
        }
        // In notify mode the statement returns one row when it notified.
        let rows = match self.partitions {
            None => {
                self.client
                    .execute(&self.stmt, &[&self.seqs, &self.times, &payloads])
                    .await?
            }
            Some(n) => {
                self.client
                    .execute(&self.stmt, &[&self.seqs, &self.times, &payloads, &n])
                    .await?
            }
        };
        if self.notify.is_some() {
            self.counts.sent.fetch_add(rows, Ordering::Relaxed);
        }
        Ok(())
    }
}
