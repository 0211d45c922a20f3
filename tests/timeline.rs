//! Timelines on real servers, sabotaged: a CHECKPOINT and a VACUUM forced into a test
//! must appear as events at the seconds they ran, and explain any spike near them; a
//! VACUUM of a pgbench table is named as that table's, never the queue's; a table
//! locked for 6 s must give a spike explained by its blocker (the session and its
//! LOCK TABLE), and a CHECKPOINT forced after that spike began is not named its cause; a
//! Valkey stopped with SIGSTOP for 4 s (no server event) must give a spike at
//! that second reported as unexplained. A test whose per-second file is cut gets one
//! line naming it and exit code 2 from `graph --timelines`, the other charts drawn.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use qbench::format::timeline::{EventRow, SpikeRow};

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    if !path.exists() {
        return vec![];
    }
    let mut r = csv::Reader::from_path(path).expect("csv");
    r.deserialize().map(|x| x.expect("row")).collect()
}

/// `run-suite` of one warm test (no warmup) at 100 jobs/s for 34 s, in the background: a
/// light load, so that a second's p99 stays far under the stalls the tests cause even
/// when other tests load the machine. The lock ends at second 21 unloaded; the 13 s past
/// it leave room for a checkpoint that lasts seconds longer on a loaded one.
fn suite(
    cfg: &qbench::config::Config,
    backend: &str,
    queue: &str,
    out: &Path,
) -> (Child, tempfile::NamedTempFile) {
    let mut cfg = cfg.clone();
    cfg.benchmark.warmup_duration = 0.0;
    let file = common::config_file(&cfg);
    let child = common::qbench()
        .args([
            "--config",
            file.path().to_str().expect("utf8"),
            "-q",
            "--rate",
            "100",
            "--duration",
            "34",
            "run-suite",
            "--backend",
            backend,
            "--queues",
            queue,
            "--scenarios",
            "warm",
            "--out",
            out.to_str().expect("utf8"),
        ])
        .spawn()
        .expect("run-suite");
    (child, file)
}

