//! What one design has that the others do not: partitioned's home partitions, stealing
//! and its partition count; skip_locked's status column; the library designs' options
//! and their own mechanisms (River's fetch bound, graphile-worker's notification). Every design's shared promises
//! are the per-design set's (tests/designs.rs).

mod common;

use std::sync::Arc;

use qbench::queue::{self, NewJob, Queue, QueueKind};

async fn open(
    kind: QueueKind,
    name: &str,
    tweak: impl FnOnce(&mut qbench::config::Config),
) -> Arc<dyn Queue> {
    let mut cfg = common::config(&format!("{name}_{}", kind.name())).await;
    tweak(&mut cfg);
    let q = queue::open(kind, &cfg).await.expect("open queue");
    q.setup(true).await.expect("setup");
    q
}

fn jobs(range: std::ops::Range<i64>) -> Vec<NewJob> {
    range
        .map(|seq| NewJob {
            seq,
            enqueued_at_us: 1_700_000_000_000_000 + seq,
        })
        .collect()
}

#[tokio::test]
async fn partitioned_spreads_jobs_and_steals() {
    let q = open(QueueKind::Partitioned, "spread", |c| {
        c.benchmark.partitions = 4;
        c.benchmark.dequeue_batch = 8;
    })
    .await;
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..8), false)
        .await
        .expect("enqueue");
    // Worker 1 (home partition 1) drains its home first, then steals the rest.
    let mut c = q.consumer(1).await.expect("consumer");
    let first = c.claim().await.expect("claim");
    let seqs: Vec<i64> = first.iter().map(|j| j.seq).collect();
    assert_eq!(seqs, vec![1, 5], "home partition holds seq % 4 == 1");
    c.complete(first).await.expect("complete");
    let stolen = c.claim().await.expect("claim");
    assert_eq!(stolen.len(), 6, "steals from the other partitions");
}

#[tokio::test]
async fn partitioned_refuses_a_different_partition_count_without_reset() {
    let mut cfg = common::config("repart").await;
    cfg.benchmark.partitions = 4;
    let q = queue::open(QueueKind::Partitioned, &cfg)
        .await
        .expect("open");
    q.setup(false).await.expect("setup");
    cfg.benchmark.partitions = 6;
    let q6 = queue::open(QueueKind::Partitioned, &cfg)
        .await
        .expect("open");
    let e = q6.setup(false).await.expect_err("mismatch refused");
    assert!(e.to_string().contains("--reset"), "{e}");
    assert_eq!(qbench::error::exit_code(&e), 2);
    assert!(q6
        .setup(true)
        .await
        .expect("reset recreates")
        .contains("6 partitions"));
}

#[tokio::test]
async fn skip_locked_status_column_shows_all_three_states() {
    let cfg = common::config("statuses").await;
    let q = queue::open(QueueKind::SkipLocked, &cfg)
        .await
        .expect("open");
    q.setup(true).await.expect("setup");
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..3), false)
        .await
        .expect("enqueue");
    let mut c = q.consumer(0).await.expect("consumer");
    let one = c.claim().await.expect("claim");
    c.complete(one).await.expect("complete");
    let _held = c.claim().await.expect("claim");
    // The seed's monitoring query.
    let pg = common::pg_client(&cfg).await;
    let rows = pg
        .query(
            "SELECT status, count(*) FROM queue_jobs GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .expect("monitoring query");
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            ("completed".into(), 1),
            ("pending".into(), 1),
            ("processing".into(), 1)
        ]
    );
}

