//! The `Queue` trait, the servers behind it, and the designs. Everything qbench knows of a
//! particular server (SQL, Valkey commands, durability settings, its processes and its
//! statistics) lives below this module; the rest of qbench sees traits and names.
//!
//! Adding a design: one new file implementing [`Queue`] and [`registry::Design`], and one
//! line in the registry below.

use std::fmt;
use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use crate::config::Config;
use crate::error::UsageError;
use crate::format::durability::Durability;
use crate::format::horizon::{ClaimCost, HolderSpec, ServerSample};
use crate::format::manifest::LocalInfo;
pub use crate::format::metrics::{QueueState, WakeupReport};
use crate::samplers::system::ServerProcs;
use crate::samplers::StatsSampler;

pub mod pg;
pub mod registry;
pub mod valkey;

// The registry: one line per design (enum variant => module::type).
registry::designs! {
    SkipLocked => skip_locked::SkipLocked,
    DeleteReturning => delete_returning::DeleteReturning,
    Partitioned => partitioned::Partitioned,
    ValkeyStreams => valkey_streams::ValkeyStreams,
    Pgmq => pgmq::Pgmq,
    River => river::River,
    GraphileWorker => graphile_worker::GraphileWorker,
    PgBoss => pg_boss::PgBoss,
    Procrastinate => procrastinate::Procrastinate,
}

/// The kinds of server a design runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Backend {
    Postgresql,
    Valkey,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Postgresql, Backend::Valkey];

    /// The name result files carry.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgresql => "postgresql",
            Backend::Valkey => "valkey",
        }
    }

    /// The server's name in sentences.
    pub fn title(self) -> &'static str {
        match self {
            Backend::Postgresql => "PostgreSQL",
            Backend::Valkey => "Valkey",
        }
    }

    /// The seed's folder for this backend's results (VM1 and VM2).
    pub fn results_dir(self) -> &'static str {
        match self {
            Backend::Postgresql => crate::format::layout::PG_DIR,
            Backend::Valkey => crate::format::layout::VALKEY_DIR,
        }
    }

    /// The tier this backend is to run in for the durability asked for.
    pub fn tier(self, choice: crate::config::DurabilityChoice) -> crate::format::durability::Tier {
        match self {
            Backend::Postgresql => choice.postgres(),
            Backend::Valkey => choice.valkey(),
        }
    }

    /// The configured shell command that restarts this server (cold scenario); may be empty.
    pub fn restart_command(self, cfg: &Config) -> &str {
        match self {
            Backend::Postgresql => &cfg.postgres.restart_command,
            Backend::Valkey => &cfg.valkey.restart_command,
        }
    }
}

