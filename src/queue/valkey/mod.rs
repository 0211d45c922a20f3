//! Valkey, the server: connections, errors that tell the user what to do, what the
//! manifest records of it, its process and its statistics.

pub mod cluster;
pub mod conn;
mod cost;
mod horizon;
mod stats;

pub use horizon::ValkeyHorizon;

use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;

use super::{Backend, ServerInfo, WakeupReport};
use crate::config::Valkey;
use crate::error::UsageError;
use crate::format::durability::Durability;
use crate::format::manifest::LocalInfo;
use crate::samplers::system::ServerProcs;
use crate::samplers::StatsSampler;

/// The client for one node's URL (a malformed URL or an unreadable TLS file is the
/// user's to fix). A rediss:// URL without a CA file trusts the OS's store.
pub fn client(v: &Valkey) -> Result<redis::Client> {
    let invalid = |e: redis::RedisError| {
        anyhow::Error::new(UsageError::new(format!(
            "valkey.url {} is invalid: {e}",
            v.display_url()
        )))
    };
    match tls_files(v)? {
        None => redis::Client::open(v.url.as_str()).map_err(invalid),
        Some(certs) => redis::Client::build_with_tls(v.url.as_str(), certs).map_err(invalid),
    }
}

/// The CA and client certificate files, read once and parsed here, so one that is not
/// PEM is named (the crate would say "invalid trust anchors"); `None`: none given.
pub fn tls_files(v: &Valkey) -> Result<Option<redis::TlsCertificates>> {
    if v.is_tls() {
        // The redis crate builds its TLS config from the process's default provider.
        let _ = crate::tls::provider().install_default();
    }
    if v.tls_ca_file.is_empty() && v.tls_cert_file.is_empty() {
        return Ok(None);
    }
    let pem = |path: &str, key: &str, is_key: bool| -> Result<Vec<u8>> {
        let bytes = crate::tls::read(path, key)?;
        if is_key {
            crate::tls::parse_key(&bytes, path, key)?;
        } else {
            crate::tls::parse_certs(&bytes, path, key)?;
        }
        Ok(bytes)
    };
    let root_cert = match v.tls_ca_file.as_str() {
        "" => None,
        ca => Some(pem(ca, "valkey.tls_ca_file", false)?),
    };
    let client_tls = match v.tls_cert_file.as_str() {
        "" => None,
        cert => Some(redis::ClientTlsConfig {
            client_cert: pem(cert, "valkey.tls_cert_file", false)?,
            client_key: pem(&v.tls_key_file, "valkey.tls_key_file", true)?,
        }),
    };
    Ok(Some(redis::TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// A connection whose response timeout outlasts any BLOCK (the crate's default of 500 ms
/// would fail a blocked read on the client while the server keeps blocking).
pub async fn connect(client: &redis::Client, v: &Valkey) -> Result<MultiplexedConnection> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(10)))
        .set_response_timeout(Some(Duration::from_millis(v.block_ms + 30_000)));
    client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .map_err(|e| connect_error(&e, v))
}

/// A shared connection that reconnects by itself after a server restart.
pub async fn manager(client: &redis::Client, v: &Valkey) -> Result<ConnectionManager> {
    ConnectionManager::new_with_config(
        client.clone(),
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(10)))
            .set_response_timeout(Some(Duration::from_secs(30)))
            .set_number_of_retries(2),
    )
    .await
    .map_err(|e| connect_error(&e, v))
}

pub fn connect_error(e: &redis::RedisError, v: &Valkey) -> anyhow::Error {
    let url = v.display_url();
    let text = e.to_string();
    let tls = crate::tls::failure(&text);
    let hint = if text.contains("WRONGPASS") || text.contains("NOAUTH") {
        "check the password in valkey.url or QBENCH_VALKEY_URL".to_string()
    } else if tls == Some(crate::tls::Failure::UnknownCa) {
        format!(
            "the server's certificate is not signed by a CA in valkey.tls_ca_file ({}); give \
             the CA that signed it",
            if v.tls_ca_file.is_empty() {
                "empty: the OS's store"
            } else {
                &v.tls_ca_file
            }
        )
    } else if tls == Some(crate::tls::Failure::WrongName) {
        "the server's certificate was not issued for the URL's host; connect by a name the \
         certificate names"
            .to_string()
    } else if !v.is_tls() && e.is_io_error() {
        "is the server running? If it speaks only TLS (managed services do), use a rediss:// \
         URL (qbench --local starts one; setup/install_valkey.sh installs one)"
            .to_string()
    } else if tls == Some(crate::tls::Failure::Refused) {
        "the server refused the TLS handshake: it may want a client certificate it trusts \
         (valkey.tls_cert_file, tls_key_file)"
            .to_string()
    } else if v.is_tls() && (e.is_timeout() || text.contains("corrupt message")) {
        // A plaintext Valkey reads a ClientHello as a partial command and waits.
        "the server did not complete a TLS handshake: if this port does not speak TLS, use \
         redis://, or the server's TLS port"
            .to_string()
    } else {
        "is the server running? (qbench --local starts one; setup/install_valkey.sh installs one)"
            .to_string()
    };
    anyhow::Error::new(UsageError::new(format!(
        "cannot connect to Valkey at {url}: {e}; {hint}"
    )))
}

