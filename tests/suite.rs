//! run-suite end to end with `--local` servers: every file of the seed's matrix, resuming,
//! and Ctrl-C leaving partial results and no process behind. Each test's qbench runs in
//! a sandbox of its own (its TMPDIR), so the tests run side by side.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn qbench(sandbox: &common::Sandbox, args: &[&str]) -> Command {
    let mut c = sandbox.qbench();
    c.args(args);
    c
}

fn text(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn manifest(dir: &Path, name: &str) -> Value {
    let t = std::fs::read_to_string(dir.join(format!("{name}_manifest.json")))
        .unwrap_or_else(|e| panic!("{name}_manifest.json: {e}"));
    serde_json::from_str(&t).expect("manifest json")
}

/// Sends SIGINT once `ready` holds, then waits for the exit.
fn interrupt_when(mut child: std::process::Child, ready: impl Fn() -> bool) -> Output {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "never became ready");
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "exited early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    child.wait_with_output().expect("wait")
}

#[test]
fn quick_suite_writes_every_file_and_a_rerun_skips_finished_tests() {
    let sandbox = common::Sandbox::new();
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    let started = Instant::now();
    // Shorter than --quick's 5 s: the test checks the files, not the numbers.
    let cfg = short_config(1, "warmup_duration = 1\nwarmup_rate = 200\n");
    let cfg_path = cfg.path().to_str().expect("utf8");
    let o = qbench(
        &sandbox,
        &[
            "--config",
            cfg_path,
            "--local",
            "run-suite",
            "--backend",
            "all",
            "--quick",
            "--out",
            out,
        ],
    )
    .output()
    .expect("run-suite");
    assert!(o.status.success(), "{}", text(&o));
    eprintln!("quick suite took {:?}", started.elapsed());
    sandbox.assert_clean();

    let pg = dir.path().join("vm1_pg");
    let vk = dir.path().join("vm2_valkey");
    let mut tests = 0;
    for (d, designs, stats) in [
        (
            &pg,
            vec!["skip_locked", "delete_returning", "partitioned"],
            "db_stats.csv",
        ),
        (&vk, vec!["valkey"], "valkey_stats.csv"),
    ] {
        for design in designs {
            for sc in ["cold", "warm", "load"] {
                let name = format!("{design}_{sc}");
                let mut kinds = vec![
                    "metrics.jsonl",
                    "latency.hlog",
                    "system.csv",
                    "audit.json",
                    "manifest.json",
                    stats,
                ];
                if sc == "load" {
                    kinds.push("pgbench.csv");
                    kinds.push("pgbench_alone.csv");
                }
                for k in kinds {
                    let f = d.join(format!("{name}_{k}"));
                    let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
                    assert!(len > 0, "{} missing or empty", f.display());
                }
                let m = manifest(d, &name);
                assert_eq!(m["complete"], true, "{name}");
                assert_eq!(m["smoke"], true, "{name}: quick runs are smoke runs");
                assert_eq!(m["scenario"], sc);
                assert_eq!(m["summary"]["lost"], 0, "{name}");
                assert_eq!(m["summary"]["audit"], "exact");
                // --local servers in the default tier, strict on both sides, as measured.
                let want = if design == "valkey" {
                    r#"appendonly="yes" appendfsync="always" save="""#
                } else {
                    "fsync=on synchronous_commit=on tables=logged"
                };
                assert_eq!(m["durability_tier"], "strict", "{name}");
                assert_eq!(m["server_durability"], want, "{name}");
                assert_eq!(
                    m["summary"]["produced"], m["summary"]["completed"],
                    "{name}"
                );
                match sc {
                    "cold" => assert_eq!(m["extra"]["cold_start"]["server_restarted"], true),
                    "warm" => assert!(m["extra"]["warmup"]["completed"].as_u64() > Some(0)),
                    _ => {
                        for key in ["pgbench", "pgbench_alone"] {
                            assert!(
                                m["extra"][key]["stats"]["tps_mean"].as_f64() > Some(0.0),
                                "{name}: {key} measured"
                            );
                        }
                        assert!(
                            m["extra"]["warmup"]["completed"].as_u64() > Some(0),
                            "{name}: load starts as warm as warm"
                        );
                    }
                }
                tests += 1;
            }
        }
        assert!(
            std::fs::read_dir(d).expect("dir").all(|e| !e
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".partial")),
            "no half-written files"
        );
    }
    assert_eq!(tests, 12);

    // From nothing to charts: the suite analyzed and drew its own results.
    let printed = String::from_utf8_lossy(&o.stdout);
    for h in [
        "SCENARIO: COLD",
        "SCENARIO: LOAD",
        "FINDINGS",
        "Charts:",
        "Valkey fsynced every write (appendonly",
    ] {
        assert!(printed.contains(h), "{h}");
    }
    let summary =
        std::fs::read_to_string(dir.path().join("analysis/summary.csv")).expect("summary");
    assert_eq!(summary.lines().count(), 13, "header and 12 tests");
    the_verdict_comes_first_and_says_why(&printed, dir.path());
    for c in [
        "throughput_comparison",
        "latency_comparison",
        "latency_distribution",
        "cpu_usage",
        "scenario_comparison",
        "valkey_vs_best_pg",
    ] {
        for ext in ["png", "svg"] {
            assert!(
                dir.path().join(format!("graphs/{c}.{ext}")).exists(),
                "{c}.{ext}"
            );
        }
    }

    // A re-run finds every test complete and runs none of them.
    let o = qbench(
        &sandbox,
        &[
            "--config",
            cfg_path,
            "--local",
            "run-suite",
            "--backend",
            "all",
            "--quick",
            "--out",
            out,
        ],
    )
    .output()
    .expect("re-run");
    assert!(o.status.success(), "{}", text(&o));
    // Progress, not results: the skipped tests are said on stderr.
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(stderr.matches("already complete").count(), 12, "{stderr}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("already complete"));
    sandbox.assert_clean();
}

