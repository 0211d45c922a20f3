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
            let version: i32 = client
                .query_one("SELECT current_setting('server_version_num')::int", &[])
                .await?
                .try_get(0)?;
            // PostgreSQL 17 moved the checkpoint counters to pg_stat_checkpointer.
            let checkpoints = if version >= 170_000 {
                "checkpoints"
            } else {
                "checkpoints_before_17"
            };
            let st = Statements {
                sample: client.prepare(MONITOR.get("sample")).await?,
                checkpoints: client.prepare(MONITOR.get(checkpoints)).await?,
            };
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

struct Statements {
    sample: Statement,
    checkpoints: Statement,
}

struct Sample {
    at: Instant,
    counters: [i64; 7],
    live: i64,
    dead: i64,
    autovacuums: i64,
    lock_waiting: i64,
    other_lock_waiting: i64,
    autoanalyzes: i64,
    vacuums: i64,
    wal_bytes: i64,
    vacuums_running: String,
    queue_vacuums_running: String,
    lock_blockers: String,
    checkpointing: bool,
    /// Timed and requested checkpoints begun, cumulative.
    checkpoints: [i64; 2],
    /// Write and sync milliseconds, cumulative.
    checkpoint_ms: [f64; 2],
}

/// The two statements go out together (one round trip, pipelined on the client).
async fn sample(client: &Client, st: &Statements, tables: &str) -> Result<Sample> {
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&tables];
    let (r, c) = tokio::try_join!(
        client.query_one(&st.sample, &params),
        client.query_one(&st.checkpoints, &[])
    )?;
    let mut counters = [0i64; 7];
    for (i, v) in counters.iter_mut().enumerate() {
        *v = r.try_get(i)?;
    }
    Ok(Sample {
        at: Instant::now(),
        counters,
        live: r.try_get(7)?,
        dead: r.try_get(8)?,
        autovacuums: r.try_get(9)?,
        lock_waiting: r.try_get(10)?,
        other_lock_waiting: r.try_get(11)?,
        autoanalyzes: r.try_get(12)?,
        vacuums: r.try_get(13)?,
        wal_bytes: r.try_get::<_, Option<i64>>(14)?.unwrap_or(0),
        vacuums_running: r.try_get::<_, Option<String>>(15)?.unwrap_or_default(),
        queue_vacuums_running: r.try_get::<_, Option<String>>(16)?.unwrap_or_default(),
        lock_blockers: r.try_get::<_, Option<String>>(17)?.unwrap_or_default(),
        checkpointing: r.try_get(18)?,
        checkpoints: [c.try_get(0)?, c.try_get(1)?],
        checkpoint_ms: [c.try_get(2)?, c.try_get(3)?],
    })
}

/// Cumulative counters turned into per-second rates.
struct Deltas {
    client: Client,
    st: Statements,
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
            autoanalyze_runs: (s.autoanalyzes - prev.autoanalyzes).max(0),
            vacuum_runs: (s.vacuums - prev.vacuums).max(0),
            vacuums_running: s.vacuums_running.clone(),
            queue_vacuums_running: s.queue_vacuums_running.clone(),
            queue_vacuums_listed: true,
            lock_blockers: s.lock_blockers.clone(),
            checkpoints_timed: (s.checkpoints[0] - prev.checkpoints[0]).max(0),
            checkpoints_requested: (s.checkpoints[1] - prev.checkpoints[1]).max(0),
            checkpointing: s.checkpointing,
            checkpoint_write_ms: (s.checkpoint_ms[0] - prev.checkpoint_ms[0]).max(0.0),
            checkpoint_sync_ms: (s.checkpoint_ms[1] - prev.checkpoint_ms[1]).max(0.0),
            wal_bytes_s: (s.wal_bytes - prev.wal_bytes).max(0) as f64 / dt,
        };
        self.prev = s;
        Some(row)
    }
}
