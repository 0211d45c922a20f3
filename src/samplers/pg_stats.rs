//! `TEST_db_stats.csv`: PostgreSQL's own counters once per second, as rates and levels.

use std::io::Write;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Postgres;
use crate::queue::pg;
use crate::schema::MONITOR;

#[derive(Debug, Serialize)]
pub struct Row {
    pub t_s: f64,
    pub commits_s: f64,
    pub rollbacks_s: f64,
    pub tup_inserted_s: f64,
    pub tup_updated_s: f64,
    pub tup_deleted_s: f64,
    /// Live and dead tuples of the queue tables (all of `queue_jobs*`).
    pub live_tuples: i64,
    pub dead_tuples: i64,
    /// Autovacuum runs on the queue tables during this second, and since the test began.
    pub autovacuum_runs: i64,
    pub autovacuum_total: i64,
    /// Sessions of this database waiting on a lock at the sample.
    pub lock_waiting_sessions: i64,
    /// Share of block reads served from shared buffers during this second; empty if none.
    pub cache_hit_ratio: Option<f64>,
}

struct Sample {
    at: Instant,
    counters: [i64; 7],
    live: i64,
    dead: i64,
    autovacuums: i64,
    lock_waiting: i64,
}

async fn sample(client: &tokio_postgres::Client, st: &tokio_postgres::Statement) -> Result<Sample> {
    let r = client.query_one(st, &[]).await?;
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
    })
}

/// Samples every second until `stop`; returns the writer flushed. Errors skip a row.
pub fn start<W: Write + Send + 'static>(
    out: W,
    pg_cfg: Postgres,
    started: Instant,
    stop: CancellationToken,
) -> JoinHandle<Result<W>> {
    tokio::spawn(async move {
        let mut csv = csv::Writer::from_writer(out);
        let client = pg::connect(&pg_cfg).await?;
        let st = client.prepare(MONITOR.get("sample")).await?;
        let first = sample(&client, &st).await?;
        let base_autovacuums = first.autovacuums;
        let mut prev = first;
        let mut tick = super::every_second(started);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.cancelled() => break,
            }
            let Ok(s) = sample(&client, &st).await else {
                continue;
            };
            let dt = (s.at - prev.at).as_secs_f64().max(1e-3);
            let rate = |i: usize| (s.counters[i] - prev.counters[i]).max(0) as f64 / dt;
            let hits = (s.counters[5] - prev.counters[5]).max(0) as f64;
            let reads = (s.counters[6] - prev.counters[6]).max(0) as f64;
            csv.serialize(Row {
                t_s: super::secs(started),
                commits_s: rate(0),
                rollbacks_s: rate(1),
                tup_inserted_s: rate(2),
                tup_updated_s: rate(3),
                tup_deleted_s: rate(4),
                live_tuples: s.live,
                dead_tuples: s.dead,
                autovacuum_runs: (s.autovacuums - prev.autovacuums).max(0),
                autovacuum_total: (s.autovacuums - base_autovacuums).max(0),
                lock_waiting_sessions: s.lock_waiting,
                cache_hit_ratio: (hits + reads > 0.0).then(|| hits / (hits + reads)),
            })?;
            csv.flush()?;
            prev = s;
        }
        csv.flush()?;
        csv.into_inner()
            .map_err(|e| anyhow::anyhow!("flushing db_stats: {e}"))
    })
}
