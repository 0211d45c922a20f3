//! What this binary is: its version with the commit it was built from, and the async
//! runtime it runs on. Manifests record both, so a result names the code behind it.

/// The version and the commit it was built from, as `--version` and manifests say it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("QBENCH_COMMIT"),
    ")"
);

/// The build and runtime a test ran on, as its manifest records them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Build {
    pub version: &'static str,
    /// Worker threads of the async runtime (`QBENCH_THREADS`); `None` when a caller
    /// other than the binary (a test) made the runtime.
    pub runtime_threads: Option<usize>,
}

impl Build {
    pub const fn new(runtime_threads: Option<usize>) -> Build {
        Build {
            version: VERSION,
            runtime_threads,
        }
    }
}

/// `QBENCH_THREADS`, else one less than the cores (at least 1): a benchmark client on
/// the server's host should leave it a core. Measured on 2 cores: one thread drained
/// skip_locked 5% faster than two and halved the producer's schedule-lag p99.
pub fn runtime_threads() -> usize {
    std::env::var("QBENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1)
        })
}
