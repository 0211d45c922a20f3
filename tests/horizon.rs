//! The horizon scenario on real servers. Its figures must be able to fail: with vacuum
//! run every second by the test (a stand-in for an autovacuum that keeps up), dead
//! tuples must pile up while a transaction is held and must not without one; a server
//! that forbids idle transactions must end the holder, and the run must say when; the
//! analytics holder's queries must not outlive the hold.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use qbench::format::horizon::{read_rows, HorizonRecord, HorizonRow};
use qbench::format::read::read_manifest;

/// The server tests of this file take turns: an xid held in one test's database holds
/// back the snapshots of every database of the shared server, so another test's
/// "the horizon moved on" could not be told from this one's hold.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

fn file_arg(f: &tempfile::NamedTempFile) -> String {
    f.path().display().to_string()
}

/// `qbench horizon` on one design with a short schedule; asserts it succeeded.
fn horizon(cfg_file: &str, queue: &str, extra: &[&str], out: &Path) -> String {
    let mut args = vec![
        "--config",
        cfg_file,
        "-q",
        "--workers",
        "4",
        "--rate",
        "200",
        "horizon",
        "--queue",
        queue,
        "--out",
    ];
    let out_s = out.to_str().expect("utf8");
    args.push(out_s);
    args.extend_from_slice(extra);
    let o = common::run_qbench(&args, &[]);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // It ends as every command that writes results does.
    assert!(out.join("report.html").is_file(), "{stdout}");
    stdout
}

fn files(out: &Path, dir: &str, test: &str) -> (Vec<HorizonRow>, HorizonRecord, PathBuf) {
    let d = out.join(dir);
    let rows = read_rows(&d.join(format!("{test}_horizon.csv"))).expect("horizon.csv");
    let m = read_manifest(&d.join(format!("{test}_manifest.json"))).expect("manifest");
    assert_eq!(m.summary.lost, Some(0), "{:?}", m.summary);
    let rec: HorizonRecord =
        serde_json::from_value(m.extra.get("horizon").expect("horizon object").clone())
            .expect("horizon record");
    (rows, rec, d)
}

/// Runs VACUUM on the test database's queue table every 500 ms until dropped.
struct Vacuum {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u32>>,
}

