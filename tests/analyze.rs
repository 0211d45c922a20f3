//! analyze on fixtures made by real runs: tables and findings, summary files, percentiles
//! that HdrHistogram's own reader agrees with, merged processes, and bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use qbench::analyze::Row;
use qbench::format::hlog;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn analyze(args: &[&str], out: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qbench"))
        .arg("analyze")
        .args(args)
        .arg("--output")
        .arg(out)
        .output()
        .expect("run qbench analyze")
}

fn rows(out: &Path) -> Vec<Row> {
    let mut r = csv::Reader::from_path(out.join("summary.csv")).expect("summary.csv");
    r.deserialize().map(|x| x.expect("row")).collect()
}

fn hdrh_p99(files: &[PathBuf]) -> f64 {
    let out = Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hdrh_check.py"))
        .arg("e2e")
        .args(files)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["p99"].as_f64().expect("p99")
}

#[test]
fn quick_suite_gives_three_tables_findings_and_twelve_rows() {
    let out = tempfile::tempdir().expect("dir");
    let suite = fixtures().join("suite");
    let pg = suite.join("vm1_pg");
    let vk = suite.join("vm2_valkey");
    let o = analyze(
        &[
            "--pg-results",
            pg.to_str().expect("utf8"),
            "--valkey-results",
            vk.to_str().expect("utf8"),
        ],
        out.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    for h in [
        "SCENARIO: COLD",
        "SCENARIO: WARM",
        "SCENARIO: LOAD",
        "FINDINGS",
    ] {
        assert!(text.contains(h), "{h} missing:\n{text}");
    }
    for header in [
        "Backend",
        "Queue Type",
        "Throughput",
        "p50 (ms)",
        "p95 (ms)",
        "p99 (ms)",
        "CPU %",
    ] {
        assert!(text.contains(header), "{header}");
    }
    for q in qbench::analyze::findings::QUESTIONS {
        assert!(text.contains(q), "{q}");
    }
    assert!(text.contains("smoke runs"), "says the data is a smoke run");
    assert!(
        text.contains("by construction"),
        "says throughput cannot rank below capacity"
    );
    assert!(
        text.contains("tps beside the queue against") && text.contains("alone ("),
        "answers question 1 with numbers, against pgbench alone right before each test"
    );

    let rows = rows(out.path());
    assert_eq!(rows.len(), 12);
    for r in &rows {
        assert!(r.complete && r.smoke, "{}", r.test);
        assert_eq!(r.lost, Some(0), "{}", r.test);
        assert_eq!(r.produced, r.completed, "{}", r.test);
        let t = r.throughput_jobs_s.expect("throughput");
        assert!((150.0..=210.0).contains(&t), "{}: {t}", r.test);
        for v in [
            r.min_ms, r.p25_ms, r.p50_ms, r.p75_ms, r.p90_ms, r.p95_ms, r.p99_ms, r.p999_ms,
            r.max_ms,
        ] {
            assert!(v.is_some(), "{}: box-plot quantiles", r.test);
        }
        assert!(r.min_ms <= r.p25_ms && r.p25_ms <= r.p50_ms && r.p50_ms <= r.p75_ms);
        assert!(r.p90_ms <= r.p99_ms && r.p99_ms <= r.max_ms);
        assert!(
            r.cpu_pct.is_some() && r.server_cpu_pct.is_some(),
            "{}",
            r.test
        );
        if r.scenario == "load" {
            assert!(
                r.pgbench_tps.is_some() && r.pgbench_alone_tps.is_some(),
                "{}",
                r.test
            );
            assert!(r.pgbench_tps_change_pct.is_some());
        }
        // The p99 is that of HdrHistogram's own reader over the same .hlog.
        let dir = if r.backend == "valkey" { &vk } else { &pg };
        let py = hdrh_p99(&[dir.join(format!("{}_latency.hlog", r.test))]);
        assert_eq!(r.p99_ms, Some(py), "{}: qbench vs hdrh", r.test);
    }
    let names: Vec<&str> = rows.iter().map(|r| r.test.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["skip_locked_cold", "skip_locked_warm", "skip_locked_load"]
    );

    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.path().join("summary.json")).expect("summary.json"),
    )
    .expect("json");
    assert_eq!(json["format"], "qbench.summary");
    assert_eq!(json["version"], 2);
    assert_eq!(json["tests"].as_array().expect("tests").len(), 12);
    assert_eq!(json["findings"].as_array().expect("findings").len(), 5);
    let header = std::fs::read_to_string(out.path().join("summary.csv")).expect("csv");
    let header = header.lines().next().expect("header");
    for col in [
        "backend",
        "queue",
        "scenario",
        "offered_rate",
        "throughput_jobs_s",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "p999_ms",
        "max_ms",
        "mean_ms",
        "lost",
        "duplicated",
        "cpu_pct",
        "server_cpu_pct",
        "pgbench_tps",
    ] {
        assert!(header.split(',').any(|c| c == col), "column {col}");
    }
}