/// The quick suite's verdict: before the tables; every test in its scenario's ranking or
/// named with why not; no claim that cannot be made without a reason and a remedy; none
/// of the false reasons a saturated row once gave.
fn the_verdict_comes_first_and_says_why(printed: &str, out: &Path) {
    let (v, t) = (
        printed.find("VERDICT").expect("a verdict"),
        printed.find("BENCHMARK RESULTS SUMMARY").expect("tables"),
    );
    assert!(v < t, "{printed}");
    for false_reason in ["exists for only one side", "no load scenario for Valkey"] {
        assert!(!printed.contains(false_reason), "{printed}");
    }
    let a: qbench::format::summary::Analysis = serde_json::from_slice(
        &std::fs::read(out.join("analysis/summary.json")).expect("summary.json"),
    )
    .expect("json");
    let ranked: usize = a.verdict.scenarios.iter().map(|s| s.ranking.len()).sum();
    assert_eq!(ranked, 12, "every test ranked or named: {:#?}", a.verdict);
    for s in &a.verdict.scenarios {
        for r in &s.ranking {
            assert!(r.rank.is_some() || !r.left_out.is_empty(), "{r:?}");
        }
        for c in std::iter::once(&s.backends).chain(&s.within) {
            if c.confidence == "not measured" {
                assert!(!c.settle.is_empty(), "{c:?}");
            }
        }
        let backends = &s.backends;
        assert_ne!(
            backends.confidence, "not measured",
            "both sides ran {}: {backends:?}",
            s.scenario
        );
    }
    for r in &a.tests {
        assert!(
            ["sustained", "stalled", "over_capacity"].contains(&r.state.as_str()),
            "{}: {:?} ({})",
            r.test,
            r.state,
            r.state_reason
        );
    }
}

fn short_config(seconds: u32, extra: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("file");
    std::io::Write::write_all(
        &mut f,
        // pgbench's smallest scale: initialising 1,000,000 rows (scale 10) is not what the
        // tests check.
        format!(
            "[pgbench]\nscale = 1\n[benchmark]\nproduction_duration = {seconds}\nproduction_rate = 200\n{extra}"
        )
            .as_bytes(),
    )
    .expect("write");
    f
}

/// `--local run-suite` with `cfg`, `args` and `--out out`, started in the background in
/// `sandbox`.
fn spawn_suite(
    sandbox: &common::Sandbox,
    cfg: &tempfile::NamedTempFile,
    args: &[&str],
    out: &Path,
) -> std::process::Child {
    let (cfg, out) = (
        cfg.path().to_str().expect("utf8"),
        out.to_str().expect("utf8"),
    );
    let mut all = vec!["--config", cfg, "--local", "run-suite", "--out", out];
    all.extend_from_slice(args);
    qbench(sandbox, &all).spawn().expect("spawn")
}

