//! Like for like on real servers: the durability tier applied to `--local` servers and
//! proven by crashing them (strict loses nothing acknowledged; volatile loses the
//! backlog, and says so by seq), a given server outside the tier refused, and NOTIFY
//! waking idle workers where polling cannot.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use qbench::config::{Wakeup, Wakeups};
use qbench::format::crash::{read_crash, CrashFile, Trial};
use qbench::queue::{self, QueueKind};
use qbench::workload;
use qbench::workload::producer::ProducePlan;
use qbench::workload::worker::WorkPlan;

/// `qbench --local --durability TIER crash-test` of skip_locked and valkey_streams, one
/// crash each; the two files. The run must succeed whatever the tier loses.
fn crash(tier: &str, dir: &Path) -> (String, CrashFile, CrashFile) {
    let out = dir.to_str().expect("utf8");
    let o = common::run_qbench(
        &[
            "--local",
            "--quiet",
            "--durability",
            tier,
            "crash-test",
            "--queue",
            "skip_locked,valkey_streams",
            "--trials",
            "1",
            "--out",
            out,
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{tier}: {err}");
    let read = |q: &str| {
        read_crash(&dir.join(format!("{q}_{tier}_crash.json")))
            .unwrap_or_else(|e| panic!("{q} {tier}: {e:#}\n{err}"))
    };
    let (pg, vk) = (read("skip_locked"), read("valkey_streams"));
    (String::from_utf8_lossy(&o.stdout).into_owned(), pg, vk)
}

/// Each trial: a real crash (the server left as a kill leaves it), an exact audit, and
/// jobs flowing through it.
fn each_trial(files: [&CrashFile; 2], check: impl Fn(&CrashFile, &Trial)) {
    for f in files {
        let t = &f.trials[0];
        assert!(
            t.unclean,
            "{}: not left as a crash leaves it: {t:?}",
            f.queue
        );
        assert_eq!(t.audit, "exact", "{}: {t:?}", f.queue);
        assert!(
            t.produced >= 1500,
            "{}: jobs flowed through: {t:?}",
            f.queue
        );
        assert!(
            t.clients_back_ms.is_some(),
            "{}: the crash was felt: {t:?}",
            f.queue
        );
        check(f, t);
    }
}

/// How many seqs `["7", "10-12"]` names.
fn named(runs: &[String]) -> u64 {
    runs.iter()
        .map(|r| match r.split_once('-') {
            Some((a, b)) => {
                b.parse::<u64>().expect("run end") - a.parse::<u64>().expect("run start") + 1
            }
            None => 1,
        })
        .sum()
}

/// Sabotage of the loss figure: a tier that keeps nothing must show the backlog lost,
/// every job named, and how far back the loss reached.
#[test]
fn volatile_servers_lose_the_backlog_and_name_it() {
    let dir = tempfile::tempdir().expect("dir");
    let (printed, pg, vk) = crash("volatile", dir.path());
    assert_eq!(
        pg.server_durability,
        "fsync=on synchronous_commit=off tables=unlogged"
    );
    assert_eq!(
        vk.server_durability,
        r#"appendonly="no" appendfsync="everysec" save="""#
    );
    each_trial([&pg, &vk], |f, t| {
        // Workers take 80 % of the rate: a backlog of about 150 jobs at the crash.
        assert!(
            t.lost > 0,
            "{}: the backlog went with the server: {t:?}",
            f.queue
        );
        assert_eq!(
            named(&t.lost_seqs),
            t.lost,
            "{}: {:?}",
            f.queue,
            t.lost_seqs
        );
        let w = t.loss_window_ms.expect("loss window measured");
        assert!(
            w > 0.0 && w < 1000.0 * f.produce_s,
            "{}: {w} ms: {t:?}",
            f.queue
        );
    });
    assert!(printed.contains("volatile"), "{printed}");
}

#[test]
fn relaxed_is_applied_to_local_servers_and_bounds_its_loss() {
    let dir = tempfile::tempdir().expect("dir");
    let (_, pg, vk) = crash("relaxed", dir.path());
    assert_eq!(
        pg.server_durability,
        "fsync=on synchronous_commit=off tables=logged"
    );
    assert_eq!(
        vk.server_durability,
        r#"appendonly="yes" appendfsync="everysec" save="""#
    );
    // What relaxed may lose is bounded: PostgreSQL's WAL writer flushes every 200 ms,
    // Valkey writes its AOF within a second (two while an fsync is slow). The window
    // runs from when the oldest lost job was due, so the producer's lag on a loaded
    // machine adds to it: 5 s leaves it 3 s.
    each_trial([&pg, &vk], |f, t| {
        assert_eq!(named(&t.lost_seqs), t.lost, "{}", f.queue);
        if let Some(w) = t.loss_window_ms {
            assert!(
                w <= 5000.0,
                "{}: relaxed lost {w} ms of jobs: {t:?}",
                f.queue
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_outside_the_tier_is_refused_unless_accepted() {
    let cfg = common::config("tier_mismatch").await;
    let file = common::config_file(&cfg);
    let conf = file.path().to_str().expect("utf8");
    // The shared Valkey runs strict (the default): a volatile run is refused before
    // anything is produced, naming the setting and how to change it.
    let o = common::run_qbench(
        &[
            "--config",
            conf,
            "-q",
            "--durability",
            "volatile",
            "produce",
            "--queue",
            "valkey_streams",
            "--count",
            "10",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("appendonly") && err.contains("CONFIG SET appendonly no"),
        "{err}"
    );
    assert!(err.contains("--accept-durability-mismatch"), "{err}");
    // Accepted: it runs, and the manifest records the tier it really had.
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    let o = common::run_qbench(
        &[
            "--config",
            conf,
            "-q",
            "--durability",
            "volatile",
            "--accept-durability-mismatch",
            "produce",
            "--queue",
            "valkey_streams",
            "--count",
            "10",
            "--out",
            out,
            "--name",
            "t",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("t.producer_manifest.json")).expect("manifest"),
    )
    .expect("json");
    assert_eq!(
        m["durability_tier"], "strict",
        "the tier it ran in, not the one asked"
    );
    // PostgreSQL: tables not yet made UNLOGGED are refused with the command that does it.
    let o = common::run_qbench(
        &[
            "--config",
            conf,
            "-q",
            "--durability",
            "volatile",
            "work",
            "--queue",
            "skip_locked",
            "--duration",
            "1",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("setup-schema --durability volatile"), "{err}");
    let persistence = || async {
        let c = common::pg_client(&cfg).await;
        let r = c
            .query_one(
                "SELECT relpersistence::text FROM pg_class WHERE relname = 'queue_jobs'",
                &[],
            )
            .await
            .expect("persistence");
        r.get::<_, String>(0)
    };
    let setup = |tier: &str| {
        common::run_qbench(
            &[
                "--config",
                conf,
                "-q",
                "--durability",
                tier,
                "setup-schema",
                "--queue",
                "skip_locked",
            ],
            &[],
        )
    };
    assert!(setup("volatile").status.success());
    assert_eq!(
        persistence().await,
        "u",
        "volatile makes the tables UNLOGGED"
    );
    assert!(setup("strict").status.success());
    assert_eq!(
        persistence().await,
        "p",
        "and strict makes them logged again"
    );
    // partitioned: every partition follows the tier.
    let partitions = || async {
        let c = common::pg_client(&cfg).await;
        c.query_one(
            "SELECT string_agg(DISTINCT relpersistence::text, '') FROM pg_class WHERE relname ~ '^queue_jobs_part_[0-9]+$'",
            &[],
        )
        .await
        .expect("partitions")
        .get::<_, String>(0)
    };
    let part = |tier: &str| {
        let args = [
            "--config",
            conf,
            "-q",
            "--durability",
            tier,
            "setup-schema",
            "--queue",
            "partitioned",
        ];
        common::run_qbench(&args, &[])
    };
    assert!(part("volatile").status.success());
    assert_eq!(
        partitions().await,
        "u",
        "volatile makes every partition UNLOGGED"
    );
    assert!(part("strict").status.success());
    assert_eq!(partitions().await, "p");
}

#[test]
fn bad_tiers_and_wakeups_are_refused_naming_the_key() {
    for (args, want) in [
        (&["--durability", "paranoid", "config"][..], "paranoid"),
        (&["--wakeup", "smoke", "config"][..], "smoke"),
        (
            &["--wakeup", "poll,notify", "work", "--queue", "skip_locked"][..],
            "only run-suite takes a list",
        ),
        (
            &["--wakeup", "notify", "work", "--queue", "valkey_streams"][..],
            "wakeup = notify is for the PostgreSQL designs",
        ),
        (&["--durability", "strict", "crash-test"][..], "--local"),
    ] {
        let o = common::run_qbench(args, &[("PGHOST", "127.0.0.1"), ("PGPORT", "1")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// Idle workers: NOTIFY wakes them as jobs arrive; polling leaves jobs waiting for the
/// next look. With four workers polling every 2 s, half the jobs that reach an idle
/// worker wait over 300 ms for a look (a property of polling, whatever the machine
/// does), so the poll median stays above 100 ms; a notified worker picks its job up in
/// milliseconds, far under it. Four workers, so a notification must reach one that is
/// waiting, not only the first. How far apart the two medians are on this machine is
/// bench/'s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_wakes_idle_workers_where_polling_waits() {
    for kind in [QueueKind::SkipLocked, QueueKind::Partitioned] {
        let mut pickups = vec![];
        for mode in [Wakeup::Poll, Wakeup::Notify] {
            let mut cfg = common::config(&format!("wake_{}_{}", kind.name(), mode.name())).await;
            cfg.benchmark.wakeup = Wakeups::one(mode);
            cfg.benchmark.poll_interval_ms = 2000.0;
            let q = queue::open(kind, &cfg).await.expect("open");
            q.setup(true).await.expect("setup");
            let report = workload::run(common::quiet_spec(
                &format!("wake_{kind}_{}", mode.name()),
                Arc::clone(&q),
                &cfg,
                ProducePlan {
                    rate: Some(20.0),
                    count: None,
                    duration: Some(Duration::from_secs(4)),
                    connections: 1,
                    max_batch: 500,
                },
                WorkPlan {
                    workers: 4,
                    processing: Duration::ZERO,
                },
            ))
            .await
            .expect("run");
            let s = &report.summary;
            assert_eq!(
                (s.produced, s.lost),
                (Some(80), Some(0)),
                "{kind} {mode:?}: {s:?}"
            );
            let w = s.wakeup.clone().expect("wakeup recorded");
            assert_eq!(w.mode, mode.name());
            if mode == Wakeup::Notify {
                assert!(w.notifications_sent >= Some(1), "{kind}: {w:?}");
                assert!(w.notifications_received >= Some(1), "{kind}: {w:?}");
            } else {
                assert_eq!(w.notifications_sent, None);
            }
            let p = s.pickup_ms.expect("pickups measured");
            pickups.push((mode, p.p50, p.count));
        }
        eprintln!("{kind}: pickup p50 and count by mode {pickups:?}");
        let (poll, notify) = (pickups[0], pickups[1]);
        // Jobs arrive while some worker is idle (20 jobs/s to 4 idle workers); a pickup
        // is timed from when the job was due, so the producer's lag on a loaded machine
        // is in it. Polling every 2 s waits about a second; a woken worker, a few ms.
        // Relative, with a margin far beyond that lag: NOTIFY at least 3x faster.
        assert!(notify.2 >= 10, "{kind}: {pickups:?}");
        assert!(poll.1 >= 100.0, "{kind}: polling every 2 s: {pickups:?}");
        assert!(
            notify.1 * 3.0 < poll.1,
            "{kind}: woken by NOTIFY: {pickups:?}"
        );
    }
}