impl QueueKind {
    pub fn name(self) -> &'static str {
        self.info().name
    }

    pub fn backend(self) -> Backend {
        self.info().backend
    }

    /// Whether idle workers poll (so `benchmark.wakeup` applies) rather than block.
    pub fn polls(self) -> bool {
        self.backend() == Backend::Postgresql
    }

    /// The designs of one backend.
    pub fn of(backend: Backend) -> Vec<QueueKind> {
        QueueKind::ALL
            .iter()
            .copied()
            .filter(|k| k.backend() == backend)
            .collect()
    }

    pub fn parse(s: &str) -> Result<QueueKind, UsageError> {
        QueueKind::ALL
            .iter()
            .copied()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = QueueKind::ALL.iter().map(|k| k.name()).collect();
                UsageError::new(format!(
                    "unknown queue {s:?}: choose one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The designs that model a library's protocol (`--queues libraries`).
    pub fn libraries() -> Vec<QueueKind> {
        QueueKind::ALL
            .iter()
            .copied()
            .filter(|k| k.info().models.is_some())
            .collect()
    }

    /// `all` or a comma-separated list, in which `libraries` stands for every design
    /// that models a library.
    pub fn parse_list(s: &str) -> Result<Vec<QueueKind>, UsageError> {
        if s == "all" {
            return Ok(QueueKind::ALL.to_vec());
        }
        let mut out = vec![];
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let kinds = match part {
                "libraries" => QueueKind::libraries(),
                _ => vec![QueueKind::parse(part)?],
            };
            for k in kinds {
                if !out.contains(&k) {
                    out.push(k);
                }
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
    /// Sequence number, from a block the queue's server handed out ([`Queue::allocate`]):
    /// unique per queue across processes, hosts and runs.
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
    /// A stream entry, and which of the queue's streams holds it.
    Entry {
        stream: usize,
        id: Vec<u8>,
    },
}

#[async_trait]
pub trait Queue: registry::Kind + Send + Sync {
    /// The server this design runs on.
    fn server(&self) -> &dyn Server;
    /// The most jobs per second `workers` workers of one process can take under the
    /// design's own protocol, whatever the server does (River fetches at most MaxWorkers
    /// jobs per FetchCooldown); `None`: the protocol sets no such bound.
    fn throughput_bound(&self, _workers: usize) -> Option<f64> {
        None
    }
    /// The run's workers are stopping: a design that fetches in the background fetches no
    /// more, and a wait only a running queue would end (River's completer gate) ends.
    fn stopping(&self) {}
    /// The run's workers have stopped and let go of their connections: a design whose
    /// library deregisters a stopping worker (Procrastinate's unregister_worker) does it
    /// now, awaited, so that its cost lands inside the run.
    async fn stopped(&self) -> Result<()> {
        Ok(())
    }
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
    /// Hands out `n` sequence numbers no other producer of this queue ever gets (a
    /// counter on the server, kept across resets); returns the first.
    async fn allocate(&self, n: u64) -> Result<i64>;
    /// The queue by sequence number: what is left (pending or in flight, with intended
    /// enqueue times) and what the queue itself records as completed.
    async fn snapshot(&self) -> Result<Snapshot>;
    /// The horizon scenario's holder and sampler, on connections of their own.
    async fn horizon(&self) -> Result<Box<dyn Horizon>>;
    /// The audit's self-check: removes one job that waits (handed to no worker) behind
    /// qbench's back, as a bug or an operator would, and returns its seq; `None` when no
    /// job waits. Whatever ran must then report exactly that job lost: the per-design
    /// tests break reality with it, so no design's audit can pass by construction.
    async fn remove_waiting_job(&self) -> Result<Option<i64>>;
    /// The design's own settings that change its capacity, as `key=value` words
    /// (`partitions=16`); empty when it has none. A sweep's MST is reused only for a
    /// test whose design ran with the same.
    fn options(&self) -> String {
        String::new()
    }
    /// Whether the queue records which jobs it completed (rows marked, an archive, a
    /// bitmap). Without it (pgmq's delete) a missing job cannot be told lost, and
    /// crash trials refuse the design.
    fn records_completions(&self) -> bool {
        true
    }
    /// The options that make this run a variant of its own in every comparison
    /// (`delete` for pgmq's delete completion), appended to the design's name as
    /// `pgmq+delete`; empty at the design's defaults.
    fn variant(&self) -> String {
        String::new()
    }
    /// A queue spread over a cluster: each part and its jobs so far; empty on one server.
    async fn shards(&self) -> Result<Vec<crate::format::manifest::Shard>> {
        Ok(vec![])
    }
}

/// What a transaction held open elsewhere does to a design: a holder that keeps old row
/// versions alive on the server, and a once-a-second read of what that costs.
#[async_trait]
pub trait Horizon: Send {
    /// The settings that decide how the server cleans up, for the manifest.
    async fn settings(&mut self) -> Result<std::collections::BTreeMap<String, String>>;
    /// Starts holding; returns what is held, in words.
    async fn hold(&mut self, spec: &HolderSpec) -> Result<String>;
    /// The server's words once it has ended the holder before its release.
    fn killed(&mut self) -> Option<String>;
    /// Ends the hold (nothing if nothing is held).
    async fn release(&mut self);
    async fn sample(&mut self) -> Result<ServerSample>;
    /// One claim explained on a side connection and rolled back; `None` where a claim
    /// has no plan to explain.
    async fn claim_cost(&mut self) -> Result<Option<ClaimCost>>;
}

/// What [`Queue::snapshot`] reads.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `(seq, intended enqueue µs)` of every job not completed.
    pub left: Vec<(i64, i64)>,
    pub completed: Vec<i64>,
    /// The queue keeps no record of completions (pgmq's delete): `completed` is empty,
    /// and a job in neither list may have been completed by a process that died.
    pub completions_unrecorded: bool,
}

/// What qbench knows of the server behind a design.
#[async_trait]
pub trait Server: Send + Sync {
    fn backend(&self) -> Backend;
    /// Version and durability settings, for the manifest.
    async fn info(&self) -> Result<ServerInfo>;
    /// The server's clock now, µs since the epoch (for the offset between hosts' clocks).
    async fn now_us(&self) -> Result<i64>;
    /// Which processes on this machine are the server (none when it runs elsewhere).
    fn procs(&self, local: Option<&LocalInfo>) -> ServerProcs;
    /// The server's own statistics, sampled once per second into a result file.
    fn stats(&self) -> Box<dyn StatsSampler>;
    /// How this process's idle workers learn of new jobs, with what it has cost so far.
    fn wakeup(&self) -> WakeupReport;
    /// The counters a protocol moves (`qbench cost`). After a run (`before` given), it
    /// first waits until the run's sessions have ended and their statistics are in.
    async fn cost_counters(
        &self,
        before: Option<&crate::format::cost::Counters>,
    ) -> Result<crate::format::cost::Counters>;
}

/// What the manifest records about the queue's server.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    /// Whether qbench's own sessions are encrypted, and how (`off` when not).
    pub tls: String,
    /// The settings that decide whether a completed job survives a crash; `None` when
    /// the server would not say (CONFIG disabled on a managed Valkey).
    pub durability: Option<Durability>,
}

#[async_trait]
pub trait Producer: Send {
    /// Enqueues a batch in one round trip (or one pipelined burst). Idempotent by seq: a
    /// retry after an error of unknown outcome (`retry`) adds no job twice, but where
    /// a completed job leaves no trace (pgmq's delete), whose second copy the audit
    /// then names duplicated.
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()>;
}

#[async_trait]
pub trait Consumer: Send {
    /// Claims up to `benchmark.dequeue_batch` jobs. An empty queue answers with an empty
    /// Vec: PostgreSQL at once, Valkey after `valkey.block_ms`.
    async fn claim(&mut self) -> Result<Vec<Claimed>>;
    /// Completes jobs this consumer claimed and still holds. Returns the seqs the queue
    /// refused because the lease ran out (the reaper handed them on): late completions.
    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>>;
    /// Waits after a claim found nothing: how a worker of this design learns of new jobs
    /// (PostgreSQL polls after `poll_interval_ms`; Valkey's claim already blocked).
    async fn idle(&mut self);
    /// Ends the jobs' processing as a worker of this design does: completes them now, or
    /// hands them to a completer that writes them later and frees the worker at once
    /// (River's batch completer). The jobs count as completed only once written.
    async fn hand_off(&mut self, jobs: Vec<Claimed>) -> Result<HandOff> {
        Ok(HandOff::Done(self.complete(jobs).await?))
    }
    /// The claim round trip to record for the last `claim`, which took `call`: the
    /// call's own, or, where a design fetches in the background (River's producer), the
    /// round trip of the fetch that brought the jobs (`None`: no statement ran).
    fn claim_round_trip(&self, call: std::time::Duration) -> Option<std::time::Duration> {
        Some(call)
    }
    /// At stop: one more of the jobs this process already fetched and no worker took,
    /// without fetching more (River works every fetched job before it stops); none for a
    /// design whose claim is its fetch.
    async fn drain(&mut self) -> Result<Vec<Claimed>> {
        Ok(vec![])
    }
}

/// How a hand-off ended: the completion written (the seqs the queue refused), or the
/// outcome to come once the completer has written it.
pub enum HandOff {
    Done(Vec<i64>),
    Later(tokio::sync::oneshot::Receiver<Result<Vec<i64>>>),
}

impl HandOff {
    /// Waits for the outcome (a completer gone without writing is an error).
    pub async fn outcome(self) -> Result<Vec<i64>> {
        match self {
            HandOff::Done(late) => Ok(late),
            HandOff::Later(rx) => rx.await.map_err(|_| {
                anyhow::anyhow!("the completer stopped before writing the completion")
            })?,
        }
    }
}

/// Opens one design against the servers the config names.
pub async fn open(kind: QueueKind, cfg: &Config) -> Result<Arc<dyn Queue>> {
    kind.open(cfg).await
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
        for &k in QueueKind::ALL {
            assert_eq!(QueueKind::parse(k.name()).expect("known"), k);
        }
        let e = QueueKind::parse("rabbit").expect_err("unknown").to_string();
        assert!(e.contains("rabbit") && e.contains("skip_locked"), "{e}");
        assert_eq!(
            QueueKind::parse_list("all").expect("all"),
            QueueKind::ALL.to_vec()
        );
        let seed: Vec<&str> = QueueKind::ALL
            .iter()
            .filter(|k| k.info().seed)
            .map(|k| k.name())
            .collect();
        assert_eq!(
            seed,
            [
                "skip_locked",
                "delete_returning",
                "partitioned",
                "valkey_streams"
            ],
            "the seed's four designs, in its order"
        );
        assert_eq!(
            QueueKind::parse_list("partitioned, skip_locked,partitioned").expect("list"),
            vec![QueueKind::Partitioned, QueueKind::SkipLocked]
        );
        assert!(QueueKind::parse_list(",").is_err());
        // `libraries`: every design that models a library, and none of the seed's.
        let libs = QueueKind::parse_list("libraries").expect("libraries");
        assert!(libs.contains(&QueueKind::Pgmq), "{libs:?}");
        assert!(libs
            .iter()
            .all(|k| k.info().models.is_some() && !k.info().seed));
        assert_eq!(
            QueueKind::parse_list("skip_locked,libraries,pgmq").expect("list")[0],
            QueueKind::SkipLocked
        );
    }

    #[test]
    fn every_statement_the_designs_use_exists() {
        skip_locked::SQL.assert_statements(&[
            "enqueue", "claim", "complete", "reap", "depth", "state", "reset",
        ]);
        delete_returning::SQL.assert_statements(&[
            "enqueue", "claim", "archive", "depth", "unlocked", "archived", "reset",
        ]);
        partitioned::SQL.assert_statements(&[
            "enqueue",
            "claim_home",
            "claim_any",
            "complete",
            "reap",
            "depth",
            "state",
            "partition_count",
            "reset",
            "drop",
        ]);
        let claim = skip_locked::SQL.get("claim");
        assert!(claim.contains("FOR UPDATE SKIP LOCKED") && claim.contains("MATERIALIZED"));
        assert!(!claim.contains("-- "), "comments are stripped");
        assert!(crate::schema::fill(claim, &[("batch", 1)]).contains("LIMIT 1"));
        let home = crate::schema::fill(
            partitioned::SQL.get("claim_home"),
            &[("batch", 5), ("part", 3)],
        );
        assert!(
            home.contains("LIMIT 5") && home.contains("queue_jobs_part_3"),
            "{home}"
        );
        assert!(!home.contains('{'), "{home}");
    }
}