/// The Valkey server behind a design: one node, or a cluster's primaries.
pub struct ValkeyServer {
    pub cfg: Valkey,
    /// Shared: setup, depth, state and the reaper (see [`conn::Client::shared`]).
    pub conn: conn::Conn,
    /// Each node reached alone, for what only a node can say (INFO, CONFIG, TIME):
    /// the server, or every primary of the cluster.
    pub nodes: Vec<Valkey>,
    /// The queue's streams, for the statistics.
    pub streams: Vec<String>,
}

/// One node's version and durability settings.
async fn node_info(
    c: &mut impl redis::aio::ConnectionLike,
) -> Result<(String, Option<Durability>)> {
    let info: String = redis::cmd("INFO").arg("server").query_async(c).await?;
    let get = |k: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
    };
    let version = match (get("valkey_version:"), get("redis_version:")) {
        (Some(v), _) => format!("valkey {v}"),
        (None, Some(v)) => format!("redis {v}"),
        _ => "unknown".into(),
    };
    // CONFIG may be renamed away on managed servers: then durability is unknown.
    let mut settings = Vec::new();
    for key in ["appendonly", "appendfsync", "save"] {
        let r: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg(key)
            .query_async(c)
            .await;
        match r.ok().and_then(|kv| kv.get(1).cloned()) {
            Some(v) => settings.push(v),
            None => break,
        }
    }
    let durability = match <[String; 3]>::try_from(settings) {
        Ok([appendonly, appendfsync, save]) => Some(Durability::Valkey {
            appendonly,
            appendfsync,
            save,
        }),
        Err(_) => None,
    };
    Ok((version, durability))
}

/// A connection to one node alone.
pub async fn node_conn(node: &Valkey) -> Result<MultiplexedConnection> {
    connect(&client(node)?, node).await
}

#[async_trait]
impl super::Server for ValkeyServer {
    fn backend(&self) -> Backend {
        Backend::Valkey
    }

    async fn info(&self) -> Result<ServerInfo> {
        let tls = if self.cfg.is_tls() { "rediss" } else { "off" };
        // The client cannot see the negotiated version; the scheme says TLS or not.
        if !self.cfg.is_cluster() {
            let (version, durability) = node_info(&mut self.conn.clone()).await?;
            return Ok(ServerInfo {
                version,
                tls: tls.into(),
                durability,
            });
        }
        let mut seen = vec![];
        for node in &self.nodes {
            seen.push(node_info(&mut node_conn(node).await?).await?);
        }
        let (version, durability) = seen.first().cloned().unwrap_or(("unknown".into(), None));
        // Primaries that persist differently have no one tier: say unknown, never one
        // node's.
        let same = seen.iter().all(|(_, d)| *d == durability);
        Ok(ServerInfo {
            version: format!("{version}, cluster of {} primaries", seen.len()),
            tls: tls.into(),
            durability: durability.filter(|_| same),
        })
    }

    async fn now_us(&self) -> Result<i64> {
        let mut c = self.conn.clone();
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await?;
        Ok(secs * 1_000_000 + micros)
    }

    fn procs(&self, local: Option<&LocalInfo>) -> ServerProcs {
        const NAMES: &str = "valkey-server|redis-server";
        match local {
            Some(l) if !l.valkey_cluster_pids.is_empty() => ServerProcs::Pids {
                names: NAMES,
                pids: l.valkey_cluster_pids.clone(),
            },
            Some(l) => ServerProcs::single(NAMES, Some(l.valkey_pid)),
            None if self.cfg.is_local() => ServerProcs::single(NAMES, None),
            None => ServerProcs::Remote,
        }
    }

    fn stats(&self) -> Box<dyn StatsSampler> {
        Box::new(stats::ValkeyStats {
            cfg: self.cfg.clone(),
            nodes: self.nodes.clone(),
            streams: self.streams.clone(),
        })
    }

    /// XREADGROUP BLOCK: the server hands a job to a waiting worker as it arrives.
    fn wakeup(&self) -> WakeupReport {
        WakeupReport {
            mode: "block".into(),
            ..WakeupReport::default()
        }
    }

    /// Commands (INFO commandstats: a script and the commands it calls each count) and
    /// append-only file bytes, of one server; a cluster's are refused.
    async fn cost_counters(
        &self,
        _before: Option<&crate::format::cost::Counters>,
    ) -> Result<crate::format::cost::Counters> {
        if self.cfg.is_cluster() {
            anyhow::bail!(crate::error::UsageError::new(
                "cost reads one Valkey server's counters: run it without a cluster"
            ));
        }
        let mut c = self.conn.clone();
        let stats: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut c)
            .await?;
        let persistence: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut c)
            .await?;
        Ok(cost::counters(&stats, &persistence))
    }
}
