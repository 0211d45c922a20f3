//! pgmq: the protocol of the pgmq extension 1.11.0 (github.com/pgmq/pgmq at b84659a),
//! in qbench's words; SQL: schema/pg_queue_pgmq.sql. Each statement models a function
//! of pgmq-extension/sql/pgmq.sql:
//! - enqueue: `send` for one job, `send_batch` for several (one INSERT, vt = the clock:
//!   visible at once), each through pgmq's chain of functions;
//! - claim: `read(queue, vt, qty)`: the oldest visible ids, FOR UPDATE SKIP LOCKED, their
//!   vt pushed a lease ahead and read_ct counted, in one statement;
//! - completion: `archive(queue, ids[])` (the default, as pgmq's clients do) or
//!   `delete(queue, ids[])` (`benchmark.pgmq_completion = "delete"`).
//!
//! Each is one round trip: three per job with batches of one (send, read, archive).
//!
//! A dead worker's message comes back by itself when its vt passes: pgmq runs no reaper
//! and no background work. Nor does it fence a completion: a worker whose lease ran out
//! still archives the message, and the worker that read it again is refused. The
//! client side follows pgmq's Python and Rust clients (read qty 1, vt 30 s by default:
//! qbench's dequeue_batch and visibility_timeout_s) and polls as qbench's PostgreSQL
//! workers do.

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::{Client, Row, Statement};

use super::pg::{self, Claims, PgBase};
use super::registry::{Design, DesignInfo};
use super::{
    Backend, Claimed, Consumer, Handle, NewJob, Producer, Queue, QueueState, Server, Snapshot,
};
use crate::config::{Config, PgmqCompletion, Wakeup};
use crate::error::UsageError;
use crate::schema::{embedded, Embedded};

pub(crate) static SQL: Embedded = embedded!("pg_queue_pgmq.sql");

const TABLE: &str = "pgmq_q_qbench";

pub struct Pgmq {
    base: PgBase,
    completion: PgmqCompletion,
    /// The payload as the message's string (it is ASCII letters).
    payload: std::sync::Arc<str>,
}

#[async_trait]
impl Design for Pgmq {
    const INFO: DesignInfo = DesignInfo::named("pgmq", Backend::Postgresql)
        .unfenced()
        .modelling("pgmq 1.11.0");

    async fn open(cfg: &Config) -> Result<Pgmq> {
        if cfg.benchmark.wakeup.single()? == Wakeup::Notify {
            return Err(UsageError::new(
                "pgmq runs with --wakeup poll only: pgmq's insert-notify trigger (1.7+, throttled to one NOTIFY per 250 ms) is not modelled yet",
            )
            .into());
        }
        // pgmq's create_unlogged makes the queue table UNLOGGED, never the archive.
        let base = PgBase::open(cfg, &SQL, TABLE, "^pgmq_[qa]_qbench$")
            .await?
            .volatile_tables("^pgmq_q_qbench$");
        let payload = std::str::from_utf8(&base.payload)
            .context("the job payload is not text")?
            .into();
        Ok(Pgmq {
            base,
            completion: cfg.benchmark.pgmq_completion,
            payload,
        })
    }
}

#[async_trait]
impl Queue for Pgmq {
    fn options(&self) -> String {
        format!("completion={}", self.completion.name())
    }

    fn variant(&self) -> String {
        match self.completion {
            PgmqCompletion::Archive => String::new(),
            PgmqCompletion::Delete => "delete".into(),
        }
    }

    fn records_completions(&self) -> bool {
        self.completion == PgmqCompletion::Archive
    }

    fn server(&self) -> &dyn Server {
        &self.base.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        self.base.setup(reset, "pgmq_q_qbench and pgmq_a_qbench").await
    }

