//! PostgreSQL: connections and errors that tell the user what to do (here); the server
//! and what the manifest records of it (`server`); what the three designs share (`base`:
//! a pool for setup and counting, the sequence counter, the snapshot); the batch
//! producer (`producer`); and how idle workers wake (`wakeup`).

mod base;
pub mod cost;
mod horizon;
mod producer;
mod server;
mod stats;
pub mod tls;
pub mod url;
mod wakeup;

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::{Client, Row};

use crate::config::{Postgres, SslMode};
use crate::error::UsageError;
pub use base::{seq_ddl, PgBase};
pub use horizon::PgHorizon;
pub use producer::PgProducer;
pub use server::PgServer;
pub use wakeup::{Claims, Listener, Wait, Waiting, WakeupCounts};

/// A number in [0, 1) for a library's jittered timers (River's fetch poll and backoff,
/// graphile-worker's sweep interval and pool id): a xorshift seeded by the clock and the
/// process id. It spreads timers, as the libraries' own do; it is not a statistic.
pub fn jitter_fraction() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The jobs' (row id, seq), for a design that completes rows by id; `design` names it
/// in the error for a job it did not hand out.
pub fn row_ids(jobs: &[crate::queue::Claimed], design: &str) -> Result<Vec<(i64, i64)>> {
    jobs.iter()
        .map(|j| match j.handle {
            crate::queue::Handle::Row { id, .. } => Ok((id, j.seq)),
            _ => Err(anyhow::anyhow!("job {} was not claimed by {design}", j.seq)),
        })
        .collect()
}

/// Connection settings for tokio-postgres; the password stays inside the struct.
pub fn client_config(pg: &Postgres) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host(&pg.host)
        .port(pg.port)
        .dbname(&pg.database)
        .user(&pg.user)
        .password(&pg.password)
        .application_name("qbench")
        .connect_timeout(std::time::Duration::from_secs(10))
        // The verify modes are TLS-or-nothing too; what they check is the connector's.
        .ssl_mode(match tls::effective_mode(pg) {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
    if let Some(on) = pg.synchronous_commit {
        c.options(if on {
            "-c synchronous_commit=on"
        } else {
            "-c synchronous_commit=off"
        });
    }
    c
}

/// A connection of its own (workers and producers never share one).
/// Dropping the client closes it, which rolls back any open transaction on the server.
pub async fn connect(pg: &Postgres) -> Result<Client> {
    let (client, conn) = bounded(pg, client_config(pg).connect(tls::connector(pg)?)).await?;
    tokio::spawn(async move {
        // The error, if any, surfaces on the client's next call.
        let _ = conn.await;
    });
    Ok(client)
}

/// tokio-postgres bounds only the TCP connect; the TLS handshake and the login get a
/// bound here too (a port that is not PostgreSQL's can otherwise hold them forever).
pub async fn bounded<T>(
    pg: &Postgres,
    connecting: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T> {
    match tokio::time::timeout(LOGIN_TIMEOUT, connecting).await {
        Ok(r) => r.map_err(|e| connect_error(&e, pg)),
        Err(_) => Err(login_timeout(pg)),
    }
}

const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

fn login_timeout(pg: &Postgres) -> anyhow::Error {
    anyhow::Error::new(UsageError::new(format!(
        "PostgreSQL at {}: connected, but no login within {} s; is this port a PostgreSQL \
         server, and does postgres.sslmode ({}) match what it speaks?",
        pg.display(),
        LOGIN_TIMEOUT.as_secs(),
        pg.sslmode.name()
    )))
}

/// A small shared pool for setup, sampling and the reaper.
pub fn pool(pg: &Postgres, max_size: usize) -> Result<Pool> {
    let mgr = Manager::from_config(
        client_config(pg),
        tls::connector(pg)?,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(mgr)
        .max_size(max_size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(LOGIN_TIMEOUT))
        .build()
        .context("building the PostgreSQL connection pool")
}

/// The shared pool, checked at once so an unreachable server fails with one clear line.
pub async fn open_pool(pg: &Postgres) -> Result<Pool> {
    let pool = pool(pg, 4)?;
    drop(pooled(&pool, pg).await?);
    Ok(pool)
}

pub async fn pooled(pool: &Pool, pg: &Postgres) -> Result<Object> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => connect_error(&e, pg),
        deadpool_postgres::PoolError::Timeout(_) => login_timeout(pg),
        other => anyhow::anyhow!("PostgreSQL pool for {}: {other}", pg.display()),
    })
}

