//! `qbench cost` on real servers, sabotaged: a design that sends one more statement per
//! job, writing 16 KB of rows, must cost one statement more per job and more WAL; the
//! counts of a known protocol are exact (skip_locked: three statements and two dead
//! row versions per job); the command writes cost.csv and refuses bad input in one line.

mod common;

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;
use qbench::format::cost::CostRow;
use qbench::queue::{
    self, Claimed, Consumer, Horizon, Producer, Queue, QueueKind, QueueState, Server, Snapshot,
};

/// A design and one extra statement per completed job: the sabotage.
struct Extra {
    inner: Arc<dyn Queue>,
    pg: qbench::config::Postgres,
}

impl qbench::queue::registry::Kind for Extra {
    fn kind(&self) -> QueueKind {
        self.inner.kind()
    }
}

struct ExtraConsumer {
    inner: Box<dyn Consumer>,
    client: tokio_postgres::Client,
}

#[async_trait]
impl Consumer for ExtraConsumer {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        self.inner.claim().await
    }
    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        let n = jobs.len();
        let refused = self.inner.complete(jobs).await?;
        for _ in 0..n {
            // One statement, eight rows of about 2 KB each (under the TOAST threshold:
            // not compressed): some 16 KB of WAL.
            self.client
                .execute(
                    "INSERT INTO sabotage_log SELECT repeat(md5(random()::text), 60) FROM generate_series(1, 8)",
                    &[],
                )
                .await?;
        }
        Ok(refused)
    }
    async fn idle(&mut self) {
        self.inner.idle().await
    }
}

#[async_trait]
impl Queue for Extra {
    fn server(&self) -> &dyn Server {
        self.inner.server()
    }
    async fn setup(&self, reset: bool) -> Result<String> {
        let c = qbench::queue::pg::connect(&self.pg).await?;
        c.batch_execute("CREATE TABLE IF NOT EXISTS sabotage_log (t text)")
            .await?;
        self.inner.setup(reset).await
    }
    async fn reset(&self) -> Result<()> {
        self.inner.reset().await
    }
    async fn depth(&self) -> Result<u64> {
        self.inner.depth().await
    }
    async fn state(&self) -> Result<QueueState> {
        self.inner.state().await
    }
    async fn producer(&self) -> Result<Box<dyn Producer>> {
        self.inner.producer().await
    }
    async fn consumer(&self, worker: usize) -> Result<Box<dyn Consumer>> {
        Ok(Box::new(ExtraConsumer {
            inner: self.inner.consumer(worker).await?,
            client: qbench::queue::pg::connect(&self.pg).await?,
        }))
    }
    async fn reap(&self) -> Result<Option<u64>> {
        self.inner.reap().await
    }
    async fn allocate(&self, n: u64) -> Result<i64> {
        self.inner.allocate(n).await
    }
    async fn snapshot(&self) -> Result<Snapshot> {
        self.inner.snapshot().await
    }
    async fn horizon(&self) -> Result<Box<dyn Horizon>> {
        self.inner.horizon().await
    }
    async fn remove_waiting_job(&self) -> Result<Option<i64>> {
        self.inner.remove_waiting_job().await
    }
}

const JOBS: u64 = 400;

/// One measurement at a time on the shared server: WAL is counted server-wide, so a test
/// running beside another would count the other's WAL as its own.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn measured(q: &Arc<dyn Queue>) -> CostRow {
    qbench::cost::measure(q, JOBS, 1).await.expect("measure")
}

