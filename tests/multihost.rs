//! Coordinated processes, as several client hosts run them: two `produce` and two `work`
//! processes with one `--start-at` and `--run-id` begin their load together and make one
//! exact result; files of another coordinated run are not merged into it.

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, SystemTime};

use qbench::queue::{self, QueueKind};

fn spawn(cfg: &Path, args: &[&str]) -> Child {
    let mut c = common::qbench();
    c.arg("--config").arg(cfg).arg("--quiet").args(args);
    c.spawn().expect("spawn qbench")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn manifest(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("json")
}

async fn two_hosts_make_one_exact_result(kind: QueueKind) {
    let cfg = common::config(&format!("multi_{}", kind.name())).await;
    let q = queue::open(kind, &cfg).await.expect("open");
    q.setup(true).await.expect("setup");
    let file = common::config_file(&cfg);
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().to_str().expect("utf8");
    // Far enough ahead for four debug processes to connect on a busy 2-core machine.
    let at = SystemTime::now() + Duration::from_secs(8);
    let at_s = humantime::format_rfc3339_seconds(at).to_string();
    let common_args = |role: &str, instance: &str| {
        let mut a: Vec<String> = vec![
            role.into(),
            "--queue".into(),
            kind.name().into(),
            "--out".into(),
            out.into(),
            "--name".into(),
            "m".into(),
            "--instance".into(),
            instance.into(),
            "--start-at".into(),
            at_s.clone(),
            "--run-id".into(),
            "r1".into(),
        ];
        if role == "work" {
            a.extend(
                [
                    "--workers",
                    "4",
                    "--processing-ms",
                    "5",
                    "--until-idle",
                    "3",
                ]
                .map(String::from),
            );
        } else {
            a.extend(["--rate", "100", "--duration", "3"].map(String::from));
        }
        a
    };
    let children: Vec<Child> = [
        ("work", "w1"),
        ("work", "w2"),
        ("produce", "p1"),
        ("produce", "p2"),
    ]
    .iter()
    .map(|(role, inst)| {
        let a = common_args(role, inst);
        spawn(
            file.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    })
    .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(o.status.success(), "{kind}: {}", text(&o));
    }

    // Each process began at the shared time, not when it happened to be ready.
    let at_secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("epoch")
        .as_secs() as f64;
    for stem in ["m.w1", "m.w2", "m.producer.p1", "m.producer.p2"] {
        let m = manifest(&dir.path().join(format!("{stem}_manifest.json")));
        assert_eq!(m["coordinated_run_id"], "r1", "{stem}");
        assert_eq!(
            m["start_at"].as_str().map(|s| s.starts_with(&at_s[..19])),
            Some(true),
            "{stem}: {}",
            m["start_at"]
        );
        // Never before it (a process that ignored --start-at would begin some 8 s early);
        // after it by less than the 8 s given to connect, however slow the machine.
        let late = m["started_late_ms"].as_f64().expect("started_late_ms");
        assert!(
            (0.0..8000.0).contains(&late),
            "{kind} {stem}: load began {late} ms after --start-at {at_s} (at {at_secs})"
        );
    }

    let analysis = dir.path().join("analysis");
    let o = common::analyze(&[dir.path()], &analysis);
    assert!(o.status.success(), "{}", text(&o));
    let rows = common::summary_rows(&analysis);
    let r = rows.iter().find(|r| r.test == "m").expect("row for m");
    assert_eq!(
        r.produced,
        Some(600),
        "{kind}: two producers × 100 jobs/s × 3 s"
    );
    assert_eq!(r.completed, Some(600), "{kind}");
    assert_eq!(r.lost, Some(0), "{kind}");
    assert_eq!(r.duplicated, Some(0), "{kind}");
    assert_eq!(r.audit, "exact", "{kind}");
    // The offered load, workers and capacity are the processes' sums (the saturation
    // check compares completions with this rate; a 3-s run is too short to assert it).
    assert_eq!(r.offered_rate, Some(200.0), "{kind}: 2 × 100 jobs/s");
    assert_eq!(r.workers, Some(8), "{kind}: 2 × 4 workers");
    assert_eq!(
        r.capacity_jobs_s,
        Some(1600.0),
        "{kind}: 8 workers × 1000 / 5 ms"
    );
    let late = r.started_late_max_ms.expect("started_late_max_ms");
    assert!((0.0..8000.0).contains(&late), "{kind}: {late}");

    // Sabotage: one producer's files now claim another coordinated run.
    let p2 = dir.path().join("m.producer.p2_manifest.json");
    let mut m = manifest(&p2);
    m["coordinated_run_id"] = "r0".into();
    std::fs::write(&p2, serde_json::to_string(&m).expect("json")).expect("write");
    let o = common::analyze(&[dir.path()], &dir.path().join("analysis2"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("coordinated runs r0 and r1"),
        "{}",
        text(&o)
    );
    // A leftover written without --run-id is not merged in either.
    m.as_object_mut()
        .expect("object")
        .remove("coordinated_run_id");
    std::fs::write(&p2, serde_json::to_string(&m).expect("json")).expect("write");
    let o = common::analyze(&[dir.path()], &dir.path().join("analysis3"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("coordinated runs (none) and r1"),
        "{}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn skip_locked_two_hosts_one_exact_result() {
    two_hosts_make_one_exact_result(QueueKind::SkipLocked).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn valkey_two_hosts_one_exact_result() {
    two_hosts_make_one_exact_result(QueueKind::ValkeyStreams).await;
}

#[test]
fn a_start_time_long_past_or_malformed_is_refused() {
    let past = humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(120));
    let soon = SystemTime::now() + Duration::from_secs(600);
    let soon_z = humantime::format_rfc3339_seconds(soon).to_string();
    let ahead =
        humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(3 * 86_400));
    for (at, want) in [
        (past.to_string(), "s in the past"),
        ("tomorrow".to_string(), "is not a UTC time"),
        // Offsets and a missing Z would be read as UTC, hours off: refused instead.
        (soon_z.replace('Z', "+01:00"), "offsets are not taken"),
        (
            soon_z.trim_end_matches('Z').to_string(),
            "is not a UTC time",
        ),
        (ahead.to_string(), "more than a day ahead"),
    ] {
        let o = common::run_qbench(
            &["produce", "--queue", "skip_locked", "--start-at", &at],
            &[],
        );
        assert_eq!(o.status.code(), Some(2), "{at}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{at}: {err}");
    }
    let o = common::run_qbench(&["work", "--queue", "skip_locked", "--run-id", "a b"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--run-id \"a b\" is invalid"),
        "{}",
        text(&o)
    );
}