/// Turns a failed connection into one line that says what to do (exit code 2).
pub fn connect_error(e: &tokio_postgres::Error, pg: &Postgres) -> anyhow::Error {
    let at = pg.display();
    let msg = if let Some(db) = e.as_db_error() {
        match db.code().code() {
            // pg_hba.conf's `hostnossl … reject`, or no hostnossl line at all.
            "28000" if db.message().ends_with("no encryption") => format!(
                "PostgreSQL at {at} accepts only TLS connections ({}); set postgres.sslmode \
                 (PGSSLMODE, ?sslmode=) to verify-full, verify-ca or require",
                db.message()
            ),
            // pg_hba.conf's clientcert=…, or `cert` authentication.
            "28000" if db.message().contains("certificate") => format!(
                "PostgreSQL at {at} wants a client certificate ({}); set postgres.sslcert and \
                 postgres.sslkey (PGSSLCERT, PGSSLKEY) to one its CA signed",
                db.message()
            ),
            "28P01" | "28000" => format!(
                "PostgreSQL at {at} refused the login: {}; check postgres.password or PGPASSWORD",
                db.message()
            ),
            "3D000" => format!(
                "PostgreSQL at {at}: {}; create it (setup/install_pg.sh) or set postgres.database",
                db.message()
            ),
            _ => format!("PostgreSQL at {at}: {}", db.message()),
        }
    } else {
        let cause = std::error::Error::source(e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        format!(
            "cannot connect to PostgreSQL at {at}: {cause}; {}",
            tls_hint(&cause, pg)
        )
    };
    anyhow::Error::new(UsageError::new(msg))
}

/// What to do about a failed connection, from the TLS error it carries (if any).
fn tls_hint(cause: &str, pg: &Postgres) -> String {
    let root = if pg.sslrootcert.is_empty() {
        "~/.postgresql/root.crt".to_string()
    } else {
        pg.sslrootcert.clone()
    };
    let tls = crate::tls::failure(cause);
    if tls == Some(crate::tls::Failure::UnknownCa) {
        format!(
            "the server's certificate is not signed by a CA in postgres.sslrootcert ({root}); \
             give the CA that signed it (PGSSLROOTCERT, ?sslrootcert=)"
        )
    } else if tls == Some(crate::tls::Failure::WrongName) {
        format!(
            "the server's certificate was not issued for host {:?}; connect by a name the \
             certificate names, or use sslmode=verify-ca to check the CA only",
            pg.host
        )
    } else if cause.contains("does not support TLS") {
        format!(
            "postgres.sslmode = {} needs TLS, which the server does not offer; enable ssl on \
             the server, or use sslmode=prefer",
            pg.sslmode.name()
        )
    } else if tls == Some(crate::tls::Failure::Refused) {
        "the server refused the TLS handshake (its alert above): it may want a client \
         certificate (postgres.sslcert, sslkey) it trusts, or a newer TLS version"
            .into()
    } else if cause.contains("certificate") || cause.contains("handshake") {
        "the TLS handshake failed; check postgres.sslmode, sslrootcert, sslcert and sslkey".into()
    } else {
        "is the server running? (qbench --local starts one; setup/install_pg.sh installs one)"
            .into()
    }
}

pub async fn query_i64(client: &Client, sql: &str) -> Result<i64> {
    let row = client.query_one(sql, &[]).await?;
    Ok(row.try_get::<_, i64>(0)?)
}

/// Empties tables without waiting forever behind a stuck transaction.
pub async fn truncate(client: &Client, sql: &str) -> Result<()> {
    client
        .batch_execute(&format!(
            "SET lock_timeout = '15s'; {sql}; RESET lock_timeout"
        ))
        .await
        .context("emptying the queue (a transaction holding the table for 15 s blocks this)")
}

/// Converts a non-negative count column.
pub fn count(row: &Row, idx: usize) -> Result<u64> {
    let v: i64 = row.try_get(idx)?;
    Ok(u64::try_from(v).unwrap_or(0))
}

/// Runs `sql` and hands each row to `f` as it arrives: a snapshot of millions of rows
/// keeps a number per job, not a row object per job.
pub async fn each_row(
    c: &tokio_postgres::Client,
    sql: &str,
    mut f: impl FnMut(&tokio_postgres::Row) -> Result<()>,
) -> Result<()> {
    use futures_util::TryStreamExt;
    let rows = c
        .query_raw(sql, std::iter::empty::<i64>())
        .await
        .context("reading the queue")?;
    futures_util::pin_mut!(rows);
    while let Some(r) = rows.try_next().await? {
        f(&r)?;
    }
    Ok(())
}

/// A job as a library design carries it (pgmq's message, River's args): its seq and
/// intended enqueue time beside the payload, as a user's job fields would travel.
/// Written by hand on the producer's hot path: the payload is qbench's own ASCII letters
/// (`queue::payload`), which need no escaping.
pub fn message(job: &crate::queue::NewJob, payload: &str) -> String {
    format!(
        "{{\"seq\":{},\"enqueued_at_us\":{},\"payload\":\"{payload}\"}}",
        job.seq, job.enqueued_at_us
    )
}

/// The seq and intended time of a [`message`]; `what` and `id` name the row it came from.
pub fn message_fields(msg: &serde_json::Value, what: &str, id: i64) -> Result<(i64, i64)> {
    let field = |name: &str| {
        msg[name].as_i64().ok_or_else(|| {
            anyhow::anyhow!("{what} {id} has no {name}: not a qbench job; empty the queue with setup-schema --reset")
        })
    };
    Ok((field("seq")?, field("enqueued_at_us")?))
}

#[cfg(test)]
mod tests {
    /// A message round-trips its fields (known truth), and one without them is refused.
    #[test]
    fn a_message_carries_seq_and_time() {
        let job = crate::queue::NewJob {
            seq: 7,
            enqueued_at_us: 1_700_000_000_000_001,
        };
        let v: serde_json::Value =
            serde_json::from_str(&super::message(&job, "abc")).expect("json");
        assert_eq!(v["payload"], "abc");
        assert_eq!(
            super::message_fields(&v, "row", 1).expect("fields"),
            (7, 1_700_000_000_000_001)
        );
        let e =
            super::message_fields(&serde_json::json!({"seq": 1}), "row", 9).expect_err("no time");
        assert!(e.to_string().contains("row 9 has no enqueued_at_us"), "{e}");
    }
}
