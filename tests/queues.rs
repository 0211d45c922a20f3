//! The four designs against real servers: exactly-once delivery under concurrency,
//! empty-queue answers, redelivery after a dead worker, exact depth and reset, and what the
//! audit by identity relies on: unique sequence blocks, idempotent enqueue, fenced
//! completion and a snapshot by seq.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qbench::queue::{self, NewJob, Queue, QueueKind};

async fn open(
    kind: QueueKind,
    name: &str,
    tweak: impl FnOnce(&mut qbench::config::Config),
) -> Arc<dyn Queue> {
    let mut cfg = common::config(&format!("{name}_{}", kind.name())).await;
    tweak(&mut cfg);
    let q = queue::open(kind, &cfg).await.expect("open queue");
    q.setup(true).await.expect("setup");
    q
}

fn jobs(range: std::ops::Range<i64>) -> Vec<NewJob> {
    range
        .map(|seq| NewJob {
            seq,
            enqueued_at_us: 1_700_000_000_000_000 + seq,
        })
        .collect()
}

async fn exactly_once(kind: QueueKind) {
    let q = open(kind, "once", |c| {
        c.benchmark.partitions = 4;
        c.benchmark.dequeue_batch = 3;
    })
    .await;
    const PRODUCERS: i64 = 3;
    const PER_PRODUCER: i64 = 400;
    const TOTAL: usize = (PRODUCERS * PER_PRODUCER) as usize;

    let mut tasks = vec![];
    for p in 0..PRODUCERS {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut prod = q.producer().await.expect("producer");
            let all = jobs(p * PER_PRODUCER..(p + 1) * PER_PRODUCER);
            for chunk in all.chunks(7) {
                prod.enqueue(chunk, false).await.expect("enqueue");
            }
        }));
    }
    let seen = Arc::new(std::sync::Mutex::new(HashMap::<i64, u32>::new()));
    let mut workers = vec![];
    for w in 0..5 {
        let (q, seen) = (q.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            let mut c = q.consumer(w).await.expect("consumer");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                let got = c.claim().await.expect("claim");
                assert!(got.len() <= 3, "at most one batch");
                if got.is_empty() {
                    if seen.lock().unwrap().len() >= TOTAL {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                for j in &got {
                    assert_eq!(j.payload_len, 512, "payload travels intact");
                    *seen.lock().unwrap().entry(j.seq).or_default() += 1;
                }
                c.complete(got).await.expect("complete");
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer task");
    }
    for w in workers {
        w.await.expect("worker task");
    }
    let seen = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(seen.len(), TOTAL, "{kind}: every job delivered");
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "{kind}: delivered more than once: {dup:?}");
    assert!(seen
        .keys()
        .all(|s| (0..PRODUCERS * PER_PRODUCER).contains(s)));
    let st = q.state().await.expect("state");
    assert_eq!(st.completed, TOTAL as u64, "{kind}: {st:?}");
    assert_eq!(st.produced, TOTAL as u64, "{kind}: {st:?}");
    assert_eq!((st.pending, st.in_flight), (0, 0), "{kind}: {st:?}");
    assert_eq!(q.depth().await.expect("depth"), 0);
}

async fn empty_queue_answers_quickly(kind: QueueKind) {
    let q = open(kind, "empty", |_| {}).await;
    let mut c = q.consumer(0).await.expect("consumer");
    let t = Instant::now();
    let got = c.claim().await.expect("claim");
    assert!(got.is_empty());
    // PostgreSQL answers at once; Valkey after its BLOCK (100 ms in tests).
    assert!(
        t.elapsed() < Duration::from_millis(800),
        "{kind}: {:?}",
        t.elapsed()
    );
}

async fn dead_worker_job_is_redelivered(kind: QueueKind) {
    let q = open(kind, "dead", |c| c.benchmark.visibility_timeout_s = 1.0).await;
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..1), false)
        .await
        .expect("enqueue");
    {
        let mut doomed = q.consumer(0).await.expect("consumer");
        let got = doomed.claim().await.expect("claim");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].attempts, 1);
        // The worker dies holding the job: its connection goes away without completing.
    }
    let mut other = q.consumer(1).await.expect("consumer");
    let started = Instant::now();
    let again = loop {
        // The reaper runs as `work` runs it; for delete_returning it has nothing to do.
        q.reap().await.expect("reap");
        let got = other.claim().await.expect("claim");
        if !got.is_empty() {
            break got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{kind}: never redelivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(again[0].seq, 0);
    let waited = started.elapsed();
    if kind == QueueKind::DeleteReturning {
        // The rollback returns the job at once: no lease to wait out.
        assert!(waited < Duration::from_millis(900), "{kind}: {waited:?}");
    } else {
        assert!(
            waited >= Duration::from_millis(500),
            "{kind}: lease ignored ({waited:?})"
        );
        assert_eq!(again[0].attempts, 2, "{kind}: redelivery counted");
    }
    other.complete(again).await.expect("complete");
    let st = q.state().await.expect("state");
    assert_eq!(
        (st.completed, st.pending, st.in_flight),
        (1, 0, 0),
        "{kind}: {st:?}"
    );
}

async fn depth_is_exact_and_reset_empties(kind: QueueKind) {
    // One claim of three: a delete_returning consumer holds one transaction at a time.
    let q = open(kind, "depth", |c| c.benchmark.dequeue_batch = 3).await;
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..10), false)
        .await
        .expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), 10);
    let mut c = q.consumer(0).await.expect("consumer");
    // Partitioned claims what the home partition holds (here one job) before stealing.
    let held = c.claim().await.expect("claim");
    let n = held.len() as u64;
    assert!(
        (1..=3).contains(&n),
        "{kind}: one batch of at most 3, got {n}"
    );
    assert_eq!(
        q.depth().await.expect("depth"),
        10,
        "{kind}: in-flight jobs still count"
    );
    let st = q.state().await.expect("state");
    assert_eq!((st.pending, st.in_flight), (10 - n, n), "{kind}: {st:?}");
    c.complete(held).await.expect("complete");
    assert_eq!(q.depth().await.expect("depth"), 10 - n);
    q.reset().await.expect("reset");
    assert_eq!(q.depth().await.expect("depth"), 0);
    assert_eq!(q.state().await.expect("state"), Default::default());
    // Setup again changes nothing and the queue still works.
    q.setup(false).await.expect("setup again");
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..2), false)
        .await
        .expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), 2);
}

