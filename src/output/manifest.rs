//! `TEST_manifest.json`: everything needed to explain a result a year later — the
//! effective config (password masked), the knobs that move results, versions, the host,
//! times in UTC, warnings, and the summary. Also the line types of `TEST_metrics.jsonl`.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::local::LocalInfo;
use crate::queue::{Backend, QueueKind, QueueState};
use crate::stats::Percentiles;

pub const MANIFEST_FORMAT: &str = "qbench.manifest";
pub const METRICS_FORMAT: &str = "qbench.metrics";
/// Bumped on any incompatible change of the manifest or metrics lines.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Producer and workers in one process (run-suite): the audit is exact.
    Suite,
    Produce,
    Work,
}

/// The knobs that move results 10-45×; reported with every result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Knobs {
    pub offered_rate_jobs_s: Option<f64>,
    pub rate_max: bool,
    pub production_duration_s: Option<f64>,
    pub workers: Option<u32>,
    pub processing_ms: Option<f64>,
    pub capacity_jobs_s: Option<f64>,
    pub job_size_bytes: u32,
    pub dequeue_batch: u32,
    pub poll_interval_ms: f64,
    pub valkey_block_ms: u64,
    pub producer_connections: u32,
    pub partitions: u32,
    pub visibility_timeout_s: f64,
    /// Worker threads of qbench's async runtime (QBENCH_THREADS); null when unknown.
    #[serde(default)]
    pub runtime_threads: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Host {
    pub hostname: String,
    pub cpu_model: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub memory_mb: u64,
    pub os: String,
    pub kernel: String,
}

impl Host {
    pub fn this() -> Host {
        let mut sys = sysinfo::System::new();
        sys.refresh_cpu_all();
        sys.refresh_memory();
        Host {
            hostname: sysinfo::System::host_name().unwrap_or_default(),
            cpu_model: sys
                .cpus()
                .first()
                .map(|c| c.brand().trim().to_string())
                .unwrap_or_default(),
            logical_cores: sys.cpus().len(),
            physical_cores: sysinfo::System::physical_core_count(),
            memory_mb: sys.total_memory() / (1 << 20),
            os: sysinfo::System::long_os_version().unwrap_or_default(),
            kernel: sysinfo::System::kernel_version().unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Errors {
    pub producer: u64,
    pub worker: u64,
    pub reaper: u64,
}

/// How lost jobs were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// Producer and workers in one process: every sequence number checked.
    Exact,
    /// Separate processes: the queue's own counts (nothing pending or in flight,
    /// completed equals produced).
    QueueState,
    /// Producer only: nothing to audit yet.
    None,
}

/// The last line of `TEST_metrics.jsonl`, also embedded in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub test: String,
    pub queue: QueueKind,
    pub role: Role,
    pub complete: bool,
    /// Seconds from the start of the measured window to its end.
    pub duration_s: f64,
    pub produced: Option<u64>,
    pub completed: Option<u64>,
    pub lost: Option<u64>,
    pub duplicated: Option<u64>,
    pub left_in_queue: Option<u64>,
    pub redelivered: Option<u64>,
    pub reaped: Option<u64>,
    pub audit: AuditKind,
    pub queue_state: Option<QueueState>,
    /// completed / (last completion − first claim).
    pub throughput_jobs_s: Option<f64>,
    /// First claim and last completion, seconds since the epoch: the measured window
    /// (lets a reader combine several work processes of one test).
    #[serde(default)]
    pub window_start_epoch_s: Option<f64>,
    #[serde(default)]
    pub window_end_epoch_s: Option<f64>,
    /// When this process first and last claimed a redelivered job (recovery after a dead
    /// worker or a restarted server), seconds since the epoch.
    #[serde(default)]
    pub first_redelivery_epoch_s: Option<f64>,
    #[serde(default)]
    pub last_redelivery_epoch_s: Option<f64>,
    /// Windows during which the server could not be reached.
    #[serde(default)]
    pub outages: Vec<crate::workload::outages::Outage>,
    pub achieved_rate_jobs_s: Option<f64>,
    pub e2e_ms: Option<Percentiles>,
    pub queue_wait_ms: Option<Percentiles>,
    pub service_ms: Option<Percentiles>,
    pub enqueue_ms: Option<Percentiles>,
    pub schedule_lag_ms: Option<Percentiles>,
    pub errors: Errors,
}

/// One second of `TEST_metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntervalLine {
    pub v: u32,
    #[serde(rename = "type")]
    pub kind: String,
    /// End of this interval, seconds since the test started.
    pub t_s: f64,
    pub interval_s: f64,
    pub produced: u64,
    pub completed: u64,
    pub produced_total: u64,
    pub completed_total: u64,
    /// Jobs not completed yet at the end of the interval; null if it could not be read.
    pub depth: Option<u64>,
    pub e2e_ms: Option<IntervalLatency>,
    pub errors: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct IntervalLatency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub test: String,
    pub instance: Option<String>,
    pub role: Role,
    pub queue: QueueKind,
    pub backend: Backend,
    pub scenario: Option<String>,
    /// False when the test was interrupted or failed: its numbers are partial.
    pub complete: bool,
    pub interrupted: bool,
    /// A `--quick` run: for checking the tool, not for conclusions.
    pub smoke: bool,
    pub started_at: String,
    pub ended_at: String,
    pub knobs: Knobs,
    pub qbench_version: String,
    pub server_version: Option<String>,
    /// The server's durability settings (`fsync=on synchronous_commit=on`,
    /// `appendonly="no" appendfsync="everysec" save=""`); null when it would not say.
    #[serde(default)]
    pub server_durability: Option<String>,
    pub host: Host,
    pub config: Config,
    pub local_servers: Option<LocalInfo>,
    pub warnings: Vec<String>,
    pub files: Vec<String>,
    /// Scenario details: cold-start actions, pgbench, warmup.
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub summary: Summary,
}