/// `--results DIR` reads the layout every command writes under DIR: the suite's
/// `vm1_pg/` and `vm2_valkey/`, as if each were named.
#[test]
fn a_results_folder_is_read_with_the_folders_below_it() {
    let by_name = tempfile::tempdir().expect("dir");
    let suite = fixtures().join("suite");
    let o = analyze(
        &[
            "--pg-results",
            suite.join("vm1_pg").to_str().expect("utf8"),
            "--valkey-results",
            suite.join("vm2_valkey").to_str().expect("utf8"),
        ],
        by_name.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let by_layout = tempfile::tempdir().expect("dir");
    let o = analyze(
        &["--results", suite.to_str().expect("utf8")],
        by_layout.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (a, b) = (rows(by_name.path()), rows(by_layout.path()));
    assert_eq!(a.len(), 12);
    assert_eq!(a, b, "the same twelve tests, read the same");
}

#[test]
fn two_work_processes_are_merged_exactly() {
    let out = tempfile::tempdir().expect("dir");
    let dir = fixtures().join("two_workers");
    let o = analyze(&["--results", dir.to_str().expect("utf8")], out.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = rows(out.path());
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.processes, 3, "producer and two workers");
    assert_eq!(r.produced, Some(600));
    assert_eq!(r.completed, Some(600), "283 + 317");

    // One combined histogram of every interval of both workers' logs.
    let files = [dir.join("t.w1_latency.hlog"), dir.join("t.w2_latency.hlog")];
    let mut combined = qbench::stats::new_histogram();
    for f in &files {
        for iv in hlog::read(f).expect("hlog") {
            if iv.metric == Some(qbench::stats::Metric::E2e) {
                combined.add(&iv.histogram).expect("add");
            }
        }
    }
    assert_eq!(combined.len(), 600);
    let ms = |q: f64| combined.value_at_quantile(q) as f64 / 1000.0;
    assert_eq!(r.p50_ms, Some(ms(0.5)));
    assert_eq!(r.p95_ms, Some(ms(0.95)));
    assert_eq!(r.p99_ms, Some(ms(0.99)));
    assert_eq!(r.p999_ms, Some(ms(0.999)));
    assert_eq!(r.max_ms, Some(combined.max() as f64 / 1000.0));
    assert_eq!(
        r.p99_ms,
        Some(hdrh_p99(&files)),
        "HdrHistogram's reader agrees"
    );
    // Not an average of the two processes' p99s.
    let p99_of = |f: &Path| {
        let mut h = qbench::stats::new_histogram();
        for iv in hlog::read(f).expect("hlog") {
            if iv.metric == Some(qbench::stats::Metric::E2e) {
                h.add(&iv.histogram).expect("add");
            }
        }
        h.value_at_quantile(0.99) as f64 / 1000.0
    };
    let avg = (p99_of(&files[0]) + p99_of(&files[1])) / 2.0;
    assert_ne!(r.p99_ms, Some(avg), "merged, never averaged");
    // Throughput over the union of the two windows, about the offered 300 jobs/s.
    let t = r.throughput_jobs_s.expect("throughput");
    assert!((270.0..=330.0).contains(&t), "{t}");
}

fn refused(dir: &Path) -> String {
    let out = tempfile::tempdir().expect("dir");
    let o = analyze(&["--results", dir.to_str().expect("utf8")], out.path());
    assert_eq!(o.status.code(), Some(2), "{}", dir.display());
    assert!(
        !out.path().join("summary.csv").exists(),
        "nothing half-written"
    );
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    err
}

#[test]
fn bad_input_is_refused_with_the_file_named() {
    let c = fixtures().join("corrupt");
    let e = refused(&c.join("truncated_metrics"));
    assert!(
        e.contains("valkey_cold_metrics.jsonl") && e.contains("line 4") && e.contains("truncated"),
        "{e}"
    );
    let e = refused(&c.join("no_summary"));
    assert!(
        e.contains("valkey_cold_metrics.jsonl") && e.contains("summary"),
        "{e}"
    );
    let e = refused(&c.join("corrupt_hlog"));
    assert!(e.contains("valkey_cold_latency.hlog:"), "{e}");
    let e = refused(&c.join("future_version"));
    assert!(e.contains("version 2"), "{e}");
    let e = refused(&c.join("garbage_manifest"));
    assert!(e.contains("valkey_cold_manifest.json:1"), "{e}");
    let e = refused(&c.join("bad_system_csv"));
    assert!(
        e.contains("valkey_cold_system.csv") && e.contains("line 3"),
        "{e}"
    );
    let e = refused(Path::new("/nonexistent/results"));
    assert!(
        e.contains("/nonexistent/results") && e.contains("does not exist"),
        "{e}"
    );
    let empty = tempfile::tempdir().expect("dir");
    let e = refused(empty.path());
    assert!(e.contains("no qbench results"), "{e}");
}

/// valkey_cold's good files, with one of them replaced by `damage` of its text.
fn damaged_copy(file: &str, damage: impl Fn(&str) -> String) -> tempfile::TempDir {
    let src = fixtures().join("suite/vm2_valkey");
    let dir = tempfile::tempdir().expect("dir");
    for f in [
        "latency.hlog",
        "manifest.json",
        "metrics.jsonl",
        "system.csv",
        "valkey_stats.csv",
        "audit.json",
    ] {
        let name = format!("valkey_cold_{f}");
        let text = std::fs::read_to_string(src.join(&name)).expect("fixture");
        let text = if f == file { damage(&text) } else { text };
        std::fs::write(dir.path().join(&name), text).expect("write");
    }
    dir
}

#[test]
fn empty_and_cut_files_are_refused() {
    let intact = damaged_copy("", |t| t.to_string());
    let out = tempfile::tempdir().expect("dir");
    let o = analyze(
        &["--results", intact.path().to_str().expect("utf8")],
        out.path(),
    );
    assert!(o.status.success(), "the copy itself is good");

    let d = damaged_copy("metrics.jsonl", |_| String::new());
    let e = refused(d.path());
    assert!(e.contains("valkey_cold_metrics.jsonl"), "{e}");
    let d = damaged_copy("latency.hlog", |_| String::new());
    let e = refused(d.path());
    assert!(
        e.contains("valkey_cold_latency.hlog") && e.contains("empty"),
        "{e}"
    );
    // Cut at a line boundary: a valid log, with the intervals missing.
    let d = damaged_copy("latency.hlog", |t| {
        t.lines()
            .take_while(|l| l.starts_with('#') || l.starts_with('\"'))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let e = refused(d.path());
    assert!(e.contains("truncated") && e.contains("completed"), "{e}");
}

#[test]
fn incomplete_tests_are_shown_as_incomplete_and_kept_out_of_findings() {
    let out = tempfile::tempdir().expect("dir");
    let dir = fixtures().join("incomplete");
    let o = analyze(&["--results", dir.to_str().expect("utf8")], out.path());
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("(incomplete)"), "{text}");
    assert!(
        text.contains("left out as incomplete: valkey_cold"),
        "{text}"
    );
    let rows = rows(out.path());
    assert!(!rows[0].complete);
    assert!(rows[0].red_flags.contains("incomplete"));
}

#[test]
fn different_hosts_are_warned_about() {
    let tmp = tempfile::tempdir().expect("dir");
    let vk = tmp.path().join("vm2_valkey");
    std::fs::create_dir_all(&vk).expect("dir");
    for e in std::fs::read_dir(fixtures().join("suite/vm2_valkey")).expect("dir") {
        let p = e.expect("entry").path();
        let target = vk.join(p.file_name().expect("name"));
        let mut text = std::fs::read_to_string(&p).expect("read");
        if p.to_string_lossy().ends_with("_manifest.json") {
            let mut m: serde_json::Value = serde_json::from_str(&text).expect("json");
            m["host"]["logical_cores"] = 8.into();
            text = serde_json::to_string(&m).expect("json");
        }
        std::fs::write(target, text).expect("write");
    }
    let out = tempfile::tempdir().expect("dir");
    let pg = fixtures().join("suite/vm1_pg");
    let o = analyze(
        &[
            "--pg-results",
            pg.to_str().expect("utf8"),
            "--valkey-results",
            vk.to_str().expect("utf8"),
        ],
        out.path(),
    );
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("COMPARABILITY") && text.contains("2 vs 8 cores"),
        "{text}"
    );
}
