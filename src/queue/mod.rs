//! The `Queue` trait and its four designs. Adding a fifth design means one new file
//! and one line in [`QueueKind`] / [`open`].

use std::fmt;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::UsageError;

pub mod delete_returning;
pub mod partitioned;
pub mod pg;
pub mod skip_locked;
pub mod valkey_streams;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueKind {
    SkipLocked,
    DeleteReturning,
    Partitioned,
    ValkeyStreams,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    Postgresql,
    Valkey,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgresql => "postgresql",
            Backend::Valkey => "valkey",
        }
    }
}

impl QueueKind {
    pub const ALL: [QueueKind; 4] = [
        QueueKind::SkipLocked,
        QueueKind::DeleteReturning,
        QueueKind::Partitioned,
        QueueKind::ValkeyStreams,
    ];
    pub const POSTGRES: [QueueKind; 3] = [
        QueueKind::SkipLocked,
        QueueKind::DeleteReturning,
        QueueKind::Partitioned,
    ];

    pub fn name(self) -> &'static str {
        match self {
            QueueKind::SkipLocked => "skip_locked",
            QueueKind::DeleteReturning => "delete_returning",
            QueueKind::Partitioned => "partitioned",
            QueueKind::ValkeyStreams => "valkey_streams",
        }
    }

    pub fn backend(self) -> Backend {
        match self {
            QueueKind::ValkeyStreams => Backend::Valkey,
            _ => Backend::Postgresql,
        }
    }

    pub fn parse(s: &str) -> Result<QueueKind, UsageError> {
        QueueKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                UsageError::new(format!(
                    "unknown queue {s:?}: choose one of {}",
                    QueueKind::ALL.map(QueueKind::name).join(", ")
                ))
            })
    }

    /// `all` or a comma-separated list.
    pub fn parse_list(s: &str) -> Result<Vec<QueueKind>, UsageError> {
        if s == "all" {
            return Ok(QueueKind::ALL.to_vec());
        }
        let mut out = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let k = QueueKind::parse(part)?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        if out.is_empty() {
            return Err(UsageError::new("no queue given: name at least one design"));
        }
        Ok(out)
    }
}

impl fmt::Display for QueueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A job as the producer offers it. The payload (job_size_bytes) is the queue's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewJob {
    /// Producer sequence number, dense from 0 within one producer run.
    pub seq: i64,
    /// Intended enqueue time (open loop), wall-clock µs since the Unix epoch.
    pub enqueued_at_us: i64,
}

/// A job a worker holds.
#[derive(Debug)]
pub struct Claimed {
    pub seq: i64,
    pub enqueued_at_us: i64,
    /// Deliveries so far, this one included; above 1 means redelivered.
    pub attempts: u32,
    pub payload_len: usize,
    pub(crate) handle: Handle,
}

/// What the design needs to complete a job it handed out.
#[derive(Debug)]
pub(crate) enum Handle {
    Row {
        id: i64,
        part: i16,
    },
    /// delete_returning archives the row as it was.
    Archive {
        id: i64,
        payload: Vec<u8>,
        created_at: std::time::SystemTime,
    },
    Entry(Vec<u8>),
}

/// The queue's own account of its jobs, for audits across processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    /// Waiting to be claimed.
    pub pending: u64,
    /// Claimed and not yet completed.
    pub in_flight: u64,
    pub completed: u64,
    /// Jobs the queue has received since its last reset.
    pub produced: u64,
}

#[async_trait]
pub trait Queue: Send + Sync {
    fn kind(&self) -> QueueKind;
    /// Creates what the design needs; a second call changes nothing. `reset` empties it too.
    /// Returns a line saying what was done.
    async fn setup(&self, reset: bool) -> Result<String>;
    /// Empties the queue.
    async fn reset(&self) -> Result<()>;
    /// Jobs not completed yet (pending + in flight), exact.
    async fn depth(&self) -> Result<u64>;
    async fn state(&self) -> Result<QueueState>;
    /// A producer on a connection of its own.
    async fn producer(&self) -> Result<Box<dyn Producer>>;
    /// A consumer for worker `worker` on a connection of its own.
    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>>;
    /// Puts jobs whose lease outlived the visibility timeout back in the queue.
    /// `Ok(None)`: the design needs no reaper.
    async fn reap(&self) -> Result<Option<u64>>;
    /// Server version and durability settings, for the manifest.
    async fn server_info(&self) -> Result<ServerInfo>;
}

/// What the manifest records about the queue's server.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub version: String,
    /// The settings that decide whether a completed job survives a server crash, as
    /// `key=value` pairs: PostgreSQL's fsync and synchronous_commit; Valkey's appendonly,
    /// appendfsync and save. `None` when the server would not say (CONFIG disabled).
    pub durability: Option<String>,
}

#[async_trait]
pub trait Producer: Send {
    /// Enqueues a batch in one round trip (or one pipelined burst).
    async fn enqueue(&mut self, jobs: &[NewJob]) -> Result<()>;
}

#[async_trait]
pub trait Consumer: Send {
    /// Claims up to `benchmark.dequeue_batch` jobs. An empty queue answers with an empty
    /// Vec: PostgreSQL at once, Valkey after `valkey.block_ms`.
    async fn claim(&mut self) -> Result<Vec<Claimed>>;
    /// Completes jobs this consumer claimed.
    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<()>;
}

/// Opens one design against the servers the config names.
pub async fn open(kind: QueueKind, cfg: &Config) -> Result<Arc<dyn Queue>> {
    Ok(match kind {
        QueueKind::SkipLocked => Arc::new(skip_locked::SkipLocked::open(cfg).await?),
        QueueKind::DeleteReturning => Arc::new(delete_returning::DeleteReturning::open(cfg).await?),
        QueueKind::Partitioned => Arc::new(partitioned::Partitioned::open(cfg).await?),
        QueueKind::ValkeyStreams => Arc::new(valkey_streams::ValkeyStreams::open(cfg).await?),
    })
}

/// The payload every job carries: job_size_bytes of a fixed pattern.
pub fn payload(size: u32) -> Arc<[u8]> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_is_refused() {
        for k in QueueKind::ALL {
            assert_eq!(QueueKind::parse(k.name()).expect("known"), k);
        }
        let e = QueueKind::parse("rabbit").expect_err("unknown").to_string();
        assert!(e.contains("rabbit") && e.contains("skip_locked"), "{e}");
        assert_eq!(QueueKind::parse_list("all").expect("all").len(), 4);
        assert_eq!(
            QueueKind::parse_list("partitioned, skip_locked,partitioned").expect("list"),
            vec![QueueKind::Partitioned, QueueKind::SkipLocked]
        );
        assert!(QueueKind::parse_list(",").is_err());
    }
}