/// `produce` then `work` of a design in two processes into `dir`; with `sabotage`, one
/// waiting job is removed between them. Returns analyze's row.
async fn library_run(
    design: &str,
    q: &Arc<dyn Queue>,
    cfg: &std::path::Path,
    dir: &std::path::Path,
    sabotage: bool,
) -> qbench::analyze::Row {
    let out = dir.to_str().expect("utf8");
    let common_args = ["--json", "--no-report", "--out", out, "--name", "d"];
    let produce = common::spawn_quiet(
        cfg,
        &[
            &[
                "produce",
                "--queue",
                design,
                "--rate",
                "500",
                "--count",
                "100",
                "--instance",
                "p",
            ][..],
            &common_args,
        ]
        .concat(),
    );
    let o = produce.wait_with_output().expect("produce");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    if sabotage {
        q.remove_waiting_job()
            .await
            .expect("remove")
            .expect("a waiting job");
    }
    let work = common::spawn_quiet(
        cfg,
        &[
            &[
                "work",
                "--queue",
                design,
                "--workers",
                "2",
                "--processing-ms",
                "0",
                "--until-idle",
                "2",
                "--instance",
                "w",
            ][..],
            &common_args,
        ]
        .concat(),
    );
    let o = work.wait_with_output().expect("work");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    common::analyze_row(dir).1
}

/// pgmq's delete completion is a variant of its own (`pgmq+delete`) and keeps no record:
/// the archive stays empty and the audit is exact from the workers' records; a job
/// removed behind their back cannot be told lost from one completed by a worker that
/// died, so the audit is inconclusive and says why, never "lost".
#[tokio::test]
async fn pgmq_delete_is_a_variant_that_keeps_no_record() {
    let mut cfg = common::config("pgmqdel").await;
    cfg.benchmark.pgmq_completion = qbench::config::PgmqCompletion::Delete;
    let q = queue::open(QueueKind::Pgmq, &cfg).await.expect("open");
    q.setup(true).await.expect("setup");
    let file = common::config_file(&cfg);
    let clean = tempfile::tempdir().expect("dir");
    let row = library_run("pgmq", &q, file.path(), clean.path(), false).await;
    assert_eq!(
        (row.queue.as_str(), row.design().as_str()),
        ("pgmq", "pgmq+delete")
    );
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.completed, row.lost), (Some(100), Some(0)));
    let snap = q.snapshot().await.expect("snapshot");
    assert!(snap.completions_unrecorded && snap.completed.is_empty());
    assert_eq!(
        q.state().await.expect("state").completed,
        100,
        "sent minus depth"
    );
    let sabotaged = tempfile::tempdir().expect("dir");
    let row = library_run("pgmq", &q, file.path(), sabotaged.path(), true).await;
    assert_eq!(row.audit, "inconclusive", "{}", row.audit_note);
    assert_eq!(row.completed, Some(99));
    assert!(
        row.audit_note.contains("keeps no record"),
        "{}",
        row.audit_note
    );
}

/// pgmq in the volatile tier: the queue table UNLOGGED, the archive logged, as pgmq's
/// create_unlogged makes them; and the server's tables read as unlogged, not mixed.
#[tokio::test]
async fn pgmq_volatile_keeps_its_archive_logged() {
    let mut cfg = common::config("pgmqvol").await;
    cfg.benchmark.durability = qbench::config::DurabilityChoice::Volatile;
    let q = queue::open(QueueKind::Pgmq, &cfg).await.expect("open");
    q.setup(true).await.expect("setup");
    let c = common::pg_client(&cfg).await;
    let rows = c
        .query(
            "SELECT relname::text, relpersistence::text FROM pg_class WHERE relname IN ('pgmq_q_qbench', 'pgmq_a_qbench') ORDER BY relname",
            &[],
        )
        .await
        .expect("persistence");
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            ("pgmq_a_qbench".to_string(), "p".to_string()),
            ("pgmq_q_qbench".to_string(), "u".to_string())
        ]
    );
    let info = q.server().info().await.expect("info");
    let d = format!("{:?}", info.durability);
    assert!(d.contains("\"unlogged\""), "{d}");
}

