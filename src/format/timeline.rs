//! What `analyze` writes about each test's seconds: `events.csv` (what the server and
//! the test did, when) and `spikes.csv` (each latency spike and its cause).

use serde::{Deserialize, Serialize};

pub const EVENTS_CSV: &str = "events.csv";
pub const SPIKES_CSV: &str = "spikes.csv";

/// One row of `events.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub test: String,
    pub results_dir: String,
    pub kind: String,
    /// Seconds since the test started.
    pub start_s: f64,
    pub end_s: f64,
    pub label: String,
    /// A phase (pgbench beside the queue, the warmup's end): never named as a cause.
    pub phase: bool,
}

/// One row of `spikes.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeRow {
    pub test: String,
    pub results_dir: String,
    pub start_s: f64,
    pub end_s: f64,
    pub duration_s: f64,
    pub peak_p99_ms: f64,
    /// The test's median per-second p99 × the spike factor.
    pub threshold_ms: f64,
    /// Seconds of the spike in which nothing completed while jobs waited.
    pub stalled_s: f64,
    /// The labels of the events that overlap it or began at most 2 s before it, or
    /// `unexplained`.
    pub cause: String,
    /// The producer's schedule-lag p99 during the spike: high means qbench itself was
    /// late (a client-side stall), not only the server.
    pub producer_lag_p99_ms: Option<f64>,
}
