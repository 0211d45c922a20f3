//! One connection type for one node or a cluster: the design's commands are the same,
//! and on a cluster the redis crate routes each by its key's slot (following MOVED and
//! ASK), so qbench does no sharding of its own.

use std::time::Duration;

use anyhow::Result;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::config::Valkey;
use crate::error::UsageError;

/// A connection to one node, or to a cluster through its slot map.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    /// Reconnects by itself after a server restart (setup, depth, the reaper).
    Managed(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Managed(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Managed(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Managed(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// The client of the configured server: one node, or a cluster from its seed nodes.
#[derive(Clone)]
pub enum Client {
    Single(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
}

impl Client {
    pub fn open(v: &Valkey) -> Result<Client> {
        if !v.is_cluster() {
            return Ok(Client::Single(Box::new(super::client(v)?)));
        }
        let mut b = ClusterClient::builder(v.seed_urls())
            .connection_timeout(Duration::from_secs(10))
            // A blocked XREADGROUP must outlive its BLOCK on the client too.
            .response_timeout(Duration::from_millis(v.block_ms + 30_000))
            .retries(3);
        if let Some(certs) = super::tls_files(v)? {
            b = b.certs(certs);
        }
        b.build()
            .map(|c| Client::Cluster(Box::new(c)))
            .map_err(|e| {
                anyhow::Error::new(UsageError::new(format!(
                    "valkey.url {} is not a usable cluster URL: {e}",
                    v.display_url()
                )))
            })
    }

    /// A connection of its own (a producer, a blocking consumer).
    pub async fn connect(&self, v: &Valkey) -> Result<Conn> {
        match self {
            Client::Single(c) => Ok(Conn::Single(super::connect(c, v).await?)),
            Client::Cluster(c) => Ok(Conn::Cluster(
                c.get_async_connection()
                    .await
                    .map_err(|e| super::connect_error(&e, v))?,
            )),
        }
    }

    /// A shared connection that survives a server restart.
    pub async fn shared(&self, v: &Valkey) -> Result<Conn> {
        match self {
            Client::Single(c) => Ok(Conn::Managed(super::manager(c, v).await?)),
            // The cluster connection reconnects to a node, and refreshes its slot map,
            // by itself.
            Client::Cluster(_) => self.connect(v).await,
        }
    }
}
