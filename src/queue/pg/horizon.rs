//! The horizon scenario on PostgreSQL: a holder that keeps the oldest snapshot (and so
//! every dead row version since) alive, and a once-a-second read of what it costs: the
//! snapshot's age, the design's tuples and sizes, vacuum, a claim's buffers, wait events.
//! SQL: schema/pg_horizon.sql.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_postgres::{CancelToken, Client};
use tokio_util::sync::CancellationToken;

use crate::config::Postgres;
use crate::format::horizon::{ClaimCost, Holder, HolderSpec, RelationRow, ServerSample};

static SQL: crate::schema::Embedded = crate::schema::embedded!("pg_horizon.sql");

/// The server ended the holder: its words, once known.
type Ended = Arc<Mutex<Option<String>>>;
/// Each analytics query that the server ended, in its words.
type QueriesEnded = Arc<Mutex<Vec<String>>>;

pub struct PgHorizon {
    pg: Postgres,
    /// A regular expression naming the design's tables; its main table.
    tables: &'static str,
    table: &'static str,
    /// One claim as the workers run it, for EXPLAIN.
    claim_sql: String,
    client: Client,
    held: Option<Held>,
}

enum Held {
    /// An idle transaction on a connection of its own.
    Session { client: Client, ended: Ended },
    /// Analytics queries, each on a connection of its own, until `stop`.
    Queries {
        tasks: Vec<JoinHandle<()>>,
        stop: CancellationToken,
        ended: QueriesEnded,
    },
}

/// A connection named `qbench_holder` (so its waits are not counted as qbench's), whose
/// end, if the server brings it, is recorded in `ended`.
async fn holder_connection(pg: &Postgres) -> Result<(Client, Ended)> {
    let mut cfg = super::client_config(pg);
    cfg.application_name("qbench_holder");
    let (client, conn) = super::bounded(pg, cfg.connect(super::tls::connector(pg)?)).await?;
    let ended: Ended = Arc::default();
    let mark = ended.clone();
    tokio::spawn(async move {
        let why = match conn.await {
            Ok(()) => "the server closed the connection".to_string(),
            Err(e) => e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string()),
        };
        let mut m = mark.lock().unwrap_or_else(|p| p.into_inner());
        m.get_or_insert(why);
    });
    // A holder whose client dies (kill -9 of qbench) must not outlive it on the server:
    // a running query notices a closed socket only when it checks. Not every platform
    // has the check; there the query runs to its end.
    let _ = client
        .batch_execute("SET client_connection_check_interval = 1000")
        .await;
    Ok((client, ended))
}

impl PgHorizon {
    pub async fn open(
        pg: &Postgres,
        tables: &'static str,
        table: &'static str,
        claim_sql: String,
    ) -> Result<PgHorizon> {
        Ok(PgHorizon {
            pg: pg.clone(),
            tables,
            table,
            claim_sql,
            client: super::connect(pg).await?,
            held: None,
        })
    }

    /// One analytics query after another on its own connection, each `query_s` long,
    /// starting `offset` into the hold, until `stop` (which cancels the one running).
    async fn analytics(
        &self,
        offset: Duration,
        query_s: f64,
        stop: CancellationToken,
        ended: QueriesEnded,
    ) -> Result<JoinHandle<()>> {
        let (client, conn_ended) = holder_connection(&self.pg).await?;
        // A statement's snapshot lives as long as the statement: the sleep keeps it.
        let sql = SQL.get("analytics").replace("{table}", self.table);
        let stmt = client.prepare(&sql).await?;
        let cancel: CancelToken = client.cancel_token();
        let tls = super::tls::connector(&self.pg)?;
        Ok(tokio::spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(offset) => {}
                _ = stop.cancelled() => return,
            }
            while !stop.is_cancelled() {
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&query_s];
                let run = client.query(&stmt, &params);
                let result = tokio::select! {
                    r = run => r,
                    _ = stop.cancelled() => {
                        let _ = cancel.cancel_query(tls).await;
                        return;
                    }
                };
                if let Err(e) = result {
                    // Cancelled or ended by the server (statement_timeout, a DBA): a result.
                    let why = conn_ended
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone()
                        .or_else(|| e.as_db_error().map(|d| d.message().to_string()))
                        .unwrap_or_else(|| e.to_string());
                    ended.lock().unwrap_or_else(|p| p.into_inner()).push(why);
                    return;
                }
            }
        }))
    }
}

