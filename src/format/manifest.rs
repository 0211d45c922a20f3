//! `TEST_manifest.json`: everything needed to explain a result a year later — the
//! effective config (password masked), the knobs that move results, versions, the host,
//! times in UTC, warnings, and the summary.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::metrics::Summary;

pub const MANIFEST_FORMAT: &str = "qbench.manifest";

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
    /// `benchmark.wakeup` and `benchmark.durability` as this test ran with them (the
    /// tier measured is the manifest's `durability_tier`).
    #[serde(default)]
    pub wakeup: String,
    #[serde(default)]
    pub durability: String,
    /// The design's own settings that change its capacity (`partitions=16`), empty when
    /// it has none; null in files written before qbench recorded them.
    #[serde(default)]
    pub design_options: Option<String>,
    /// The options that make the test a variant of its design (`delete` for pgmq's
    /// delete completion): its rows are named `pgmq+delete`. Empty at the defaults.
    #[serde(default)]
    pub design_variant: String,
    /// The wakeup of the library the design models as it ships (`notify` for River);
    /// empty for a textbook design, a library with no default, and older files.
    #[serde(default)]
    pub library_wakeup: String,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub test: String,
    pub instance: Option<String>,
    /// This process's run: its audit file carries the same id.
    pub run_id: String,
    /// `--run-id`: the coordinated run (several processes, maybe several hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinated_run_id: Option<String>,
    /// `--start-at`, and how late after it this process's load began, ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_late_ms: Option<f64>,
    pub role: Role,
    /// The design's name (`skip_locked`, …) and its server (`postgresql`, `valkey`).
    pub queue: String,
    pub backend: String,
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
    /// This process's sessions to the server: `TLSv1.3 TLS_AES_256_GCM_SHA384` (what
    /// PostgreSQL's pg_stat_ssl says), `rediss` (Valkey: the URL's scheme), or `off`.
    #[serde(default)]
    pub server_tls: Option<String>,
    /// The server's durability settings (`fsync=on synchronous_commit=on`,
    /// `appendonly="no" appendfsync="everysec" save=""`); null when it would not say.
    pub server_durability: Option<String>,
    /// The tier those settings amount to.
    pub durability_tier: Option<super::durability::Tier>,
    /// This host's clock against the queue server's.
    pub clock: Option<ClockOffset>,
    pub host: Host,
    pub config: ConfigSnapshot,
    pub local_servers: Option<LocalInfo>,
    /// A queue spread over a Valkey Cluster: each stream, where it lives, and its jobs at
    /// the end of the test (counted since the last reset); absent on one server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<Shard>,
    pub warnings: Vec<String>,
    pub files: Vec<String>,
    /// Scenario details: cold-start actions, pgbench, warmup.
    pub extra: serde_json::Map<String, serde_json::Value>,
    pub summary: Summary,
}

/// The effective config a test ran with, passwords masked, as `qbench config` shows it:
/// its sections and keys, kept as plain values so that reading a manifest needs none of
/// the code that loads a config or connects to a server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigSnapshot(pub serde_json::Map<String, serde_json::Value>);

/// The seed's PostgreSQL settings (for an 8 GiB VM), as a `--local` server got them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    pub shared_buffers_mb: u64,
    pub effective_cache_size_mb: u64,
    pub maintenance_work_mem_mb: u64,
    pub work_mem_mb: u64,
    pub max_connections: u32,
}

/// One stream of a queue spread over a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub stream: String,
    /// The primary that serves the stream's slot, `host:port`.
    pub node: String,
    pub slot: u16,
    /// Jobs added to this stream (the reaper's re-adds not counted).
    pub produced: u64,
    /// Jobs completed from it.
    pub completed: u64,
    /// Commands the primary processed (`total_commands_processed`; every client's, and
    /// the same for each stream on one primary).
    #[serde(default)]
    pub node_commands: u64,
    /// The stream's counts when this process's test began (absolute, since the queue was
    /// set up): with them, processes whose windows differ merge into their union.
    #[serde(default)]
    pub at_start: ShardStart,
}

/// A stream's absolute counts when one process's test began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardStart {
    pub produced: u64,
    pub completed: u64,
    pub node_commands: u64,
}

/// What the manifest records about servers qbench started itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocalInfo {
    pub root: PathBuf,
    pub postgres_port: u16,
    pub postgres_pid: u32,
    pub postgres_tuning: Tuning,
    pub postgres_runs_as: Option<String>,
    pub valkey_port: u16,
    pub valkey_pid: u32,
    pub valkey_binary: PathBuf,
    pub valkey_is_redis_fallback: bool,
    pub valkey_persistence: String,
    /// `--valkey-cluster N`: every node's pid (the first is `valkey_pid`); empty without.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub valkey_cluster_pids: Vec<u32>,
    /// `--tls`: how the servers were put behind TLS; absent without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

/// How far this host's clock is from the queue server's, read at the midpoint of a round
/// trip. Latencies that cross hosts (a producer here, a worker there) carry the hosts'
/// difference; `analyze` warns when two processes of a test differ by more than 1 ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Server time minus this host's time, ms.
    pub offset_ms: f64,
    /// The round trip the reading took (the offset is good to about half of it), ms.
    pub rtt_ms: f64,
}