/// Waits until the running test has written `n` seconds; returns its clock then (s).
fn at_second(metrics: &Path, n: usize, child: &mut Child) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let lines: Vec<String> = std::fs::File::open(metrics)
            .map(|f| {
                std::io::BufReader::new(f)
                    .lines()
                    .map_while(Result::ok)
                    .collect()
            })
            .unwrap_or_default();
        if lines.len() >= n {
            let last: serde_json::Value =
                serde_json::from_str(&lines[lines.len() - 1]).expect("json");
            return last["t_s"].as_f64().expect("t_s");
        }
        assert!(
            child.try_wait().expect("wait").is_none(),
            "run-suite ended before second {n}"
        );
        assert!(
            Instant::now() < deadline,
            "no second {n} in {}",
            metrics.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The running test's clock now: its last second written (s).
fn now(metrics: &Path, child: &mut Child) -> f64 {
    at_second(metrics, 1, child)
}

fn finish(child: Child) {
    let o = child.wait_with_output().expect("run-suite");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn forced_events_are_at_their_seconds_and_explain_their_spikes() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("timeline_pg"));
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, _file) = suite(&cfg, "pg", "skip_locked", dir.path());
    let metrics = dir
        .path()
        .join("vm1_pg/skip_locked_warm_metrics.jsonl.partial");
    let client = rt.block_on(common::pg_client(&cfg));
    let other = rt.block_on(common::pg_client(&cfg));
    // pgbench's big table, vacuumed for about 3 s of the test: the per-second sampler
    // sees it under way, on a table that is not the queue's. Unthrottled, this vacuum
    // takes 3 ms and a 1 Hz sampler missed a loop of them on a fresh clone; throttled
    // (a 2 ms sleep per 2 pages of its 1,539; at one page per sleep it took 6.4 s
    // unloaded) it lasts seconds.
    rt.block_on(client.batch_execute(
        "CREATE TABLE pgbench_accounts AS SELECT g AS aid, 0 AS abalance, repeat('x', 84) AS filler FROM generate_series(1, 100000) g",
    ))
    .expect("pgbench_accounts");
    // Hint bits and the visibility map set now, so the timed vacuum only reads pages.
    rt.block_on(client.batch_execute("VACUUM pgbench_accounts"))
        .expect("vacuum pgbench_accounts");
    at_second(&metrics, 2, &mut child);
    // One statement per call: a multi-statement string is one transaction, and VACUUM
    // refuses to run inside one.
    for sql in [
        "SET vacuum_cost_delay = '2ms'",
        "SET vacuum_cost_limit = 2",
        "VACUUM (DISABLE_PAGE_SKIPPING) pgbench_accounts",
        "RESET vacuum_cost_delay",
        "RESET vacuum_cost_limit",
    ] {
        rt.block_on(client.batch_execute(sql)).expect(sql);
    }
    let checkpoint_at = at_second(&metrics, 8, &mut child);
    rt.block_on(client.batch_execute("CHECKPOINT"))
        .expect("checkpoint");
    // CHECKPOINT returns when it is complete: on a loaded machine that took 6 s (CI), and
    // a checkpoint that ends within 2 s of a spike is near it and may be named its cause.
    let checkpoint_done = now(&metrics, &mut child);
    let vacuum_at = at_second(&metrics, 12.max(checkpoint_done as usize + 1), &mut child);
    rt.block_on(client.batch_execute("VACUUM queue_jobs"))
        .expect("vacuum");
    // Every claim and insert waits behind this lock for 6 s: a stall with a cause, far
    // above any second's p99 on a machine loaded by the other tests. 4 s in, when the
    // spike is long under way, a CHECKPOINT is forced from another session. The lock
    // waits until the first checkpoint is 5 s past (the clock read lags by up to 1 s,
    // and "near" is 2 s), so that only the late one can be near the spike.
    let lock_second = 15.max(checkpoint_done as usize + 5);
    assert!(
        lock_second <= 22,
        "the machine is too loaded for this test: the first CHECKPOINT ended at {checkpoint_done:.1} s, leaving no room for the 6-s lock in a 34-s test"
    );
    let locked_at = at_second(&metrics, lock_second, &mut child);
    rt.block_on(client.batch_execute("BEGIN; LOCK TABLE queue_jobs IN ACCESS EXCLUSIVE MODE"))
        .expect("lock");
    while now(&metrics, &mut child) < locked_at + 4.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let late_checkpoint_at = now(&metrics, &mut child);
    // In the background: however long it takes, the lock ends at 6 s.
    let late = rt.spawn(async move { other.batch_execute("CHECKPOINT").await });
    while now(&metrics, &mut child) < locked_at + 6.0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    rt.block_on(client.batch_execute("COMMIT")).expect("unlock");
    rt.block_on(late)
        .expect("checkpoint task")
        .expect("checkpoint during the lock");
    finish(child);

    let analysis = dir.path().join("analysis");
    let events: Vec<EventRow> = read(&analysis.join("events.csv"));
    let near = |kind: &str, at: f64| {
        events
            .iter()
            .find(|e| e.kind == kind && e.start_s <= at + 2.0 && e.end_s >= at - 1.0)
    };
    let ckpt = near("checkpoint", checkpoint_at)
        .unwrap_or_else(|| panic!("no checkpoint near t = {checkpoint_at}: {events:?}"));
    assert!(ckpt.label.contains("requested"), "{ckpt:?}");
    // The queue's own vacuum: pgbench_accounts' throttled one may still be under way
    // near it on a loaded machine, and is told apart by its label.
    assert!(
        events.iter().any(|e| e.kind == "vacuum"
            && e.label.contains("queue tables")
            && e.start_s <= vacuum_at + 2.0
            && e.end_s >= vacuum_at - 1.0),
        "no queue vacuum near t = {vacuum_at}: {events:?}"
    );
    let theirs = events
        .iter()
        .find(|e| e.label.starts_with("vacuum pgbench_accounts"))
        .unwrap_or_else(|| panic!("no vacuum of pgbench_accounts: {events:?}"));
    assert!(theirs.label.contains("not a queue table"), "{theirs:?}");
    assert!(
        !events
            .iter()
            .any(|e| e.label.contains("pgbench_accounts") && e.label.contains("queue tables")),
        "{events:?}"
    );
    // The lock is a spike, its blocker named as its cause; the checkpoint forced after
    // the spike began only coincides with it.
    let spikes: Vec<SpikeRow> = read(&analysis.join("spikes.csv"));
    let stall = spikes
        .iter()
        .find(|s| s.start_s <= locked_at + 2.0 && s.end_s >= locked_at + 1.0)
        .unwrap_or_else(|| panic!("no spike near the lock at t = {locked_at}: {spikes:?}"));
    assert!(
        stall.cause.contains("behind pid") && stall.cause.contains("LOCK TABLE queue_jobs"),
        "{stall:?}\n{events:?}"
    );
    assert!(stall.peak_p99_ms >= 1000.0, "{stall:?}");
    assert!(
        stall.start_s + 1.0 < late_checkpoint_at,
        "{stall:?} {late_checkpoint_at}"
    );
    let named = stall
        .cause
        .split(" (coincides with")
        .next()
        .unwrap_or_default();
    assert!(!named.contains("checkpoint"), "{stall:?}");
    // A spike that began with the checkpoint or the vacuum names it, as its cause or as
    // an event it coincides with. Only those that began once it was forced: a chance
    // spike in the second before has nothing to name.
    for s in &spikes {
        let with = |at: f64| s.start_s >= at - 1e-3 && s.start_s <= at + 2.0;
        if with(checkpoint_at) {
            assert!(s.cause.contains("checkpoint"), "{s:?}");
        }
        if with(vacuum_at) {
            assert!(s.cause.contains("vacuum"), "{s:?}");
        }
    }
    let row = common::summary_rows(&analysis).pop().expect("row");
    assert_eq!(row.spikes, Some(spikes.len() as u64));
    assert!(row
        .p99_outside_spikes_ms
        .is_some_and(|v| v <= row.p99_ms.unwrap_or(0.0) + 1e-9));
    let graphs = dir.path().join("graphs");
    assert!(graphs.join("skip_locked_warm_timeline.png").exists());

    cut_file_is_one_line_and_exit_2(dir.path(), &analysis);
}

