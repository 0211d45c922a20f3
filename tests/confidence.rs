//! Repeated, labelled runs on real servers, end to end: analyze pools the rounds' folders
//! into medians with intervals and compares the labels, graph draws the error bars and
//! every run, report.html renders in a real browser and prints to PDF, and repeats with
//! different settings (or a folder given twice) are refused.
//!
//! Whether this machine's noise lets 5 runs resolve a difference is not a property of
//! the code, so no assertion here is on a p-value of real timings: the A/A check on real
//! runs is `bench/aa.sh` (its result in BENCHMARKS.md), and the statistics themselves are
//! tested on synthetic data with a known truth (`stats`, `analyze::verdict`).

mod common;

use std::path::Path;

use qbench::format::summary::{Analysis, Comparison};

/// Rounds of the two labels, interleaved in time: enough for an interval, not for a
/// conclusion.
const ROUNDS: usize = 2;

fn suite(cfg: &Path, out: &Path, label: &str, processing_ms: &str) {
    let o = common::run_qbench(
        &[
            "--config",
            cfg.to_str().expect("utf8"),
            "-q",
            "--rate",
            "200",
            "--duration",
            "2",
            "--workers",
            "8",
            "--processing-ms",
            processing_ms,
            "--warmup-duration",
            "0",
            "run-suite",
            "--backend",
            "valkey",
            "--scenarios",
            "warm",
            "--label",
            label,
            "--out",
            out.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Runs headless Chromium on a local file; its stdout. setup/prepare_machine.sh installs it.
fn headless(args: &[&str], page: &Path) -> String {
    let bin = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("no Chromium: run bash setup/prepare_machine.sh, which installs it");
    let o = std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
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
async fn labelled_repeats_are_pooled_compared_drawn_and_reported() {
    let cfg = common::config("confidence").await;
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let mut folders = vec![];
    for round in 1..=ROUNDS {
        let out = dir.path().join(format!("round{round}"));
        // The labels swap places every round, as a real A/B check must.
        let order = if round % 2 == 1 {
            [("a", "10"), ("b", "15")]
        } else {
            [("b", "15"), ("a", "10")]
        };
        for (label, ms) in order {
            suite(file.path(), &out, label, ms);
        }
        assert!(
            out.join("report.html").exists(),
            "run-suite writes report.html when it ends"
        );
        folders.push(out.join("vm2_valkey"));
    }
    let folder = folders[0].clone();
    let out = dir.path().join("analysis");
    let o = common::analyze(
        &folders.iter().map(|f| f.as_path()).collect::<Vec<_>>(),
        &out,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let console = String::from_utf8_lossy(&o.stdout);
    assert!(console.contains("ACROSS REPEATS"), "{console}");
    let (verdict, tables) = (
        console.find("VERDICT").expect("a verdict"),
        console.find("BENCHMARK RESULTS SUMMARY").expect("tables"),
    );
    assert!(
        verdict < tables,
        "the verdict comes before the tables: {console}"
    );
    let a: Analysis =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("json"))
            .expect("summary.json");
    // Every figure of the two labels is compared, with both rounds on each side: the
    // latencies when both kept up (throughput then equals the offered rate by
    // construction), throughput when a label was over capacity. Which of the two this
    // machine gave is its business (a 2 s window late by half a second can read over
    // capacity); that the comparison follows the states is the product's.
    let over = common::summary_rows(&out)
        .iter()
        .any(|r| r.state == "over_capacity");
    let figures: &[&str] = if over {
        &["throughput"]
    } else {
        &["p99", "p50"]
    };
    for &fig in figures {
        let ab = find(&a, "[a]", "[b]", fig);
        assert_eq!((ab.n_a, ab.n_b), (2, 2), "{ab:?}");
        assert!(ab.ratio.is_finite() && ab.ratio > 0.0, "{ab:?}");
        assert!(
            !ab.verdict.is_empty() && !ab.confidence.is_empty(),
            "{ab:?}"
        );
        assert!(
            ab.p_adjusted.is_some(),
            "two runs a side are tested: {ab:?}"
        );
    }
    assert_eq!(
        a.comparisons.iter().any(|c| c.figure == "throughput"),
        over,
        "throughput is compared exactly when a label was over capacity"
    );
    let warm = &a.verdict.scenarios[0];
    let ranked: Vec<_> = warm.ranking.iter().filter_map(|r| r.rank).collect();
    assert_eq!(ranked, vec![1, 2], "both labels ranked: {warm:?}");
    let rows = common::summary_rows(&out);
    assert_eq!(rows.len(), 2 * ROUNDS);
    for r in &rows {
        assert_eq!(r.n_runs, Some(ROUNDS), "{r:?}");
        let (lo, hi) = (r.p50_ci_low.expect("lo"), r.p50_ci_high.expect("hi"));
        assert!(lo <= hi, "{r:?}");
    }

    // The charts draw medians with error bars, and every run in run_spread.
    let graphs = dir.path().join("graphs");
    let o = common::graph(&out, &graphs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(graphs.join("run_spread.svg")).expect("run_spread.svg");
    assert!(svg.contains("<circle"), "one dot per run");
    let bars = std::fs::read_to_string(graphs.join("throughput_comparison.svg")).expect("svg");
    assert!(
        bars.contains("error bars: 95 % bootstrap interval"),
        "the note says what the bars are"
    );

    // report.html, rendered by a real headless browser: charts inlined, numbers present,
    // printable to PDF.
    let o = common::run_qbench(
        &["report", "--dir", dir.path().to_str().expect("utf8")],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let page = dir.path().join("report.html");
    let dom = headless(&["--dump-dom"], &page);
    assert!(dom.contains("The verdict"), "{dom}");
    assert!(
        dom.find("The verdict") < dom.find("Findings"),
        "the verdict opens the page"
    );
    let drawn = std::fs::read_dir(&graphs)
        .expect("graphs")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".svg"))
        })
        .count();
    assert!(drawn >= 7, "six charts and run_spread: {drawn}");
    assert_eq!(
        dom.matches("<figure").count(),
        drawn,
        "every chart drawn is in the page"
    );
    let median = rows[0].p50_ci_low.expect("an interval");
    assert!(
        dom.contains(&format!("{median:.2}")),
        "the intervals are in the page"
    );
    assert!(!dom.contains("<script"));
    let pdf = dir.path().join("report.pdf");
    headless(&[&format!("--print-to-pdf={}", pdf.display())], &page);
    let bytes = std::fs::read(&pdf).expect("the page printed to PDF");
    assert!(
        bytes.starts_with(b"%PDF") && bytes.len() > 10_000,
        "{} bytes",
        bytes.len()
    );

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
        if name.starts_with("valkey_warm.a_") {
            let mut text = std::fs::read_to_string(&p).unwrap_or_default();
            if name.ends_with("_manifest.json") {
                text = text.replace("\"workers\": 8", "\"workers\": 9");
                assert!(
                    text.contains("\"workers\": 9"),
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
    // A folder given twice (once through a link) would count its runs twice.
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&folder, &link).expect("symlink");
    let o = common::analyze(&[&folder, &link], &dir.path().join("an3"));
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("given twice"));
    let o = common::analyze(&[&folder, &other], &dir.path().join("an2"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("different settings")
            && err.contains("valkey_warm.a")
            && err.contains("workers"),
        "{err}"
    );
}
