//! `TEST_pgbench.csv` (pgbench's `-P 1` progress) and the `stats` manifests carry.

use serde::{Deserialize, Serialize};

/// One `progress:` line of pgbench.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Row {
    /// Seconds since pgbench started.
    pub t_s: f64,
    pub tps: f64,
    pub latency_ms: f64,
    pub latency_stddev_ms: f64,
    pub failed: u64,
}

/// What a pgbench run measured, for the manifest.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    pub seconds: usize,
    /// Mean of the per-second TPS, the first second (connections opening) left out.
    pub tps_mean: Option<f64>,
    pub latency_ms_mean: Option<f64>,
    pub failed: u64,
    pub clients: u32,
    pub threads: u32,
    pub scale: u32,
}