/// A truncated db_stats.csv: `graph --timelines` names it in one line, exits 2, and
/// still draws the other charts; analyze says the test has no timeline, and goes on.
fn cut_file_is_one_line_and_exit_2(out: &Path, analysis: &Path) {
    let stats = out.join("vm1_pg/skip_locked_warm_db_stats.csv");
    let text = std::fs::read(&stats).expect("db_stats");
    std::fs::write(&stats, &text[..text.len() - 7]).expect("cut");
    let graphs: PathBuf = out.join("graphs2");
    let o = common::graph_with(analysis, &graphs, &["--timelines"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("qbench: error"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        stderr.contains("skip_locked_warm_db_stats.csv") && stderr.contains("truncated"),
        "{stderr}"
    );
    assert!(graphs.join("latency_comparison.png").exists());
    assert!(!graphs.join("skip_locked_warm_timeline.png").exists());
    let again = out.join("analysis2");
    let o = common::analyze(&[&out.join("vm1_pg")], &again);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = String::from_utf8_lossy(&o.stdout);
    assert!(
        report.contains("no timeline for skip_locked_warm"),
        "{report}"
    );
}

#[test]
fn a_stopped_valkey_is_an_unexplained_spike_at_that_second() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(common::config("timeline_valkey"));
    // No latency monitor: the shared Valkey fsyncs every write, so a SIGSTOP usually
    // lands inside an fsync, and the monitor then records the stop itself as a slow
    // fsync (seen: "aof-fsync-always 1001 ms"), which is an event. The stall under test
    // must have none.
    let mut conn = rt.block_on(common::valkey(&cfg));
    let _: () = rt
        .block_on(
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("latency-monitor-threshold")
                .arg("0")
                .query_async(&mut conn),
        )
        .expect("config set");
    let dir = tempfile::tempdir().expect("dir");
    let (mut child, _file) = suite(&cfg, "valkey", "valkey_streams", dir.path());
    let metrics = dir
        .path()
        .join("vm2_valkey/valkey_warm_metrics.jsonl.partial");
    let stopped_at = at_second(&metrics, 6, &mut child);
    let pid = common::valkey_pid();
    // 4 s: far above any second's p99 on a machine loaded by the other tests, so the
    // spike stands out of the median second whatever the noise.
    qbench::local::process::send(pid, nix::sys::signal::Signal::SIGSTOP);
    std::thread::sleep(Duration::from_secs(4));
    qbench::local::process::send(pid, nix::sys::signal::Signal::SIGCONT);
    finish(child);

    let analysis = dir.path().join("analysis");
    let spikes: Vec<SpikeRow> = read(&analysis.join("spikes.csv"));
    let stall = spikes
        .iter()
        .find(|s| s.start_s <= stopped_at + 2.0 && s.end_s >= stopped_at)
        .unwrap_or_else(|| panic!("no spike near t = {stopped_at}: {spikes:?}"));
    assert_eq!(stall.cause, "unexplained", "{stall:?}");
    assert!(stall.peak_p99_ms >= 2000.0, "{stall:?}");
    let report = common::analyze(&[&dir.path().join("vm2_valkey")], &dir.path().join("a2"));
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("valkey_warm: p99"), "{text}");
    assert!(text.contains("unexplained"), "{text}");
    let _: () = rt
        .block_on(
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("latency-monitor-threshold")
                .arg("10")
                .query_async(&mut conn),
        )
        .expect("config set");
}

#[test]
fn a_spike_factor_of_one_or_less_is_refused() {
    for args in [
        ["analyze", "--spike-factor", "1", "--results", "."],
        ["analyze", "--spike-factor", "0.5", "--results", "."],
    ] {
        let o = common::run_qbench(&args, &[]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--spike-factor"), "{stderr}");
    }
}
