//! valkey_streams: the producer XADDs to a stream; workers read through a consumer group
//! with XREADGROUP … BLOCK, each on its own connection; completion is XACK plus XDEL so
//! memory stays bounded. The reaper takes entries idle longer than the visibility timeout
//! with XAUTOCLAIM and re-adds them (one Lua call, so nothing is lost in between).

mod reply;
mod scripts;

use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{Script, Value};

use super::registry::{Design, DesignInfo};
use super::valkey::{self, ValkeyServer};
use super::{
    Backend, Claimed, Consumer, Handle, NewJob, Producer, Queue, QueueState, Server, Snapshot,
};
use crate::config::{Config, Valkey};
use reply::{as_u64, field_u64, parse_read_reply};

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
    keys: Keys,
    client: redis::Client,
    /// Setup, depth, state and the reaper share its connection, which reconnects by
    /// itself after a server restart.
    server: ValkeyServer,
    payload: Arc<[u8]>,
    visibility_ms: u64,
    reap_batch: usize,
    batch: usize,
    consumer_prefix: String,
}

#[async_trait]
impl Design for ValkeyStreams {
    const INFO: DesignInfo = DesignInfo {
        name: "valkey_streams",
        backend: Backend::Valkey,
        test_prefix: "valkey",
    };

    async fn open(cfg: &Config) -> Result<ValkeyStreams> {
        if cfg.benchmark.wakeup.modes().contains(&crate::config::Wakeup::Notify) {
            return Err(crate::error::usage(
                "benchmark.wakeup = notify is for the PostgreSQL designs: valkey_streams's workers block in XREADGROUP and wake as a job arrives; leave --wakeup out for it",
            ));
        }
        let v = &cfg.valkey;
        let client = valkey::client(v)?;
        // Fail now, with a clear line, if the server is unreachable.
        drop(valkey::connect(&client, v).await?);
        let conn = valkey::manager(&client, v).await?;
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "host".into());
        Ok(ValkeyStreams {
            cfg: v.clone(),
            keys: Keys::of(&v.stream),
            client,
            server: ValkeyServer {
                cfg: v.clone(),
                conn,
            },
            payload: super::payload(cfg.benchmark.job_size_bytes),
            visibility_ms: (cfg.benchmark.visibility_timeout_s * 1000.0).ceil() as u64,
            reap_batch: 1000,
            batch: cfg.benchmark.dequeue_batch as usize,
            consumer_prefix: format!("{host}-{}", std::process::id()),
        })
    }
}

impl ValkeyStreams {
    async fn create_group(&self) -> Result<bool> {
        let mut c = self.server.conn.clone();
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.cfg.stream)
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

