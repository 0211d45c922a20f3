//! Every file qbench writes or reads, as typed values with their readers and writers.
//! One submodule per section of `docs/FORMATS.md`.
//!
//! Writers (`workload`, `suite`, the samplers) and readers (`analyze`, `graph`) depend on
//! this module and on nothing of each other. It knows no server and opens no connection:
//! designs and backends appear here as the names the files carry.

pub mod audit;
pub mod capacity;
pub mod cost;
pub mod crash;
pub mod durability;
pub mod files;
pub mod hlog;
pub mod horizon;
pub mod layout;
pub mod manifest;
pub mod metrics;
pub mod pgbench;
pub mod read;
pub mod server_stats;
pub mod summary;
pub mod system;
pub mod timeline;
pub mod verdict;
pub mod workload;

/// Bumped on any incompatible change of the manifest or metrics lines.
pub const FORMAT_VERSION: u32 = 2;
