//! What every design promises through the `Queue` trait, in one process: exactly-once
//! delivery under concurrency, empty-queue answers, a dead worker's job back, exact
//! depth and reset, unique sequence blocks, idempotent enqueue, a snapshot by seq, a
//! held job fenced, and an exact audit that names a removed job lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use qbench::queue::registry::Recovery;
use qbench::queue::QueueKind;

use super::{common, counts, jobs, prepared, recorded_done, recovery, until};

pub async fn exactly_once_under_concurrency(kind: QueueKind) {
    let (_, q) = prepared(kind, "once", |c| {
        c.benchmark.partitions = 4;
        c.benchmark.dequeue_batch = 3;
    })
    .await;
    const PRODUCERS: i64 = 3;
    const PER_PRODUCER: i64 = 400;
    const TOTAL: usize = (PRODUCERS * PER_PRODUCER) as usize;
    // Numbers from the queue's counter, as a producer takes them (its record of what
    // was done counts from there).
    let first = q.allocate(TOTAL as u64).await.expect("allocate");
    let mut tasks = vec![];
    for p in 0..PRODUCERS {
        let q = q.clone();
        tasks.push(tokio::spawn(async move {
            let mut prod = q.producer().await.expect("producer");
            let from = first + p * PER_PRODUCER;
            for chunk in jobs(from..from + PER_PRODUCER).chunks(7) {
                prod.enqueue(chunk, false).await.expect("enqueue");
            }
        }));
    }
    let seen = Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut workers = vec![];
    for w in 0..5 {
        let (q, seen) = (q.clone(), seen.clone());
        workers.push(tokio::spawn(async move {
            let mut c = q.consumer(w).await.expect("consumer");
            let deadline = Instant::now() + Duration::from_secs(90);
            while Instant::now() < deadline {
                let got = c.claim().await.expect("claim");
                assert!(got.len() <= 3, "at most one batch");
                if got.is_empty() {
                    if seen.lock().unwrap().len() >= TOTAL {
                        break;
                    }
                    c.idle().await;
                    continue;
                }
                for j in &got {
                    assert_eq!(j.payload_len, 512, "payload travels intact");
                    seen.lock().unwrap().push(j.seq);
                }
                assert!(c.complete(got).await.expect("complete").is_empty());
            }
        }));
    }
    for t in tasks.into_iter().chain(workers) {
        t.await.expect("task");
    }
    let seen = counts(std::mem::take(&mut *seen.lock().unwrap()));
    assert_eq!(seen.len(), TOTAL, "every job delivered");
    let dup: Vec<_> = seen.iter().filter(|(_, n)| **n != 1).collect();
    assert!(dup.is_empty(), "delivered more than once: {dup:?}");
    let st = q.state().await.expect("state");
    assert_eq!(
        (st.produced, st.completed),
        (TOTAL as u64, TOTAL as u64),
        "{st:?}"
    );
    assert_eq!((st.pending, st.in_flight), (0, 0), "{st:?}");
    assert_eq!(q.depth().await.expect("depth"), 0);
    let done = recorded_done(&q).await;
    assert_eq!(
        done,
        (first..first + TOTAL as i64).collect::<Vec<_>>(),
        "the queue's own record"
    );
}

/// An empty queue answers a claim with nothing: PostgreSQL at once, Valkey after its
/// BLOCK (100 ms in tests). The bound is 300× that: it catches a claim that hangs, not
/// a slow server on a loaded machine.
pub async fn an_empty_queue_answers(kind: QueueKind) {
    let (_, q) = prepared(kind, "empty", |_| {}).await;
    let mut c = q.consumer(0).await.expect("consumer");
    let t = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(30), c.claim())
        .await
        .expect("a claim on an empty queue returns")
        .expect("claim");
    assert!(got.is_empty(), "{} s", t.elapsed().as_secs_f64());
}

