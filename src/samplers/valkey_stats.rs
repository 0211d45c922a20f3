//! `TEST_valkey_stats.csv`: Valkey's own counters once per second.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use redis::Value;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Valkey;

#[derive(Debug, Serialize)]
pub struct Row {
    pub t_s: f64,
    /// The server's own instantaneous_ops_per_sec.
    pub ops_s: u64,
    /// Commands processed during this second (from total_commands_processed).
    pub commands_s: f64,
    pub commands_processed: u64,
    pub used_memory_bytes: u64,
    pub stream_length: u64,
    pub pending_entries: u64,
    pub connected_clients: u64,
}

fn info_field(info: &str, key: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

pub fn start<W: Write + Send + 'static>(
    out: W,
    v: Valkey,
    started: Instant,
    stop: CancellationToken,
) -> JoinHandle<Result<W>> {
    tokio::spawn(async move {
        let mut csv = csv::Writer::from_writer(out);
        let client = redis::Client::open(v.url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let first: String = redis::cmd("INFO")
            .arg("stats")
            .query_async(&mut conn)
            .await?;
        let mut prev = (
            Instant::now(),
            info_field(&first, "total_commands_processed"),
        );
        let mut tick = super::every_second(started);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let reply: redis::RedisResult<(String, u64, Value)> = redis::pipe()
                .cmd("INFO")
                .arg("all")
                .cmd("XLEN")
                .arg(&v.stream)
                .cmd("XPENDING")
                .arg(&v.stream)
                .arg(&v.group)
                .query_async(&mut conn)
                .await;
            let Ok((info, len, pending)) = reply else {
                continue;
            };
            let now = Instant::now();
            let total = info_field(&info, "total_commands_processed");
            let commands_s =
                total.saturating_sub(prev.1) as f64 / (now - prev.0).as_secs_f64().max(1e-3);
            prev = (now, total);
            let pending = match pending {
                Value::Array(a) => match a.first() {
                    Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                    _ => 0,
                },
                _ => 0,
            };
            csv.serialize(Row {
                t_s: super::secs(started),
                ops_s: info_field(&info, "instantaneous_ops_per_sec"),
                commands_s,
                commands_processed: total,
                used_memory_bytes: info_field(&info, "used_memory"),
                stream_length: len,
                pending_entries: pending,
                connected_clients: info_field(&info, "connected_clients"),
            })?;
            csv.flush()?;
        }
        csv.flush()?;
        csv.into_inner()
            .map_err(|e| anyhow::anyhow!("flushing valkey_stats: {e}"))
    })
}
