//! The catalogue of bad input: one line that says what went wrong and what to do, exit
//! code 2, no half-written file, no panic. (Config errors, unknown queues and refused
//! connections are in tests/cli.rs; analyze's and graph's inputs in tests/analyze.rs and
//! tests/graph.rs; an unwritable `--out` for work in tests/workload.rs.)

mod common;

use std::path::Path;

use common::run_qbench;
use std::process::Output;

/// Exit code 2, one line on stderr naming `needle`, nothing on stdout, no panic.
fn refused(o: &Output, needle: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "{needle:?} in {err}");
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    err
}

fn empty_dir(p: &Path) -> bool {
    !p.exists() || std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

#[tokio::test]
async fn wrong_password_is_one_line_without_the_password() {
    let mut cfg = common::config("wrong_pw").await;
    cfg.postgres.password = "not-the-Right-one".into();
    let file = common::config_file(&cfg);
    let o = run_qbench(
        &[
            "--config",
            file.path().to_str().expect("utf8"),
            "setup-schema",
            "--queue",
            "skip_locked",
        ],
        &[],
    );
    let err = refused(&o, "refused the login");
    assert!(
        err.contains("postgres.password") || err.contains("PGPASSWORD"),
        "says what to fix: {err}"
    );
    assert!(!err.contains("not-the-Right-one"), "{err}");
}

#[test]
fn pgbench_missing_stops_the_suite_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().join("results");
    let o = run_qbench(
        &[
            "run-suite",
            "--backend",
            "valkey",
            "--scenarios",
            "load",
            "--out",
            out.to_str().expect("utf8"),
        ],
        &[("QBENCH_PGBENCH", "/nonexistent/pgbench")],
    );
    refused(&o, "QBENCH_PGBENCH");
    assert!(empty_dir(&out), "no folder or file was created");
}

#[test]
fn valkey_binary_missing_is_refused_and_starts_nothing() {
    let sandbox = common::Sandbox::new();
    let o = sandbox
        .qbench()
        .args(["--local", "setup-schema"])
        .env("QBENCH_VALKEY_SERVER", "/nonexistent/valkey-server")
        .output()
        .expect("run qbench");
    refused(&o, "QBENCH_VALKEY_SERVER");
    sandbox.assert_clean();
}

#[test]
fn unwritable_results_folder_is_refused_before_the_suite_runs() {
    let dir = tempfile::tempdir().expect("dir");
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, "x").expect("file");
    let out = blocker.join("results");
    let o = run_qbench(
        &[
            "run-suite",
            "--backend",
            "pg",
            "--scenarios",
            "cold",
            "--out",
            out.to_str().expect("utf8"),
        ],
        &[],
    );
    refused(&o, "cannot write results");
}

#[test]
fn unknown_scenario_and_mismatched_queue_are_refused() {
    let o = run_qbench(&["run-suite", "--backend", "pg", "--scenarios", "hot"], &[]);
    refused(&o, "hot");
    let o = run_qbench(
        &["run-suite", "--backend", "pg", "--queues", "valkey_streams"],
        &[],
    );
    refused(&o, "valkey_streams");
    let o = run_qbench(
        &["work", "--queue", "skip_locked", "--until-idle", "0"],
        &[],
    );
    refused(&o, "--until-idle");
    let o = run_qbench(
        &[
            "work",
            "--queue",
            "skip_locked",
            "--out",
            "/tmp",
            "--name",
            "../escape",
        ],
        &[],
    );
    refused(&o, "test name");
    // pg-boss ignores burstWhenBatchFull at a batch size of 1: a run would not be the
    // variant it names.
    let o = run_qbench(
        &[
            "--pg-boss-burst-when-batch-full",
            "on",
            "work",
            "--queue",
            "pg_boss",
        ],
        &[],
    );
    refused(&o, "dequeue_batch");
}

/// report refuses a folder without analyze's summary.json, or with a broken one, and
/// writes no page.
#[test]
fn report_without_a_summary_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().expect("dir");
    let d = dir.path().to_str().expect("utf8");
    refused(&run_qbench(&["report", "--dir", d], &[]), "summary.json");
    assert!(empty_dir(dir.path()));
    std::fs::create_dir(dir.path().join("analysis")).expect("mkdir");
    std::fs::write(dir.path().join("analysis/summary.json"), "{\"format\": ").expect("write");
    refused(
        &run_qbench(&["report", "--dir", d], &[]),
        "not a qbench summary",
    );
    assert!(!dir.path().join("report.html").exists());
}
