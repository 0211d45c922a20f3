//! valkey_streams: the producer XADDs to a stream; workers read through a consumer group
//! with XREADGROUP … BLOCK, each on its own connection; completion is XACK plus XDEL so
//! memory stays bounded. The reaper takes entries idle longer than the visibility timeout
//! with XAUTOCLAIM and re-adds them (one Lua call, so nothing is lost in between).

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::Value;

use super::registry::{Design, DesignInfo};
use super::valkey::{self, ValkeyServer};
use super::{
    Backend, Claimed, Consumer, Handle, NewJob, Producer, Queue, QueueState, Server,
};
use crate::config::{Config, Valkey};

/// Re-adds expired entries with their attempts raised, then acks and deletes the old ones.
/// KEYS: stream, requeue counter. ARGV: group, reaper consumer, min idle ms, count.
const REAP_LUA: &str = r#"
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local n = 0
for _, e in ipairs(res[2]) do
  if e and e[2] then
    local f, v = e[2], {}
    for i = 1, #f, 2 do v[f[i]] = f[i + 1] end
    redis.call('XADD', KEYS[1], '*', 's', v['s'], 't', v['t'], 'a', (tonumber(v['a']) or 0) + 1, 'p', v['p'])
    redis.call('XACK', KEYS[1], ARGV[1], e[1])
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
if n > 0 then redis.call('INCRBY', KEYS[2], n) end
return n
"#;

pub struct ValkeyStreams {
    cfg: Valkey,
    client: redis::Client,
    /// Setup, depth, state and the reaper share its connection, which reconnects by
    /// itself after a server restart.
    server: ValkeyServer,
    payload: Arc<[u8]>,
    visibility_ms: u64,
    reap_batch: usize,
    batch: usize,
    consumer_prefix: String,
    reaper: redis::Script,
}

fn requeued_key(stream: &str) -> String {
    format!("{stream}:requeued")
}

/// Completions counted by the server, so an audit across processes can tell a completed
/// entry from one deleted behind the workers' back (both leave the stream).
fn completed_key(stream: &str) -> String {
    format!("{stream}:completed")
}

#[async_trait]
impl Design for ValkeyStreams {
    const INFO: DesignInfo = DesignInfo {
        name: "valkey_streams",
        backend: Backend::Valkey,
        test_prefix: "valkey",
    };

    async fn open(cfg: &Config) -> Result<ValkeyStreams> {
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
            reaper: redis::Script::new(REAP_LUA),
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
        redis::cmd("DEL")
            .arg(&self.cfg.stream)
            .arg(requeued_key(&self.cfg.stream))
            .arg(completed_key(&self.cfg.stream))
            .query_async::<()>(&mut c)
            .await
            .context("deleting the stream")?;
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
                .arg(requeued_key(&self.cfg.stream))
                .cmd("GET")
                .arg(completed_key(&self.cfg.stream))
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
        Ok(Box::new(StreamProducer {
            conn: valkey::connect(&self.client, &self.cfg).await?,
            stream: self.cfg.stream.clone(),
            payload: self.payload.clone(),
        }))
    }

    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(StreamConsumer {
            conn: valkey::connect(&self.client, &self.cfg).await?,
            stream: self.cfg.stream.clone(),
            group: self.cfg.group.clone(),
            name: format!("{}-w{worker}", self.consumer_prefix),
            completed_key: completed_key(&self.cfg.stream),
            block_ms: self.cfg.block_ms,
            batch: self.batch,
        }))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        let mut c = self.server.conn.clone();
        let n: u64 = self
            .reaper
            .key(&self.cfg.stream)
            .key(requeued_key(&self.cfg.stream))
            .arg(&self.cfg.group)
            .arg(format!("{}-reaper", self.consumer_prefix))
            .arg(self.visibility_ms)
            .arg(self.reap_batch)
            .invoke_async(&mut c)
            .await
            .context("reaping expired stream entries")?;
        Ok(Some(n))
    }
}

struct StreamProducer {
    conn: MultiplexedConnection,
    stream: String,
    payload: Arc<[u8]>,
}

#[async_trait]
impl Producer for StreamProducer {
    async fn enqueue(&mut self, jobs: &[NewJob]) -> Result<()> {
        let mut p = redis::pipe();
        for j in jobs {
            p.cmd("XADD")
                .arg(&self.stream)
                .arg("*")
                .arg("s")
                .arg(j.seq)
                .arg("t")
                .arg(j.enqueued_at_us)
                .arg("a")
                .arg(0)
                .arg("p")
                .arg(&self.payload[..])
                .ignore();
        }
        p.query_async::<()>(&mut self.conn).await?;
        Ok(())
    }
}

