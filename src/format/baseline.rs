//! `pgbench_baseline_manifest.json`: pgbench alone, for the same window as a test.

use serde::{Deserialize, Serialize};

use super::manifest::Host;
use super::pgbench::Stats;
use crate::config::Config;

pub const BASELINE: &str = "pgbench_baseline";
pub const BASELINE_FORMAT: &str = "qbench.pgbench_baseline";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineManifest {
    pub format: String,
    pub version: u32,
    pub test: String,
    pub complete: bool,
    pub smoke: bool,
    pub started_at: String,
    pub ended_at: String,
    pub window_s: f64,
    pub pgbench: Stats,
    pub qbench_version: String,
    pub host: Host,
    pub config: Config,
}
