//! The background loops of one pg-boss instance, at pg-boss's default intervals, run from
//! qbench's reaper (which ticks at least once a second in a work process):
//! - supervise (src/boss.ts, every superviseIntervalSeconds, 60 s): the queues read, then
//!   per table the monitor (its gate; the queue's counts; the expiry of jobs active past
//!   expireInSeconds, which returns a dead worker's job; the heartbeat expiry) and the
//!   maintenance (its gate, once per maintenanceIntervalSeconds; the deletion of jobs
//!   finished deleteAfterSeconds ago; the dependency cleanup);
//! - the manager's queue cache (src/manager.ts, every 60 s);
//! - the Navigator's flow gate every 5 s, and when it wins the queues and a flow pass
//!   per table (src/navigator.ts);
//! - the Timekeeper's cron gate every 30 s (and the schedules when it wins), its clock
//!   read every 10 minutes, and its `__pgboss__send-it` worker's fetch of up to 50 jobs
//!   every 5 s (src/timekeeper.ts);
//! - the BAM poller's gate every 60 s (and its read when it wins; src/bam.ts).
//!
//! Each timer's first run is one interval after the process opened the queue (pg-boss
//! runs the flow, cron and BAM timers and the cron worker once at its start as well: a
//! few statements per process, left out). Statements go as pg-boss sends them:
//! parameterless ones as simple queries (the locked() transactions are one
//! multi-statement query each), the others unprepared with their parameters (the gates'
//! intervals bound, where pg-boss writes them into the text).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::{fetch_sql, COMMON, QUEUE, SEND_IT, SQL};

const FLOW: Duration = Duration::from_secs(5);
const CRON: Duration = Duration::from_secs(30);
const BAM: Duration = Duration::from_secs(60);
const CACHE: Duration = Duration::from_secs(60);
const SEND_IT_POLL: Duration = Duration::from_secs(5);
const CLOCK: Duration = Duration::from_secs(600);

/// One timer: its interval and when it fires next.
struct Timer {
    every: Duration,
    next: Instant,
}

impl Timer {
    fn new(every: Duration, now: Instant) -> Timer {
        Timer {
            every,
            next: now + every,
        }
    }

    /// Whether it fires now (and if so, when it fires next).
    fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

pub struct Maintenance {
    /// The tables and the queues in each: qbench's in `table`, the Timekeeper's in the
    /// shared job_common (the same table unless `partition`).
    groups: Vec<(&'static str, Vec<&'static str>)>,
    monitor_every: Duration,
    maintain_every: Duration,
    supervise: Timer,
    cache: Timer,
    flow: Timer,
    cron: Timer,
    bam: Timer,
    send_it: Timer,
    clock: Timer,
}

impl Maintenance {
    pub fn new(table: &'static str, monitor: Duration, maintain: Duration) -> Maintenance {
        let now = Instant::now();
        let groups = if table == COMMON {
            vec![(COMMON, vec![QUEUE, SEND_IT])]
        } else {
            vec![(table, vec![QUEUE]), (COMMON, vec![SEND_IT])]
        };
        Maintenance {
            groups,
            monitor_every: monitor,
            maintain_every: maintain,
            supervise: Timer::new(monitor, now),
            cache: Timer::new(CACHE, now),
            flow: Timer::new(FLOW, now),
            cron: Timer::new(CRON, now),
            bam: Timer::new(BAM, now),
            send_it: Timer::new(SEND_IT_POLL, now),
            clock: Timer::new(CLOCK, now),
        }
    }

    /// Runs whatever is due; returns the jobs the monitor's expiry returned to the queue.
    pub async fn tick(&mut self, c: &Client) -> Result<u64> {
        let now = Instant::now();
        let mut returned = 0;
        if self.supervise.due(now) {
            c.simple_query(SQL.get("queues")).await?;
            for (table, names) in self.groups.clone() {
                returned += self.monitor(c, table, &names).await?;
                self.maintain(c, table, &names).await?;
            }
        }
        if self.cache.due(now) {
            c.simple_query(SQL.get("queues")).await?;
        }
        if self.flow.due(now) && gate(c, "flow_on", FLOW).await? {
            c.simple_query(SQL.get("queues")).await?;
            for (table, names) in &self.groups {
                let sql = SQL.get("resolve_flows").replace("{table}", table);
                c.query_typed(&sql, &[(&names, Type::TEXT_ARRAY)]).await?;
            }
        }
        if self.cron.due(now) && gate(c, "cron_on", CRON).await? {
            c.simple_query(SQL.get("schedules")).await?;
        }
        if self.bam.due(now) && gate(c, "bam_on", BAM).await? {
            c.simple_query(SQL.get("bam_next")).await?;
        }
        if self.send_it.due(now) {
            c.simple_query(&fetch_sql(COMMON, SEND_IT, 50)).await?;
        }
        if self.clock.due(now) {
            c.simple_query(SQL.get("clock")).await?;
        }
        Ok(returned)
    }

