//! valkey_streams: the producer XADDs to a stream; workers read through a consumer group
//! with XREADGROUP … BLOCK, each on its own connection; completion is XACK plus XDEL so
//! memory stays bounded. The reaper takes entries idle longer than the visibility timeout
//! with XAUTOCLAIM and re-adds them (one Lua call, so nothing is lost in between).
//!
//! On a Valkey Cluster (`valkey.cluster`) one logical queue is K streams spread over the
//! primaries ([`crate::queue::valkey::cluster`]); everything here then runs per stream
//! and sums, and the audit reads every stream.

mod reply;
mod scripts;
mod workers;

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use redis::{Script, Value};

use super::registry::{Design, DesignInfo};
use super::valkey::cluster::{self, Topology};
use super::valkey::conn::Client;
use super::valkey::ValkeyServer;
use super::{Backend, Consumer, Producer, Queue, QueueState, Server, Snapshot};
use crate::config::{Config, Valkey};
use crate::format::manifest::Shard;
use reply::{as_u64, field_u64};
use workers::{StreamConsumer, StreamProducer};

/// The keys beside the stream (see [`scripts`]).
#[derive(Clone)]
struct Keys {
    stream: String,
    seq: String,
    produced: String,
    done: String,
    requeued: String,
    completed: String,
}

impl Keys {
    fn of(stream: &str) -> Keys {
        let k = |suffix: &str| format!("{stream}:{suffix}");
        Keys {
            stream: stream.to_string(),
            seq: k("seq"),
            produced: k("produced"),
            done: k("done"),
            requeued: k("requeued"),
            completed: k("completed"),
        }
    }
}

/// A base for the counter if it does not exist yet: the clock in µs, so numbers handed
/// out after a server without persistence lost its counter never repeat earlier ones.
fn fresh_base() -> i64 {
    crate::clock::Clock::get().now_us()
}

pub struct ValkeyStreams {
    cfg: Valkey,
    /// One stream, or a cluster's K; the first one's counter hands out every number.
    streams: Arc<[Keys]>,
    /// A cluster's primaries and where the streams went; `None` on one node.
    topology: Option<Topology>,
    client: Client,
    /// Setup, depth, state and the reaper share its connection, which reconnects by
    /// itself after a server restart.
    server: ValkeyServer,
    /// Where this process's workers start on the streams (from its pid), so several
    /// processes with fewer workers than streams do not all block on the same ones.
    home_offset: usize,
    payload: Arc<[u8]>,
    visibility_ms: u64,
    reap_batch: usize,
    batch: usize,
    consumer_prefix: String,
}

#[async_trait]
impl Design for ValkeyStreams {
    const INFO: DesignInfo = DesignInfo {
        test_prefix: "valkey",
        ..DesignInfo::named("valkey_streams", Backend::Valkey).of_the_seed()
    };

    async fn open(cfg: &Config) -> Result<ValkeyStreams> {
        if cfg.benchmark.wakeup.modes().contains(&crate::config::Wakeup::Notify) {
            return Err(crate::error::usage(
                "benchmark.wakeup = notify is for the PostgreSQL designs: valkey_streams's workers block in XREADGROUP and wake as a job arrives; leave --wakeup out for it",
            ));
        }
        let v = &cfg.valkey;
        // A cluster is read, and refused unless whole, before anything else.
        let topology = match v.is_cluster() {
            true => Some(cluster::discover(v).await?),
            false => None,
        };
        let client = Client::open(v)?;
        // Fail now, with a clear line, if the server is unreachable.
        drop(client.connect(v).await?);
        let conn = client.shared(v).await?;
        if topology.is_none() {
            cluster::refuse_node_of_many(&mut conn.clone(), v).await?;
        }
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "host".into());
        let (streams, nodes): (Vec<Keys>, Vec<Valkey>) = match &topology {
            Some(t) => (
                t.streams.iter().map(|p| Keys::of(&p.stream)).collect(),
                t.primaries.iter().map(|p| p.cfg.clone()).collect(),
            ),
            None => (vec![Keys::of(&v.stream)], vec![v.clone()]),
        };
        let q = ValkeyStreams {
            cfg: v.clone(),
            server: ValkeyServer {
                cfg: v.clone(),
                conn,
                nodes,
                streams: streams.iter().map(|k| k.stream.clone()).collect(),
            },
            streams: streams.into(),
            topology,
            client,
            home_offset: std::process::id() as usize,
            payload: super::payload(cfg.benchmark.job_size_bytes),
            visibility_ms: (cfg.benchmark.visibility_timeout_s * 1000.0).ceil() as u64,
            reap_batch: 1000,
            batch: cfg.benchmark.dequeue_batch as usize,
            consumer_prefix: format!("{host}-{}", std::process::id()),
        };
        q.ensure_bases().await?;
        Ok(q)
    }
}

impl ValkeyStreams {
    /// Creates every stream's group; whether any was new.
    async fn create_groups(&self) -> Result<bool> {
        let mut created = false;
        for k in self.streams.iter() {
            created |= self.create_group(&k.stream).await?;
        }
        Ok(created)
    }

