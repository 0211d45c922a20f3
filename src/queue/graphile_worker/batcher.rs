//! graphile-worker's batched completion (src/main.ts `batch()`, on with
//! completeJobBatchDelay ≥ 0): the first completion handed over starts a timer of the
//! delay; every completion handed over before it fires joins the batch; the batch is one
//! DELETE (the single-id one for a batch of one) on the pool. It is tried once: its retry
//! loop ends at the first failure (`break`; `throw` at the v0.17.3 tag), after which
//! graphile-worker shuts the pool down. Here the failure is every completion's in the
//! batch (the worker loop counts them), and the jobs stay locked, as there.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::oneshot;

use super::consumer::{call, Read, Shared};

/// A completion waiting for its batch: the job's id, its seq, and where its outcome goes.
type Waiting = (i64, i64, oneshot::Sender<Result<Vec<i64>>>);

/// One process's batch of completions, and what writes it.
pub struct Batcher {
    delay: Duration,
    /// More than one job's DELETE (it returns the ids it deleted).
    many: &'static str,
    shared: Arc<Shared>,
    waiting: Mutex<Vec<Waiting>>,
}

impl Batcher {
    pub fn new(delay: Duration, many: &'static str, shared: Arc<Shared>) -> Arc<Batcher> {
        Arc::new(Batcher {
            delay,
            many,
            shared,
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
        let result = self.delete(&ids).await;
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
        let s = &self.shared;
        let what = "graphile-worker's batched completion";
        if let [one] = ids {
            let (_, n) = call(s, s.complete, &[one], Read::Count)
                .await
                .context(what)?;
            return Ok(if n > 0 { [*one].into() } else { Default::default() });
        }
        let (rows, _) = call(s, self.many, &[&ids], Read::Rows)
            .await
            .context(what)?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}
