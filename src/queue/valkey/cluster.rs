//! A Valkey Cluster as qbench sees it: its primaries from the slot map, checked whole
//! before a run, and where the queue's streams go.
//!
//! A stream and its consumer group are one key, so each stream lives on one slot. The
//! queue is spread over K streams named `S:{tag}`: only the part in braces is hashed, so
//! tags are chosen, with `CLUSTER KEYSLOT`, to land on different primaries (stream j on
//! primary j mod P). `{S}:j` would put every stream on one shard.

use anyhow::{anyhow, bail, Context, Result};
use redis::Value;

use crate::config::Valkey;
use crate::error::UsageError;

/// Every slot a cluster has.
const SLOTS: u64 = 16384;

#[derive(Debug, Clone)]
pub struct Primary {
    /// `host:port` as the cluster announces it.
    pub addr: String,
    /// The node reached alone (its own INFO, CONFIG, TIME): the seed's settings with
    /// this node's address.
    pub cfg: Valkey,
    pub first_slot: u16,
}

#[derive(Debug, Clone)]
pub struct Placement {
    pub stream: String,
    pub slot: u16,
    /// Index into [`Topology::primaries`].
    pub primary: usize,
}

#[derive(Debug, Clone)]
pub struct Topology {
    /// Ordered by their first slot, so every process numbers them alike.
    pub primaries: Vec<Primary>,
    pub streams: Vec<Placement>,
}

fn usage(text: String) -> anyhow::Error {
    anyhow::Error::new(UsageError::new(text))
}

/// One field of an INFO or CLUSTER INFO reply (`key:value` lines).
pub fn info_value<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .map(str::trim)
}

/// The seed's settings pointed at one node.
fn node_cfg(v: &Valkey, seed: &str, addr: &str) -> Valkey {
    let (scheme, rest) = seed.split_once("://").unwrap_or(("redis", seed));
    let userinfo = rest
        .rsplit_once('@')
        .map_or(String::new(), |(u, _)| format!("{u}@"));
    Valkey {
        url: format!("{scheme}://{userinfo}{addr}"),
        cluster: false,
        ..v.clone()
    }
}

/// Reads the cluster from the first seed node that answers, refusing one that is not a
/// cluster or does not serve every slot, and places `streams` streams (0: one per
/// primary) named after `v.stream`.
pub async fn discover(v: &Valkey) -> Result<Topology> {
    let seeds = v.seed_urls();
    let mut last = None;
    for seed in &seeds {
        let one = Valkey {
            url: seed.clone(),
            cluster: false,
            ..v.clone()
        };
        let client = super::client(&one)?;
        match super::connect(&client, &one).await {
            Ok(mut conn) => return read(v, seed, &mut conn).await,
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("valkey.url names no node")))
}

async fn read(
    v: &Valkey,
    seed: &str,
    conn: &mut redis::aio::MultiplexedConnection,
) -> Result<Topology> {
    let shown = crate::mask::mask_url_password(seed);
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(conn)
        .await
        .with_context(|| format!("INFO cluster on {shown}"))?;
    if info_value(&info, "cluster_enabled") != Some("1") {
        return Err(usage(format!(
            "valkey.url {shown} is not a cluster node (cluster_enabled:0): name a node of a \
             Valkey Cluster, or leave valkey.cluster off for a single server"
        )));
    }
    let state: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(conn)
        .await
        .with_context(|| format!("CLUSTER INFO on {shown}"))?;
    let assigned: u64 = info_value(&state, "cluster_slots_assigned")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let ok = info_value(&state, "cluster_state") == Some("ok");
    if assigned < SLOTS || !ok {
        return Err(usage(format!(
            "the cluster at {shown} does not serve every slot (cluster_state:{}, {assigned} \
             of {SLOTS} slots assigned): assign them all (valkey-cli --cluster fix) before a run",
            info_value(&state, "cluster_state").unwrap_or("?")
        )));
    }
    let slots: Value = redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await
        .with_context(|| format!("CLUSTER SLOTS on {shown}"))?;
    let primaries = primaries(v, seed, &slots)?;
    let streams = place(v, seed, conn, &slots, &primaries).await?;
    Ok(Topology { primaries, streams })
}

/// `CLUSTER SLOTS`: `[[start, end, [host, port, id, …], replicas…], …]`. An empty host
/// (a node that never learned its own address: a cluster of one) is `seed_host`'s, the
/// node asked.
fn slot_ranges(slots: &Value, seed_host: &str) -> Result<Vec<(u16, u16, String)>> {
    let Value::Array(ranges) = slots else {
        bail!("unexpected CLUSTER SLOTS reply")
    };
    let mut out = vec![];
    for r in ranges {
        let Value::Array(f) = r else {
            bail!("unexpected CLUSTER SLOTS range")
        };
        let int = |i: usize| match f.get(i) {
            Some(Value::Int(n)) => u16::try_from(*n).ok(),
            _ => None,
        };
        let (Some(start), Some(end), Some(Value::Array(node))) = (int(0), int(1), f.get(2)) else {
            bail!("unexpected CLUSTER SLOTS range")
        };
        let host = match node.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => bail!("CLUSTER SLOTS: a node without a host"),
        };
        let Some(Value::Int(port)) = node.get(1) else {
            bail!("CLUSTER SLOTS: a node without a port")
        };
        let host = match host.as_str() {
            "" | "?" => seed_host.to_string(),
            h if h.contains(':') => format!("[{h}]"),
            _ => host,
        };
        out.push((start, end, format!("{host}:{port}")));
    }
    Ok(out)
}