#[tokio::test]
async fn one_more_statement_per_job_is_one_more_statement_per_job() {
    let _turn = TURN.lock().await;
    let cfg = common::config_on(common::shared_statements(), "cost").await;
    let plain = queue::open(QueueKind::SkipLocked, &cfg)
        .await
        .expect("open");
    let base = measured(&plain).await;
    // skip_locked's protocol, exactly: enqueue, claim, complete; the claim's UPDATE and
    // the completion's each leave one dead row version.
    assert_eq!(base.statements_per_job, Some(3.0), "{base:?}");
    assert_eq!(base.dead_tuples_per_job, Some(2.0), "{base:?}");
    assert_eq!(base.nested_statements_per_job, Some(0.0), "{base:?}");
    assert!(base.note.is_empty(), "{base:?}");
    let extra: Arc<dyn Queue> = Arc::new(Extra {
        inner: queue::open(QueueKind::SkipLocked, &cfg)
            .await
            .expect("open"),
        pg: cfg.postgres.clone(),
    });
    extra.setup(true).await.expect("setup");
    let sabotaged = measured(&extra).await;
    assert_eq!(sabotaged.statements_per_job, Some(4.0), "{sabotaged:?}");
    assert_eq!(
        sabotaged.dead_tuples_per_job,
        Some(2.0),
        "not a queue table"
    );
    // The extra statement writes about 16 KB of WAL per job; a checkpoint's page images
    // during one run (some 40 pages of 8 KB over 400 jobs) move it by 800 B at most.
    let (b, s) = (
        base.log_bytes_per_job.expect("wal"),
        sabotaged.log_bytes_per_job.expect("wal"),
    );
    assert!(s > b + 8000.0, "WAL per job {b} → {s}");
    // pgmq's statements run inside its functions: one inside each of three calls.
    let pgmq = queue::open(QueueKind::Pgmq, &cfg).await.expect("open");
    let row = measured(&pgmq).await;
    assert_eq!(
        (row.statements_per_job, row.nested_statements_per_job),
        (Some(3.0), Some(3.0)),
        "{row:?}"
    );
    assert_eq!(row.dead_tuples_per_job, Some(2.0), "{row:?}");
}

/// graphile_worker's protocol, exactly: one add_job call (six statements inside: the
/// function's body and add_jobs'), one claim, one DELETE per job; the claim's UPDATE and
/// the DELETE each leave a dead row version; once per process, getTaskDetails' two
/// statements. qbench's completion record adds no statement.
#[tokio::test]
async fn graphile_workers_counts_are_its_protocols() {
    let _turn = TURN.lock().await;
    let cfg = common::config_on(common::shared_statements(), "costgw").await;
    let q = queue::open(QueueKind::GraphileWorker, &cfg)
        .await
        .expect("open");
    let row = measured(&q).await;
    assert_eq!(
        (row.statements_per_job, row.nested_statements_per_job),
        (Some((3.0 * JOBS as f64 + 2.0) / JOBS as f64), Some(6.0)),
        "{row:?}"
    );
    assert_eq!(row.dead_tuples_per_job, Some(2.0), "{row:?}");
}

/// pg_boss's protocol, exactly: one INSERT (send), one fetch, one completion per job, and
/// the insert's deferred foreign key check of the queue's row (PostgreSQL's own query,
/// run at commit, outside any statement: pg_stat_statements counts it as a top-level
/// one); the fetch's UPDATE and the completion's each leave a dead row version; the
/// completed row stays.
#[tokio::test]
async fn pg_boss_counts_are_its_protocols() {
    let _turn = TURN.lock().await;
    let mut cfg = common::config_on(common::shared_statements(), "costpgboss").await;
    // One worker's fetches back to back: pg-boss's sleep after each changes no statement.
    cfg.benchmark.pg_boss_polling_interval_ms = 1.0;
    let q = queue::open(QueueKind::PgBoss, &cfg).await.expect("open");
    let row = measured(&q).await;
    assert_eq!(
        (row.statements_per_job, row.nested_statements_per_job),
        (Some(4.0), Some(0.0)),
        "{row:?}"
    );
    assert_eq!(row.dead_tuples_per_job, Some(2.0), "{row:?}");
}