#[async_trait]
impl crate::queue::Horizon for PgHorizon {
    async fn settings(&mut self) -> Result<BTreeMap<String, String>> {
        let rows = self.client.query(SQL.get("settings"), &[]).await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    async fn hold(&mut self, spec: &HolderSpec) -> Result<String> {
        let (held, what) = match spec.kind {
            Holder::None => return Ok("nothing (a control run)".into()),
            Holder::Xid | Holder::Snapshot => {
                let (client, ended) = holder_connection(&self.pg).await?;
                let sql = if spec.kind == Holder::Xid {
                    SQL.get("hold_xid").to_string()
                } else {
                    SQL.get("hold_snapshot").replace("{table}", self.table)
                };
                client
                    .batch_execute(&sql)
                    .await
                    .with_context(|| format!("starting the holder: {sql}"))?;
                (Held::Session { client, ended }, sql)
            }
            Holder::Analytics => {
                let stop = CancellationToken::new();
                let ended: QueriesEnded = Arc::default();
                let mut tasks = vec![];
                let k = spec.queries.max(1);
                for i in 0..k {
                    let offset =
                        Duration::from_secs_f64(spec.query_s * f64::from(i) / f64::from(k));
                    tasks.push(
                        self.analytics(offset, spec.query_s, stop.clone(), ended.clone())
                            .await?,
                    );
                }
                let what = format!(
                    "{k} overlapping {}-s SELECTs over {}, started {:.0} s apart",
                    spec.query_s,
                    self.table,
                    spec.query_s / f64::from(k)
                );
                (Held::Queries { tasks, stop, ended }, what)
            }
        };
        self.held = Some(held);
        Ok(what)
    }

    fn killed(&mut self) -> Option<String> {
        match self.held.as_ref()? {
            Held::Session { ended, .. } => ended.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            // The horizon is held while any query still runs.
            Held::Queries { tasks, ended, .. } => {
                let ended = ended.lock().unwrap_or_else(|p| p.into_inner());
                (ended.len() >= tasks.len()).then(|| ended.join("; "))
            }
        }
    }

    async fn release(&mut self) {
        match self.held.take() {
            Some(Held::Session { client, .. }) => {
                // Dropping the client would end it too; ROLLBACK says so at once.
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), client.batch_execute("ROLLBACK"))
                        .await;
            }
            Some(Held::Queries { tasks, stop, .. }) => {
                stop.cancel();
                for t in tasks {
                    let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
                }
            }
            None => {}
        }
    }

    async fn sample(&mut self) -> Result<ServerSample> {
        let head = self
            .client
            .query_one(SQL.get("sample"), &[&self.tables])
            .await?;
        let rels = self
            .client
            .query(SQL.get("relations"), &[&self.tables])
            .await?;
        let mut relations = vec![];
        let mut autovacuums = 0i64;
        for r in &rels {
            let kind: String = r.try_get(1)?;
            let table = kind == "table";
            autovacuums += r.try_get::<_, i64>(5)?;
            relations.push(RelationRow {
                t_s: 0.0,
                relation: r.try_get(0)?,
                kind,
                live_tuples: table.then(|| r.try_get(2)).transpose()?,
                dead_tuples: table.then(|| r.try_get(3)).transpose()?,
                bytes: r.try_get(4)?,
            });
        }
        Ok(ServerSample {
            xmin_age: head.try_get(0)?,
            relations,
            autovacuums: Some(autovacuums),
            vacuums_running: Some(head.try_get(1)?),
            vacuum_phase: head.try_get(2)?,
            wait_events: head.try_get(3)?,
            memory_bytes: None,
        })
    }

    async fn claim_cost(&mut self) -> Result<Option<ClaimCost>> {
        // The claim's locks and lease are undone: the workers never see this one. The
        // server ends a slow one before the sampler's own timeout, so no statement is
        // left running on this connection in front of the next second's reads.
        let tx = self.client.transaction().await?;
        tx.batch_execute("SET LOCAL statement_timeout = '1500ms'")
            .await?;
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {}", self.claim_sql);
        let row = tx.query_one(&sql, &[]).await?;
        tx.rollback().await?;
        let plan: serde_json::Value = row.try_get(0)?;
        Ok(parse_explain(&plan))
    }
}

/// Buffers the top plan node touched (its children's included) and the execution time.
fn parse_explain(v: &serde_json::Value) -> Option<ClaimCost> {
    let top = v.get(0)?;
    let node = top.get("Plan")?;
    let n = |k: &str| node.get(k).and_then(|x| x.as_i64()).unwrap_or(0);
    Some(ClaimCost {
        buffers: n("Shared Hit Blocks") + n("Shared Read Blocks"),
        ms: top.get("Execution Time")?.as_f64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_buffers_are_the_top_nodes() {
        let v = serde_json::json!([{
            "Plan": {"Node Type": "ModifyTable", "Shared Hit Blocks": 120, "Shared Read Blocks": 3,
                     "Plans": [{"Shared Hit Blocks": 100}]},
            "Execution Time": 1.25
        }]);
        assert_eq!(
            parse_explain(&v),
            Some(ClaimCost {
                buffers: 123,
                ms: 1.25
            })
        );
        assert_eq!(parse_explain(&serde_json::json!([])), None);
    }

    #[test]
    fn every_statement_exists() {
        for name in [
            "settings",
            "hold_xid",
            "hold_snapshot",
            "analytics",
            "sample",
            "relations",
        ] {
            assert!(!SQL.get(name).is_empty(), "{name}");
        }
        assert!(SQL.get("hold_snapshot").contains("{table}"));
    }
}
