//! Capacity on real servers, against bounds physics sets: 5 workers × 40 ms of work
//! cannot pass 125 jobs/s, so neither the MST a sweep finds nor the burn-down can; a
//! first step at that ceiling fails by physics, and the search comes down to an MST; the
//! MST annotates the test of its workload, and once it is made a 0 ms sweep (the
//! design's ceiling) it annotates nothing and sets no horizon rate; a goal no rate can
//! meet (a p99 below the work itself) ends the search with no MST, never 0; burn-down per worker count cannot pass 50 jobs/s per 20-ms worker, and its
//! points get a USL fit. How close to the ceiling a loaded machine gets, and how well
//! the fit recovers it, are bench/'s (the search and the fit are tested on synthetic
//! data in `capacity::search` and `stats::usl`).

mod common;

use qbench::format::capacity::{read_scaling, read_sweep, Outcome};

fn file_arg(f: &tempfile::NamedTempFile) -> String {
    f.path().display().to_string()
}

/// `run-suite --capacity`: the matrix (one warm test), then the sweep and burn-down of
/// skip_locked, analyzed and drawn by the suite itself.
#[test]
fn the_mst_and_the_burndown_stay_under_the_workers_ceiling() {
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
            // The workers' ceiling itself: 5 workers busy 100 % of the time, no time
            // left for a claim's round trip. It fails by physics, twice, and the
            // search must come down to an MST.
            "--start-rate",
            "125",
            "--slo-p99-ms",
            "1000",
            // Plumbing, not precision: few bisection steps (precision is bench/'s).
            "--precision",
            "30",
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
    // 5 workers × 40 ms of work: 125 jobs/s is a ceiling no measurement can pass; the
    // floors, 10× under it, only catch a search or a drain that did not run.
    assert!(
        (12.5..=125.5).contains(&bd.jobs_s),
        "burn-down {}",
        bd.jobs_s
    );
    assert!(
        (12.5..=126.0).contains(&mst),
        "MST {mst} against a 125 jobs/s ceiling"
    );
    let fail = sweep.result.first_fail_jobs_s.expect("a failing rate");
    assert!(fail > mst, "{fail} failed above the MST {mst}");
    let first: Vec<(f64, bool)> = sweep.steps[..2]
        .iter()
        .map(|s| (s.rate_jobs_s, s.pass))
        .collect();
    assert_eq!(first, vec![(125.0, false), (125.0, false)], "{stdout}");
    // The burn-down sized itself: about 10 s (--quick) at the rate the sweep measured,
    // at least 1,000 jobs, so no more than 10 s at the ceiling.
    assert!((1_000..=1_260).contains(&bd.prefilled), "{bd:?}");
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
    horizon_takes_half_of_this_workloads_mst(&rt, &cfg, &sweep_dir, mst);
    a_design_ceiling_annotates_no_workload(&rt, &cfg, out, sweep);
}

/// The config of the test above: 5 workers × 40 ms.
fn five_by_forty(cfg: &qbench::config::Config) -> qbench::config::Config {
    let mut c = cfg.clone();
    c.benchmark.num_workers = 5u32.into();
    c.benchmark.job_processing_time_ms = 40.0;
    c
}

fn horizon_rate(
    rt: &tokio::runtime::Runtime,
    cfg: &qbench::config::Config,
    dir: &std::path::Path,
) -> (f64, String) {
    rt.block_on(async {
        let q = qbench::queue::open(qbench::queue::QueueKind::parse("skip_locked")?, cfg).await?;
        qbench::horizon::rate(q.as_ref(), cfg, None, &[dir.to_path_buf()]).await
    })
    .expect("horizon rate")
}

fn horizon_takes_half_of_this_workloads_mst(
    rt: &tokio::runtime::Runtime,
    cfg: &qbench::config::Config,
    sweep_dir: &std::path::Path,
    mst: f64,
) {
    let (rate, why) = horizon_rate(rt, &five_by_forty(cfg), sweep_dir);
    assert_eq!(rate, (mst / 2.0).round(), "{why}");
    assert!(why.contains("this workload"), "{why}");
    // Another workload (10 ms of work): not this sweep's MST.
    let mut other = five_by_forty(cfg);
    other.benchmark.job_processing_time_ms = 10.0;
    let (_, why) = horizon_rate(rt, &other, sweep_dir);
    assert!(!why.contains("MST"), "{why}");
}

