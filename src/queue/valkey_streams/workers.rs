//! The producer and the consumer of valkey_streams, on connections of their own.
//!
//! On a cluster the queue is several streams. A producer sends each batch to the stream
//! its first seq hashes to: a retry of the batch, even from a reconnected producer, goes
//! to the same stream, whose bitmap makes it idempotent. A worker reads its home stream
//! first, then the others without blocking (stealing), and when all were empty blocks on
//! its home stream for a short slice, so a stream no worker blocks on waits at most that.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use redis::{Script, Value};

use super::reply::parse_read_reply;
use super::Keys;
use crate::queue::valkey::conn::Conn;
use crate::queue::{Claimed, Consumer, Handle, NewJob, Producer};

pub struct StreamProducer {
    pub conn: Conn,
    pub streams: Arc<[Keys]>,
    pub payload: Arc<[u8]>,
    pub script: Script,
}

/// The stream a batch goes to: a mix of its first seq (SplitMix64's finalizer), so
/// consecutive batches of any size spread evenly, and every producer agrees.
pub fn stream_of(first_seq: i64, streams: usize) -> usize {
    let mut z = first_seq as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % streams as u64) as usize
}

#[async_trait]
impl Producer for StreamProducer {
    /// Always through the script, first attempts too: the bitmap it sets is what makes a
    /// later retry of the same jobs add nothing.
    async fn enqueue(&mut self, jobs: &[NewJob], _retry: bool) -> Result<()> {
        let Some(first) = jobs.first() else {
            return Ok(());
        };
        let keys = &self.streams[stream_of(first.seq, self.streams.len())];
        let mut call = self.script.key(&keys.stream);
        call.key(&keys.produced).key(&keys.seq).arg(&self.payload[..]);
        for j in jobs {
            call.arg(j.seq).arg(j.enqueued_at_us);
        }
        call.invoke_async::<u64>(&mut self.conn).await?;
        Ok(())
    }
}

/// How long an idle worker blocks on its home stream before sweeping every stream again,
/// when the queue has several: a job on a stream no worker blocks on waits at most this.
const SLICE_MS: u64 = 100;

pub struct StreamConsumer {
    pub conn: Conn,
    pub streams: Arc<[Keys]>,
    /// The stream this worker blocks on: a process's workers are spread evenly over the
    /// streams, from an offset of its own so that processes cover different ones.
    pub home: usize,
    pub group: String,
    pub name: String,
    pub block_ms: u64,
    pub batch: usize,
    pub script: Script,
}

impl StreamConsumer {
    /// A server restarted without persistence has lost the stream and its group: recreate
    /// them (the jobs it held are gone; the audit names them).
    async fn recreate_group(&mut self, stream: usize) -> Result<()> {
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.streams[stream].stream)
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

    /// One XREADGROUP on one stream; `block`: wait that long for a job.
    async fn read(&mut self, stream: usize, block: Option<u64>) -> Result<Vec<Claimed>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.name)
            .arg("COUNT")
            .arg(self.batch);
        if let Some(ms) = block {
            cmd.arg("BLOCK").arg(ms);
        }
        cmd.arg("STREAMS")
            .arg(&self.streams[stream].stream)
            .arg(">");
        let reply: redis::RedisResult<Value> = cmd.query_async(&mut self.conn).await;
        match reply {
            Ok(reply) => parse_read_reply(reply, stream),
            Err(e) if e.code() == Some("NOGROUP") => {
                self.recreate_group(stream).await?;
                Ok(Vec::new())
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Consumer for StreamConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        let k = self.streams.len();
        if k == 1 {
            return self.read(0, Some(self.block_ms)).await;
        }
        for i in 0..k {
            let jobs = self.read((self.home + i) % k, None).await?;
            if !jobs.is_empty() {
                return Ok(jobs);
            }
        }
        self.read(self.home, Some(self.block_ms.min(SLICE_MS))).await
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let mut late = vec![];
        for stream in 0..self.streams.len() {
            let keys = &self.streams[stream];
            let mut call = self.script.key(&keys.stream);
            call.key(&keys.completed)
                .key(&keys.done)
                .key(&keys.seq)
                .arg(&self.group);
            let mut any = false;
            for j in &jobs {
                if let Handle::Entry { stream: s, id } = &j.handle {
                    if *s == stream {
                        call.arg(&id[..]).arg(j.seq);
                        any = true;
                    }
                }
            }
            if any {
                // XACK, XDEL, the done bit and the count in one round trip, fenced by XACK.
                let refused: Vec<i64> = call.invoke_async(&mut self.conn).await?;
                late.extend(refused);
            }
        }
        Ok(late)
    }

    /// Nothing to wait for: the claim itself blocked (`valkey.block_ms`; on several
    /// streams at most 100 ms).
    async fn idle(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::stream_of;

    #[test]
    fn batches_spread_evenly_whatever_their_size() {
        for size in [1i64, 3, 4, 16, 100] {
            let mut n = [0u32; 3];
            for b in 0..3000 {
                n[stream_of(1_000_000 + b * size, 3)] += 1;
            }
            assert!(n.iter().all(|&c| (900..1100).contains(&c)), "{size}: {n:?}");
        }
        assert_eq!(stream_of(42, 1), 0);
        assert_eq!(stream_of(42, 5), stream_of(42, 5), "every producer agrees");
    }
}