/// Blocks of sequence numbers from concurrent producers never overlap, and a reset keeps
/// the counter: numbers stay unique across runs.
async fn sequence_blocks_are_unique(kind: QueueKind) {
    let q = open(kind, "seqblocks", |_| {}).await;
    let mut tasks = vec![];
    for _ in 0..3 {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut starts = vec![];
            for _ in 0..20 {
                starts.push(q.allocate(100).await.expect("allocate"));
            }
            starts
        }));
    }
    let mut starts = vec![];
    for t in tasks {
        starts.extend(t.await.expect("task"));
    }
    starts.sort_unstable();
    assert!(
        starts.windows(2).all(|w| w[1] >= w[0] + 100),
        "{kind}: blocks overlap: {starts:?}"
    );
    let before = *starts.last().expect("blocks");
    q.reset().await.expect("reset");
    let after = q.allocate(1).await.expect("allocate after reset");
    assert!(
        after >= before + 100,
        "{kind}: {after} reuses numbers below {}",
        before + 100
    );
}

/// An enqueue retried after an error of unknown outcome adds nothing twice, also when
/// the first copy was already claimed and completed.
async fn a_retried_enqueue_adds_nothing_twice(kind: QueueKind) {
    let q = open(kind, "retry", |c| c.benchmark.dequeue_batch = 10).await;
    let first = q.allocate(5).await.expect("allocate");
    let batch = jobs(first..first + 5);
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&batch, false).await.expect("enqueue");
    p.enqueue(&batch, true).await.expect("retry");
    assert_eq!(
        q.depth().await.expect("depth"),
        5,
        "{kind}: the retry added nothing"
    );
    let mut c = q.consumer(0).await.expect("consumer");
    let mut done = 0;
    while done < 5 {
        let got = c.claim().await.expect("claim");
        done += got.len();
        assert!(c.complete(got).await.expect("complete").is_empty());
    }
    p.enqueue(&batch, true).await.expect("a late retry");
    assert_eq!(
        q.depth().await.expect("depth"),
        0,
        "{kind}: completed jobs are not added again"
    );
}

/// The queue read by seq: what is left (with its intended times) and what it completed.
async fn the_snapshot_names_jobs_by_seq(kind: QueueKind) {
    let q = open(kind, "snap", |c| c.benchmark.dequeue_batch = 2).await;
    let first = q.allocate(5).await.expect("allocate");
    let batch = jobs(first..first + 5);
    q.producer()
        .await
        .expect("producer")
        .enqueue(&batch, false)
        .await
        .expect("enqueue");
    let mut c = q.consumer(0).await.expect("consumer");
    let got = c.claim().await.expect("claim");
    let done: Vec<i64> = got.iter().map(|j| j.seq).collect();
    c.complete(got).await.expect("complete");
    let snap = q.snapshot().await.expect("snapshot");
    let mut completed = snap.completed.clone();
    completed.sort_unstable();
    let mut want_done = done.clone();
    want_done.sort_unstable();
    assert_eq!(completed, want_done, "{kind}");
    let mut left = snap.left.clone();
    left.sort_unstable();
    let want_left: Vec<(i64, i64)> = batch
        .iter()
        .filter(|j| !done.contains(&j.seq))
        .map(|j| (j.seq, j.enqueued_at_us))
        .collect();
    assert_eq!(left, want_left, "{kind}");
}

