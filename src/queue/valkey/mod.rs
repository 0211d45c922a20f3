//! Valkey, the server: connections, errors that tell the user what to do, what the
//! manifest records of it, its process and its statistics.

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

/// The client for a configured URL (a malformed URL is the user's to fix).
pub fn client(v: &Valkey) -> Result<redis::Client> {
    redis::Client::open(v.url.as_str()).map_err(|e| {
        anyhow::Error::new(UsageError::new(format!(
            "valkey.url {} is invalid: {e}",
            v.display_url()
        )))
    })
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
    let hint = if e.to_string().contains("WRONGPASS") || e.to_string().contains("NOAUTH") {
        "check the password in valkey.url or QBENCH_VALKEY_URL"
    } else {
        "is the server running? (qbench --local starts one; setup/install_valkey.sh installs one)"
    };
    anyhow::Error::new(UsageError::new(format!(
        "cannot connect to Valkey at {url}: {e}; {hint}"
    )))
}

/// The Valkey server behind a design.
pub struct ValkeyServer {
    pub cfg: Valkey,
    pub conn: ConnectionManager,
}

#[async_trait]
impl super::Server for ValkeyServer {
    fn backend(&self) -> Backend {
        Backend::Valkey
    }

    async fn info(&self) -> Result<ServerInfo> {
        let mut c = self.conn.clone();
        let info: String = redis::cmd("INFO").arg("server").query_async(&mut c).await?;
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
                .query_async(&mut c)
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
        Ok(ServerInfo {
            version,
            durability,
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
            Some(l) => ServerProcs::single(NAMES, Some(l.valkey_pid)),
            None if self.cfg.is_local() => ServerProcs::single(NAMES, None),
            None => ServerProcs::Remote,
        }
    }

    fn stats(&self) -> Box<dyn StatsSampler> {
        Box::new(stats::ValkeyStats(self.cfg.clone()))
    }

    /// XREADGROUP BLOCK: the server hands a job to a waiting worker as it arrives.
    fn wakeup(&self) -> WakeupReport {
        WakeupReport {
            mode: "block".into(),
            ..WakeupReport::default()
        }
    }
}
