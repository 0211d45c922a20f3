//! graphile-worker's batched completion (src/main.ts `batch()`, on with
//! completeJobBatchDelay ≥ 0): the first completion handed over starts a timer of the
//! delay; every completion handed over before it fires joins the batch; the batch is one
//! DELETE. graphile-worker retries a failed batch (up to 20 tries, 200 ms to 30 s, ×1.5)
//! and shuts the pool down if the last fails; here every try's error is the batch's
//! workers' (the worker loop counts it), after the same tries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::oneshot;

use crate::config::Postgres;

/// A completion waiting for its batch: the job's id, its seq, and where its outcome goes.
type Waiting = (i64, i64, oneshot::Sender<Result<Vec<i64>>>);

/// One process's batch of completions, and what writes it.
pub struct Batcher {
    delay: Duration,
    sql: &'static str,
    pool: deadpool_postgres::Pool,
    pg: Postgres,
    waiting: Mutex<Vec<Waiting>>,
}

/// graphile-worker's BATCH_RETRY_OPTIONS: tries, first and longest delay, and factor.
const TRIES: u32 = 20;
const FIRST: Duration = Duration::from_millis(200);
const LONGEST: Duration = Duration::from_secs(30);

impl Batcher {
    pub fn new(
        delay: Duration,
        sql: &'static str,
        pool: deadpool_postgres::Pool,
        pg: Postgres,
    ) -> Arc<Batcher> {
        Arc::new(Batcher {
            delay,
            sql,
            pool,
            pg,
            waiting: Mutex::new(vec![]),
        })
    }

    /// Hands a job's completion over; the first of a batch starts its timer.
    pub fn add(self: &Arc<Self>, id: i64, seq: i64) -> oneshot::Receiver<Result<Vec<i64>>> {
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            w.push((id, seq, tx));
            w.len() == 1
        };
        if first {
            let me = self.clone();
            tokio::spawn(async move {
                tokio::time::sleep(me.delay).await;
                me.flush().await;
            });
        }
        rx
    }

    /// Writes the batch that waits, and tells each completion its outcome.
    async fn flush(&self) {
        let batch = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
        let ids: Vec<i64> = batch.iter().map(|w| w.0).collect();
        let mut wait = FIRST;
        let mut result = self.delete(&ids).await;
        for _ in 1..TRIES {
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = wait.mul_f64(1.5).min(LONGEST);
            result = self.delete(&ids).await;
        }
        for (id, seq, tx) in batch {
            let outcome = match &result {
                // A job another completion deleted first is this one's refusal.
                Ok(deleted) => Ok(if deleted.contains(&id) { vec![] } else { vec![seq] }),
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            let _ = tx.send(outcome);
        }
    }

    /// The ids the statement deleted.
    async fn delete(&self, ids: &[i64]) -> Result<std::collections::HashSet<i64>> {
        let c = crate::queue::pg::pooled(&self.pool, &self.pg).await?;
        let st = c.prepare_cached(self.sql).await?;
        let rows = c
            .query(&st, &[&ids])
            .await
            .context("graphile-worker's batched completion")?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