struct StreamConsumer {
    conn: MultiplexedConnection,
    stream: String,
    group: String,
    name: String,
    completed_key: String,
    block_ms: u64,
    batch: usize,
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
            .arg(&self.stream)
            .arg(">")
            .query_async(&mut self.conn)
            .await;
        match reply {
            Ok(reply) => parse_read_reply(reply),
            // A server restarted without persistence has lost the stream and its group:
            // recreate them (the jobs it held are gone; the audit counts them).
            Err(e) if e.code() == Some("NOGROUP") => {
                let r: redis::RedisResult<()> = redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(&self.stream)
                    .arg(&self.group)
                    .arg("0")
                    .arg("MKSTREAM")
                    .query_async(&mut self.conn)
                    .await;
                match r {
                    Ok(()) => Ok(Vec::new()),
                    Err(e) if e.code() == Some("BUSYGROUP") => Ok(Vec::new()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<()> {
        let ids: Vec<Vec<u8>> = jobs
            .into_iter()
            .filter_map(|j| match j.handle {
                Handle::Entry(id) => Some(id),
                _ => None,
            })
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let n = ids.len();
        // XACK, XDEL and the completion count go out together: one round trip.
        redis::pipe()
            .cmd("XACK")
            .arg(&self.stream)
            .arg(&self.group)
            .arg(&ids)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(&ids)
            .ignore()
            .cmd("INCRBY")
            .arg(&self.completed_key)
            .arg(n)
            .ignore()
            .query_async::<()>(&mut self.conn)
            .await?;
        Ok(())
    }

    /// Nothing to wait for: the claim itself blocked for `valkey.block_ms`.
    async fn idle(&mut self) {}
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

/// Looks up `key` in a flat key/value reply (RESP2 array or RESP3 map).
fn field_u64(v: &Value, key: &str) -> Option<u64> {
    match v {
        Value::Array(a) => a
            .chunks(2)
            .find(|kv| as_bytes(&kv[0]) == Some(key.as_bytes()))
            .and_then(|kv| kv.get(1))
            .and_then(as_u64),
        Value::Map(m) => m
            .iter()
            .find(|(k, _)| as_bytes(k) == Some(key.as_bytes()))
            .and_then(|(_, v)| as_u64(v)),
        _ => None,
    }
}

/// XREADGROUP's reply: nil on timeout, else [[stream, [[id, [field, value, …]], …]]].
fn parse_read_reply(reply: Value) -> Result<Vec<Claimed>> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(a) => a,
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        other => bail!("unexpected XREADGROUP reply: {other:?}"),
    };
    let mut out = Vec::new();
    for s in streams {
        let Value::Array(mut pair) = s else {
            bail!("unexpected XREADGROUP stream entry")
        };
        let Some(Value::Array(entries)) = pair.pop() else {
            bail!("unexpected XREADGROUP entries")
        };
        for e in entries {
            let Value::Array(mut idf) = e else {
                bail!("unexpected stream entry")
            };
            let fields = idf.pop();
            let id = match idf.pop() {
                Some(Value::BulkString(id)) => id,
                other => bail!("unexpected stream entry id: {other:?}"),
            };
            let Some(Value::Array(f)) = fields else {
                bail!("stream entry without fields")
            };
            let (mut seq, mut t, mut a, mut len) = (None, None, 0u64, 0usize);
            for kv in f.chunks(2) {
                match (as_bytes(&kv[0]), kv.get(1)) {
                    (Some(b"s"), Some(v)) => seq = as_u64(v),
                    (Some(b"t"), Some(v)) => t = as_u64(v),
                    (Some(b"a"), Some(v)) => a = as_u64(v).unwrap_or(0),
                    (Some(b"p"), Some(v)) => len = as_bytes(v).map_or(0, <[u8]>::len),
                    _ => {}
                }
            }
            let (Some(seq), Some(t)) = (seq, t) else {
                bail!(
                    "stream entry {} is not a qbench job (no s/t fields)",
                    String::from_utf8_lossy(&id)
                )
            };
            out.push(Claimed {
                seq: seq as i64,
                enqueued_at_us: t as i64,
                attempts: u32::try_from(a + 1).unwrap_or(u32::MAX),
                payload_len: len,
                handle: Handle::Entry(id),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn parses_a_read_reply() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("q"),
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                Value::Array(vec![
                    bulk("s"),
                    bulk("7"),
                    bulk("t"),
                    bulk("123"),
                    bulk("a"),
                    bulk("1"),
                    bulk("p"),
                    bulk("xyz"),
                ]),
            ])]),
        ])]);
        let jobs = parse_read_reply(reply).expect("parses");
        assert_eq!(jobs.len(), 1);
        assert_eq!((jobs[0].seq, jobs[0].enqueued_at_us), (7, 123));
        assert_eq!(jobs[0].attempts, 2);
        assert_eq!(jobs[0].payload_len, 3);
        assert!(parse_read_reply(Value::Nil).expect("nil").is_empty());
        assert!(parse_read_reply(Value::Int(3)).is_err());
    }
}