    async fn create_group(&self, stream: &str) -> Result<bool> {
        let mut c = self.server.conn.clone();
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(stream)
            .arg(&self.cfg.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut c)
            .await;
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(false),
            Err(e) => Err(e).context("XGROUP CREATE"),
        }
    }

    /// On a cluster, the other streams' bitmaps count from the first one's counter:
    /// gives each a base where it has none (a new stream, a node that lost its data).
    async fn ensure_bases(&self) -> Result<()> {
        if self.streams.len() < 2 {
            return Ok(());
        }
        let next = self.allocate(0).await?;
        let mut c = self.server.conn.clone();
        for k in &self.streams[1..] {
            redis::cmd("HSETNX")
                .arg(&k.seq)
                .arg("base")
                .arg(next)
                .query_async::<()>(&mut c)
                .await
                .with_context(|| format!("setting up {}", k.seq))?;
        }
        Ok(())
    }

    /// Every entry's seq and intended time in one stream, read in pages.
    async fn entries(&self, stream: &str) -> Result<Vec<(i64, i64)>> {
        let mut c = self.server.conn.clone();
        let mut out = vec![];
        let mut from = "-".to_string();
        loop {
            let page: Value = redis::cmd("XRANGE")
                .arg(stream)
                .arg(&from)
                .arg("+")
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut c)
                .await
                .context("reading the stream")?;
            let entries = reply::entries(page)?;
            let Some((last, _)) = entries.last() else {
                return Ok(out);
            };
            from = format!("({}", String::from_utf8_lossy(last));
            let n = entries.len();
            out.extend(entries.into_iter().map(|(_, job)| job));
            if n < 10_000 {
                return Ok(out);
            }
        }
    }
}

/// One stream's state: XINFO, XPENDING and the requeue and completion counters.
struct StreamState {
    length: u64,
    in_flight: u64,
    /// Jobs added, the reaper's re-adds not counted.
    produced: u64,
    completed: u64,
}

impl ValkeyStreams {
    async fn stream_state(&self, k: &Keys) -> Result<StreamState> {
        let mut c = self.server.conn.clone();
        let (info, pending, requeued, completed): (Value, Value, Option<u64>, Option<u64>) =
            redis::pipe()
                .cmd("XINFO")
                .arg("STREAM")
                .arg(&k.stream)
                .cmd("XPENDING")
                .arg(&k.stream)
                .arg(&self.cfg.group)
                .cmd("GET")
                .arg(&k.requeued)
                .cmd("GET")
                .arg(&k.completed)
                .query_async(&mut c)
                .await
                .with_context(|| format!("reading the state of stream {}", k.stream))?;
        let length = field_u64(&info, "length").ok_or_else(|| anyhow!("XINFO: no length"))?;
        let added = field_u64(&info, "entries-added")
            .ok_or_else(|| anyhow!("XINFO: no entries-added (Valkey/Redis ≥ 7 needed)"))?;
        let in_flight = match &pending {
            Value::Array(a) => a.first().and_then(as_u64).unwrap_or(0),
            _ => 0,
        };
        Ok(StreamState {
            length,
            in_flight,
            // Re-added entries were counted by entries-added a second time.
            produced: added.saturating_sub(requeued.unwrap_or(0)),
            completed: completed.unwrap_or(0),
        })
    }

    /// One stream's completed seqs, from its bitmap and its own base.
    async fn completed(&self, k: &Keys) -> Result<Vec<i64>> {
        let mut c = self.server.conn.clone();
        let (base, done): (Option<i64>, Option<Vec<u8>>) = redis::pipe()
            .cmd("HGET")
            .arg(&k.seq)
            .arg("base")
            .cmd("GET")
            .arg(&k.done)
            .query_async(&mut c)
            .await
            .context("reading the completion bitmap")?;
        let mut completed = vec![];
        if let (Some(base), Some(bits)) = (base, done) {
            // SETBIT numbers bits from the most significant bit of each byte.
            for (i, b) in bits.iter().enumerate() {
                for bit in 0..8 {
                    if b & (0x80 >> bit) != 0 {
                        completed.push(base + (i * 8 + bit) as i64);
                    }
                }
            }
        }
        Ok(completed)
    }

    fn names(&self) -> String {
        match self.streams.len() {
            1 => format!("stream {}", self.cfg.stream),
            n => format!(
                "{n} streams {}…{} over {} primaries",
                self.streams[0].stream,
                self.streams[n - 1].stream,
                self.server.nodes.len()
            ),
        }
    }
}

#[async_trait]
impl Queue for ValkeyStreams {
    /// On a cluster the streams and their primaries bound the rate; one stream has none.
    fn options(&self) -> String {
        match self.streams.len() {
            1 => String::new(),
            n => format!("streams={n} primaries={}", self.server.nodes.len()),
        }
    }

