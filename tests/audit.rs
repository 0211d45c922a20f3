//! Figures analyze derives across processes, on real servers, each broken on purpose: a
//! worker frozen past its lease completes late and is refused (and counted); a drain
//! that runs out records what was left as censored samples; a work process alone sees
//! saturation. (A Valkey pinned at one core is solo.rs's. Every design's exact audit and
//! its lost jobs are the per-design set's: tests/designs.rs.)

mod common;

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use qbench::config::Config;
use qbench::queue::{self, QueueKind};

async fn prepared(name: &str, kind: QueueKind, tweak: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = common::config(name).await;
    tweak(&mut cfg);
    queue::open(kind, &cfg)
        .await
        .expect("open")
        .setup(true)
        .await
        .expect("setup");
    cfg
}

/// A worker frozen (SIGSTOP) past its lease while another takes its job over: when it
/// wakes, its completion is refused and counted late, never a second completion.
async fn frozen_worker_completes_late(kind: QueueKind) {
    let cfg = prepared(&format!("late_{}", kind.name()), kind, |c| {
        c.benchmark.recover_after(1.0);
    })
    .await;
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    let work = |i: &'static str| {
        [
            "work",
            "--queue",
            kind.name(),
            "--workers",
            "1",
            "--processing-ms",
            "100",
            "--until-idle",
            "2",
            "--out",
            out,
            "--name",
            "l",
            "--instance",
            i,
        ]
    };
    let frozen = common::spawn_quiet(file.path(), &work("frozen"));
    let p = common::spawn_quiet(
        file.path(),
        &[
            "produce",
            "--queue",
            kind.name(),
            "--rate",
            "50",
            "--count",
            "20",
            "--out",
            out,
            "--name",
            "l",
        ],
    );
    let q = queue::open(kind, &cfg).await.expect("open");
    let deadline = Instant::now() + Duration::from_secs(60);
    let pid = nix::unistd::Pid::from_raw(frozen.id() as i32);
    let in_flight = || async { q.state().await.map_or(0, |s| s.in_flight) };
    // Frozen only once seen holding a job in two snapshots alike after the stop (a
    // command sent before it has landed by then): stopped on one snapshot, it could
    // freeze between a completion and the next claim, holding nothing.
    loop {
        assert!(
            Instant::now() < deadline,
            "{kind}: the worker never held a job"
        );
        if in_flight().await == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
        let (first, second) = (in_flight().await, in_flight().await);
        if first == second && second > 0 {
            break;
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    }
    let other = common::spawn_quiet(file.path(), &work("other"));
    // The other worker must have redelivered work before the frozen one wakes.
    let o = other.wait_with_output().expect("other");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).expect("SIGCONT");
    assert!(
        o.status.success(),
        "{kind}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    for c in [p, frozen] {
        let o = c.wait_with_output().expect("process");
        assert!(
            o.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let (a, row) = common::analyze_row(dir.path());
    assert!(
        a.status.success(),
        "{kind}: {}",
        String::from_utf8_lossy(&a.stderr)
    );
    assert_eq!((row.lost, row.duplicated), (Some(0), Some(0)), "{kind}");
    assert_eq!(row.completed, Some(20), "{kind}: every job completed once");
    assert!(
        row.late_completions >= Some(1),
        "{kind}: the frozen worker's completion was refused: {row:?}"
    );
    assert!(
        row.red_flags.contains("completion(s) refused"),
        "{kind}: {}",
        row.red_flags
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_worker_completes_late_skip_locked() {
    frozen_worker_completes_late(QueueKind::SkipLocked).await
}

/// A drain bound too short for slow workers: what is left is recorded at its age as
/// censored samples, and the test is kept out of the findings.
#[test]
fn a_drain_that_times_out_records_censored_samples() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = rt.block_on(prepared("censored", QueueKind::SkipLocked, |c| {
        c.benchmark.production_rate = qbench::config::Rate::Fixed(100.0);
        c.benchmark.production_duration = 2.0;
        c.benchmark.num_workers = 1.into();
        c.benchmark.job_processing_time_ms = 50.0;
        c.benchmark.drain_timeout_s = 1.0;
        c.benchmark.warmup_duration = 0.0;
    }));
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let o = common::run_qbench(
        &[
            "--config",
            file.path().to_str().expect("utf8"),
            "-q",
            "run-suite",
            "--backend",
            "pg",
            "--queues",
            "skip_locked",
            "--scenarios",
            "warm",
            "--out",
            dir.path().to_str().expect("utf8"),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let row = common::summary_rows(&dir.path().join("analysis"))
        .pop()
        .expect("row");
    // 200 offered at 100/s to 20 jobs/s of workers: about 60 done, 140 left.
    let left = row.left_in_queue.expect("left");
    assert!(left > 50, "{row:?}");
    assert_eq!(
        row.censored,
        Some(left),
        "every job left is a censored sample"
    );
    assert!(row.censored_p99_ms > Some(1000.0), "at its age: {row:?}");
    assert_eq!(row.lost, Some(0));
    assert!(row.red_flags.contains("not drained"), "{}", row.red_flags);
    let summary = std::fs::read_to_string(dir.path().join("analysis/summary.json")).expect("json");
    assert!(
        summary.contains("not every job was completed exactly once")
            && summary.contains("skip_locked_warm"),
        "kept out of the findings: {summary}"
    );
}

/// A work process alone, offered 300 jobs/s by another process against about 125 jobs/s
/// of workers, says so with the word "capacity" while the load runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_process_alone_sees_saturation() {
    let cfg = prepared("saturation", QueueKind::ValkeyStreams, |_| {}).await;
    let file = common::config_file(&cfg);
    let mut w = common::qbench();
    w.arg("--config")
        .arg(file.path())
        .args([
            "work",
            "--queue",
            "valkey_streams",
            "--workers",
            "5",
            "--processing-ms",
            "40",
            "--duration",
            "14",
        ])
        .stderr(Stdio::piped());
    let mut work = w.spawn().expect("work");
    let stderr = work.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("work valkey_streams") {
                let _ = up_tx.send(());
            }
            if line.contains("arrivals outpace completions") {
                let _ = tx.send(Instant::now());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    // The load starts once the worker is seen running (its first progress line).
    up_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the work process never started");
    let p = common::spawn_quiet(
        file.path(),
        &[
            "produce",
            "--queue",
            "valkey_streams",
            "--rate",
            "300",
            "--duration",
            "12",
        ],
    );
    let _ = p.wait_with_output();
    let load_ended = Instant::now();
    let _ = work.wait();
    let all = reader.join().expect("reader");
    let warned_at = rx
        .try_recv()
        .unwrap_or_else(|_| panic!("no saturation warning: {all}"));
    assert!(all.contains("capacity"), "{all}");
    // Within the 12 s of load, whatever the machine's pace: the warning is about the
    // load, not about what was left after it.
    assert!(warned_at < load_ended, "warned after the load ended: {all}");
}