/// The same sweep made a design's ceiling (0 ms of work): it annotates no test of 40 ms,
/// sits in the ceilings' table, and horizon takes half the smaller of it and the
/// workers' own ceiling, saying so.
fn a_design_ceiling_annotates_no_workload(
    rt: &tokio::runtime::Runtime,
    cfg: &qbench::config::Config,
    out: &std::path::Path,
    mut sweep: qbench::format::capacity::SweepFile,
) {
    let sweep_dir = out.join("vm1_pg").join("sweep");
    sweep.processing_ms = 0.0;
    if let Some(w) = sweep.workload.as_mut() {
        w.processing_ms = Some(0.0);
    }
    qbench::format::capacity::write(&sweep, &sweep_dir.join("skip_locked_sweep.json"))
        .expect("rewrite");
    let analysis = out.join("analysis_ceiling");
    let o = common::analyze(&[&out.join("vm1_pg")], &analysis);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    let warm = common::summary_rows(&analysis)
        .into_iter()
        .find(|r| r.queue == "skip_locked")
        .expect("row");
    assert_eq!(warm.mst_jobs_s, None, "{warm:?}");
    assert!(stdout.contains("each design's ceiling"), "{stdout}");
    let (rate, why) = horizon_rate(rt, &five_by_forty(cfg), &sweep_dir);
    let ceiling = sweep.result.mst_jobs_s.expect("mst").min(125.0);
    assert_eq!(rate, (ceiling / 2.0).round(), "{why}");
    assert!(
        why.starts_with("half the") && why.contains("no sweep of this workload"),
        "{why}"
    );
}

/// A p99 goal below the work itself: the first step fails, and the sweep says so with
/// the reason instead of reporting an MST of 0.
#[test]
fn a_goal_no_rate_meets_ends_without_an_mst() {
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
    // The first failure run twice before it counts, then halved down to the floor
    // (200 jobs in a 10 s window: 20 jobs/s), where it ends.
    let rates: Vec<f64> = sweep.steps.iter().map(|s| s.rate_jobs_s).collect();
    assert_eq!(rates, vec![40.0, 40.0, 20.0]);
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
        stdout.contains("every rate down to the floor failed"),
        "{stdout}"
    );
    assert!(!dir
        .path()
        .join("sweep")
        .join("valkey_streams_burndown.json")
        .exists());
}

/// Burn-down per worker count: each point under its workers' ceiling (20 ms a job is
/// 50 jobs/s a worker), every point audited exactly, the USL fitted and drawn.
#[test]
fn worker_scaling_is_measured_fitted_and_drawn() {
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
    assert_eq!(
        f.points.iter().map(|p| p.workers).collect::<Vec<_>>(),
        vec![1, 2, 4, 8]
    );
    assert!(
        f.points.iter().all(|p| p.audit == "exact"),
        "{:?}",
        f.points
    );
    for p in &f.points {
        let ceiling = 50.0 * f64::from(p.workers);
        assert!(
            (ceiling / 10.0..=ceiling * 1.02).contains(&p.jobs_s),
            "{} workers × 20 ms: {} jobs/s against a {ceiling} ceiling",
            p.workers,
            p.jobs_s
        );
    }
    let usl = f.usl.expect("a fit");
    assert!(
        usl.lambda > 0.0 && usl.sigma >= 0.0 && usl.kappa >= 0.0,
        "{usl:?}"
    );
    assert!((0.0..=1.0).contains(&usl.r2) || usl.r2 < 0.0, "{usl:?}");

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

/// A burn-down's jobs are all in the queue before its workers start, so with `--wakeup
/// notify` no notification is owed: the run does not warn that its producer sent none
/// (it did, before a check of the manifest's pre-fill; a work process alone still does).
#[tokio::test]
async fn a_burndown_with_notify_does_not_warn_of_a_silent_producer() {
    let cfg = common::config("bdnotify").await;
    let file = common::config_file(&cfg);
    let o = common::run_qbench(
        &[
            "--config",
            &file_arg(&file),
            "--workers",
            "4",
            "--processing-ms",
            "0",
            "--wakeup",
            "notify",
            "work",
            "--queue",
            "skip_locked",
            "--burndown",
            "200",
            "--json",
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["audit"], "exact", "{v}");
    assert!(!stderr.contains("no notification arrived"), "{stderr}");
}