/// crash-test refuses pgmq's delete in one line, before any server is killed: its
/// losses could not be told from completions.
#[test]
fn crash_test_refuses_pgmq_delete() {
    let o = common::run_qbench(
        &[
            "--local",
            "--quiet",
            "--pgmq-completion",
            "delete",
            "crash-test",
            "--queue",
            "pgmq",
            "--trials",
            "1",
            "--no-report",
            "--out",
            tempfile::tempdir()
                .expect("dir")
                .path()
                .to_str()
                .expect("utf8"),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("keeps no record"), "{stderr}");
}

/// River's producer fetches at most MaxWorkers jobs (this process's workers) per
/// FetchCooldown: 4 workers with a 200-ms cooldown drain at most 20 jobs/s, however fast
/// the server is (unbounded, a burn-down of 80 jobs takes milliseconds). An upper bound
/// by construction: the first fetch at t = 0 adds one fetch's worth, hence the 25.
#[tokio::test]
async fn river_fetches_at_most_max_workers_per_cooldown() {
    let cfg = common::config("riverbound").await;
    let file = common::config_file(&cfg);
    let o = common::qbench()
        .arg("--config")
        .arg(file.path())
        .args(["--quiet", "--workers", "4", "--processing-ms", "0"])
        .args([
            "--river-fetch-cooldown",
            "200",
            "--river-fetch-poll-interval",
            "200",
        ])
        .args(["work", "--queue", "river", "--burndown", "80", "--json"])
        .output()
        .expect("run qbench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (v["audit"].as_str(), v["completed"].as_u64()),
        (Some("exact"), Some(80))
    );
    let rate = v["jobs_s"].as_f64().expect("jobs_s");
    assert!(rate <= 25.0, "{rate} jobs/s beyond 4 per 200 ms");
}

/// Ctrl-C while River's workers hold fetched jobs and its completer holds handed-over
/// ones: the jobs in hand are worked and every handed-over completion written before the
/// process ends, so no job is left `running` (River's executors finish what they fetched;
/// without the completer's last write, 8 were left running).
#[tokio::test]
async fn river_stops_with_no_job_left_running() {
    let mut cfg = common::config("riverstop").await;
    cfg.benchmark.num_workers = qbench::config::Workers::one(8);
    cfg.benchmark.job_processing_time_ms = 20.0;
    let q = open(QueueKind::River, "riverstop", |c| *c = cfg.clone()).await;
    let first = q.allocate(400).await.expect("allocate");
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&jobs(first..first + 400), false)
        .await
        .expect("enqueue");
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    let mut work = common::qbench()
        .arg("--config")
        .arg(file.path())
        .args([
            "work",
            "--queue",
            "river",
            "--until-idle",
            "30",
            "--no-report",
        ])
        .args(["--out", out, "--name", "stop", "--instance", "w"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Interrupted once some jobs are completed and more are fetched and running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let st = q.state().await.expect("state");
        if st.completed >= 20 && st.in_flight > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never busy: {st:?}");
        if let Some(status) = work.try_wait().expect("try_wait") {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut work.stderr.take().expect("stderr"), &mut err)
                .expect("stderr");
            panic!("exited early ({status}): {st:?}: {err}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(work.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = work.wait().expect("wait");
    let st = q.state().await.expect("state");
    assert_eq!(
        st.in_flight, 0,
        "left running after the stop: {st:?} ({status})"
    );
    assert_eq!(st.completed + st.pending, 400, "{st:?}");
    assert!(st.pending > 0, "the stop came before the end: {st:?}");
}

/// graphile_worker without qbench's completion record is graphile-worker's delete alone:
/// a variant of its own (`graphile_worker+norecord`) whose audit is exact from the
/// workers' records, and a job removed behind their back is inconclusive, never "lost";
/// crash-test refuses it in one line.
#[tokio::test]
async fn graphile_worker_without_its_record_keeps_none() {
    let mut cfg = common::config("gwnorec").await;
    cfg.benchmark.graphile_completion_record = qbench::config::GraphileRecord::Off;
    let q = queue::open(QueueKind::GraphileWorker, &cfg)
        .await
        .expect("open");
    q.setup(true).await.expect("setup");
    let file = common::config_file(&cfg);
    let clean = tempfile::tempdir().expect("dir");
    let row = library_run("graphile_worker", &q, file.path(), clean.path(), false).await;
    assert_eq!(row.design(), "graphile_worker+norecord");
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.completed, row.lost), (Some(100), Some(0)));
    let snap = q.snapshot().await.expect("snapshot");
    assert!(snap.completions_unrecorded && snap.completed.is_empty());
    let sabotaged = tempfile::tempdir().expect("dir");
    let row = library_run("graphile_worker", &q, file.path(), sabotaged.path(), true).await;
    assert_eq!(row.audit, "inconclusive", "{}", row.audit_note);
    assert_eq!(row.completed, Some(99));
    let o = common::run_qbench(
        &[
            "--local",
            "--quiet",
            "--graphile-completion-record",
            "off",
            "crash-test",
            "--queue",
            "graphile_worker",
            "--trials",
            "1",
            "--no-report",
            "--out",
            sabotaged.path().join("crash").to_str().expect("utf8"),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("keeps no record"), "{stderr}");
}

/// graphile-worker's batched completion (completeJobBatchDelay ≥ 0): a variant of its
/// own, exact across processes, and its DELETEs take many jobs each. With a 500-ms
/// window and one worker draining 400 jobs, a DELETE per job would be 3 statements per
/// job; under 2.5 needs batches of 2 on average, where one worker claims a job in about
/// a millisecond (some 500 to a window) on this machine.
#[tokio::test]
async fn graphile_worker_batches_completions() {
    let mut cfg = common::config("gwbatch").await;
    cfg.benchmark.graphile_complete_job_batch_delay_ms = 50.0;
    let q = queue::open(QueueKind::GraphileWorker, &cfg)
        .await
        .expect("open");
    q.setup(true).await.expect("setup");
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let row = library_run("graphile_worker", &q, file.path(), dir.path(), false).await;
    assert_eq!(row.design(), "graphile_worker+batch=50ms");
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.completed, row.lost), (Some(100), Some(0)));
    let mut cfg = common::config_on(common::shared_statements(), "gwbatchcost").await;
    cfg.benchmark.graphile_complete_job_batch_delay_ms = 500.0;
    let q = queue::open(QueueKind::GraphileWorker, &cfg)
        .await
        .expect("open");
    let row = qbench::cost::measure(&q, 400, 1).await.expect("cost");
    let per_job = row.statements_per_job.expect("statements");
    assert!(per_job < 2.5, "{row:?}");
    assert!(
        per_job >= 2.0,
        "an enqueue and a claim per job at least: {row:?}"
    );
}

