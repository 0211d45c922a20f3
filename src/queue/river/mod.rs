//! river: the protocol of River v0.43.0 (github.com/riverqueue/river at fdf6cdf, two
//! unreleased commits past the tag, none touching what is modelled), in qbench's words;
//! SQL: schema/pg_queue_river.sql. One work process is one River client with one queue,
//! its MaxWorkers qbench's workers:
//! - enqueue (client.go insertMany → JobInsertFastMany): one INSERT per batch in a
//!   transaction of its own, and in notify mode a pg_notify on River's insert topic in
//!   the same transaction, at most once per FetchCooldown per process;
//! - claim (producer.go → JobGetAvailable): a background fetch of up to the free worker
//!   slots, at most once per FetchCooldown (`fetcher`);
//! - completion (jobcompleter BatchCompleter → JobSetStateIfRunningMany): handed to a
//!   completer that writes batches on a 50-ms tick; the worker is free at once
//!   (`completer`);
//! - the leader's elector, rescuer, scheduler and cleaner (`maintenance`).
//!
//! A job's lifetime is River's: available → running → completed, the row kept until the
//! cleaner deletes it 24 hours later. A completion is fenced by state alone: a late one
//! lands if the job is running again under its next attempt (unfenced), and is refused
//! if the rescuer made it retryable. `dequeue_batch` does not apply: River fetches as
//! many jobs as it has free slots.

mod completer;
mod fetcher;
mod maintenance;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use async_trait::async_trait;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::pg::{self, Listener, PgBase};
use super::registry::{Design, DesignInfo};
use super::{
    Backend, Claimed, Consumer, HandOff, NewJob, Producer, Queue, QueueState, Server,
    Snapshot,
};
use crate::config::{Config, Wakeup};
use crate::schema::{embedded, Embedded};
use completer::Completer;
use fetcher::Fetched;

pub(crate) static SQL: Embedded = embedded!("pg_queue_river.sql");

const TABLE: &str = "river_job";
/// River's insert topic, as LISTEN takes it (the schema's name and River's).
const TOPIC: &str = "\"public.river_insert\"";

pub struct River {
    base: PgBase,
    payload: Arc<str>,
    cooldown: Duration,
    poll: Duration,
    rescue_after: Duration,
    max_workers: usize,
    client_id: String,
    /// The process's River client: its producer and completer, started by the first
    /// consumer and stopped with the last (so that its connections close with them).
    client: tokio::sync::Mutex<std::sync::Weak<RiverClient>>,
    /// The insert notification limiter, shared by the process's producers.
    notified_at: Arc<Mutex<Option<Instant>>>,
    maintenance: tokio::sync::Mutex<maintenance::Maintenance>,
}

/// The producer's fetched jobs and the completer, with the tasks that run them: stopped
/// when the last consumer is dropped (the completer writes what waits first).
struct RiverClient {
    fetched: Arc<Fetched>,
    completer: Arc<Completer>,
    _stop: DropGuard,
    _listener: Option<Arc<Listener>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// River's HotOperationTimeout: a fetch or a completion write gives up after it.
const HOT_TIMEOUT: Duration = Duration::from_secs(10);

/// One statement on a connection of its own (the fetch loop's, the completer's),
/// connected and prepared when needed; a failed or timed-out call drops the connection.
struct Prepared {
    pg: crate::config::Postgres,
    sql: &'static str,
    what: &'static str,
    conn: Option<(Client, Statement)>,
}

impl Prepared {
    fn new(base: &PgBase, name: &'static str, what: &'static str) -> Prepared {
        Prepared {
            pg: base.pg().clone(),
            sql: SQL.get(name),
            what,
            conn: None,
        }
    }

    /// Connects and prepares now: a missing schema fails before the run, in one line.
    async fn connected(mut self) -> Result<Prepared> {
        let c = pg::connect(&self.pg).await?;
        let st = c
            .prepare(self.sql)
            .await
            .with_context(|| format!("preparing River's {} (did setup-schema run?)", self.what))?;
        self.conn = Some((c, st));
        Ok(self)
    }

    /// Another statement on the same connection (unprepared: a rare path).
    async fn query_text(
        &mut self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let Some((c, _)) = self.conn.as_ref() else {
            anyhow::bail!("River's {}: no connection", self.what);
        };
        match tokio::time::timeout(HOT_TIMEOUT, c.query(sql, params)).await {
            Ok(r) => r.with_context(|| format!("River's {}", self.what)),
            Err(_) => anyhow::bail!("River's {} did not answer within {} s", self.what, HOT_TIMEOUT.as_secs()),
        }
    }

