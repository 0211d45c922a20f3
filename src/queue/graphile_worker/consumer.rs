//! A graphile-worker worker's claim and completion, on its WorkerPool's shared connection
//! pool (maxPoolSize connections for every worker of the process), each through
//! graphile-worker's `withRetries` (src/lib.ts makeEnhancedWithPgClient): a serialization
//! failure or deadlock is tried again after 50 ms to 5 s, a server that cannot take
//! connections yet or an unreachable host after 3 s to 120 s (× 1.5 per try, jittered),
//! up to 100 tries; any other error is the call's.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::batcher::Batcher;
use crate::config::Postgres;
use crate::queue::pg::{self, Claims};
use crate::queue::{Claimed, HandOff, Handle};

/// The process's connections and the statements its workers run on them.
pub struct Shared {
    pub pool: deadpool_postgres::Pool,
    pub pg: Postgres,
    pub claim: &'static str,
    /// One job's completion (its row count says whether it deleted the job).
    pub complete: &'static str,
}

/// Where a worker's completions go.
pub enum Completion {
    /// One DELETE per job, not awaited by the worker.
    Own,
    Batched(Arc<Batcher>),
}

pub struct GraphileConsumer {
    pub shared: Arc<Shared>,
    pub pool_id: Arc<str>,
    pub task_ids: Arc<Vec<i32>>,
    pub completion: Completion,
}

/// graphile-worker's RETRYABLE_ERROR_CODES: the shortest and longest delay for an
/// error worth another try, `None` for any other.
fn retryable(e: &anyhow::Error) -> Option<(Duration, Duration)> {
    for cause in e.chain() {
        if let Some(pe) = cause.downcast_ref::<tokio_postgres::Error>() {
            match pe.code().map(|c| c.code()) {
                Some("40001" | "40P01") => {
                    return Some((Duration::from_millis(50), Duration::from_secs(5)))
                }
                Some("57P03") => return Some((Duration::from_secs(3), Duration::from_secs(120))),
                _ => {}
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::HostUnreachable
            ) {
                return Some((Duration::from_secs(3), Duration::from_secs(120)));
            }
        }
    }
    None
}

const MAX_TRIES: u32 = 100;

/// How a statement's answer is read: its rows, or the count of rows it changed.
#[derive(Clone, Copy)]
pub enum Read {
    Rows,
    Count,
}

/// One statement on a pooled connection, as `withPgClient.withRetries` runs it: its rows
/// (`Read::Rows`) or the count of rows it changed.
pub async fn with_retries(
    shared: &Shared,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: Read,
) -> Result<(Vec<Row>, u64)> {
    let mut tries = 0;
    loop {
        let result = call(shared, sql, params, read).await;
        let Err(e) = result else { return result };
        tries += 1;
        let Some((min, max)) = retryable(&e) else {
            return Err(e);
        };
        if tries >= MAX_TRIES {
            return Err(e.context(format!("tried {MAX_TRIES} times")));
        }
        let delay = min.mul_f64(1.5f64.powi(tries as i32 - 1)).min(max);
        tokio::time::sleep(delay.mul_f64(0.5 + pg::jitter_fraction())).await;
    }
}

/// One statement on a pooled connection, tried once.
pub async fn call(
    shared: &Shared,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    read: Read,
) -> Result<(Vec<Row>, u64)> {
    let c = shared
        .pool
        .get()
        .await
        .map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => anyhow::Error::from(e),
            other => anyhow::anyhow!("graphile-worker's pool: {other}"),
        })
        .with_context(|| format!("PostgreSQL at {}", shared.pg.display()))?;
    let st = c
        .prepare_cached(sql)
        .await
        .context("preparing graphile-worker's statement (did setup-schema run?)")?;
    Ok(match read {
        Read::Rows => (c.query(&st, params).await?, 0),
        Read::Count => (vec![], c.execute(&st, params).await?),
    })
}

/// A claimed row as a job.
fn claimed(row: &Row) -> Result<Claimed> {
    let id: i64 = row.try_get("id")?;
    let attempts: i16 = row.try_get("attempts")?;
    let msg: serde_json::Value = row.try_get("payload")?;
    let (seq, enqueued_at_us) = pg::message_fields(&msg, "graphile-worker payload", id)?;
    Ok(Claimed {
        seq,
        enqueued_at_us,
        attempts: u32::try_from(attempts).unwrap_or(0),
        payload_len: msg["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id, part: 0 },
    })
}

/// Each job's DELETE in turn: the seqs another completion deleted first.
async fn delete_each(shared: &Shared, ids: Vec<(i64, i64)>) -> Result<Vec<i64>> {
    let mut refused = vec![];
    for (id, seq) in ids {
        let (_, deleted) = with_retries(shared, shared.complete, &[&id], Read::Count)
            .await
            .context("graphile-worker's completion")?;
        if deleted == 0 {
            refused.push(seq);
        }
    }
    Ok(refused)
}

#[async_trait]
impl Claims for GraphileConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let pool_id: &str = &self.pool_id;
        let ids: &[i32] = &self.task_ids;
        let (rows, _) =
            with_retries(&self.shared, self.shared.claim, &[&pool_id, &ids], Read::Rows).await?;
        rows.iter().map(claimed).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        self.hand_off(jobs).await?.outcome().await
    }

    async fn hand_off(&mut self, jobs: Vec<Claimed>) -> Result<HandOff> {
        let ids = pg::row_ids(&jobs, "graphile_worker")?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        match &self.completion {
            Completion::Own => {
                // Not awaited by the worker, as graphile-worker's completeJob is not.
                let shared = self.shared.clone();
                tokio::spawn(async move {
                    let _ = tx.send(delete_each(&shared, ids).await);
                });
            }
            Completion::Batched(b) => {
                let waits: Vec<_> = ids.into_iter().map(|(id, seq)| b.add(id, seq)).collect();
                tokio::spawn(async move {
                    let mut refused = vec![];
                    for w in waits {
                        match w.await {
                            Ok(Ok(r)) => refused.extend(r),
                            Ok(Err(e)) => {
                                let _ = tx.send(Err(e));
                                return;
                            }
                            Err(_) => {
                                let _ = tx.send(Err(anyhow::anyhow!(
                                    "graphile-worker's batched completion stopped before writing"
                                )));
                                return;
                            }
                        }
                    }
                    let _ = tx.send(Ok(refused));
                });
            }
        }
        Ok(HandOff::Later(rx))
    }
}
