//! `--valkey-cluster N`: N throwaway Valkey nodes joined into one cluster of N primaries
//! and no replicas, each serving an equal share of the 16384 slots.
//!
//! It is formed the way `valkey-cli --cluster create` does (distinct config epochs,
//! slots assigned, MEET), without needing valkey-cli.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

const SLOTS: u32 = 16384;

/// `n` ports for cluster nodes: distinct, each with its bus port (+ 10000) free too.
pub fn cluster_ports(n: usize) -> Result<Vec<u16>> {
    let mut out: Vec<u16> = vec![];
    while out.len() < n {
        let p = cluster_port()?;
        let clash = out
            .iter()
            .any(|&q| [q, q + 10_000].contains(&p) || [q, q + 10_000].contains(&(p + 10_000)));
        if !clash {
            out.push(p);
        }
    }
    Ok(out)
}

/// The cluster bus listens on the port + 10000: both must be free, so ports stay ≤ 55535.
fn cluster_port() -> Result<u16> {
    // A start that differs between processes, so parallel tests rarely try one port.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for i in 0..2000u32 {
        let port = 20_000 + (seed.wrapping_add(i.wrapping_mul(7919)) % 35_536) as u16;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10_000) {
            return Ok(port);
        }
    }
    bail!("no free port pair (port and port + 10000, at most 55535) for a cluster node")
}

async fn conn(port: u16) -> Result<redis::aio::MultiplexedConnection> {
    redis::Client::open(format!("redis://127.0.0.1:{port}"))?
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("connecting to the cluster node on port {port}"))
}

/// Joins freshly started cluster-enabled nodes into one cluster and waits until every
/// node sees it whole.
pub async fn form(ports: &[u16]) -> Result<()> {
    let n = ports.len() as u32;
    for (i, &port) in ports.iter().enumerate() {
        let i = i as u32;
        let (first, last) = (i * SLOTS / n, (i + 1) * SLOTS / n - 1);
        let mut c = conn(port).await?;
        // Distinct epochs, so no two primaries ever claim a slot with the same one.
        redis::cmd("CLUSTER")
            .arg("SET-CONFIG-EPOCH")
            .arg(i + 1)
            .query_async::<()>(&mut c)
            .await
            .with_context(|| format!("CLUSTER SET-CONFIG-EPOCH on port {port}"))?;
        redis::cmd("CLUSTER")
            .arg("ADDSLOTSRANGE")
            .arg(first)
            .arg(last)
            .query_async::<()>(&mut c)
            .await
            .with_context(|| format!("CLUSTER ADDSLOTSRANGE {first} {last} on port {port}"))?;
    }
    let mut first = conn(ports[0]).await?;
    for &port in &ports[1..] {
        redis::cmd("CLUSTER")
            .arg("MEET")
            .arg("127.0.0.1")
            .arg(port)
            .query_async::<()>(&mut first)
            .await
            .with_context(|| format!("CLUSTER MEET 127.0.0.1 {port}"))?;
    }
    wait_whole(ports).await
}

/// Until every node says `cluster_state:ok` and knows all the others (after forming,
/// or after a restart, when the nodes find each other again from nodes.conf).
pub async fn wait_whole(ports: &[u16]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let want = format!("cluster_known_nodes:{}", ports.len());
    loop {
        let mut whole = true;
        let mut last = String::new();
        for &port in ports {
            let info = match conn(port).await {
                Ok(mut c) => redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async::<String>(&mut c)
                    .await
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            let lines: Vec<&str> = info.lines().map(str::trim).collect();
            if !(lines.contains(&"cluster_state:ok")
                && lines.contains(&want.as_str())
                && lines.contains(&"cluster_slots_ok:16384"))
            {
                whole = false;
                last = format!("port {port}: {}", lines.join(" "));
                break;
            }
        }
        if whole {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the local Valkey cluster did not become whole within 60 s ({last})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
