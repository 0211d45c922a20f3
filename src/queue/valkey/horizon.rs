//! The horizon scenario on Valkey, the control: a stream keeps no old versions for a
//! reader, so the "holder" is an idle connection, and what is read each second is the
//! server's memory.

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use redis::aio::MultiplexedConnection;

use crate::config::Valkey;
use crate::format::horizon::{ClaimCost, Holder, HolderSpec, ServerSample};

pub struct ValkeyHorizon {
    /// The first node: settings and the holder.
    cfg: Valkey,
    conn: MultiplexedConnection,
    /// Every node (a cluster's primaries), whose memory is summed.
    nodes: Vec<MultiplexedConnection>,
    idle: Option<MultiplexedConnection>,
}

impl ValkeyHorizon {
    /// `nodes`: the server alone, or every primary of a cluster.
    pub async fn open(nodes: &[Valkey]) -> Result<ValkeyHorizon> {
        let mut conns = vec![];
        for n in nodes {
            conns.push(super::node_conn(n).await?);
        }
        let (Some(cfg), Some(conn)) = (nodes.first(), conns.first()) else {
            anyhow::bail!("no Valkey node to sample");
        };
        Ok(ValkeyHorizon {
            conn: conn.clone(),
            cfg: cfg.clone(),
            nodes: conns,
            idle: None,
        })
    }
}

fn info_field(info: &str, key: &str) -> Option<i64> {
    info.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(':')))
        .and_then(|v| v.trim().parse().ok())
}

#[async_trait]
impl crate::queue::Horizon for ValkeyHorizon {
    async fn settings(&mut self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        // A managed server may refuse CONFIG: the settings are then unknown, not fatal.
        let got: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .arg("appendfsync")
            .arg("maxmemory-policy")
            .query_async(&mut self.conn)
            .await;
        if let Ok(pairs) = got {
            for kv in pairs.chunks(2) {
                if let [k, v] = kv {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(out)
    }

    async fn hold(&mut self, spec: &HolderSpec) -> Result<String> {
        if spec.kind == Holder::None {
            return Ok("nothing (a control run)".into());
        }
        let mut conn = super::node_conn(&self.cfg).await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg("qbench_holder")
            .query_async::<()>(&mut conn)
            .await?;
        self.idle = Some(conn);
        Ok(format!(
            "an idle connection: Valkey has no snapshot to hold (asked for {})",
            spec.kind
        ))
    }

    fn killed(&mut self) -> Option<String> {
        None
    }

    async fn release(&mut self) {
        self.idle = None;
    }

    async fn sample(&mut self) -> Result<ServerSample> {
        let mut memory = None;
        for conn in &mut self.nodes {
            let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
            if let Some(m) = info_field(&info, "used_memory") {
                memory = Some(memory.unwrap_or(0) + m);
            }
        }
        Ok(ServerSample {
            memory_bytes: memory,
            ..ServerSample::default()
        })
    }

    async fn claim_cost(&mut self) -> Result<Option<ClaimCost>> {
        Ok(None)
    }
}