/// A worker whose lease ran out (the reaper handed the job on) completes too late: the
/// queue refuses it, and the job is completed once, by the worker that holds it now.
async fn a_completion_after_the_lease_is_refused(kind: QueueKind) {
    let q = open(kind, "late", |c| c.benchmark.visibility_timeout_s = 0.5).await;
    let first = q.allocate(1).await.expect("allocate");
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(first..first + 1), false)
        .await
        .expect("enqueue");
    let mut slow = q.consumer(0).await.expect("consumer");
    let held = slow.claim().await.expect("claim");
    assert_eq!(held.len(), 1);
    let mut other = q.consumer(1).await.expect("consumer");
    let started = Instant::now();
    let again = loop {
        q.reap().await.expect("reap");
        let got = other.claim().await.expect("claim");
        if !got.is_empty() {
            break got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{kind}: never redelivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let late = slow.complete(held).await.expect("complete");
    assert_eq!(late, vec![first], "{kind}: the late completion is refused");
    assert!(other.complete(again).await.expect("complete").is_empty());
    let st = q.state().await.expect("state");
    assert_eq!(
        (st.completed, st.pending, st.in_flight),
        (1, 0, 0),
        "{kind}: {st:?}"
    );
}

macro_rules! for_each_design {
    ($($test:ident),*) => {
        mod skip_locked { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(qbench::queue::QueueKind::SkipLocked).await } )* }
        mod delete_returning { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(qbench::queue::QueueKind::DeleteReturning).await } )* }
        mod partitioned { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(qbench::queue::QueueKind::Partitioned).await } )* }
        mod valkey_streams { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $test() { super::$test(qbench::queue::QueueKind::ValkeyStreams).await } )* }
    };
}

for_each_design!(
    exactly_once,
    empty_queue_answers_quickly,
    dead_worker_job_is_redelivered,
    depth_is_exact_and_reset_empties,
    sequence_blocks_are_unique,
    a_retried_enqueue_adds_nothing_twice,
    the_snapshot_names_jobs_by_seq
);

// delete_returning holds its claim in an open transaction: a lease cannot run out, and
// a second delivery happens only after the first rolled back (see dead_worker_…).
mod lease_fencing {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn skip_locked() {
        super::a_completion_after_the_lease_is_refused(qbench::queue::QueueKind::SkipLocked).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn partitioned() {
        super::a_completion_after_the_lease_is_refused(qbench::queue::QueueKind::Partitioned).await
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn valkey_streams() {
        super::a_completion_after_the_lease_is_refused(qbench::queue::QueueKind::ValkeyStreams)
            .await
    }
}

#[tokio::test]
async fn partitioned_spreads_jobs_and_steals() {
    let q = open(QueueKind::Partitioned, "spread", |c| {
        c.benchmark.partitions = 4;
        c.benchmark.dequeue_batch = 8;
    })
    .await;
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..8), false)
        .await
        .expect("enqueue");
    // Worker 1 (home partition 1) drains its home first, then steals the rest.
    let mut c = q.consumer(1).await.expect("consumer");
    let first = c.claim().await.expect("claim");
    let seqs: Vec<i64> = first.iter().map(|j| j.seq).collect();
    assert_eq!(seqs, vec![1, 5], "home partition holds seq % 4 == 1");
    c.complete(first).await.expect("complete");
    let stolen = c.claim().await.expect("claim");
    assert_eq!(stolen.len(), 6, "steals from the other partitions");
}

#[tokio::test]
async fn partitioned_refuses_a_different_partition_count_without_reset() {
    let mut cfg = common::config("repart").await;
    cfg.benchmark.partitions = 4;
    let q = queue::open(QueueKind::Partitioned, &cfg)
        .await
        .expect("open");
    q.setup(false).await.expect("setup");
    cfg.benchmark.partitions = 6;
    let q6 = queue::open(QueueKind::Partitioned, &cfg)
        .await
        .expect("open");
    let e = q6.setup(false).await.expect_err("mismatch refused");
    assert!(e.to_string().contains("--reset"), "{e}");
    assert_eq!(qbench::error::exit_code(&e), 2);
    assert!(q6
        .setup(true)
        .await
        .expect("reset recreates")
        .contains("6 partitions"));
}

#[tokio::test]
async fn skip_locked_status_column_shows_all_three_states() {
    let cfg = common::config("statuses").await;
    let q = queue::open(QueueKind::SkipLocked, &cfg)
        .await
        .expect("open");
    q.setup(true).await.expect("setup");
    q.producer()
        .await
        .expect("producer")
        .enqueue(&jobs(0..3), false)
        .await
        .expect("enqueue");
    let mut c = q.consumer(0).await.expect("consumer");
    let one = c.claim().await.expect("claim");
    c.complete(one).await.expect("complete");
    let _held = c.claim().await.expect("claim");
    // The seed's monitoring query.
    let pg = common::pg_client(&cfg).await;
    let rows = pg
        .query(
            "SELECT status, count(*) FROM queue_jobs GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .expect("monitoring query");
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        vec![
            ("completed".into(), 1),
            ("pending".into(), 1),
            ("processing".into(), 1)
        ]
    );
}