    async fn reset(&self) -> Result<()> {
        self.base.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.base.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        let c = self.base.pooled().await?;
        let name = match self.completion {
            PgmqCompletion::Archive => "state",
            PgmqCompletion::Delete => "state_delete",
        };
        let r = c.query_one(SQL.get(name), &[]).await?;
        let (pending, in_flight) = (pg::count(&r, 0)?, pg::count(&r, 1)?);
        let queued = pending + in_flight;
        let completed = pg::count(&r, 2)?;
        Ok(QueueState {
            pending,
            in_flight,
            completed,
            produced: queued + completed,
        })
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        let client = pg::connect(self.base.pg()).await?;
        let one = self.base.prepare(&client, "enqueue_one", &[]).await?;
        let send = self.base.prepare(&client, "enqueue", &[]).await?;
        let retry = self.base.prepare(&client, "enqueue_retry", &[]).await?;
        Ok(Box::new(PgmqProducer {
            client,
            one,
            send,
            retry,
            payload: self.payload.clone(),
            messages: vec![],
        }))
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let client = pg::connect(self.base.pg()).await?;
        let claim = self.base.prepare(&client, "claim", &[]).await?;
        let finish = match self.completion {
            PgmqCompletion::Archive => "archive",
            PgmqCompletion::Delete => "delete",
        };
        let finish = self.base.prepare(&client, finish, &[]).await?;
        let batch = i32::try_from(self.base.batch).context("dequeue_batch beyond i32")?;
        self.base
            .consumer(PgmqConsumer {
                client,
                claim,
                finish,
                vt_s: self.base.visibility_timeout_s,
                batch,
            })
            .await
    }

    async fn reap(&self) -> Result<Option<u64>> {
        // A read of a message whose vt passed takes it again: nothing to run.
        Ok(None)
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.base.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.base.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        // archive moves a message in one statement; with delete the queue keeps no
        // record of completions: they are the workers' own.
        let archive = self.records_completions().then_some("completed");
        self.base.left_then_completed(archive).await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.base.horizon("claim_plan", &[]).await
    }
}

struct PgmqProducer {
    client: Client,
    /// pgmq's send: one message.
    one: Statement,
    /// pgmq's send_batch.
    send: Statement,
    retry: Statement,
    payload: std::sync::Arc<str>,
    messages: Vec<String>,
}

#[async_trait]
impl Producer for PgmqProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()> {
        self.messages.clear();
        self.messages
            .extend(jobs.iter().map(|j| pg::message(j, &self.payload)));
        // pgmq's send is not idempotent; a retry sends only what neither table holds.
        // A first attempt still running on a dead connection could commit after that
        // check, and with delete a job already completed is in neither table: the audit
        // then names the job duplicated, as a real pgmq client's retry would make it.
        if retry {
            self.client.query(&self.retry, &[&self.messages]).await?;
        } else if let [one] = &self.messages[..] {
            self.client.query(&self.one, &[one]).await?;
        } else {
            self.client.query(&self.send, &[&self.messages]).await?;
        }
        Ok(())
    }
}

struct PgmqConsumer {
    client: Client,
    claim: Statement,
    finish: Statement,
    vt_s: f64,
    batch: i32,
}

/// A read message as a job: (msg_id, read_ct, message).
fn read_job(row: &Row) -> Result<Claimed> {
    let id: i64 = row.try_get(0)?;
    let read_ct: i32 = row.try_get(1)?;
    let msg: serde_json::Value = row.try_get(2)?;
    let (seq, enqueued_at_us) = pg::message_fields(&msg, "pgmq message", id)?;
    Ok(Claimed {
        seq,
        enqueued_at_us,
        attempts: u32::try_from(read_ct).unwrap_or(0),
        payload_len: msg["payload"].as_str().map_or(0, str::len),
        handle: Handle::Row { id, part: 0 },
    })
}

#[async_trait]
impl Claims for PgmqConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let rows = self
            .client
            .query(&self.claim, &[&self.vt_s, &self.batch])
            .await?;
        rows.iter().map(read_job).collect()
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let ids: Vec<i64> = jobs
            .iter()
            .filter_map(|j| match j.handle {
                Handle::Row { id, .. } => Some(id),
                _ => None,
            })
            .collect();
        let done = self.client.query(&self.finish, &[&ids]).await?;
        super::skip_locked::refused(jobs.iter(), &done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_exist() {
        SQL.assert_statements(&[
            "enqueue_one",
            "enqueue",
            "enqueue_retry",
            "claim",
            "archive",
            "delete",
            "claim_plan",
            "depth",
            "state",
            "state_delete",
            "left",
            "completed",
            "sabotage",
            "reset",
        ]);
    }

    /// The horizon scenario explains the statement read runs: the same predicates,
    /// order, lock and update as the function's.
    #[test]
    fn the_explained_claim_is_the_functions() {
        let squash = |s: &str| {
            s.chars()
                .filter(|c| !c.is_whitespace() && *c != '\'')
                .collect::<String>()
        };
        let body = squash(SQL.ddl);
        let plan = squash(
            &SQL.get("claim_plan")
                .replace("pgmq_q_qbench", "%1$I")
                .replace("{batch}", "$1")
                .replace("secs => 30", "secs => $2"),
        );
        assert!(body.contains(&plan), "{plan}");
    }
}
