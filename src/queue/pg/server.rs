//! The PostgreSQL server behind a design: what the manifest records of it (version and
//! durability, as qbench's sessions and the design's tables have it), its processes,
//! its statistics, and how idle workers wake.

use std::sync::Arc;

use anyhow::{Context, Result};
use async_trait::async_trait;
use deadpool_postgres::Pool;
use tokio_postgres::Client;

use super::wakeup::WakeupCounts;
use crate::config::Postgres;
use crate::format::durability::{Durability, Tier};
use crate::format::manifest::LocalInfo;
use crate::queue::{Backend, ServerInfo, WakeupReport};
use crate::samplers::system::ServerProcs;
use crate::samplers::StatsSampler;

pub struct PgServer {
    pub(super) pg: Postgres,
    pub(super) pool: Pool,
    /// A regular expression naming the design's tables (statistics).
    pub(super) tables: &'static str,
    /// Those the durability tier sets the persistence of (all of them, but for a
    /// library that keeps some logged whatever the queue's persistence).
    pub(super) volatile: &'static str,
    pub(super) wakeup: Arc<WakeupCounts>,
}

/// The design's plain tables (partitions included; a partitioned parent holds no rows).
const TABLES: &str = "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND c.relname ~ $1 AND n.nspname = current_schema()";

/// Makes the design's tables UNLOGGED for the volatile tier and LOGGED otherwise (a
/// rewrite of each table that differs: setup time, never measured).
pub async fn set_persistence(c: &Client, tables: &str, tier: Tier) -> Result<()> {
    let (want, letter) = match tier {
        Tier::Volatile => ("UNLOGGED", "u"),
        _ => ("LOGGED", "p"),
    };
    let sql = format!(
        "SELECT format('ALTER TABLE %I.%I SET {want}', n.nspname, c.relname) {TABLES} \
         AND c.relpersistence <> '{letter}'"
    );
    for row in c.query(&sql, &[&tables]).await? {
        let alter: String = row.try_get(0)?;
        c.batch_execute(&alter).await.with_context(|| {
            format!("{alter}: the durability tier needs it (the user must own the queue's tables)")
        })?;
    }
    Ok(())
}

#[async_trait]
impl crate::queue::Server for PgServer {
    fn backend(&self) -> Backend {
        Backend::Postgresql
    }

    async fn info(&self) -> Result<ServerInfo> {
        let c = super::pooled(&self.pool, &self.pg).await?;
        let row = c
            .query_one(
                "SELECT version(), current_setting('fsync'), current_setting('synchronous_commit')",
                &[],
            )
            .await?;
        let counts = c
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE c.relpersistence = 'u'), count(*) {TABLES}"
                ),
                &[&self.volatile],
            )
            .await?;
        let (unlogged, all): (i64, i64) = (counts.try_get(0)?, counts.try_get(1)?);
        // Behind a pooler (PgBouncer, RDS Proxy) this is the pooler's link, not qbench's.
        let tls = match c
            .query_opt(
                "SELECT version || ' ' || cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )
            .await
        {
            Ok(Some(r)) => r.try_get(0)?,
            Ok(None) => "off".to_string(),
            Err(_) => "unknown".to_string(),
        };
        let tables = match unlogged {
            // No table found (another schema, or setup never ran): nothing to vouch for.
            _ if all == 0 => "missing",
            0 => "logged",
            n if n == all => "unlogged",
            _ => "mixed",
        };
        Ok(ServerInfo {
            version: row.try_get(0)?,
            tls,
            durability: Some(Durability::Postgres {
                fsync: row.try_get(1)?,
                synchronous_commit: row.try_get(2)?,
                tables: tables.into(),
            }),
        })
    }

    async fn now_us(&self) -> Result<i64> {
        let c = super::pooled(&self.pool, &self.pg).await?;
        let row = c
            .query_one(
                "SELECT (extract(epoch FROM clock_timestamp()) * 1e6)::bigint",
                &[],
            )
            .await?;
        Ok(row.try_get(0)?)
    }

    fn procs(&self, local: Option<&LocalInfo>) -> ServerProcs {
        match local {
            Some(l) => ServerProcs::family("postgres", Some(l.postgres_pid)),
            None if self.pg.is_local() => ServerProcs::family("postgres", None),
            None => ServerProcs::Remote,
        }
    }

    fn stats(&self) -> Box<dyn StatsSampler> {
        Box::new(super::stats::DbStats {
            pg: self.pg.clone(),
            tables: self.tables,
        })
    }

    fn wakeup(&self) -> WakeupReport {
        self.wakeup.report()
    }

    async fn cost_counters(
        &self,
        before: Option<&crate::format::cost::Counters>,
    ) -> Result<crate::format::cost::Counters> {
        super::cost::read(&self.pg, self.tables, before).await
    }
}

impl PgServer {
    /// How this process's workers wake, and what notifying has cost.
    pub fn wakeup_counts(&self) -> Arc<WakeupCounts> {
        self.wakeup.clone()
    }
}
