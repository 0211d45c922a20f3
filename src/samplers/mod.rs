//! Once-a-second samplers that run beside a test and write one CSV row per second:
//! the machine and its processes, and the server's own statistics.

pub mod pg_stats;
pub mod system;
pub mod valkey_stats;

/// Seconds since the test started, as written in every CSV.
pub fn secs(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}