    fn server(&self) -> &dyn Server {
        &self.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        if reset {
            self.reset().await?;
            return Ok(format!(
                "{} with group {} ready, emptied",
                self.names(),
                self.cfg.group
            ));
        }
        let created = self.create_groups().await?;
        self.ensure_bases().await?;
        Ok(format!(
            "{} with group {} {}",
            self.names(),
            self.cfg.group,
            if created { "created" } else { "ready" }
        ))
    }

    async fn reset(&self) -> Result<()> {
        let mut c = self.server.conn.clone();
        let mut next = None;
        let script = Script::new(scripts::RESET);
        for k in self.streams.iter() {
            let mut call = script.prepare_invoke();
            call.key(&k.stream)
                .key(&k.seq)
                .key(&k.produced)
                .key(&k.done)
                .key(&k.requeued)
                .key(&k.completed);
            if let Some(n) = next {
                call.arg(n);
            }
            call.invoke_async::<()>(&mut c)
                .await
                .context("emptying the stream")?;
            if self.streams.len() > 1 && next.is_none() {
                // The first stream's counter (made if new) numbers every stream's jobs.
                next = Some(self.allocate(0).await?);
            }
        }
        self.create_groups().await?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64> {
        let mut c = self.server.conn.clone();
        let mut depth = 0;
        // Completed entries are deleted, so the lengths are exactly what is left to do.
        for k in self.streams.iter() {
            depth += redis::cmd("XLEN")
                .arg(&k.stream)
                .query_async::<u64>(&mut c)
                .await?;
        }
        Ok(depth)
    }

    async fn state(&self) -> Result<QueueState> {
        let mut sum = QueueState::default();
        for k in self.streams.iter() {
            let s = self.stream_state(k).await?;
            sum.pending += s.length.saturating_sub(s.in_flight);
            sum.in_flight += s.in_flight;
            sum.completed += s.completed;
            sum.produced += s.produced;
        }
        Ok(sum)
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        Ok(Box::new(StreamProducer {
            conn: self.client.connect(&self.cfg).await?,
            streams: self.streams.clone(),
            payload: self.payload.clone(),
            script: Script::new(scripts::ENQUEUE),
        }))
    }

    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(StreamConsumer {
            conn: self.client.connect(&self.cfg).await?,
            streams: self.streams.clone(),
            home: (worker + self.home_offset) % self.streams.len(),
            group: self.cfg.group.clone(),
            name: format!("{}-w{worker}", self.consumer_prefix),
            block_ms: self.cfg.block_ms,
            batch: self.batch,
            script: Script::new(scripts::COMPLETE),
        }))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        let mut c = self.server.conn.clone();
        let mut n = 0;
        for k in self.streams.iter() {
            n += Script::new(scripts::REAP)
                .key(&k.stream)
                .key(&k.requeued)
                .arg(&self.cfg.group)
                .arg(format!("{}-reaper", self.consumer_prefix))
                .arg(self.visibility_ms)
                .arg(self.reap_batch)
                .invoke_async::<u64>(&mut c)
                .await
                .context("reaping expired stream entries")?;
        }
        Ok(Some(n))
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        let mut c = self.server.conn.clone();
        Script::new(scripts::ALLOCATE)
            .key(&self.streams[0].seq)
            .arg(n)
            .arg(fresh_base())
            .invoke_async(&mut c)
            .await
            .context("taking a block of sequence numbers")
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        let mut c = self.server.conn.clone();
        for k in self.streams.iter() {
            let seq: i64 = Script::new(scripts::SABOTAGE)
                .key(&k.stream)
                .arg(&self.cfg.group)
                .invoke_async(&mut c)
                .await
                .context("removing a waiting stream entry")?;
            if seq >= 0 {
                return Ok(Some(seq));
            }
        }
        Ok(None)
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let mut out = Snapshot::default();
        for k in self.streams.iter() {
            out.left.extend(self.entries(&k.stream).await?);
            out.completed.extend(self.completed(k).await?);
        }
        Ok(out)
    }

    async fn shards(&self) -> Result<Vec<Shard>> {
        let Some(t) = &self.topology else {
            return Ok(vec![]);
        };
        let mut commands = vec![];
        for p in &t.primaries {
            let mut c = super::valkey::node_conn(&p.cfg).await?;
            let info: String = redis::cmd("INFO").arg("stats").query_async(&mut c).await?;
            commands.push(
                cluster::info_value(&info, "total_commands_processed")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            );
        }
        let mut out = vec![];
        for (p, k) in t.streams.iter().zip(self.streams.iter()) {
            let s = self.stream_state(k).await?;
            out.push(Shard {
                stream: p.stream.clone(),
                node: t.primaries[p.primary].addr.clone(),
                slot: p.slot,
                produced: s.produced,
                completed: s.completed,
                node_commands: commands[p.primary],
                at_start: Default::default(),
            });
        }
        Ok(out)
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        Ok(Box::new(
            crate::queue::valkey::ValkeyHorizon::open(&self.server.nodes).await?,
        ))
    }
}
