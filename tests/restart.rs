//! A server restarted in the middle of a run (`--local` servers, restarted by the test):
//! producer and workers reconnect and carry on; the outage is recorded; PostgreSQL loses
//! nothing, and Valkey without persistence reports its loss as exactly that.

mod common;

use std::sync::Arc;
use std::time::Duration;

use qbench::config::Config;
use qbench::local::LocalServers;
use qbench::queue::{self, QueueKind};
use qbench::workload;
use qbench::workload::producer::ProducePlan;
use qbench::workload::worker::WorkPlan;

async fn run_through_restart(
    kind: QueueKind,
    mut servers: LocalServers,
    cfg: &Config,
) -> (workload::Report, LocalServers) {
    let q = queue::open(kind, cfg).await.expect("open");
    q.setup(true).await.expect("setup");
    // Restart the server once the run is seen completing jobs (about 1.5 s into a 6 s
    // run), never after a fixed sleep: a slow start would restart it before the run began.
    let watched = Arc::clone(&q);
    let restarter = tokio::spawn(async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while watched.state().await.map_or(0, |s| s.completed) < 300 {
            assert!(
                std::time::Instant::now() < deadline,
                "{kind}: the run never completed 300 jobs"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match kind {
            QueueKind::ValkeyStreams => servers.valkey.restart(false).await,
            _ => servers.postgres.restart(false).await,
        }
        .expect("restart");
        servers
    });
    let report = workload::run(common::quiet_spec(
        &format!("restart_{kind}"),
        Arc::clone(&q),
        cfg,
        ProducePlan {
            rate: Some(200.0),
            count: None,
            duration: Some(Duration::from_secs(6)),
            connections: 2,
            max_batch: 500,
        },
        WorkPlan {
            workers: 4,
            processing: Duration::from_millis(10),
        },
    ))
    .await
    .expect("the run survives the restart");
    let servers = restarter.await.expect("restarter");
    (report, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_are_survived_and_reported() {
    let mut cfg = Config::default();
    // Leases of jobs in hand when the server went away come back after 2 s.
    cfg.benchmark.recover_after(2.0);
    // pg-boss's workers fetch back to back (its 2-s sleep after each fetch would hold 4
    // workers to 2 jobs/s), Procrastinate's idle loop polls every 0.2 s: this test is
    // about reconnecting, not their pacing.
    cfg.benchmark.pg_boss_polling_interval_ms = 1.0;
    cfg.benchmark.procrastinate_fetch_job_polling_interval_s = 0.2;
    // The seed's mix: Valkey without persistence, so a restart can lose jobs.
    cfg.benchmark.durability = qbench::config::DurabilityChoice::Seed;
    let mut servers = LocalServers::start(&cfg, false, &qbench::local::Options::default())
        .await
        .expect("servers");
    servers.apply_to(&mut cfg);

    for kind in QueueKind::of(qbench::queue::Backend::Postgresql) {
        let (report, s) = run_through_restart(kind, servers, &cfg).await;
        servers = s;
        let sum = &report.summary;
        eprintln!(
            "{kind}: produced {:?} completed {:?} lost {:?} duplicated {:?} errors {:?} outages {:?}",
            sum.produced, sum.completed, sum.lost, sum.duplicated, sum.errors, sum.outages
        );
        assert_eq!(sum.produced, Some(1200), "{kind}: the producer carried on");
        assert_eq!(
            sum.lost,
            Some(0),
            "{kind}: PostgreSQL loses nothing produced"
        );
        assert_eq!(
            sum.left_in_queue,
            Some(0),
            "{kind}: drained after the restart"
        );
        assert!(
            sum.errors.worker + sum.errors.producer > 0,
            "{kind}: errors counted"
        );
        assert!(!sum.outages.is_empty(), "{kind}: the outage is recorded");
        assert!(
            sum.outages.iter().all(|o| o.end_epoch_s.is_some()),
            "{kind}: and it ended"
        );
        assert!(
            report.warnings.iter().any(|w| w.contains("unreachable")),
            "{kind}"
        );
    }

    let (report, servers) = run_through_restart(QueueKind::ValkeyStreams, servers, &cfg).await;
    let sum = &report.summary;
    eprintln!(
        "valkey_streams: produced {:?} completed {:?} lost {:?} outages {:?}",
        sum.produced, sum.completed, sum.lost, sum.outages
    );
    assert_eq!(sum.produced, Some(1200), "the producer carried on");
    assert!(!sum.outages.is_empty(), "the outage is recorded");
    assert!(
        sum.completed.unwrap_or(0) > 600,
        "workers came back to a fresh server: {sum:?}"
    );
    let lost = sum.lost.unwrap_or(0);
    assert_eq!(
        lost + sum.completed.unwrap_or(0) - sum.duplicated.unwrap_or(0),
        1200,
        "every job is either completed or reported lost"
    );
    if lost > 0 {
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("without persistence")),
            "the loss is called what it is: {:?}",
            report.warnings
        );
    }
    servers.stop().await;
}
