//! Every design in separate qbench processes, as users run it: producers and workers
//! exact across processes, a job removed behind their back named lost, a worker
//! killed with SIGKILL losing nothing, the server SIGKILLed in the strict tier losing
//! nothing acknowledged, and bad input refused in one line with exit code 2.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use qbench::format::crash::read_crash;
use qbench::local::process;
use qbench::queue::registry::Recovery;
use qbench::queue::QueueKind;
use serde_json::Value;

use super::{common, prepared, recorded_done, recovery, spawn, until};

/// `work` in the background: W workers × P ms into `out` as test `name`, instance `i`.
fn worker(
    cfg: &Path,
    kind: QueueKind,
    out: &str,
    name: &str,
    i: &str,
    w: &str,
    p: &str,
) -> std::process::Child {
    spawn(
        cfg,
        &[
            "work",
            "--queue",
            kind.name(),
            "--workers",
            w,
            "--processing-ms",
            p,
            "--until-idle",
            "2",
            "--json",
            "--no-report",
            "--out",
            out,
            "--name",
            name,
            "--instance",
            i,
        ],
    )
}

/// `produce` in the background: `count` jobs at `rate`.
fn producer(
    cfg: &Path,
    kind: QueueKind,
    out: &str,
    name: &str,
    i: &str,
    rate: &str,
    count: &str,
) -> std::process::Child {
    spawn(
        cfg,
        &[
            "produce",
            "--queue",
            kind.name(),
            "--rate",
            rate,
            "--count",
            count,
            "--json",
            "--no-report",
            "--out",
            out,
            "--name",
            name,
            "--instance",
            i,
        ],
    )
}

fn succeeded(c: std::process::Child) -> std::process::Output {
    let o = c.wait_with_output().expect("process");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

/// Two producer and three worker processes on one queue, their files in one folder;
/// with `sabotage`, one waiting job is removed mid-run and analyze must name exactly it.
async fn many_processes(kind: QueueKind, sabotage: bool) {
    let test = if sabotage { "lostn" } else { "many" };
    let (cfg, q) = prepared(kind, test, |_| {}).await;
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    // 3 × 2 workers × 40 ms take about 150 jobs/s; 2 × 150 are offered, so jobs wait.
    let workers: Vec<_> = ["w1", "w2", "w3"]
        .iter()
        .map(|i| worker(file.path(), kind, out, "m", i, "2", "40"))
        .collect();
    let producers: Vec<_> = ["p1", "p2"]
        .iter()
        .map(|i| producer(file.path(), kind, out, "m", i, "150", "300"))
        .collect();
    let removed = if sabotage {
        until(&q, "a backlog", |s| s.pending >= 20).await;
        Some(
            q.remove_waiting_job()
                .await
                .expect("remove")
                .expect("a waiting job"),
        )
    } else {
        None
    };
    for p in producers.into_iter().chain(workers) {
        succeeded(p);
    }
    let (a, row) = common::analyze_row(dir.path());
    assert_eq!(row.processes, 5);
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!((row.produced, row.duplicated), (Some(600), Some(0)));
    match removed {
        None => {
            assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
            assert_eq!((row.lost, row.completed), (Some(0), Some(600)));
            assert!(
                std::fs::read_dir(dir.path()).expect("dir").all(|e| !e
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".partial")),
                "no half-written file is left"
            );
        }
        Some(seq) => {
            assert_eq!(a.status.code(), Some(1), "a loss fails analyze");
            assert_eq!(
                (row.lost, row.lost_seqs.clone()),
                (Some(1), seq.to_string()),
                "the lost job is named"
            );
            assert!(row.red_flags.contains("LOST"), "{}", row.red_flags);
        }
    }
}

pub async fn produce_and_work_processes_are_exact(kind: QueueKind) {
    many_processes(kind, false).await
}

pub async fn a_removed_job_is_named_lost_across_processes(kind: QueueKind) {
    many_processes(kind, true).await
}

fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A worker process killed with SIGKILL mid-run: another finishes the work, nothing is
/// lost, the queue records every job done once; a lease (or heartbeat) design counts the
/// redeliveries and recovers after its lease, not before.
pub async fn kill9_of_a_worker_loses_nothing(kind: QueueKind) {
    const JOBS: i64 = 600;
    let (cfg, q) = prepared(kind, "kill9", |c| c.benchmark.recover_after(2.0)).await;
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    // The doomed worker runs alone until it is seen holding jobs with more waiting behind
    // them; only then is it killed, and only then does the survivor start.
    let mut doomed = worker(file.path(), kind, out, "k", "doomed", "4", "20");
    let produce = producer(file.path(), kind, out, "k", "p", "300", &JOBS.to_string());
    // It is stopped, seen holding jobs in two snapshots alike (a command it sent before
    // the stop has landed by then), and killed: it dies holding them. A kill on one
    // snapshot alone once landed between a completion and the next claim, holding none.
    let mut killed_at;
    let held = loop {
        until(&q, "held jobs with a backlog", |s| {
            s.in_flight > 0 && s.pending > 0
        })
        .await;
        assert!(
            doomed.try_wait().expect("try_wait").is_none(),
            "the doomed worker exited early"
        );
        // Nothing is claimed after the stop: the lease runs from here at the latest.
        killed_at = epoch_now();
        process::send(doomed.id(), Signal::SIGSTOP);
        let first = q.state().await.expect("state").in_flight;
        let second = q.state().await.expect("state").in_flight;
        if first == second && second > 0 {
            break second;
        }
        process::send(doomed.id(), Signal::SIGCONT);
    };
    doomed.kill().expect("kill -9");
    let _ = doomed.wait();
    let survivor = worker(file.path(), kind, out, "k", "survivor", "4", "20");
    succeeded(produce);
    let s = succeeded(survivor);
    let json: Value = serde_json::from_slice(&s.stdout).expect("json");
    assert_eq!(json["left_in_queue"], 0, "{json}");
    let (a, row) = common::analyze_row(dir.path());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    assert_eq!(row.audit, "exact", "{}", row.audit_note);
    assert_eq!(
        (row.produced, row.lost, row.duplicated),
        (Some(600), Some(0), Some(0))
    );
    // The queue's own record: every job done, each once, nothing left.
    let done = recorded_done(&q).await;
    assert_eq!(done.len() as i64, JOBS, "every job recorded done: {done:?}");
    assert!(done.windows(2).all(|w| w[1] > w[0]), "each once");
    assert!(q.snapshot().await.expect("snapshot").left.is_empty());
    if recovery(kind) != Recovery::Rollback {
        let n = json["redelivered"].as_u64().expect("redelivered");
        assert!(
            n >= 1,
            "the dead worker held {held} job(s); they were redelivered: {json}"
        );
        let last = json["last_redelivery_epoch_s"]
            .as_f64()
            .expect("recovery time");
        let after = last - killed_at;
        // Not before the 2-s lease ran out; the upper bound only catches a job never reaped.
        assert!(
            (1.0..60.0).contains(&after),
            "recovered {after:.2} s after the kill"
        );
    }
}

/// `qbench --local --durability strict crash-test`: the server SIGKILLed while jobs
/// flow and restarted on its data; nothing the server acknowledged is lost.
pub async fn a_strict_crash_loses_nothing(kind: QueueKind) {
    let dir = tempfile::tempdir().expect("dir");
    let o = common::run_qbench(
        &[
            "--local",
            "--quiet",
            "--durability",
            "strict",
            "crash-test",
            "--queue",
            kind.name(),
            "--trials",
            "1",
            "--no-report",
            "--out",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let f = read_crash(&dir.path().join(format!("{kind}_strict_crash.json")))
        .unwrap_or_else(|e| panic!("{e:#}\n{err}"));
    // The --local server was started in the tier, as read back from it.
    assert_eq!(f.tier, "strict", "{}", f.server_durability);
    let t = &f.trials[0];
    assert!(t.unclean, "not left as a crash leaves it: {t:?}");
    assert_eq!(t.audit, "exact", "{t:?}");
    assert!(
        t.produced > 0 && t.clients_back_ms.is_some(),
        "the crash hit flowing jobs: {t:?}"
    );
    assert_eq!(
        (t.lost, t.loss_window_ms),
        (0, None),
        "strict loses nothing acknowledged: {t:?}"
    );
}

/// One line, exit code 2, no password, before anything runs: an unreachable server, a
/// server outside the tier asked for, and a burn-down of nothing.
pub async fn bad_input_is_one_line_and_exit_2(kind: QueueKind) {
    let one_line = |o: &std::process::Output, want: &str| {
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(!err.contains("s3cretpw"), "password leaked: {err}");
    };
    let o = common::run_qbench(
        &[
            "--pg-url",
            "postgres://bench_user:s3cretpw@127.0.0.1:1/db",
            "--valkey-url",
            "redis://:s3cretpw@127.0.0.1:1",
            "-q",
            "produce",
            "--queue",
            kind.name(),
            "--count",
            "1",
        ],
        &[],
    );
    one_line(&o, "127.0.0.1:1");
    // The shared servers run strict: a volatile run is refused, naming the way out.
    let (cfg, _) = prepared(kind, "badinput", |_| {}).await;
    let file = common::config_file(&cfg);
    let conf = file.path().to_str().expect("utf8");
    let o = common::run_qbench(
        &[
            "--config",
            conf,
            "-q",
            "--durability",
            "volatile",
            "produce",
            "--queue",
            kind.name(),
            "--count",
            "1",
        ],
        &[],
    );
    one_line(&o, "--accept-durability-mismatch");
    let o = common::run_qbench(
        &[
            "--config",
            conf,
            "-q",
            "work",
            "--queue",
            kind.name(),
            "--burndown",
            "0",
        ],
        &[],
    );
    one_line(&o, "--burndown");
    assert!(
        q_untouched(&cfg, kind).await,
        "a refused run enqueued nothing"
    );
}

async fn q_untouched(cfg: &qbench::config::Config, kind: QueueKind) -> bool {
    let q = qbench::queue::open(kind, cfg).await.expect("open");
    q.depth().await.expect("depth") == 0
}