    /// `#monitor`: if this process wins the interval for some of the table's queues,
    /// their counts, then the expiry of jobs active too long (returned, or failed once
    /// out of retries), then the heartbeat expiry. Returns the jobs expired.
    async fn monitor(&self, c: &Client, table: &str, names: &[&str]) -> Result<u64> {
        let won = queue_gate(c, "monitor_gate", names, self.monitor_every).await?;
        if won.is_empty() {
            return Ok(0);
        }
        let list = array_literal(&won);
        let stats = SQL
            .get("cache_stats")
            .replace("{table}", table)
            .replace("{names}", &list);
        envelope(c, &stats, "queue counts").await?;
        let expired = format!(
            "state = 'active' AND (started_on + expire_seconds * interval '1s') < now() AND name = ANY({list})"
        );
        let n = fail(c, table, &expired, "failJobsByTimeout", "job timed out").await?;
        let silent = format!(
            "state = 'active' AND heartbeat_seconds IS NOT NULL AND (heartbeat_on + heartbeat_seconds * interval '1s') < now() AND name = ANY({list})"
        );
        fail(c, table, &silent, "failJobsByHeartbeat", "job heartbeat timeout").await?;
        Ok(n)
    }

    /// `#maintain`: once per maintenance interval, the deletion of expired jobs and of
    /// orphaned dependencies.
    async fn maintain(&self, c: &Client, table: &str, names: &[&str]) -> Result<()> {
        let won = queue_gate(c, "maintain_gate", names, self.maintain_every).await?;
        if won.is_empty() {
            return Ok(());
        }
        let list = array_literal(&won);
        for (name, key) in [("deletion", "deletion"), ("cleanup_dependencies", "cleanupDependencies")] {
            let sql = SQL
                .get(name)
                .replace("{table}", table)
                .replace("{names}", &list)
                .replace("{key}", &format!("{table}{key}"));
            envelope(c, &sql, name).await?;
        }
        Ok(())
    }
}

/// One of pg-boss's locked() envelopes (BEGIN; SET LOCALs; the advisory lock; the
/// statement; COMMIT) as one simple query. A statement that fails skips the COMMIT and
/// leaves the session in a failed transaction: it is rolled back before the connection
/// goes back to the pool.
async fn envelope(c: &Client, sql: &str, what: &str) -> Result<Vec<SimpleQueryMessage>> {
    match c.simple_query(sql).await {
        Ok(answers) => Ok(answers),
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(anyhow::Error::new(e).context(format!("pg-boss's {what}")))
        }
    }
}

/// A queue gate (monitor_on or maintain_on): the queues whose interval this call won.
async fn queue_gate(
    c: &Client,
    statement: &str,
    names: &[&str],
    every: Duration,
) -> Result<Vec<String>> {
    let rows = c
        .query_typed(
            SQL.get(statement),
            &[(&names, Type::TEXT_ARRAY), (&every.as_secs_f64(), Type::FLOAT8)],
        )
        .await?;
    rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// A version-row gate: whether this call won the timer's interval cluster-wide.
async fn gate(c: &Client, column: &str, every: Duration) -> Result<bool> {
    let sql = SQL.get("version_gate").replace("{column}", column);
    let rows = c
        .query_typed(&sql, &[(&every.as_secs_f64(), Type::FLOAT8)])
        .await?;
    Ok(!rows.is_empty())
}

/// The failJobs statement for the jobs `filter` picks; returns how many it retried or failed.
async fn fail(c: &Client, table: &str, filter: &str, key: &str, message: &str) -> Result<u64> {
    let sql = SQL
        .get("fail_expired")
        .replace("{where}", filter)
        .replace("{table}", table)
        .replace("{key}", &format!("{table}{key}"))
        .replace(
            "{output}",
            &format!("{{ \"value\": {{ \"message\": \"{message}\" }} }}"),
        );
    // The envelope's rows: the advisory lock's (empty), then the count's, named.
    for a in envelope(c, &sql, key).await? {
        if let SimpleQueryMessage::Row(r) = a {
            if let Some(n) = r.try_get("failed_or_retried").ok().flatten() {
                return n.parse().context("pg-boss's expiry count");
            }
        }
    }
    anyhow::bail!("pg-boss's {key} answered without its count")
}

/// `ARRAY['a','b']::text[]`, as pg-boss writes a list into a statement's text.
fn array_literal(names: &[String]) -> String {
    let quoted: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    format!("ARRAY[{}]::text[]", quoted.join(","))
}
