//! The counters `qbench cost` reads from PostgreSQL: statements (pg_stat_statements, top
//! level and inside functions, with their shared buffers), transactions, WAL bytes, and
//! the dead row versions and HOT updates of the design's tables.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio_postgres::Client;

use crate::config::Postgres;
use crate::format::cost::Counters;

/// The reading's own statements, left out of the statement counts.
const OURS: &str = "pg_stat|pg_current_wal|pg_backend_pid";

/// Reads the counters on a connection of its own. After a run (`before` given), first
/// waits until every session the run opened has ended: a backend flushes its table and
/// transaction statistics as it exits.
pub async fn read(pg: &Postgres, tables: &str, before: Option<&Counters>) -> Result<Counters> {
    let c = super::connect(pg).await?;
    // Before the WAL is read: the first reading's CREATE EXTENSION writes catalog rows.
    let extension = c
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await;
    if let Some(b) = before {
        settle(&c, &b.sessions).await?;
    }
    let mut out = Counters {
        sessions: sessions(&c).await?,
        ..Counters::default()
    };
    let wal = c
        .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
        .await?;
    out.log_bytes = Some(u64::try_from(wal.try_get::<_, i64>(0)?)?);
    let x = c
        .query_one(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await?;
    out.transactions = Some(u64::try_from(x.try_get::<_, i64>(0)?)?);
    let t = c
        .query_one(
            "SELECT coalesce(sum(n_tup_upd + n_tup_del), 0)::bigint, coalesce(sum(n_tup_hot_upd), 0)::bigint, \
                    coalesce(sum(n_tup_upd), 0)::bigint \
             FROM pg_stat_user_tables WHERE relname ~ $1 AND schemaname = current_schema()",
            &[&tables],
        )
        .await?;
    out.dead_tuples = Some(u64::try_from(t.try_get::<_, i64>(0)?)?);
    out.hot_updates = Some(u64::try_from(t.try_get::<_, i64>(1)?)?);
    out.updates = Some(u64::try_from(t.try_get::<_, i64>(2)?)?);
    match extension {
        Ok(()) => statements(&c, &mut out).await,
        Err(e) => out.missing.push(no_statements(&e)),
    }
    Ok(out)
}

/// Client backends of this database other than the reader's own.
async fn sessions(c: &Client) -> Result<Vec<i64>> {
    let rows = c
        .query(
            "SELECT pid::bigint FROM pg_stat_activity WHERE datname = current_database() \
             AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// Waits until no session is open that was not open before the run.
async fn settle(c: &Client, before: &[i64]) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let new: Vec<i64> = sessions(c)
            .await?
            .into_iter()
            .filter(|p| !before.contains(p))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("sessions {new:?} opened during the run were still open 60 s after it ended: another client works in this database; run cost in a database of its own");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Statement counts and their buffers, where pg_stat_statements is loaded; else the
/// reason, and the counts stay unknown.
async fn statements(c: &Client, out: &mut Counters) {
    let sql = format!(
        "SELECT coalesce(sum(calls) FILTER (WHERE toplevel), 0)::bigint, \
                coalesce(sum(calls) FILTER (WHERE NOT toplevel), 0)::bigint, \
                coalesce(sum(shared_blks_hit + shared_blks_read) FILTER (WHERE toplevel), 0)::bigint \
         FROM pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND query !~ '{OURS}'"
    );
    match c.query_one(&sql, &[]).await {
        Ok(r) => {
            let get = |i: usize| {
                r.try_get::<_, i64>(i)
                    .ok()
                    .and_then(|v| u64::try_from(v).ok())
            };
            out.statements = get(0);
            out.buffers = get(2);
            // SHOW, not current_setting(): its text names pg_stat, so it is left out.
            let track = c
                .simple_query("SHOW pg_stat_statements.track")
                .await
                .ok()
                .and_then(|m| {
                    m.into_iter().find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(String::from),
                        _ => None,
                    })
                });
            if track.as_deref() == Some("all") {
                out.nested_statements = get(1);
            } else {
                out.missing.push(
                    "statements inside functions not counted: pg_stat_statements.track is not all"
                        .into(),
                );
            }
        }
        Err(e) => out.missing.push(no_statements(&e)),
    }
}

fn no_statements(e: &tokio_postgres::Error) -> String {
    format!(
        "statements and buffers not counted: pg_stat_statements is not available ({}); load it with shared_preload_libraries and pg_stat_statements.track = all (qbench --local cost does)",
        e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_string())
    )
}
