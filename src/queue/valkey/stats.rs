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

/// One node's, or the sum over a cluster's primaries (each sampled alone); the stream
/// columns sum over the queue's streams.
pub struct ValkeyStats {
    pub cfg: Valkey,
    pub nodes: Vec<Valkey>,
    pub streams: Vec<String>,
}

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
            let mut nodes = vec![];
            for node in &self.nodes {
                nodes.push(Node::open(node).await?);
            }
            // One server: the stream's counts go in the node's pipeline, as they always
            // did; a cluster's streams are read through its routing.
            let queue = match self.cfg.is_cluster() {
                true => Some(
                    super::conn::Client::open(&self.cfg)?
                        .connect(&self.cfg)
                        .await?,
                ),
                false => None,
            };
            let source = Counters {
                nodes,
                queue,
                cfg: self.cfg,
                streams: self.streams,
            };
            per_second(source, out, started, stop).await
        })
    }
}

/// One node's counters between samples.
struct Node {
    conn: MultiplexedConnection,
    prev: (Instant, u64),
    delayed_fsync: u64,
    /// The latest time (Unix seconds) each `LATENCY LATEST` event was seen at.
    seen: BTreeMap<String, i64>,
    /// False once the server refused `LATENCY LATEST`.
    latency_monitor: bool,
}

impl Node {
    async fn open(cfg: &Valkey) -> Result<Node> {
        // The crate's default response timeout (500 ms): a row is skipped, not waited
        // for, while the server restarts.
        let mut conn = super::client(cfg)?
            .get_multiplexed_async_connection()
            .await?;
        let first: String = redis::cmd("INFO").arg("all").query_async(&mut conn).await?;
        // Events before the test are not the test's. A server that refuses LATENCY
        // (an ACL, a managed service) still gets every other column.
        let mut seen = BTreeMap::new();
        let latency = latest(&mut conn).await;
        if let Some(l) = &latency {
            new_latency_events(l, &mut seen);
        }
        Ok(Node {
            prev: (
                Instant::now(),
                info_field(&first, "total_commands_processed"),
            ),
            delayed_fsync: info_field(&first, "aof_delayed_fsync"),
            seen,
            latency_monitor: latency.is_some(),
            conn,
        })
    }
}

struct Counters {
    nodes: Vec<Node>,
    /// A cluster's streams, through its routing; `None` on one server.
    queue: Option<super::conn::Conn>,
    cfg: Valkey,
    streams: Vec<String>,
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

impl Node {
    /// This node's part of a row: the INFO columns, and the counts of `streams` (none:
    /// left zero) read in the same pipeline.
    async fn sample(&mut self, t_s: f64, streams: &[String], group: &str) -> Option<ValkeyRow> {
        let mut pipe = redis::pipe();
        pipe.cmd("INFO").arg("all");
        for s in streams {
            pipe.cmd("XLEN").arg(s).cmd("XPENDING").arg(s).arg(group);
        }
        let mut replies: Vec<Value> = pipe.query_async(&mut self.conn).await.ok()?;
        let counts = replies.split_off(1);
        let info: String = redis::from_redis_value(replies.pop()?).ok()?;
        let (stream_length, pending_entries) = stream_counts(counts)?;
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
        Some(ValkeyRow {
            t_s,
            ops_s: info_field(&info, "instantaneous_ops_per_sec"),
            commands_s,
            commands_processed: total,
            used_memory_bytes: info_field(&info, "used_memory"),
            stream_length,
            pending_entries,
            connected_clients: info_field(&info, "connected_clients"),
            aof_rewrite_in_progress: info_field(&info, "aof_rewrite_in_progress") > 0,
            rdb_bgsave_in_progress: info_field(&info, "rdb_bgsave_in_progress") > 0,
            aof_delayed_fsync: delayed_fsync.saturating_sub(prev_delayed),
            latency_events,
        })
    }
}

#[async_trait::async_trait]
impl Source for Counters {
    type Row = ValkeyRow;

    async fn sample(&mut self, t_s: f64) -> Option<ValkeyRow> {
        let mut rows = vec![];
        let on_node: &[String] = match self.queue {
            Some(_) => &[],
            None => &self.streams,
        };
        for node in &mut self.nodes {
            rows.push(node.sample(t_s, on_node, &self.cfg.group).await?);
        }
        let mut sum = rows.pop()?;
        for r in rows.into_iter().rev() {
            sum.ops_s += r.ops_s;
            sum.commands_s += r.commands_s;
            sum.commands_processed += r.commands_processed;
            sum.used_memory_bytes += r.used_memory_bytes;
            sum.connected_clients += r.connected_clients;
            sum.aof_rewrite_in_progress |= r.aof_rewrite_in_progress;
            sum.rdb_bgsave_in_progress |= r.rdb_bgsave_in_progress;
            sum.aof_delayed_fsync += r.aof_delayed_fsync;
            if !r.latency_events.is_empty() {
                sum.latency_events = match sum.latency_events.is_empty() {
                    true => r.latency_events,
                    false => format!("{};{}", r.latency_events, sum.latency_events),
                };
            }
        }
        if let Some(queue) = &mut self.queue {
            let mut pipe = redis::pipe();
            for st in &self.streams {
                // One pipeline per stream: a cluster routes a pipeline to one slot's node.
                pipe.cmd("XLEN")
                    .arg(st)
                    .cmd("XPENDING")
                    .arg(st)
                    .arg(&self.cfg.group);
                let counts: Vec<Value> = pipe.query_async(queue).await.ok()?;
                pipe.clear();
                let (len, pending) = stream_counts(counts)?;
                sum.stream_length += len;
                sum.pending_entries += pending;
            }
        }
        Some(sum)
    }
}

/// Sums `[XLEN, XPENDING, …]` replies: entries, and of those delivered and unacknowledged.
fn stream_counts(replies: Vec<Value>) -> Option<(u64, u64)> {
    let (mut len, mut pending) = (0, 0);
    for pair in replies.chunks(2) {
        let [l, p] = pair else { return None };
        len += redis::from_redis_value_ref::<u64>(l).ok()?;
        pending += match p {
            Value::Array(a) => match a.first() {
                Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            _ => 0,
        };
    }
    Some((len, pending))
}