impl Vacuum {
    fn start(cfg: &qbench::config::Config) -> Vacuum {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, cfg) = (stop.clone(), cfg.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            rt.block_on(async move {
                let c = common::pg_client(&cfg).await;
                let mut runs = 0;
                while !flag.load(Ordering::Relaxed) {
                    // The table may not exist yet, or be mid-TRUNCATE: that run is skipped.
                    if c.batch_execute("VACUUM queue_jobs").await.is_ok() {
                        runs += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                runs
            })
        });
        Vacuum {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u32 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map_or(0, |t| t.join().expect("vacuum thread"))
    }
}

/// Dead tuples in the hold phase's rows: (first, last, peak).
fn dead_in_hold(rows: &[HorizonRow]) -> (i64, i64, i64) {
    // Read while the holder held (the plan's last second may be read after the
    // release); the control holds nothing throughout.
    let hold: Vec<i64> = rows
        .iter()
        .filter(|r| r.phase == "hold" && (r.holder == "holding" || r.holder == "none"))
        .filter_map(|r| r.dead_tuples)
        .collect();
    assert!(hold.len() >= 8, "hold rows: {rows:?}");
    (
        hold[0],
        hold[hold.len() - 1],
        *hold.iter().max().expect("rows"),
    )
}

const SCHEDULE: [&str; 6] = ["--baseline", "4", "--hold", "12", "--recovery", "4"];

/// With vacuum every 500 ms, a held xid makes dead tuples pile up and the oldest
/// snapshot age; with no holder, vacuum keeps both down. Then analyze and graph over
/// the runs (Valkey's control included) give the horizon table, finding and timeline.
#[test]
fn dead_tuples_pile_up_only_while_a_transaction_is_held() {
    let _turn = turn();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let held_cfg = rt.block_on(common::config("horizon_held"));
    let none_cfg = rt.block_on(common::config("horizon_none"));
    let dir = tempfile::tempdir().expect("dir");

    // One after the other: a transaction with an xid holds back the snapshots of every
    // database of the cluster (measured: the control's oldest snapshot aged with the held
    // run's when they overlapped), so the control must not overlap the held run.
    let held_out = dir.path().join("held");
    let vacuum = Vacuum::start(&held_cfg);
    let file = common::config_file(&held_cfg);
    horizon(&file_arg(&file), "skip_locked", &SCHEDULE, &held_out);
    assert!(vacuum.stop() >= 10, "the test's vacuum ran");
    let (held, rec, _) = files(&held_out, "vm1_pg", "skip_locked_horizon_xid");

    let none_out = dir.path().join("none");
    let vacuum = Vacuum::start(&none_cfg);
    let file = common::config_file(&none_cfg);
    let mut args = SCHEDULE.to_vec();
    args.extend(["--holder", "none"]);
    horizon(&file_arg(&file), "skip_locked", &args, &none_out);
    assert!(vacuum.stop() >= 10, "the test's vacuum ran");
    let (none, none_rec, _) = files(&none_out, "vm1_pg", "skip_locked_horizon_none");

    // The holder ran for the hold and was released, on the test's clock: not before
    // the baseline ended, and not before the hold's planned end (how soon after each a
    // loaded machine got to it is its pace, not the schedule's).
    let (start, end) = (
        rec.outcome.hold_started_s.expect("hold started"),
        rec.outcome.released_s.expect("released"),
    );
    assert!(start >= 4.0 && end >= 16.0 && end > start, "{rec:?}");
    assert!(rec.outcome.killed_s.is_none() && rec.outcome.held.contains("txid_current"));
    assert!(none_rec.outcome.held.contains("nothing"), "{none_rec:?}");
    assert!(none.iter().all(|r| r.holder == "none"));

    // 200 jobs/s for 12 s leaves ~4,800 dead versions vacuum may not remove; 1,000 is
    // under a quarter of that, whatever pace a loaded machine keeps.
    let (first, last, _) = dead_in_hold(&held);
    let seen: Vec<String> = held
        .iter()
        .map(|r| {
            format!(
                "{:.1} {} {} age {:?} dead {:?} done {}",
                r.t_s, r.phase, r.holder, r.xmin_age, r.dead_tuples, r.completed
            )
        })
        .collect();
    assert!(
        last - first > 1_000,
        "held: dead {first} → {last}\n{}",
        seen.join("\n")
    );
    let (_, _, none_peak) = dead_in_hold(&none);
    assert!(
        none_peak * 3 < last - first,
        "without a holder vacuum keeps up: peak {none_peak} against growth {}",
        last - first
    );
    let age = |rows: &[HorizonRow]| {
        rows.iter()
            .filter(|r| r.phase == "hold")
            .filter_map(|r| r.xmin_age)
            .max()
            .unwrap_or(0)
    };
    assert!(
        age(&held) > 1_000 && age(&none) * 4 < age(&held),
        "oldest snapshot age: held {} none {}",
        age(&held),
        age(&none)
    );
    // After the release the horizon moves on: vacuum's view is young again.
    let recovered_age = held
        .iter()
        .filter(|r| r.phase == "recovery" && r.holder == "released")
        .filter_map(|r| r.xmin_age)
        .min()
        .expect("recovery rows");
    assert!(
        recovered_age * 4 < age(&held),
        "after release: {recovered_age}"
    );
    // The mechanism: a claim walks the dead index entries a held horizon keeps.
    let buffers = |rows: &[HorizonRow]| {
        rows.iter()
            .filter(|r| r.phase == "hold")
            .filter_map(|r| r.claim_buffers)
            .max()
            .expect("a claim explained during the hold")
    };
    assert!(
        buffers(&held) > 3 * buffers(&none),
        "buffers per claim: held {} none {}",
        buffers(&held),
        buffers(&none)
    );
    assert!(held.iter().filter(|r| r.claim_p99_ms.is_some()).count() >= 15);

    // Valkey's control: the same schedule, an idle connection, no tuples to count.
    let vk_cfg = rt.block_on(common::config("horizon_valkey"));
    let file = common::config_file(&vk_cfg);
    let short = ["--baseline", "2", "--hold", "4", "--recovery", "2"];
    horizon(&file_arg(&file), "valkey_streams", &short, &held_out);
    let (vk, vk_rec, _) = files(&held_out, "vm2_valkey", "valkey_horizon_xid");
    assert!(
        vk_rec.outcome.held.contains("idle connection"),
        "{vk_rec:?}"
    );
    assert!(vk.iter().any(|r| r.holder == "holding"), "{vk:?}");
    assert!(vk.iter().any(|r| r.memory_bytes.is_some_and(|m| m > 0)));

    analyzed_and_drawn(&held_out);
}

/// analyze gives the horizon table, its CSV and the finding; graph draws the timeline.
fn analyzed_and_drawn(out: &Path) {
    let analysis = out.join("analysis");
    let o = common::run_qbench(
        &[
            "analyze",
            "--pg-results",
            out.join("vm1_pg").to_str().expect("utf8"),
            "--valkey-results",
            out.join("vm2_valkey").to_str().expect("utf8"),
            "--output",
            analysis.to_str().expect("utf8"),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{stdout}");
    // The console wraps its prose: read it as one line.
    let flat = stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("HORIZON")
            && flat.contains("xid holder, 12 s hold,")
            && flat.contains("skip_locked is the only design at this rate, holder and schedule")
            && flat.contains("skip_locked late-hold claim p99"),
        "{stdout}"
    );
    let results: Vec<qbench::format::horizon::HorizonResult> =
        qbench::format::read::read_csv(&analysis.join("horizon.csv")).expect("horizon.csv");
    let sl = results
        .iter()
        .find(|r| r.queue == "skip_locked")
        .expect("skip_locked row");
    assert!(sl.peak_dead_tuples.is_some_and(|d| d > 1_000), "{sl:?}");
    assert!(sl.peak_xmin_age.is_some_and(|a| a > 1_000), "{sl:?}");
    assert!(
        sl.fit_r2.is_some_and(|r2| (0.0..=1.0).contains(&r2)),
        "{sl:?}"
    );
    assert!(sl.held_s.is_some_and(|h| h > 6.0), "{sl:?}");
    let graphs = out.join("graphs");
    let o = common::graph(&analysis, &graphs);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(graphs.join("horizon_timeline.svg").exists());
}

/// A server that ends idle transactions after 2 s ends the snapshot holder: the run
/// finishes, says when the holder was ended and by what, and analyze repeats it.
#[test]
fn a_server_that_forbids_the_holder_is_a_result() {
    let _turn = turn();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("horizon_killed"));
    rt.block_on(async {
        let admin = common::admin_client(&cfg).await;
        admin
            .batch_execute(&format!(
                "ALTER DATABASE {} SET idle_in_transaction_session_timeout = '2s'",
                cfg.postgres.database
            ))
            .await
            .expect("set the timeout");
    });
    let dir = tempfile::tempdir().expect("dir");
    let file = common::config_file(&cfg);
    horizon(
        &file_arg(&file),
        "skip_locked",
        &[
            "--holder",
            "snapshot",
            "--baseline",
            "2",
            "--hold",
            "8",
            "--recovery",
            "2",
        ],
        dir.path(),
    );
    let (rows, rec, _) = files(dir.path(), "vm1_pg", "skip_locked_horizon_snapshot");
    let start = rec.outcome.hold_started_s.expect("hold started");
    let killed = rec.outcome.killed_s.expect("the holder was ended");
    let released = rec.outcome.released_s.expect("released");
    // Not before the server's 2 s, and seen before the planned release.
    assert!(
        killed >= start + 2.0 && killed < released,
        "started {start}, ended {killed}, released {released}"
    );
    let by = rec.outcome.killed_by.clone().unwrap_or_default();
    assert!(by.contains("idle-in-transaction"), "{by}");
    assert!(rows.iter().any(|r| r.holder == "killed"), "{rows:?}");
    assert!(rec.outcome.held.contains("REPEATABLE READ"), "{rec:?}");
}

/// Two overlapping analytics queries hold the horizon during the hold; at release they
/// are cancelled: no holder session outlives the run.
#[test]
fn analytics_queries_hold_the_horizon_and_end_with_the_hold() {
    let _turn = turn();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("horizon_analytics"));
    let dir = tempfile::tempdir().expect("dir");
    let file = common::config_file(&cfg);
    horizon(
        &file_arg(&file),
        "delete_returning",
        &[
            "--holder",
            "analytics",
            "--analytics-queries",
            "2",
            "--analytics-seconds",
            "4",
            "--baseline",
            "2",
            "--hold",
            "8",
            "--recovery",
            "3",
        ],
        dir.path(),
    );
    let (rows, rec, _) = files(dir.path(), "vm1_pg", "delete_returning_horizon_analytics");
    assert!(rec.outcome.held.contains("overlapping"), "{rec:?}");
    assert!(rec.outcome.killed_s.is_none(), "{rec:?}");
    let age = |phase: &str| -> Vec<i64> {
        rows.iter()
            .filter(|r| r.phase == phase && r.holder != "idle")
            .filter_map(|r| r.xmin_age)
            .collect()
    };
    let (hold, after) = (age("hold"), age("recovery"));
    assert!(
        hold.iter().any(|a| *a > 300),
        "oldest snapshot ages in the hold: {hold:?}"
    );
    // Cancelled at release, while qbench still ran: the horizon moved on at once.
    let max_hold = hold.iter().copied().max().unwrap_or(0);
    assert!(
        after.iter().any(|a| a * 4 < max_hold),
        "ages after release: {after:?}, in the hold up to {max_hold}"
    );
}

/// Phases that cannot run are refused before any server starts.
#[test]
fn impossible_schedules_are_refused() {
    for (args, needle) in [
        (
            vec!["horizon", "--queue", "skip_locked", "--hold", "-5"],
            "--hold",
        ),
        (
            vec![
                "--duration",
                "10",
                "horizon",
                "--queue",
                "skip_locked",
                "--baseline",
                "5",
                "--hold",
                "20",
            ],
            "longer than the run",
        ),
        (
            vec![
                "horizon",
                "--queue",
                "skip_locked",
                "--holder",
                "analytics",
                "--analytics-seconds",
                "0",
            ],
            "--analytics-seconds",
        ),
        (
            vec!["horizon", "--queue", "skip_locked", "--holder", "forever"],
            "forever",
        ),
        (vec!["horizon", "--queue", "rabbit"], "rabbit"),
    ] {
        let mut all = vec!["--local"];
        all.extend(args);
        let o = common::run_qbench(&all, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{all:?}: {err}");
        assert!(
            err.contains(needle) && !err.contains("panicked"),
            "{all:?}: {err}"
        );
        assert!(!err.contains("starting local"), "{err}");
    }
}
