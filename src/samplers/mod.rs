//! Once-a-second samplers that run beside a test and write one CSV row per second: the
//! machine and its processes (`system`), and a server's own statistics through
//! [`StatsSampler`], which each server implements behind the `Queue` trait.

pub mod system;

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Seconds since the test started, as written in every CSV.
pub fn secs(since: Instant) -> f64 {
    (since.elapsed().as_secs_f64() * 1000.0).round() / 1000.0
}

/// Ticks at whole seconds after `started`; a late tick delays the next rather than bursting.
pub fn every_second(started: Instant) -> tokio::time::Interval {
    let second = std::time::Duration::from_secs(1);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::from_std(started + second), second);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// A server's statistics, sampled once per second into `TEST_<file()>`.
pub trait StatsSampler: Send {
    /// The file kind it writes, e.g. `db_stats.csv`.
    fn file(&self) -> &'static str;
    /// Samples until `stop`; returns the writer, flushed.
    fn start(
        self: Box<Self>,
        out: BufWriter<File>,
        started: Instant,
        stop: CancellationToken,
    ) -> JoinHandle<Result<BufWriter<File>>>;
}

/// Where one server's rows come from.
#[async_trait::async_trait]
pub trait Source: Send {
    type Row: Serialize + Send;
    /// One row, or `None` to skip this second (a failed query is not a crash).
    async fn sample(&mut self, t_s: f64) -> Option<Self::Row>;
}

/// The loop every server sampler runs: a row per second until `stop`.
pub async fn per_second<S: Source, W: Write>(
    mut source: S,
    out: W,
    started: Instant,
    stop: CancellationToken,
) -> Result<W> {
    let mut csv = csv::Writer::from_writer(out);
    let mut tick = every_second(started);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => break,
        }
        if let Some(row) = source.sample(secs(started)).await {
            csv.serialize(row)?;
            csv.flush()?;
        }
    }
    csv.flush()?;
    csv.into_inner()
        .map_err(|e| anyhow::anyhow!("flushing the server's statistics: {e}"))
}