/// A URL's host, as `CLUSTER SLOTS` would write it.
fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or(rest);
    match hostport.rsplit_once(':') {
        Some((h, _)) => h.to_string(),
        None => hostport.to_string(),
    }
}

fn primaries(v: &Valkey, seed: &str, slots: &Value) -> Result<Vec<Primary>> {
    let mut out: Vec<Primary> = vec![];
    for (start, _, addr) in slot_ranges(slots, &host_of(seed))? {
        match out.iter_mut().find(|p| p.addr == addr) {
            Some(p) => p.first_slot = p.first_slot.min(start),
            None => out.push(Primary {
                cfg: node_cfg(v, seed, &addr),
                addr,
                first_slot: start,
            }),
        }
    }
    out.sort_by_key(|p| p.first_slot);
    Ok(out)
}

/// The owner of a slot, as an index into `primaries`.
fn owner(ranges: &[(u16, u16, String)], primaries: &[Primary], slot: u16) -> Option<usize> {
    let (_, _, addr) = ranges.iter().find(|(s, e, _)| (*s..=*e).contains(&slot))?;
    primaries.iter().position(|p| &p.addr == addr)
}

/// Stream j goes to primary j mod P, under the smallest tag not yet used that the
/// server hashes there.
async fn place(
    v: &Valkey,
    seed: &str,
    conn: &mut redis::aio::MultiplexedConnection,
    slots: &Value,
    primaries: &[Primary],
) -> Result<Vec<Placement>> {
    let ranges = slot_ranges(slots, &host_of(seed))?;
    let k = match v.cluster_streams {
        0 => primaries.len(),
        n => n as usize,
    };
    let name = |tag: usize| format!("{}:{{{tag}}}", v.stream);
    // Tags hash evenly, so a few dozen per stream cover every primary.
    let candidates = 64 * k.max(primaries.len());
    let mut pipe = redis::pipe();
    for tag in 0..candidates {
        pipe.cmd("CLUSTER").arg("KEYSLOT").arg(name(tag));
    }
    let keyslots: Vec<u16> = pipe
        .query_async(conn)
        .await
        .context("CLUSTER KEYSLOT for the streams' names")?;
    let mut used = vec![false; candidates];
    let mut out = vec![];
    for j in 0..k {
        let want = j % primaries.len();
        let tag = (0..candidates)
            .find(|&t| !used[t] && owner(&ranges, primaries, keyslots[t]) == Some(want))
            .ok_or_else(|| {
                anyhow!(
                    "no stream name among {candidates} lands on the cluster's primary {}",
                    primaries[want].addr
                )
            })?;
        used[tag] = true;
        out.push(Placement {
            stream: name(tag),
            slot: keyslots[tag],
            primary: want,
        });
    }
    Ok(out)
}

/// A node of a cluster of several primaries, reached as a single server, would answer
/// MOVED for most keys: say so. A cluster-mode endpoint of one shard serving every slot
/// works as a single server, and is taken as one.
pub async fn refuse_node_of_many(
    conn: &mut impl redis::aio::ConnectionLike,
    v: &Valkey,
) -> Result<()> {
    let info: String = redis::cmd("INFO")
        .arg("cluster")
        .query_async(conn)
        .await
        .unwrap_or_default();
    if info_value(&info, "cluster_enabled") != Some("1") {
        return Ok(());
    }
    let state: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(conn)
        .await
        .unwrap_or_default();
    if info_value(&state, "cluster_size") == Some("1")
        && info_value(&state, "cluster_slots_assigned") == Some("16384")
    {
        return Ok(());
    }
    Err(usage(format!(
        "valkey.url {} is a node of a Valkey Cluster: set valkey.cluster = true (or use a \
         redis+cluster:// URL) so the queue is spread over its primaries",
        v.display_url()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: i64, e: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(s),
            Value::Int(e),
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
            ]),
        ])
    }

    #[test]
    fn primaries_are_ordered_by_slot_and_keep_the_seeds_credentials() {
        let v = Valkey {
            url: "rediss+cluster://u:pw@a:1,b:2".into(),
            ..Valkey::default()
        };
        let slots = Value::Array(vec![
            range(5461, 10922, "127.0.0.1", 7002),
            range(0, 5460, "127.0.0.1", 7001),
            range(10923, 16383, "::1", 7003),
        ]);
        let alone = Value::Array(vec![range(0, 16383, "", 7001)]);
        let p1 = primaries(&v, "rediss://u:pw@a:1", &alone).expect("parses");
        assert_eq!(
            p1[0].addr, "a:7001",
            "a cluster of one names no host: the seed's"
        );
        let p = primaries(&v, "rediss://u:pw@a:1", &slots).expect("parses");
        let addrs: Vec<&str> = p.iter().map(|p| p.addr.as_str()).collect();
        assert_eq!(addrs, ["127.0.0.1:7001", "127.0.0.1:7002", "[::1]:7003"]);
        assert_eq!(p[0].cfg.url, "rediss://u:pw@127.0.0.1:7001");
        assert!(!p[0].cfg.cluster);
        let ranges = slot_ranges(&slots, "a").expect("parses");
        assert_eq!(owner(&ranges, &p, 0), Some(0));
        assert_eq!(owner(&ranges, &p, 16383), Some(2));
    }
}
