//! The server's own counters once per second: `TEST_db_stats.csv` (PostgreSQL) and
//! `TEST_valkey_stats.csv` (Valkey).

use serde::{Deserialize, Serialize};

/// The file name each server's rows go to.
pub const DB_STATS: &str = "db_stats.csv";
pub const VALKEY_STATS: &str = "valkey_stats.csv";

/// One row of `TEST_db_stats.csv`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DbRow {
    pub t_s: f64,
    pub commits_s: f64,
    pub rollbacks_s: f64,
    pub tup_inserted_s: f64,
    pub tup_updated_s: f64,
    pub tup_deleted_s: f64,
    /// Live and dead tuples of the design's own tables (not another design's leftovers).
    pub live_tuples: i64,
    pub dead_tuples: i64,
    /// Autovacuum runs on the queue tables during this second, and since the test began.
    pub autovacuum_runs: i64,
    pub autovacuum_total: i64,
    /// qbench's sessions waiting on a lock at the sample, and everyone else's (pgbench's).
    pub lock_waiting_sessions: i64,
    pub other_lock_waiting_sessions: i64,
    /// Share of block reads served from shared buffers during this second; empty if none.
    pub cache_hit_ratio: Option<f64>,
    // The server's events (older files lack them: read as none).
    /// Autoanalyze and manual VACUUM runs on the queue tables finished this second.
    #[serde(default)]
    pub autoanalyze_runs: i64,
    #[serde(default)]
    pub vacuum_runs: i64,
    /// Vacuums under way in this database at the sample, `autovacuum TABLE` or
    /// `vacuum TABLE`, `;`-separated; empty if none.
    #[serde(default)]
    pub vacuums_running: String,
    /// Those of them on the design's own tables (a vacuum of pgbench_accounts is not the
    /// queue's).
    #[serde(default)]
    pub queue_vacuums_running: String,
    /// True in files whose sampler lists the queue's vacuums apart (false in older ones:
    /// their vacuums are named without saying whose table it is).
    #[serde(default)]
    pub queue_vacuums_listed: bool,
    /// Who blocks qbench's sessions waiting on a lock (pg_blocking_pids): `pid N
    /// (application): query`, `;`-separated; empty when none waits or the server does
    /// not say (a wait with no known blocker is a symptom, never a spike's cause).
    #[serde(default)]
    pub lock_blockers: String,
    /// Checkpoints begun this second, timed and requested (CHECKPOINT, WAL volume).
    #[serde(default)]
    pub checkpoints_timed: i64,
    #[serde(default)]
    pub checkpoints_requested: i64,
    /// The checkpointer was busy at the sample (not waiting on CheckpointerMain).
    #[serde(default)]
    pub checkpointing: bool,
    /// Milliseconds finished checkpoints spent writing and syncing, reported this second.
    #[serde(default)]
    pub checkpoint_write_ms: f64,
    #[serde(default)]
    pub checkpoint_sync_ms: f64,
    /// WAL bytes the whole server wrote during this second.
    #[serde(default)]
    pub wal_bytes_s: f64,
}

/// One row of `TEST_valkey_stats.csv`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ValkeyRow {
    pub t_s: f64,
    /// The server's own instantaneous_ops_per_sec.
    pub ops_s: u64,
    /// Commands processed during this second (from total_commands_processed).
    pub commands_s: f64,
    pub commands_processed: u64,
    pub used_memory_bytes: u64,
    pub stream_length: u64,
    pub pending_entries: u64,
    pub connected_clients: u64,
    // The server's events (older files lack them: read as none).
    /// A background AOF rewrite or RDB save was under way at the sample.
    #[serde(default)]
    pub aof_rewrite_in_progress: bool,
    #[serde(default)]
    pub rdb_bgsave_in_progress: bool,
    /// Writes that waited on a slow fsync this second (aof_delayed_fsync).
    #[serde(default)]
    pub aof_delayed_fsync: u64,
    /// `LATENCY LATEST` events new since the last sample, `event:ms`, `;`-separated
    /// (needs latency-monitor-threshold > 0; `--local` sets 10 ms).
    #[serde(default)]
    pub latency_events: String,
}