/// graphile-worker's wakeup: add_job's `jobs:insert` notification, whose payload is
/// JSON with the batch's count, wakes an idle worker. With a 10-minute poll interval,
/// only the notification can bring the job to it within the 60 s allowed.
/// An idle worker of `q` (its poll set to 10 minutes) claims one job enqueued after it
/// went idle within 60 s: only the insert's notification can have woken it.
async fn woken_by_the_insert_notification(q: Arc<dyn Queue>) {
    let mut c = q.consumer(0).await.expect("consumer");
    assert!(c.claim().await.expect("claim").is_empty());
    let waiting = tokio::spawn(async move {
        c.idle().await;
        c
    });
    let first = q.allocate(1).await.expect("allocate");
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&jobs(first..first + 1), false)
        .await
        .expect("enqueue");
    let mut c = tokio::time::timeout(std::time::Duration::from_secs(60), waiting)
        .await
        .expect("woken by the notification, not the 10-minute poll")
        .expect("task");
    let got = c.claim().await.expect("claim");
    assert_eq!(got.iter().map(|j| j.seq).collect::<Vec<_>>(), [first]);
    let report = q.server().wakeup();
    assert_eq!(report.notifications_received, Some(1), "{report:?}");
}

#[tokio::test]
async fn graphile_worker_wakes_on_its_insert_notification() {
    let q = open(QueueKind::GraphileWorker, "gwnotify", |c| {
        c.benchmark.wakeup = qbench::config::Wakeups::one(qbench::config::Wakeup::Notify);
        c.benchmark.graphile_poll_interval_ms = 600_000.0;
    })
    .await;
    woken_by_the_insert_notification(q).await;
}

