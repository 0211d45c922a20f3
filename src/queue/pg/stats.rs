//! `TEST_db_stats.csv`: PostgreSQL's own counters once per second, as rates and levels.

use std::fs::File;
use std::io::BufWriter;
use std::time::Instant;

use anyhow::Result;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

use crate::config::Postgres;
use crate::format::server_stats::{DbRow, DB_STATS};
use crate::samplers::{per_second, Source, StatsSampler};

/// SQL: schema/pg_monitor.sql.
static MONITOR: crate::schema::Embedded = crate::schema::embedded!("pg_monitor.sql");

/// The sampler for one design: `tables` is a regular expression naming its tables.
pub struct DbStats {
    pub pg: Postgres,
    pub tables: &'static str,
}

impl StatsSampler for DbStats {
    fn file(&self) -> &'static str {
        DB_STATS
    }

    fn start(
        self: Box<Self>,
        out: BufWriter<File>,
        started: Instant,
        stop: CancellationToken,
    ) -> JoinHandle<Result<BufWriter<File>>> {
        tokio::spawn(async move {
            let client = super::connect(&self.pg).await?;
            let st = client.prepare(MONITOR.get("sample")).await?;
            let first = sample(&client, &st, self.tables).await?;
            let source = Deltas {
                base_autovacuums: first.autovacuums,
                prev: first,
                client,
                st,
                tables: self.tables,
            };
            per_second(source, out, started, stop).await
        })
    }
}

struct Sample {
    at: Instant,
    counters: [i64; 7],
    live: i64,
    dead: i64,
    autovacuums: i64,
    lock_waiting: i64,
    other_lock_waiting: i64,
}

async fn sample(client: &Client, st: &Statement, tables: &str) -> Result<Sample> {
    let r = client.query_one(st, &[&tables]).await?;
    let mut counters = [0i64; 7];
    for (i, c) in counters.iter_mut().enumerate() {
        *c = r.try_get(i)?;
    }
    Ok(Sample {
        at: Instant::now(),
        counters,
        live: r.try_get(7)?,
        dead: r.try_get(8)?,
        autovacuums: r.try_get(9)?,
        lock_waiting: r.try_get(10)?,
        other_lock_waiting: r.try_get(11)?,
    })
}

/// Cumulative counters turned into per-second rates.
struct Deltas {
    client: Client,
    st: Statement,
    prev: Sample,
    base_autovacuums: i64,
    tables: &'static str,
}

#[async_trait::async_trait]
impl Source for Deltas {
    type Row = DbRow;

    async fn sample(&mut self, t_s: f64) -> Option<DbRow> {
        let s = sample(&self.client, &self.st, self.tables).await.ok()?;
        let prev = &self.prev;
        let dt = (s.at - prev.at).as_secs_f64().max(1e-3);
        let rate = |i: usize| (s.counters[i] - prev.counters[i]).max(0) as f64 / dt;
        let hits = (s.counters[5] - prev.counters[5]).max(0) as f64;
        let reads = (s.counters[6] - prev.counters[6]).max(0) as f64;
        let row = DbRow {
            t_s,
            commits_s: rate(0),
            rollbacks_s: rate(1),
            tup_inserted_s: rate(2),
            tup_updated_s: rate(3),
            tup_deleted_s: rate(4),
            live_tuples: s.live,
            dead_tuples: s.dead,
            autovacuum_runs: (s.autovacuums - prev.autovacuums).max(0),
            autovacuum_total: (s.autovacuums - self.base_autovacuums).max(0),
            lock_waiting_sessions: s.lock_waiting,
            other_lock_waiting_sessions: s.other_lock_waiting,
            cache_hit_ratio: (hits + reads > 0.0).then(|| hits / (hits + reads)),
        };
        self.prev = s;
        Some(row)
    }
}
