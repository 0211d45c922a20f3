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
}
