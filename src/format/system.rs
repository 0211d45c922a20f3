//! `TEST_system.csv`: the machine, the server's processes and qbench, once per second.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Row {
    pub t_s: f64,
    pub cpu_pct: f64,
    pub mem_used_mb: u64,
    pub disk_read_bytes_s: u64,
    pub disk_write_bytes_s: u64,
    pub server_cpu_pct: Option<f64>,
    pub server_mem_mb: Option<u64>,
    pub qbench_cpu_pct: f64,
    pub qbench_mem_mb: u64,
}
