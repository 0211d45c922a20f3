//! Capacity on real servers. The MST a sweep finds must land on a capacity that is known
//! (5 workers × 40 ms of work, measured by burn-down); a goal no rate can meet must end
//! the search with no MST, never 0; and burn-down per worker count must show the
//! near-linear scaling that sleep-bound workers have.

mod common;

use qbench::format::capacity::{read_scaling, read_sweep, Outcome};

/// The MST test compares a sweep with a burn-down measured minutes apart: the other
/// tests of this file, which load the same two cores, wait while it runs (fresh-clone
/// runs saw its burn-down at 94 and at 111 jobs/s when they overlapped).
static ALONE: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn file_arg(f: &tempfile::NamedTempFile) -> String {
    f.path().display().to_string()
}

/// `run-suite --capacity`: the matrix (one warm test), then the sweep and burn-down of
/// skip_locked, analyzed and drawn by the suite itself.
#[test]
fn the_mst_lands_on_the_known_capacity() {
    let _alone = ALONE.write().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("capacity_known"));
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path();
    let o = common::run_qbench(
        &[
            "--config",
            &file_arg(&file),
            "-q",
            "--workers",
            "5",
            "--processing-ms",
            "40",
            "--rate",
            "60",
            "--duration",
            "3",
            "--warmup-duration",
            "0",
            "run-suite",
            "--backend",
            "pg",
            "--queues",
            "skip_locked",
            "--scenarios",
            "warm",
            "--capacity",
            "--quick",
            "--settle",
            "1",
            "--start-rate",
            "80",
            "--slo-p99-ms",
            "1000",
            "--precision",
            "5",
            "--burndown",
            "1500",
            "--out",
            out.to_str().expect("utf8"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sweep_dir = out.join("vm1_pg").join("sweep");
    let sweep = read_sweep(&sweep_dir.join("skip_locked_sweep.json")).expect("sweep file");
    assert_eq!(sweep.result.outcome, Outcome::Found, "{stdout}");
    let mst = sweep.result.mst_jobs_s.expect("an MST");
    let bd = qbench::format::capacity::read_burndown(&sweep_dir.join("skip_locked_burndown.json"))
        .expect("burn-down file");
    assert_eq!(bd.audit, "exact", "{bd:?}");
    // 5 workers × (40 ms + round trips): a little under 125 jobs/s.
    assert!(
        (90.0..=125.0).contains(&bd.jobs_s),
        "burn-down {}",
        bd.jobs_s
    );
    let off = (mst - bd.jobs_s).abs() / bd.jobs_s;
    eprintln!(
        "MST {mst} jobs/s against burn-down {:.1} jobs/s: {:.1} % apart",
        bd.jobs_s,
        off * 100.0
    );
    // The bisection stops when the passing and failing rates are 5 % (--precision)
    // apart, and the first failing rate is at least 0.97 of the burn-down (below): the
    // MST may sit up to 1 - 0.97/1.05 = 7.6 % under the burn-down by construction, and
    // the burn-down is a second, noisy measurement: a fresh-clone run saw 5.03 %, and 8 %
    // failed once in a full run. 11 % leaves the burn-down ±3 % of noise and still fails
    // a search that is one ramp step (×1.5, 33 %) off.
    assert!(
        off <= 0.11,
        "MST {mst} is {:.1} % from the burn-down's {}",
        off * 100.0,
        bd.jobs_s
    );
    // The first failing rate is one the workers cannot take: it failed on rate, not luck.
    let fail = sweep.result.first_fail_jobs_s.expect("a failing rate");
    assert!(
        fail >= bd.jobs_s * 0.97,
        "{fail} failed, below the capacity {}",
        bd.jobs_s
    );
    // Every step's files are there, each judged over its whole window, none lost a job.
    for s in &sweep.steps {
        assert!(
            sweep_dir
                .join(&s.files)
                .join(format!(
                    "skip_locked_step_{:.0}_manifest.json",
                    s.rate_jobs_s
                ))
                .is_file(),
            "{}",
            s.files
        );
        assert!(s.window_s >= 8.9, "a step judged over {} s", s.window_s);
        assert_eq!(s.lost, Some(0), "{s:?}");
        assert_eq!(s.wakeup, "poll");
    }
    assert!(
        sweep.bottleneck.contains("workers cap the rate"),
        "{}",
        sweep.bottleneck
    );

    // The suite analyzed and drew it.
    let rows = common::summary_rows(&out.join("analysis"));
    let warm = rows
        .iter()
        .find(|r| r.queue == "skip_locked")
        .expect("warm row");
    assert_eq!(warm.mst_jobs_s, Some(mst));
    assert_eq!(warm.mst_slo_p99_ms, Some(1000.0));
    assert_eq!(Some(warm.mst_limited_by.clone()), sweep.result.limited_by);
    let csv =
        std::fs::read_to_string(out.join("analysis").join("capacity.csv")).expect("capacity.csv");
    assert_eq!(csv.lines().count(), sweep.steps.len() + 1, "{csv}");
    assert!(
        stdout.contains("highest rate within p99 ≤ 1000 ms is"),
        "{stdout}"
    );
    for chart in ["latency_vs_load", "capacity_comparison"] {
        for ext in ["png", "svg"] {
            let p = out.join("graphs").join(format!("{chart}.{ext}"));
            assert!(
                p.metadata().is_ok_and(|m| m.len() > 1000),
                "{}",
                p.display()
            );
        }
    }
    let page = std::fs::read_to_string(out.join("report.html")).expect("report");
    assert!(
        page.contains("id=\"latency_vs_load\"") && page.contains("CAPACITY"),
        "report lacks capacity"
    );
}

/// A p99 goal below the work itself: the first step fails, and the sweep says so with
/// the reason instead of reporting an MST of 0.
#[test]
fn a_goal_no_rate_meets_ends_without_an_mst() {
    let _shared = ALONE.read().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("capacity_strict"));
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let o = common::run_qbench(
        &[
            "--config",
            &file_arg(&file),
            "-q",
            "--workers",
            "4",
            "--processing-ms",
            "40",
            "sweep",
            "--queue",
            "valkey_streams",
            "--quick",
            "--settle",
            "1",
            "--start-rate",
            "40",
            "--slo-p99-ms",
            "20",
            "--burndown",
            "0",
            "--out",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let sweep =
        read_sweep(&dir.path().join("sweep").join("valkey_streams_sweep.json")).expect("sweep");
    assert_eq!(sweep.result.outcome, Outcome::FirstStepFailed);
    assert_eq!(sweep.result.mst_jobs_s, None);
    assert_eq!(
        sweep.steps.len(),
        2,
        "the first failure is run twice before it counts"
    );
    // 40 ms of work can never meet a 20 ms p99: every step fails on it. On a busy
    // machine the producer's lag may fail too and be named first (seen in a fresh-clone
    // run: "producer"), so the named limit is one the last step really failed.
    assert!(
        sweep
            .steps
            .iter()
            .all(|s| s.failed.iter().any(|f| f == "p99")),
        "{:?}",
        sweep.steps
    );
    let last = sweep.steps.last().expect("steps");
    assert!(
        sweep
            .result
            .limited_by
            .as_ref()
            .is_some_and(|l| last.failed.contains(l)),
        "{:?} not among {:?}",
        sweep.result.limited_by,
        last.failed
    );
    assert!(
        stdout.contains("failed twice") && stdout.contains("--start-rate"),
        "{stdout}"
    );
    assert!(!dir
        .path()
        .join("sweep")
        .join("valkey_streams_burndown.json")
        .exists());
}

/// Burn-down per worker count: workers that sleep 20 ms per job scale almost linearly,
/// so the USL fit must find little contention (σ), and λ must be one worker's rate.
#[test]
fn worker_scaling_fits_the_usl() {
    let _shared = ALONE.read().unwrap_or_else(|p| p.into_inner());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("capacity_scaling"));
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let o = common::run_qbench(
        &[
            "--config",
            &file_arg(&file),
            "-q",
            "--workers",
            "1,2,4,8",
            "--processing-ms",
            "20",
            "sweep",
            "--queue",
            "valkey_streams",
            "--burndown",
            "240",
            "--out",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let f = read_scaling(&dir.path().join("sweep").join("valkey_streams_scaling.json"))
        .expect("scaling");
    let x: Vec<f64> = f.points.iter().map(|p| p.jobs_s).collect();
    assert_eq!(
        f.points.iter().map(|p| p.workers).collect::<Vec<_>>(),
        vec![1, 2, 4, 8]
    );
    assert!(
        f.points.iter().all(|p| p.audit == "exact"),
        "{:?}",
        f.points
    );
    // One worker: 1000 / (20 ms + a timer tick + round trips) ≈ 40–50 jobs/s.
    assert!((30.0..=50.0).contains(&x[0]), "{x:?}");
    assert!(
        x[1] > x[0] * 1.7 && x[2] > x[1] * 1.7 && x[3] > x[2] * 1.5,
        "{x:?}"
    );
    let usl = f.usl.expect("a fit");
    assert!(usl.sigma < 0.1, "{usl:?}");
    assert!(
        (usl.lambda - x[0]).abs() / x[0] < 0.15,
        "{usl:?} against {x:?}"
    );

    let analysis = dir.path().join("analysis");
    let a = common::run_qbench(
        &[
            "analyze",
            "--results",
            dir.path().to_str().expect("utf8"),
            "--output",
            analysis.to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let graphs = dir.path().join("graphs");
    let g = common::graph(&analysis, &graphs);
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    assert!(
        graphs.join("worker_scaling.svg").exists() && graphs.join("worker_scaling.png").exists()
    );
    assert!(
        !graphs.join("latency_vs_load.svg").exists(),
        "no sweep, no latency_vs_load"
    );
}

/// Bad capacity flags: one line naming the flag, exit code 2, before anything runs.
#[test]
fn bad_capacity_flags_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    for (args, needle) in [
        (vec!["sweep", "--slo-p99-ms", "0"], "--slo-p99-ms"),
        (vec!["sweep", "--slo-p99-ms", "fast"], "--slo-p99-ms"),
        (vec!["sweep", "--precision=-3"], "--precision"),
        (vec!["sweep", "--step-factor", "1"], "--step-factor"),
        (
            vec!["--local", "sweep", "--step-duration", "3"],
            "--step-duration",
        ),
        (
            vec!["--workers", "1,2,4,8", "sweep", "--burndown", "0"],
            "--burndown",
        ),
        (vec!["sweep", "--step-duration", "5"], "--step-duration"),
        (vec!["--workers", "1,x", "sweep"], "--workers"),
        (vec!["--workers", "0,2", "sweep"], "num_workers"),
        (
            vec!["--workers", "1,2", "work", "--queue", "skip_locked"],
            "--workers",
        ),
        (
            vec!["sweep", "--quick", "--start-rate", "5"],
            "--start-rate",
        ),
        (
            vec![
                "run-suite",
                "--backend",
                "pg",
                "--capacity",
                "--step-factor",
                "0.5",
            ],
            "--step-factor",
        ),
        (
            vec!["work", "--queue", "skip_locked", "--burndown", "0"],
            "--burndown",
        ),
    ] {
        let mut a: Vec<&str> = args.clone();
        if a.contains(&"sweep") || a.contains(&"run-suite") {
            a.extend(["--out", out]);
        }
        // A server that does not exist: a refusal must come before any connection.
        let o = common::run_qbench(&a, &[("PGHOST", "127.0.0.1"), ("PGPORT", "1")]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "nothing written"
    );
}
