//! `TEST_valkey_stats.csv`: Valkey's own counters once per second.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use anyhow::Result;
use redis::aio::MultiplexedConnection;
use redis::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Valkey;
use crate::format::server_stats::{ValkeyRow, VALKEY_STATS};
use crate::samplers::{per_second, Source, StatsSampler};

pub struct ValkeyStats(pub Valkey);

fn info_field(info: &str, key: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl StatsSampler for ValkeyStats {
    fn file(&self) -> &'static str {
        VALKEY_STATS
    }

    fn start(
        self: Box<Self>,
        out: BufWriter<File>,
        started: Instant,
        stop: CancellationToken,
    ) -> JoinHandle<Result<BufWriter<File>>> {
        tokio::spawn(async move {
            let client = super::client(&self.0)?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            let first: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
            // Events before the test are not the test's. A server that refuses LATENCY
            // (an ACL, a managed service) still gets every other column.
            let mut seen = BTreeMap::new();
            let latency = latest(&mut conn).await;
            if let Some(l) = &latency {
                new_latency_events(l, &mut seen);
            }
            let source = Counters {
                prev: (
                    Instant::now(),
                    info_field(&first, "total_commands_processed"),
                ),
                delayed_fsync: info_field(&first, "aof_delayed_fsync"),
                seen,
                latency_monitor: latency.is_some(),
                conn,
                cfg: self.0,
            };
            per_second(source, out, started, stop).await
        })
    }
}

struct Counters {
    conn: MultiplexedConnection,
    cfg: Valkey,
    prev: (Instant, u64),
    delayed_fsync: u64,
    /// The latest time (Unix seconds) each `LATENCY LATEST` event was seen at.
    seen: BTreeMap<String, i64>,
    /// False once the server refused `LATENCY LATEST`.
    latency_monitor: bool,
}

async fn latest(conn: &mut MultiplexedConnection) -> Option<Value> {
    redis::cmd("LATENCY")
        .arg("LATEST")
        .query_async(conn)
        .await
        .ok()
}

/// `LATENCY LATEST` rows (`[event, unix time, latest ms, max ms, …]`) newer than `seen`,
/// as `event:ms` joined by `;`; `seen` is brought up to date.
fn new_latency_events(latest: &Value, seen: &mut BTreeMap<String, i64>) -> String {
    let Value::Array(rows) = latest else {
        return String::new();
    };
    let mut out = vec![];
    for row in rows {
        let Value::Array(f) = row else { continue };
        let name = match f.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => continue,
        };
        let (Some(Value::Int(at)), Some(Value::Int(ms))) = (f.get(1), f.get(2)) else {
            continue;
        };
        if seen.get(&name).is_none_or(|prev| at > prev) {
            out.push(format!("{name}:{ms}"));
            seen.insert(name, *at);
        }
    }
    out.join(";")
}

#[async_trait::async_trait]
impl Source for Counters {
    type Row = ValkeyRow;

    async fn sample(&mut self, t_s: f64) -> Option<ValkeyRow> {
        let (info, len, pending): (String, u64, Value) = redis::pipe()
            .cmd("INFO")
            .arg("all")
            .cmd("XLEN")
            .arg(&self.cfg.stream)
            .cmd("XPENDING")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .query_async(&mut self.conn)
            .await
            .ok()?;
        let now = Instant::now();
        let total = info_field(&info, "total_commands_processed");
        let commands_s =
            total.saturating_sub(self.prev.1) as f64 / (now - self.prev.0).as_secs_f64().max(1e-3);
        self.prev = (now, total);
        let latency_events = match self.latency_monitor {
            true => match latest(&mut self.conn).await {
                Some(l) => new_latency_events(&l, &mut self.seen),
                None => {
                    self.latency_monitor = false;
                    String::new()
                }
            },
            false => String::new(),
        };
        let delayed_fsync = info_field(&info, "aof_delayed_fsync");
        let prev_delayed = std::mem::replace(&mut self.delayed_fsync, delayed_fsync);
        let pending = match pending {
            Value::Array(a) => match a.first() {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        };
        Some(ValkeyRow {
            t_s,
            ops_s: info_field(&info, "instantaneous_ops_per_sec"),
            commands_s,
            commands_processed: total,
            used_memory_bytes: info_field(&info, "used_memory"),
            stream_length: len,
            pending_entries: pending,
            connected_clients: info_field(&info, "connected_clients"),
            aof_rewrite_in_progress: info_field(&info, "aof_rewrite_in_progress") > 0,
            rdb_bgsave_in_progress: info_field(&info, "rdb_bgsave_in_progress") > 0,
            aof_delayed_fsync: delayed_fsync.saturating_sub(prev_delayed),
            latency_events,
        })
    }
}