/// pg-boss's worker sleeps until pollingInterval after each fetch began, jobs or not: 4
/// workers at 1 s take at most 4 jobs a second, or 4 per 0.9 s when a cycle's work leaves
/// 100 ms or less of sleep (skipped). 40 pre-filled jobs take ten fetches per worker, nine
/// sleeps apart: at least 8.1 s, 4.9 jobs/s at most. The bound allows 5.5 (7.3 s), 0.8 s
/// for where the drain's clock starts; without the sleep the drain runs at hundreds.
#[tokio::test]
async fn pg_boss_sleeps_its_polling_interval_after_each_fetch() {
    let cfg = common::config("pgbossbound").await;
    let file = common::config_file(&cfg);
    let o = common::qbench()
        .arg("--config")
        .arg(file.path())
        .args(["--quiet", "--workers", "4", "--processing-ms", "0"])
        .args(["--pg-boss-polling-interval", "1000"])
        .args(["work", "--queue", "pg_boss", "--burndown", "40", "--json"])
        .output()
        .expect("run qbench");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (v["audit"].as_str(), v["completed"].as_u64()),
        (Some("exact"), Some(40))
    );
    let rate = v["jobs_s"].as_f64().expect("jobs_s");
    assert!(rate <= 5.5, "{rate} jobs/s beyond 4 per 0.9 s");
}

/// pg-boss's notification names the queue, and every worker of the queue wakes: three
/// workers asleep for their 10-minute poll all fetch once one insert of one job notifies
/// (one gets the job, two find nothing); a notification that woke one worker per job
/// would leave two asleep.
#[tokio::test]
async fn pg_boss_notify_wakes_every_worker_of_the_queue() {
    let q = open(QueueKind::PgBoss, "pgbossnotify", |c| {
        c.benchmark.wakeup = qbench::config::Wakeups::one(qbench::config::Wakeup::Notify);
        c.benchmark.pg_boss_polling_interval_ms = 600_000.0;
    })
    .await;
    let mut waiting = vec![];
    for w in 0..3 {
        let mut c = q.consumer(w).await.expect("consumer");
        // The first fetch finds nothing; the next claim sleeps until woken.
        assert!(c.claim().await.expect("claim").is_empty());
        waiting.push(tokio::spawn(async move { c.claim().await.expect("claim") }));
    }
    // The sleepers register while this task waits on the server below. One that had not
    // yet would see the moved generation and fetch at once, so the test can pass without
    // waking everyone only by that race, never fail by it.
    let first = q.allocate(1).await.expect("allocate");
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&jobs(first..first + 1), false)
        .await
        .expect("enqueue");
    let mut got = vec![];
    for w in waiting {
        let jobs = tokio::time::timeout(std::time::Duration::from_secs(60), w)
            .await
            .expect("every worker woken by the notification, not the 10-minute poll")
            .expect("task");
        got.push(jobs.len());
    }
    got.sort_unstable();
    assert_eq!(got, [0, 0, 1], "all three fetched; one got the job");
    let report = q.server().wakeup();
    assert_eq!(report.notifications_received, Some(1), "{report:?}");
}

/// pg-boss's `partition: true`: the queue's jobs live in a table of its own (named after
/// its name's hash), not in the shared job_common; the run is the variant
/// `pg_boss+…+partition`, exact; and a queue made with the other layout is refused
/// until a reset.
#[tokio::test]
async fn pg_boss_partition_keeps_the_queue_in_its_own_table() {
    let mut cfg = common::config("pgbosspart").await;
    let plain = queue::open(QueueKind::PgBoss, &cfg).await.expect("open");
    plain.setup(true).await.expect("setup");
    cfg.benchmark.pg_boss_partition = qbench::config::OnOff::On;
    let q = queue::open(QueueKind::PgBoss, &cfg).await.expect("open");
    let e = q.setup(false).await.expect_err("the other layout");
    assert!(format!("{e:#}").contains("--reset"), "{e:#}");
    q.setup(true).await.expect("setup with reset");
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let row = library_run("pg_boss", &q, file.path(), dir.path(), false).await;
    assert!(row.design().ends_with("+partition"), "{}", row.design());
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.completed, row.lost), (Some(100), Some(0)));
    let admin = common::pg_client(&cfg).await;
    let count = |t: &'static str| {
        let admin = &admin;
        async move {
            let sql = format!("SELECT count(*) FROM {t} WHERE state = 'completed'");
            admin.query_one(&sql, &[]).await.expect(t).get::<_, i64>(0)
        }
    };
    assert_eq!(
        count("jde4122c14d69d475f9df6e8795f3d9df72a859e1dba7cfcbc787c3a0").await,
        100
    );
    assert_eq!(count("pgboss_job_common").await, 0);
}

