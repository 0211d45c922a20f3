//! Repeated runs on real servers: an A/A check (the same design and settings under two
//! labels) must find no significant difference, and an A/B check with a real one
//! (10 ms of work against 12 ms) must find it. Repeats with different settings are
//! refused.

mod common;

use std::path::Path;

use qbench::format::summary::{Analysis, Comparison};

fn suite(cfg: &Path, out: &Path, label: &str, processing_ms: &str) {
    let o = common::run_qbench(
        &[
            "--config",
            cfg.to_str().expect("utf8"),
            "-q",
            "--rate",
            "50",
            "--duration",
            "2",
            "--workers",
            "4",
            "--processing-ms",
            processing_ms,
            "--warmup-duration",
            "0",
            "run-suite",
            "--backend",
            "valkey",
            "--scenarios",
            "warm",
            "--repeat",
            "5",
            "--label",
            label,
            "--out",
            out.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn analyze(folders: &[&Path], out: &Path) -> std::process::Output {
    let mut args = vec!["analyze".to_string()];
    for f in folders {
        args.extend(["--results".into(), f.display().to_string()]);
    }
    args.extend(["--output".into(), out.display().to_string()]);
    common::run_qbench(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

fn find<'a>(a: &'a Analysis, x: &str, y: &str, figure: &str) -> &'a Comparison {
    a.comparisons
        .iter()
        .find(|c| {
            c.figure == figure
                && ((c.a.contains(x) && c.b.contains(y)) || (c.a.contains(y) && c.b.contains(x)))
        })
        .unwrap_or_else(|| {
            panic!(
                "no {figure} comparison of {x} and {y}: {:#?}",
                a.comparisons
            )
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aa_is_no_difference_and_ab_is_one() {
    let cfg = common::config("confidence").await;
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    for (label, ms) in [("a1", "10"), ("b", "12"), ("a2", "10")] {
        suite(file.path(), dir.path(), label, ms);
    }
    let folder = dir.path().join("vm2_valkey");
    let out = dir.path().join("an");
    let o = analyze(&[&folder], &out);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let console = String::from_utf8_lossy(&o.stdout);
    assert!(console.contains("ACROSS REPEATS"), "{console}");
    let a: Analysis =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("json"))
            .expect("summary.json");
    for c in &a.comparisons {
        eprintln!("{}", c.verdict);
    }
    // p99 of 100 jobs is close to their maximum: too noisy to hold an A/A check to.
    for fig in ["throughput", "p50"] {
        let aa = find(&a, "[a1]", "[a2]", fig);
        assert_eq!((aa.n_a, aa.n_b), (5, 5), "{aa:?}");
        assert_eq!(aa.significant, Some(false), "A/A on {fig}: {aa:#?}");
        assert!(
            aa.verdict.contains("no significant difference"),
            "{}",
            aa.verdict
        );
    }
    let ab = find(&a, "[a1]", "[b]", "p50");
    assert_eq!(ab.significant, Some(true), "A/B: {ab:#?}");
    let slower = if ab.a.contains("[b]") {
        ab.ratio
    } else {
        1.0 / ab.ratio
    };
    assert!(slower > 1.1, "12 ms of work against 10: {ab:#?}");
    let rows = common::summary_rows(&out);
    assert_eq!(rows.len(), 15);
    for r in &rows {
        assert_eq!(r.n_runs, Some(5), "{r:?}");
        let (lo, hi) = (r.p50_ci_low.expect("lo"), r.p50_ci_high.expect("hi"));
        assert!(lo <= hi && r.repeat.is_some(), "{r:?}");
    }

    // The charts draw medians with error bars, and every run in run_spread.
    let graphs = dir.path().join("graphs");
    let o = common::run_qbench(
        &[
            "graph",
            "--input",
            out.join("summary.csv").to_str().expect("utf8"),
            "--output",
            graphs.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(graphs.join("run_spread.svg")).expect("run_spread.svg");
    assert!(svg.contains("<circle"), "one dot per run");
    let bars = std::fs::read_to_string(graphs.join("throughput_comparison.svg")).expect("svg");
    assert!(bars.contains("error bars: 95 % bootstrap interval"), "the note says what the bars are");

    // The same test in a second folder with other settings is refused, naming both files.
    let other = dir.path().join("other");
    std::fs::create_dir(&other).expect("mkdir");
    for e in std::fs::read_dir(&folder).expect("read") {
        let p = e.expect("entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_string();
        if name.starts_with("valkey_warm.a1.r1_") {
            let mut text = std::fs::read_to_string(&p).unwrap_or_default();
            if name.ends_with("_manifest.json") {
                text = text.replace("\"workers\": 4", "\"workers\": 5");
                assert!(
                    text.contains("\"workers\": 5"),
                    "the manifest names its workers"
                );
            }
            if text.is_empty() {
                std::fs::copy(&p, other.join(&name)).expect("copy");
            } else {
                std::fs::write(other.join(&name), text).expect("write");
            }
        }
    }
    let o = analyze(&[&folder, &other], &dir.path().join("an2"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("different settings")
            && err.contains("valkey_warm.a1")
            && err.contains("workers"),
        "{err}"
    );
}