/// procrastinate's protocol, per job: three calls (defer, fetch, finish), each in its own
/// BEGIN and COMMIT (9 top-level statements); inside them 13: the defer function's
/// INSERT, its triggers' json_build_object, two pg_notify and `deferred` event insert;
/// the fetch function's UPDATE and its `started` event; the finish function's UPDATE
/// and its `succeeded` event; a foreign key check for each of the three events and one
/// for the fetch's worker_id. The fetch's UPDATE and the finish's each leave a dead row
/// version, and so does the worker's unregistration at its stop (the foreign key clears
/// worker_id on every job it ran); the events kept leave none. Per job means the
/// difference between two runs of different lengths: the worker's start (prune,
/// register) and its stop (unregister) are statements paid once per run.
#[tokio::test]
async fn procrastinate_counts_are_its_protocols() {
    let _turn = TURN.lock().await;
    let mut cfg = common::config_on(common::shared_statements(), "costpr").await;
    // The worker's timed statements (heartbeat, abort poll) out of the short runs.
    cfg.benchmark.procrastinate_update_heartbeat_interval_s = 3600.0;
    cfg.benchmark.procrastinate_abort_job_polling_interval_s = 3600.0;
    let q = queue::open(QueueKind::Procrastinate, &cfg)
        .await
        .expect("open");
    let total = |per_job: Option<f64>, jobs: u64| (per_job.expect("a count") * jobs as f64).round();
    let short = qbench::cost::measure(&q, 100, 1).await.expect("measure");
    let long = qbench::cost::measure(&q, 300, 1).await.expect("measure");
    let per_job =
        |f: fn(&CostRow) -> Option<f64>| (total(f(&long), 300) - total(f(&short), 100)) / 200.0;
    assert_eq!(per_job(|r| r.statements_per_job), 9.0, "{short:?} {long:?}");
    assert_eq!(
        per_job(|r| r.nested_statements_per_job),
        13.0,
        "{short:?} {long:?}"
    );
    assert_eq!(
        per_job(|r| r.dead_tuples_per_job),
        3.0,
        "{short:?} {long:?}"
    );
}

/// A library's driver is measured by the counters around its run: a driver of known
/// cost (N inserts and one delete: N + 1 statements, N dead rows) reads as that, and a
/// driver that fails is an error, not a row.
#[tokio::test]
async fn a_drivers_counts_are_its_own() {
    let _turn = TURN.lock().await;
    let cfg = common::config_on(common::shared_statements(), "costdriver").await;
    let script = format!(
        "sh {}/tests/fixtures/cost_driver.sh",
        env!("CARGO_MANIFEST_DIR")
    );
    let d = qbench::cost_driver::Driver {
        command: &script,
        name: "known",
        tables: "^driver_jobs$",
    };
    let stop = qbench::shutdown::Shutdown::manual();
    let row = qbench::cost_driver::measure(&cfg, &d, 200, &stop)
        .await
        .expect("driver");
    assert_eq!(row.design, "known");
    assert_eq!(row.statements_per_job, Some(201.0 / 200.0), "{row:?}");
    assert_eq!(row.dead_tuples_per_job, Some(1.0), "{row:?}");
    assert!(row.log_bytes_per_job.expect("wal") > 0.0, "{row:?}");
    let failing = format!("{script} fail ;");
    let d = qbench::cost_driver::Driver {
        command: &failing,
        ..d
    };
    let e = qbench::cost_driver::measure(&cfg, &d, 10, &stop)
        .await
        .expect_err("a failing driver");
    assert!(e.to_string().contains("failed"), "{e:#}");
}

/// The command end to end on servers it starts, and its refusals.
#[test]
fn the_command_writes_cost_csv_and_refuses_bad_input() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("cost");
    let o = common::run_qbench(
        &[
            "--local",
            "--quiet",
            "cost",
            "--queue",
            "delete_returning",
            "--jobs",
            "50",
            "--out",
            out.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = csv::Reader::from_path(out.join("cost.csv")).expect("cost.csv");
    let rows: Vec<CostRow> = r.deserialize().map(|x| x.expect("row")).collect();
    assert_eq!(rows.len(), 1);
    // BEGIN and the claim, the archive and COMMIT, and the enqueue; two transactions.
    assert_eq!(rows[0].statements_per_job, Some(5.0), "{:?}", rows[0]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("delete_returning"));
    for (args, says) in [
        (&["cost", "--jobs", "0"][..], "--jobs 0"),
        (&["cost", "--queue", "rabbit"][..], "rabbit"),
        (
            &["cost", "--driver", "true", "--driver-name", "x"][..],
            "--driver-tables",
        ),
    ] {
        let o = common::run_qbench(args, &[]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
