//! `TEST_system.csv`: the machine, the server's processes and qbench, once per second.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Row {
    pub t_s: f64,
    /// The machine's CPU use, % of all cores, and the same in cores (1.0 = one core).
    pub cpu_pct: f64,
    pub cpu_cores: f64,
    pub mem_used_mb: u64,
    pub disk_read_bytes_s: u64,
    pub disk_write_bytes_s: u64,
    /// The server's processes together: % of all cores, and cores.
    pub server_cpu_pct: Option<f64>,
    pub server_cores: Option<f64>,
    /// The server's busiest single thread, in cores: ≥ 0.9 on a server that executes
    /// commands on one thread (Valkey) means it is saturated.
    pub server_busiest_thread_cores: Option<f64>,
    pub server_mem_mb: Option<u64>,
    /// `pss`, or `rss` where PSS was unreadable (RSS counts shared memory per process).
    pub server_mem_source: Option<String>,
    pub qbench_cpu_pct: f64,
    pub qbench_cores: f64,
    pub qbench_mem_mb: u64,
}
