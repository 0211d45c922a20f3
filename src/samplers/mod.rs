//! Once-a-second samplers that run beside a test and write one CSV row per second:
//! the machine and its processes, and the server's own statistics.

pub mod pg_stats;
pub mod system;
pub mod valkey_stats;

/// Seconds since the test started, as written in every CSV.
pub fn secs(since: std::time::Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Ticks at whole seconds after `started`; a late tick delays the next rather than bursting.
pub fn every_second(started: std::time::Instant) -> tokio::time::Interval {
    let second = std::time::Duration::from_secs(1);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::from_std(started + second), second);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}