/// deleteAfterSeconds shorter than a day: maintenance deletes completed jobs within the
/// run, so the queue keeps no record of them; the run is a variant of its own
/// (`deletion=1s`), audited from the workers' records, and its completed rows are gone
/// once maintenance has run.
#[tokio::test]
async fn pg_boss_short_deletion_is_a_variant_without_a_record() {
    let mut cfg = common::config("pgbossdel").await;
    cfg.benchmark.pg_boss_deletion_s = 1;
    cfg.benchmark.pg_boss_maintenance_interval_s = 1.0;
    // Supervise (which runs the maintenance) every second, not every minute.
    cfg.benchmark.pg_boss_monitor_interval_s = 1.0;
    let q = queue::open(QueueKind::PgBoss, &cfg).await.expect("open");
    q.setup(true).await.expect("setup");
    assert!(!q.records_completions());
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let row = library_run("pg_boss", &q, file.path(), dir.path(), false).await;
    assert!(row.design().ends_with("+deletion=1s"), "{}", row.design());
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.completed, row.lost), (Some(100), Some(0)));
    // The maintenance this process runs (as a work process's reaper does) deletes them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while q.state().await.expect("state").completed > 0 {
        assert!(std::time::Instant::now() < deadline, "never deleted");
        q.reap().await.expect("maintenance");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(q.snapshot().await.expect("snapshot").completions_unrecorded);
}

/// Procrastinate's wakeup: the insert trigger's notification on every queue's channel
/// (JSON naming the job) wakes an idle worker. With a 10-minute fetch poll, only the
/// notification can bring the job to it within the 60 s allowed.
#[tokio::test]
async fn procrastinate_wakes_on_its_insert_notification() {
    let q = open(QueueKind::Procrastinate, "prnotify", |c| {
        c.benchmark.wakeup = qbench::config::Wakeups::one(qbench::config::Wakeup::Notify);
        c.benchmark.procrastinate_fetch_job_polling_interval_s = 600.0;
    })
    .await;
    woken_by_the_insert_notification(q).await;
}

/// Procrastinate's `delete_jobs = always`: a finished job is deleted with its events, so
/// the queue keeps no record; the run is the variant `procrastinate+delete=always`,
/// audited exactly from the workers' records, and its table and events are empty after.
#[tokio::test]
async fn procrastinate_delete_always_is_a_variant_without_a_record() {
    let mut cfg = common::config("prdelete").await;
    cfg.benchmark.procrastinate_delete_jobs = qbench::config::ProcrastinateDelete::Always;
    let q = queue::open(QueueKind::Procrastinate, &cfg)
        .await
        .expect("open");
    q.setup(true).await.expect("setup");
    assert!(!q.records_completions());
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let row = library_run("procrastinate", &q, file.path(), dir.path(), false).await;
    assert!(
        row.design().starts_with("procrastinate+delete=always"),
        "{}",
        row.design()
    );
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.completed, row.lost), (Some(100), Some(0)));
    let admin = common::pg_client(&cfg).await;
    let rows: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM procrastinate_jobs) + (SELECT count(*) FROM procrastinate_events)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 0, "jobs and their events deleted at finish");
    assert!(q.snapshot().await.expect("snapshot").completions_unrecorded);
}