/// A worker dies holding a job: another gets it, when the design's recovery says.
pub async fn a_dead_workers_job_comes_back(kind: QueueKind) {
    // A lease of 1 s, or (a rollback design) one so long it cannot be what returned it.
    let lease_s = match recovery(kind) {
        Recovery::Lease | Recovery::Heartbeat => 1.0,
        Recovery::Rollback => 60.0,
    };
    let (_, q) = prepared(kind, "dead", |c| c.benchmark.recover_after(lease_s)).await;
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&jobs(0..1), false).await.expect("enqueue");
    // The lease begins on the server during the claim: never before this instant.
    let claim_sent = Instant::now();
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
        // The reaper runs as `work` runs it; a rollback design needs none.
        q.reap().await.expect("reap");
        let got = other.claim().await.expect("claim");
        if !got.is_empty() {
            break got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never redelivered"
        );
        other.idle().await;
    };
    assert_eq!(again[0].seq, 0);
    let waited = started.elapsed();
    match recovery(kind) {
        // Never before the 1-s lease ran out (an earlier redelivery would deliver the job
        // twice; a heartbeat design's worker beat last when it started, after
        // `claim_sent`); the 50 ms spare is the timer's rounding, not the machine's pace.
        Recovery::Lease | Recovery::Heartbeat => {
            let since = claim_sent.elapsed();
            assert!(
                since >= Duration::from_millis(950),
                "lease ignored ({since:?})"
            );
            assert_eq!(again[0].attempts, 2, "redelivery counted");
        }
        // Well before the 60-s lease: the rollback returned it.
        Recovery::Rollback => assert!(waited < Duration::from_secs(30), "{waited:?}"),
    }
    assert!(other.complete(again).await.expect("complete").is_empty());
    let st = q.state().await.expect("state");
    assert_eq!(
        (st.completed, st.pending, st.in_flight),
        (1, 0, 0),
        "{st:?}"
    );
}

pub async fn depth_is_exact_and_reset_empties(kind: QueueKind) {
    // One claim of three: a design that holds a claim in a transaction holds one at a
    // time. One worker: a design that fetches for every free worker slot (River) then
    // holds what it handed out, no more.
    let (_, q) = prepared(kind, "depth", |c| {
        c.benchmark.dequeue_batch = 3;
        c.benchmark.num_workers = qbench::config::Workers::one(1);
    })
    .await;
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&jobs(0..10), false).await.expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), 10);
    let mut c = q.consumer(0).await.expect("consumer");
    let held = c.claim().await.expect("claim");
    let n = held.len() as u64;
    assert!((1..=3).contains(&n), "one batch of at most 3, got {n}");
    assert_eq!(
        q.depth().await.expect("depth"),
        10,
        "in-flight jobs still count"
    );
    let st = q.state().await.expect("state");
    assert_eq!((st.pending, st.in_flight), (10 - n, n), "{st:?}");
    c.complete(held).await.expect("complete");
    assert_eq!(q.depth().await.expect("depth"), 10 - n);
    q.reset().await.expect("reset");
    assert_eq!(q.depth().await.expect("depth"), 0);
    assert_eq!(q.state().await.expect("state"), Default::default());
    // Setup again changes nothing and the queue still works.
    q.setup(false).await.expect("setup again");
    p.enqueue(&jobs(0..2), false).await.expect("enqueue");
    assert_eq!(q.depth().await.expect("depth"), 2);
}

/// Blocks of sequence numbers from concurrent producers never overlap, and a reset keeps
/// the counter: numbers stay unique across runs.
pub async fn sequence_blocks_are_unique(kind: QueueKind) {
    let (_, q) = prepared(kind, "seqblocks", |_| {}).await;
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
        "blocks overlap: {starts:?}"
    );
    let before = *starts.last().expect("blocks");
    q.reset().await.expect("reset");
    let after = q.allocate(1).await.expect("allocate after reset");
    assert!(
        after >= before + 100,
        "{after} reuses numbers below {}",
        before + 100
    );
}

/// An enqueue retried after an error of unknown outcome adds nothing twice, also when
/// the first copy was already claimed and completed.
pub async fn a_retried_enqueue_adds_nothing_twice(kind: QueueKind) {
    let (_, q) = prepared(kind, "retry", |c| c.benchmark.dequeue_batch = 10).await;
    let first = q.allocate(5).await.expect("allocate");
    let batch = jobs(first..first + 5);
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&batch, false).await.expect("enqueue");
    p.enqueue(&batch, true).await.expect("retry");
    assert_eq!(
        q.depth().await.expect("depth"),
        5,
        "the retry added nothing"
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
        "completed jobs are not added again"
    );
}

/// The queue read by seq: what is left (with its intended times) and what it completed.
pub async fn the_snapshot_names_jobs_by_seq(kind: QueueKind) {
    let (_, q) = prepared(kind, "snap", |c| c.benchmark.dequeue_batch = 2).await;
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
    let mut done: Vec<i64> = got.iter().map(|j| j.seq).collect();
    c.complete(got).await.expect("complete");
    done.sort_unstable();
    assert_eq!(recorded_done(&q).await, done);
    let mut left = q.snapshot().await.expect("snapshot").left;
    left.sort_unstable();
    let want: Vec<(i64, i64)> = batch
        .iter()
        .filter(|j| !done.contains(&j.seq))
        .map(|j| (j.seq, j.enqueued_at_us))
        .collect();
    assert_eq!(left, want);
}