    /// Every entry's seq and intended time, read in pages.
    async fn entries(&self) -> Result<Vec<(i64, i64)>> {
        let mut c = self.server.conn.clone();
        let mut out = vec![];
        let mut from = "-".to_string();
        loop {
            let page: Value = redis::cmd("XRANGE")
                .arg(&self.keys.stream)
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

#[async_trait]
impl Queue for ValkeyStreams {
    fn server(&self) -> &dyn Server {
        &self.server
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        if reset {
            self.reset().await?;
            return Ok(format!(
                "stream {} with group {} ready, emptied",
                self.cfg.stream, self.cfg.group
            ));
        }
        let created = self.create_group().await?;
        Ok(format!(
            "stream {} with group {} {}",
            self.cfg.stream,
            self.cfg.group,
            if created { "created" } else { "ready" }
        ))
    }

    async fn reset(&self) -> Result<()> {
        let mut c = self.server.conn.clone();
        let k = &self.keys;
        Script::new(scripts::RESET)
            .key(&k.stream)
            .key(&k.seq)
            .key(&k.produced)
            .key(&k.done)
            .key(&k.requeued)
            .key(&k.completed)
            .invoke_async::<()>(&mut c)
            .await
            .context("emptying the stream")?;
        self.create_group().await?;
        Ok(())
    }

    async fn depth(&self) -> Result<u64> {
        let mut c = self.server.conn.clone();
        // Completed entries are deleted, so the length is exactly what is left to do.
        Ok(redis::cmd("XLEN")
            .arg(&self.cfg.stream)
            .query_async(&mut c)
            .await?)
    }

    async fn state(&self) -> Result<QueueState> {
        let mut c = self.server.conn.clone();
        let (info, pending, requeued, completed): (Value, Value, Option<u64>, Option<u64>) =
            redis::pipe()
                .cmd("XINFO")
                .arg("STREAM")
                .arg(&self.cfg.stream)
                .cmd("XPENDING")
                .arg(&self.cfg.stream)
                .arg(&self.cfg.group)
                .cmd("GET")
                .arg(&self.keys.requeued)
                .cmd("GET")
                .arg(&self.keys.completed)
                .query_async(&mut c)
                .await
                .context("reading the stream's state")?;
        let length = field_u64(&info, "length").ok_or_else(|| anyhow!("XINFO: no length"))?;
        let added = field_u64(&info, "entries-added")
            .ok_or_else(|| anyhow!("XINFO: no entries-added (Valkey/Redis ≥ 7 needed)"))?;
        let in_flight = match &pending {
            Value::Array(a) => a.first().and_then(as_u64).unwrap_or(0),
            _ => 0,
        };
        // Re-added entries were counted by entries-added a second time.
        let produced = added.saturating_sub(requeued.unwrap_or(0));
        Ok(QueueState {
            pending: length.saturating_sub(in_flight),
            in_flight,
            completed: completed.unwrap_or(0),
            produced,
        })
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        let conn = valkey::connect(&self.client, &self.cfg).await?;
        Ok(Box::new(StreamProducer {
            conn,
            keys: self.keys.clone(),
            payload: self.payload.clone(),
            script: Script::new(scripts::ENQUEUE),
        }))
    }

    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>> {
        let conn = valkey::connect(&self.client, &self.cfg).await?;
        Ok(Box::new(StreamConsumer {
            conn,
            keys: self.keys.clone(),
            group: self.cfg.group.clone(),
            name: format!("{}-w{worker}", self.consumer_prefix),
            block_ms: self.cfg.block_ms,
            batch: self.batch,
            script: Script::new(scripts::COMPLETE),
        }))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        let mut c = self.server.conn.clone();
        let n: u64 = Script::new(scripts::REAP)
            .key(&self.keys.stream)
            .key(&self.keys.requeued)
            .arg(&self.cfg.group)
            .arg(format!("{}-reaper", self.consumer_prefix))
            .arg(self.visibility_ms)
            .arg(self.reap_batch)
            .invoke_async(&mut c)
            .await
            .context("reaping expired stream entries")?;
        Ok(Some(n))
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        let mut c = self.server.conn.clone();
        Script::new(scripts::ALLOCATE)
            .key(&self.keys.seq)
            .arg(n)
            .arg(fresh_base())
            .invoke_async(&mut c)
            .await
            .context("taking a block of sequence numbers")
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        let left = self.entries().await?;
        let mut c = self.server.conn.clone();
        let (base, done): (Option<i64>, Option<Vec<u8>>) = redis::pipe()
            .cmd("HGET")
            .arg(&self.keys.seq)
            .arg("base")
            .cmd("GET")
            .arg(&self.keys.done)
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
        Ok(Snapshot { left, completed })
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        Ok(Box::new(
            crate::queue::valkey::ValkeyHorizon::open(&self.cfg).await?,
        ))
    }
}

struct StreamProducer {
    conn: MultiplexedConnection,
    keys: Keys,
    payload: Arc<[u8]>,
    script: Script,
}

#[async_trait]
impl Producer for StreamProducer {
    /// Always through the script, first attempts too: the bitmap it sets is what makes a
    /// later retry of the same jobs add nothing.
    async fn enqueue(&mut self, jobs: &[NewJob], _retry: bool) -> Result<()> {
        let mut call = self.script.key(&self.keys.stream);
        call.key(&self.keys.produced)
            .key(&self.keys.seq)
            .arg(&self.payload[..]);
        for j in jobs {
            call.arg(j.seq).arg(j.enqueued_at_us);
        }
        call.invoke_async::<u64>(&mut self.conn).await?;
        Ok(())
    }
}

struct StreamConsumer {
    conn: MultiplexedConnection,
    keys: Keys,
    group: String,
    name: String,
    block_ms: u64,
    batch: usize,
    script: Script,
}

impl StreamConsumer {
    /// A server restarted without persistence has lost the stream and its group: recreate
    /// them (the jobs it held are gone; the audit names them).
    async fn recreate_group(&mut self) -> Result<()> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(&self.group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut self.conn)
            .await;
        match r {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Consumer for StreamConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let reply: redis::RedisResult<Value> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(self.batch)
            .arg("BLOCK")
            .arg(self.block_ms)
            .arg("STREAMS")
            .arg(&self.keys.stream)
            .arg(">")
            .query_async(&mut self.conn)
            .await;
        match reply {
            Ok(reply) => parse_read_reply(reply),
            Err(e) if e.code() == Some("NOGROUP") => {
                self.recreate_group().await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let mut call = self.script.key(&self.keys.stream);
        call.key(&self.keys.completed)
            .key(&self.keys.done)
            .key(&self.keys.seq)
            .arg(&self.group);
        let mut any = false;
        for j in &jobs {
            if let Handle::Entry(id) = &j.handle {
                call.arg(&id[..]).arg(j.seq);
                any = true;
            }
        }
        if !any {
            return Ok(vec![]);
        }
        // XACK, XDEL, the done bit and the count in one round trip, fenced by XACK.
        let late: Vec<i64> = call.invoke_async(&mut self.conn).await?;
        Ok(late)
    }

    /// Nothing to wait for: the claim itself blocked for `valkey.block_ms`.
    async fn idle(&mut self) {}
}
