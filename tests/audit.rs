//! The audit by identity across processes, on real servers, and the figures it derives,
//! each broken on purpose: a job deleted behind the workers' back is named lost; a worker
//! frozen past its lease completes late and is refused; a drain that runs out records
//! what was left as censored samples; a work process alone sees saturation; a Valkey
//! pinned at one core is flagged.

mod common;

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::Arc;
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

/// Removes one job that is waiting (not yet delivered) behind the workers' back; returns
/// its seq.
async fn remove_a_waiting_job(cfg: &Config, kind: QueueKind) -> i64 {
    if kind == QueueKind::ValkeyStreams {
        let id = common::stream_entry_id(cfg, true).await;
        let mut c = common::valkey(cfg).await;
        let fields: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&cfg.valkey.stream)
            .arg(&id)
            .arg(&id)
            .query_async(&mut c)
            .await
            .expect("xrange");
        let seq = fields[0]
            .1
            .iter()
            .find(|(k, _)| k == "s")
            .map(|(_, v)| v.parse().expect("seq"))
            .expect("an s field");
        assert_eq!(common::xdel(cfg, &id).await, 1);
        return seq;
    }
    let sql = match kind {
        QueueKind::SkipLocked => "DELETE FROM queue_jobs WHERE id = (SELECT max(id) FROM queue_jobs WHERE status = 'pending') RETURNING seq",
        QueueKind::Partitioned => "DELETE FROM queue_jobs_part WHERE (part, id) = (SELECT part, id FROM queue_jobs_part WHERE status = 'pending' ORDER BY id DESC LIMIT 1) RETURNING seq",
        _ => "DELETE FROM queue_jobs_dr WHERE id = (SELECT id FROM queue_jobs_dr ORDER BY id DESC LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING seq",
    };
    let pg = common::pg_client(cfg).await;
    let row = pg.query_one(sql, &[]).await.expect("delete a waiting job");
    row.get(0)
}