    async fn query(
        &mut self,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        let (pg, sql, what, conn) = (&self.pg, self.sql, self.what, &mut self.conn);
        let call = async {
            if conn.as_ref().is_none_or(|(c, _)| c.is_closed()) {
                let c = pg::connect(pg).await?;
                let st = c
                    .prepare(sql)
                    .await
                    .with_context(|| format!("preparing River's {what} (did setup-schema run?)"))?;
                *conn = Some((c, st));
            }
            let Some((c, st)) = conn.as_ref() else {
                anyhow::bail!("River's {what}: no connection");
            };
            c.query(st, params).await.with_context(|| format!("River's {what}"))
        };
        let result = match tokio::time::timeout(HOT_TIMEOUT, call).await {
            Ok(r) => r,
            Err(_) => Err(anyhow::anyhow!(
                "River's {what} did not answer within {} s",
                HOT_TIMEOUT.as_secs()
            )),
        };
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

#[async_trait]
impl Design for River {
    const INFO: DesignInfo = DesignInfo::named("river", Backend::Postgresql)
        .unfenced()
        .modelling("River 0.43.0")
        .notifying_by_default();

    async fn open(cfg: &Config) -> Result<River> {
        let b = &cfg.benchmark;
        let base = PgBase::open(cfg, &SQL, TABLE, "^river_(job|leader)$").await?;
        let payload = std::str::from_utf8(&base.payload)
            .context("the job payload is not text")?
            .into();
        // River's default client ID: the host and the start time (here the process too).
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let client_id = format!("{host}_{}_{started}", std::process::id());
        let rescue_after = Duration::from_secs_f64(b.river_rescue_after_s);
        let notify = b.wakeup.single()? == Wakeup::Notify;
        Ok(River {
            base,
            payload,
            cooldown: Duration::from_secs_f64(b.river_fetch_cooldown_ms / 1000.0),
            poll: Duration::from_secs_f64(b.river_fetch_poll_interval_ms / 1000.0),
            rescue_after,
            max_workers: b.num_workers.get() as usize,
            maintenance: tokio::sync::Mutex::new(maintenance::Maintenance::new(
                client_id.clone(),
                rescue_after,
                notify,
            )),
            client_id,
            client: tokio::sync::Mutex::default(),
            notified_at: Arc::default(),
        })
    }
}

impl River {
    fn notify(&self) -> bool {
        self.base.server.wakeup_counts().mode == Wakeup::Notify
    }

    /// Starts the process's producer (fetch, poll and notification loops) and completer.
    async fn start_client(&self) -> Result<RiverClient> {
        // The listener first: a failure there leaves no task behind.
        let listener = match self.notify() {
            true => Some(Arc::new(
                Listener::start(self.base.pg(), TOPIC.into(), self.base.server.wakeup_counts())
                    .await?,
            )),
            false => None,
        };
        let stop = CancellationToken::new();
        let fetched = Fetched::new(self.max_workers, self.poll);
        let fetch = Prepared::new(&self.base, "claim", "fetch").connected().await?;
        let conn = Prepared::new(&self.base, "complete", "completion")
            .connected()
            .await?;
        tokio::spawn(fetcher::fetch_loop(
            fetched.clone(),
            fetch,
            self.client_id.clone(),
            self.cooldown,
            stop.clone(),
        ));
        tokio::spawn(fetcher::poll_loop(fetched.clone(), stop.clone()));
        if let Some(l) = &listener {
            tokio::spawn(fetcher::notified_loop(fetched.clone(), l.clone(), stop.clone()));
        }
        let completer = Completer::new();
        tokio::spawn(completer::run(completer.clone(), conn, stop.clone()));
        Ok(RiverClient {
            fetched,
            completer,
            _stop: stop.drop_guard(),
            _listener: listener,
        })
    }
}

#[async_trait]
impl Queue for River {
    fn options(&self) -> String {
        format!(
            "max_workers={} fetch_cooldown={}ms fetch_poll_interval={}ms rescue_after={}s",
            self.max_workers,
            self.cooldown.as_secs_f64() * 1000.0,
            self.poll.as_secs_f64() * 1000.0,
            self.rescue_after.as_secs_f64()
        )
    }

    fn variant(&self) -> String {
        // The options that differ from River's defaults name the variant.
        let mut v = vec![];
        if self.cooldown != Duration::from_millis(100) {
            v.push(format!("cooldown={}ms", self.cooldown.as_secs_f64() * 1000.0));
        }
        if self.poll != Duration::from_secs(1) {
            v.push(format!("poll={}ms", self.poll.as_secs_f64() * 1000.0));
        }
        v.join("+")
    }

    fn server(&self) -> &dyn Server {
        &self.base.server
    }

    fn stopping(&self) {
        if let Ok(shared) = self.client.try_lock() {
            if let Some(c) = shared.upgrade() {
                c.fetched.stop();
                c.completer.stop_waiting();
            }
        }
    }

    fn throughput_bound(&self, workers: usize) -> Option<f64> {
        // One fetch per cooldown, of at most MaxWorkers (this process's workers) jobs.
        Some(workers as f64 / self.cooldown.as_secs_f64())
    }

    async fn setup(&self, reset: bool) -> Result<String> {
        self.base.setup(reset, "river_job and river_leader").await
    }

    async fn reset(&self) -> Result<()> {
        self.base.reset().await
    }

    async fn depth(&self) -> Result<u64> {
        self.base.count("depth").await
    }

    async fn state(&self) -> Result<QueueState> {
        self.base.lease_state().await
    }

    async fn producer(&self) -> Result<Box<dyn Producer>> {
        let client = pg::connect(self.base.pg()).await?;
        let insert = self.base.prepare(&client, "enqueue", &[]).await?;
        let retry = self.base.prepare(&client, "enqueue_retry", &[]).await?;
        let notify = match self.notify() {
            true => Some(self.base.prepare(&client, "notify", &[]).await?),
            false => None,
        };
        Ok(Box::new(RiverProducer {
            client,
            insert,
            retry,
            notify,
            notified_at: self.notified_at.clone(),
            cooldown: self.cooldown,
            counts: self.base.server.wakeup_counts(),
            payload: self.payload.clone(),
            args: vec![],
        }))
    }

    async fn consumer(&self, _worker: usize) -> Result<Box<dyn Consumer>> {
        let mut shared = self.client.lock().await;
        let client = match shared.upgrade() {
            Some(c) => c,
            None => {
                let c = Arc::new(self.start_client().await?);
                *shared = Arc::downgrade(&c);
                c
            }
        };
        Ok(Box::new(RiverConsumer {
            client,
            fetched_in: None,
        }))
    }

    async fn reap(&self) -> Result<Option<u64>> {
        let mut c = self.base.pooled().await?;
        let mut m = self.maintenance.lock().await;
        Ok(Some(m.tick(&mut c, &SQL).await?))
    }

    async fn allocate(&self, n: u64) -> Result<i64> {
        self.base.allocate(n).await
    }

    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.base.sabotage().await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        self.base.lease_snapshot().await
    }

    async fn horizon(&self) -> Result<Box<dyn crate::queue::Horizon>> {
        self.base.horizon("claim_plan", &[]).await
    }
}

struct RiverProducer {
    client: Client,
    insert: Statement,
    retry: Statement,
    /// Notify mode: River's pg_notify after an insert.
    notify: Option<Statement>,
    notified_at: Arc<Mutex<Option<Instant>>>,
    cooldown: Duration,
    counts: Arc<pg::WakeupCounts>,
    payload: Arc<str>,
    args: Vec<String>,
}

/// River's notify limiter: at most one insert notification per cooldown per process.
fn may_notify(last: &Mutex<Option<Instant>>, cooldown: Duration) -> bool {
    let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|t| t.elapsed() < cooldown) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

#[async_trait]
impl Producer for RiverProducer {
    async fn enqueue(&mut self, jobs: &[NewJob], retry: bool) -> Result<()> {
        self.args.clear();
        self.args
            .extend(jobs.iter().map(|j| pg::message(j, &self.payload)));
        // River's InsertMany: BEGIN, the INSERT, the notification if due, COMMIT. A retry
        // (qbench's) inserts only the seqs river_job does not hold.
        let now = SystemTime::now();
        let notify = self.notify.clone();
        let limiter = (self.notified_at.clone(), self.cooldown);
        let tx = self.client.transaction().await?;
        let st = if retry { &self.retry } else { &self.insert };
        let inserted = tx.query(st, &[&self.args, &now]).await?.len();
        let notified = match notify {
            Some(n) if inserted > 0 && may_notify(&limiter.0, limiter.1) => {
                tx.execute(&n, &[]).await?;
                true
            }
            _ => false,
        };
        tx.commit().await?;
        if notified {
            self.counts
                .sent
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

struct RiverConsumer {
    client: Arc<RiverClient>,
    /// The round trip of the fetch the last claim reports (one claim sample per fetch).
    fetched_in: Option<Duration>,
}

#[async_trait]
impl Consumer for RiverConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        match self.client.fetched.take().await? {
            Ok((job, rt)) => {
                self.fetched_in = rt;
                Ok(vec![job])
            }
            Err(rt) => {
                self.fetched_in = rt;
                Ok(vec![])
            }
        }
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        self.hand_off(jobs).await?.outcome().await
    }

    async fn idle(&mut self) {
        let f = &self.client.fetched;
        f.wait(f.poll_interval).await;
    }

    async fn hand_off(&mut self, jobs: Vec<Claimed>) -> Result<HandOff> {
        let ids = pg::row_ids(&jobs, "River")?;
        let rx = self.client.completer.hand_over(ids).await;
        self.client.fetched.done(jobs.len());
        Ok(HandOff::Later(rx))
    }

    fn claim_round_trip(&self, _call: Duration) -> Option<Duration> {
        self.fetched_in
    }

    async fn drain(&mut self) -> Result<Vec<Claimed>> {
        let got = self.client.fetched.drain().await;
        self.fetched_in = got.as_ref().and_then(|g| g.1);
        Ok(got.map(|g| g.0).into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_exist() {
        SQL.assert_statements(&[
            "enqueue",
            "enqueue_retry",
            "notify",
            "claim",
            "complete",
            "elect",
            "leader_expired",
            "reelect",
            "stuck",
            "rescue",
            "schedule",
            "clean",
            "claim_plan",
            "depth",
            "state",
            "snapshot",
            "sabotage",
            "reset",
        ]);
    }

}