#[test]
fn ctrl_c_during_a_test_writes_it_as_incomplete_and_leaves_nothing() {
    let sandbox = common::Sandbox::new();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = short_config(30, "");
    let child = spawn_suite(
        &sandbox,
        &cfg,
        &[
            "--backend",
            "pg",
            "--queues",
            "skip_locked",
            "--scenarios",
            "cold,warm",
        ],
        dir.path(),
    );
    let partial = dir
        .path()
        .join("vm1_pg/skip_locked_cold_metrics.jsonl.partial");
    let o = interrupt_when(child, || {
        std::fs::read_to_string(&partial).is_ok_and(|t| t.lines().count() >= 2)
    });
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let m = manifest(&dir.path().join("vm1_pg"), "skip_locked_cold");
    assert_eq!(m["complete"], false);
    assert_eq!(m["interrupted"], true);
    assert_eq!(m["summary"]["lost"], 0, "nothing is lost on Ctrl-C");
    assert!(
        !dir.path()
            .join("vm1_pg/skip_locked_warm_manifest.json")
            .exists(),
        "the suite stopped"
    );
    assert!(!partial.exists(), "files renamed into place");
    sandbox.assert_clean();
}

#[test]
fn ctrl_c_while_pgbench_runs_stops_it() {
    let sandbox = common::Sandbox::new();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = short_config(10, "warmup_duration = 1\n");
    let child = spawn_suite(
        &sandbox,
        &cfg,
        &["--backend", "valkey", "--scenarios", "load"],
        dir.path(),
    );
    // pgbench beside the queue, during the measured test (after its run alone).
    let csv = dir
        .path()
        .join("vm2_valkey/valkey_load_pgbench.csv.partial");
    let o = interrupt_when(child, || {
        std::fs::read_to_string(&csv).is_ok_and(|t| t.lines().count() >= 2)
    });
    assert_eq!(o.status.code(), Some(130), "{}", text(&o));
    let m = manifest(&dir.path().join("vm2_valkey"), "valkey_load");
    assert_eq!(m["complete"], false);
    sandbox.assert_clean();
}

#[test]
fn ctrl_c_during_warmup_writes_no_test_files_and_leaves_nothing() {
    let sandbox = common::Sandbox::new();
    let dir = tempfile::tempdir().expect("dir");
    let cfg = short_config(30, "warmup_duration = 30\nwarmup_rate = 200\n");
    let child = spawn_suite(
        &sandbox,
        &cfg,
        &["--backend", "valkey", "--scenarios", "warm"],
        dir.path(),
    );
    // The plain progress line of the warmup ("… warmup 0s (30s left) …") says it is running.
    let (status, stderr) =
        interrupt_on_stderr(child, |l| l.contains("warmup") && l.contains("left)"));
    assert_eq!(status.code(), Some(130), "{stderr}");
    let out = dir.path().join("vm2_valkey");
    assert!(
        !out.join("valkey_warm_manifest.json").exists(),
        "the measured test never started, so it has no manifest: {stderr}"
    );
    let partial: Vec<_> = std::fs::read_dir(&out)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        partial
            .iter()
            .all(|p| !p.to_string_lossy().ends_with(".partial")),
        "half-written files left: {partial:?}"
    );
    sandbox.assert_clean();
}

/// Sends SIGINT on the first stderr line that `ready` accepts; returns the exit status and
/// all of stderr.
fn interrupt_on_stderr(
    mut child: std::process::Child,
    ready: impl Fn(&str) -> bool + Send + 'static,
) -> (std::process::ExitStatus, String) {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if ready(&line) {
                let _ = tx.send(());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        panic!("never became ready: {}", reader.join().unwrap_or_default());
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT");
    let status = child.wait().expect("wait");
    (status, reader.join().expect("reader"))
}

#[test]
fn ctrl_c_while_the_local_servers_start_leaves_nothing() {
    let sandbox = common::Sandbox::new();
    let dir = tempfile::tempdir().expect("dir");
    let child = qbench(
        &sandbox,
        &[
            "--local",
            "run-suite",
            "--backend",
            "all",
            "--quick",
            "--out",
            dir.path().to_str().expect("utf8"),
        ],
    )
    .spawn()
    .expect("spawn");
    let (status, stderr) = interrupt_on_stderr(child, |l| {
        l.contains("starting local PostgreSQL and Valkey")
    });
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path()).is_ok_and(|mut d| d.next().is_none()),
        "no results were written: {stderr}"
    );
    sandbox.assert_clean();
}