/// Two producer and three worker processes on one queue, their files in one folder.
/// With `sabotage`, one waiting job is removed mid-run: analyze must name exactly it.
async fn many_processes(kind: QueueKind, sabotage: bool) {
    let name = format!("many_{}_{}", kind.name(), u8::from(sabotage));
    let cfg = prepared(&name, kind, |_| {}).await;
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    // 3 × 2 workers × 40 ms take about 150 jobs/s; 2 × 150 are offered, so jobs wait.
    let workers: Vec<Child> = ["w1", "w2", "w3"]
        .iter()
        .map(|i| {
            common::spawn_quiet(
                file.path(),
                &[
                    "work",
                    "--queue",
                    kind.name(),
                    "--workers",
                    "2",
                    "--processing-ms",
                    "40",
                    "--until-idle",
                    "2",
                    "--out",
                    out,
                    "--name",
                    "m",
                    "--instance",
                    i,
                ],
            )
        })
        .collect();
    let producers: Vec<Child> = ["p1", "p2"]
        .iter()
        .map(|i| {
            common::spawn_quiet(
                file.path(),
                &[
                    "produce",
                    "--queue",
                    kind.name(),
                    "--rate",
                    "150",
                    "--count",
                    "300",
                    "--out",
                    out,
                    "--name",
                    "m",
                    "--instance",
                    i,
                ],
            )
        })
        .collect();
    let removed = if sabotage {
        let q = queue::open(kind, &cfg).await.expect("open");
        let deadline = Instant::now() + Duration::from_secs(60);
        while q.state().await.map_or(0, |s| s.pending) < 20 {
            assert!(Instant::now() < deadline, "{kind}: no job ever waited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(remove_a_waiting_job(&cfg, kind).await)
    } else {
        None
    };
    for p in producers.into_iter().chain(workers) {
        let o = p.wait_with_output().expect("process");
        assert!(
            o.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let (a, row) = common::analyze_row(dir.path());
    assert_eq!(row.processes, 5, "{kind}");
    assert_eq!(row.audit, "exact", "{kind}: {}", row.audit_note);
    assert_eq!(row.produced, Some(600), "{kind}");
    assert_eq!(row.duplicated, Some(0), "{kind}");
    match removed {
        None => {
            assert!(
                a.status.success(),
                "{kind}: {}",
                String::from_utf8_lossy(&a.stderr)
            );
            assert_eq!((row.lost, row.completed), (Some(0), Some(600)), "{kind}");
        }
        Some(seq) => {
            assert_eq!(a.status.code(), Some(1), "{kind}: a loss fails analyze");
            assert_eq!(row.lost, Some(1), "{kind}");
            assert_eq!(
                row.lost_seqs,
                seq.to_string(),
                "{kind}: the lost job is named"
            );
            assert!(row.red_flags.contains("LOST"), "{kind}: {}", row.red_flags);
        }
    }
}

macro_rules! for_each_design {
    ($($test:ident: $sabotage:expr),*) => {
        $(mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn skip_locked() { super::many_processes(qbench::queue::QueueKind::SkipLocked, $sabotage).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delete_returning() { super::many_processes(qbench::queue::QueueKind::DeleteReturning, $sabotage).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn partitioned() { super::many_processes(qbench::queue::QueueKind::Partitioned, $sabotage).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn valkey_streams() { super::many_processes(qbench::queue::QueueKind::ValkeyStreams, $sabotage).await }
        })*
    };
}

for_each_design!(two_producers_three_workers_exact: false, a_removed_job_is_named_lost: true);

/// A worker frozen (SIGSTOP) past its lease while another takes its job over: when it
/// wakes, its completion is refused and counted late, never a second completion.
async fn frozen_worker_completes_late(kind: QueueKind) {
    let cfg = prepared(&format!("late_{}", kind.name()), kind, |c| {
        c.benchmark.visibility_timeout_s = 1.0;
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
    while q.state().await.map_or(0, |s| s.in_flight) == 0 {
        assert!(
            Instant::now() < deadline,
            "{kind}: the worker never held a job"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let pid = nix::unistd::Pid::from_raw(frozen.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).expect("SIGSTOP");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_worker_completes_late_valkey_streams() {
    frozen_worker_completes_late(QueueKind::ValkeyStreams).await
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
/// of workers, says so with the word "capacity" within 10 s of the load starting.
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
    let load_started = Instant::now();
    let warned_at = rx.recv_timeout(Duration::from_secs(30));
    let _ = p.wait_with_output();
    let _ = work.wait();
    let all = reader.join().expect("reader");
    let warned_at = warned_at.unwrap_or_else(|_| panic!("no saturation warning: {all}"));
    assert!(all.contains("capacity"), "{all}");
    let after = warned_at.duration_since(load_started);
    assert!(
        after < Duration::from_secs(10),
        "warned after {after:?}: {all}"
    );
}

/// Valkey executes commands on one thread: held busy by a script, that thread is at a
/// full core while the machine's total looks half idle. The flag must see it; the same
/// run without the script must not raise it.
async fn pinned_valkey(busy: bool) -> qbench::analyze::Row {
    let cfg = prepared(
        &format!("pinned_{}", u8::from(busy)),
        QueueKind::ValkeyStreams,
        |_| {},
    )
    .await;
    let q = queue::open(QueueKind::ValkeyStreams, &cfg)
        .await
        .expect("open");
    let dir = tempfile::tempdir().expect("dir");
    let out = qbench::format::files::OutputDir::prepare(dir.path(), "pinned", true).expect("out");
    let mut spec = common::quiet_spec(
        "pinned",
        Arc::clone(&q),
        &cfg,
        qbench::workload::producer::ProducePlan::paced(
            Some(100.0),
            Duration::from_secs(7),
            &cfg.benchmark,
        ),
        qbench::workload::worker::WorkPlan {
            workers: 2,
            processing: Duration::ZERO,
        },
    );
    spec.env.output = Some(out);
    spec.env.server = qbench::samplers::system::ServerProcs::single(
        "valkey-server|redis-server",
        Some(common::valkey_pid()),
    );
    let holder = busy.then(|| {
        let (cfg, q) = (cfg.clone(), Arc::clone(&q));
        tokio::spawn(async move {
            // Once the run is seen completing jobs, so the samplers are watching.
            while q.state().await.map_or(0, |s| s.completed) < 50 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut c = common::valkey(&cfg).await;
            // Four seconds of a busy loop on Valkey's one thread (under its 5 s limit).
            let _: redis::RedisResult<i64> = redis::cmd("EVAL")
                .arg("local s = redis.call('TIME') local t0 = s[1] * 1e6 + s[2] repeat local n = redis.call('TIME') until n[1] * 1e6 + n[2] - t0 > 4e6 return 1")
                .arg(0)
                .query_async(&mut c)
                .await;
        })
    });
    qbench::workload::run(spec).await.expect("run");
    if let Some(h) = holder {
        h.await.expect("holder");
    }
    let (a, row) = common::analyze_row(dir.path());
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valkey_pinned_at_one_core_is_flagged() {
    let busy = pinned_valkey(true).await;
    assert!(
        busy.server_busiest_thread_cores >= Some(0.9),
        "the busy thread is seen: {busy:?}"
    );
    assert!(
        busy.red_flags.contains("busiest thread"),
        "{}",
        busy.red_flags
    );
    let calm = pinned_valkey(false).await;
    assert!(
        calm.server_busiest_thread_cores < Some(0.9),
        "an idle Valkey is not flagged: {calm:?}"
    );
    assert!(
        !calm.red_flags.contains("busiest thread"),
        "{}",
        calm.red_flags
    );
}
