//! Figures that measure the machine itself, so this binary runs alone, after every other
//! (setup/test_binaries.sh's SOLO): a server thread's share of a core is only a full core
//! when no other test competes for the two cores.

mod common;

use std::sync::Arc;
use std::time::Duration;

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