/// A job a worker holds is its own until it completes: under a fenced lease, a completion
/// after the lease ran out (the reaper handed the job on) is refused and the job
/// completed once, by its new holder; unfenced, the first completion wins and the other
/// is refused; in a transaction, nobody else can take it, reaper or not.
pub async fn a_held_job_is_fenced(kind: QueueKind) {
    let (_, q) = prepared(kind, "fenced", |c| c.benchmark.recover_after(0.5)).await;
    let first = q.allocate(1).await.expect("allocate");
    let mut p = q.producer().await.expect("producer");
    p.enqueue(&jobs(first..first + 1), false)
        .await
        .expect("enqueue");
    let mut slow = q.consumer(0).await.expect("consumer");
    let held = slow.claim().await.expect("claim");
    assert_eq!(held.len(), 1);
    let mut other = q.consumer(1).await.expect("consumer");
    match recovery(kind) {
        Recovery::Lease => {
            let started = Instant::now();
            let again = loop {
                q.reap().await.expect("reap");
                let got = other.claim().await.expect("claim");
                if !got.is_empty() {
                    break got;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "never redelivered"
                );
                other.idle().await;
            };
            let late = slow.complete(held).await.expect("complete");
            let taken = other.complete(again).await.expect("complete");
            if kind.info().fenced {
                assert_eq!(late, vec![first], "the late completion is refused");
                assert!(taken.is_empty(), "the new holder completes it");
            } else {
                // Unfenced (pgmq): the first completion wins, late or not.
                assert!(late.is_empty(), "the late completion is accepted");
                assert_eq!(taken, vec![first], "the new holder's is refused");
            }
        }
        // A worker that still beats (the holder's process is alive) keeps its job.
        Recovery::Rollback | Recovery::Heartbeat => {
            // Longer than any recovery timeout `recover_after(0.5)` sets (a heartbeat's
            // is at least 2 s), reaping all along, the job is still the holder's alone.
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                q.reap().await.expect("reap");
                assert!(
                    other.claim().await.expect("claim").is_empty(),
                    "taken while held"
                );
                other.idle().await;
            }
            assert!(slow.complete(held).await.expect("complete").is_empty());
        }
    }
    let st = q.state().await.expect("state");
    assert_eq!(
        (st.completed, st.pending, st.in_flight),
        (1, 0, 0),
        "{st:?}"
    );
    assert_eq!(recorded_done(&q).await, vec![first], "completed once");
}

/// Producer and workers in one process (as run-suite runs them): a job removed behind
/// the workers' back (the design's own hook) is named lost by the exact audit.
pub async fn a_removed_job_is_named_lost_in_one_process(kind: QueueKind) {
    let (cfg, q) = prepared(kind, "lost1", |_| {}).await;
    let remover = {
        let q = q.clone();
        tokio::spawn(async move {
            // Workers are slow (2 × 100 ms): once all 40 jobs are in, late ones wait.
            until(&q, "filled", |s| s.produced >= 40 && s.pending >= 5).await;
            q.remove_waiting_job()
                .await
                .expect("remove")
                .expect("a waiting job")
        })
    };
    let report = qbench::workload::run(common::quiet_spec(
        "lost1",
        Arc::clone(&q),
        &cfg,
        qbench::workload::producer::ProducePlan {
            rate: Some(100.0),
            count: Some(40),
            duration: None,
            connections: 2,
            max_batch: 50,
        },
        qbench::workload::worker::WorkPlan {
            workers: 2,
            processing: Duration::from_millis(100),
        },
    ))
    .await
    .expect("run");
    let removed = remover.await.expect("remover");
    let s = &report.summary;
    assert_eq!((s.produced, s.completed), (Some(40), Some(39)), "{s:?}");
    assert_eq!((s.lost, s.duplicated), (Some(1), Some(0)), "{s:?}");
    assert_eq!(
        report.lost.iter().collect::<Vec<_>>(),
        vec![removed],
        "the removed job, by its seq"
    );
    assert!(
        report.warnings.iter().any(|w| w.contains("LOST")),
        "{:?}",
        report.warnings
    );
}
