//! The per-design test set: every design in the registry (`QueueKind::ALL`) runs every
//! test below, on real servers. A new design is covered by its registry line alone:
//! what a test needs to know of a design comes from its registry facts
//! (`DesignInfo::recovery`) and its `Queue` hooks (`remove_waiting_job`, `snapshot`),
//! never from SQL or commands written here.
//!
//! Run one design with `cargo test --test designs -- skip_locked::` (test names are
//! `DESIGN::TEST`).

mod common;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use qbench::config::Config;
use qbench::queue::registry::Recovery;
use qbench::queue::{self, NewJob, Queue, QueueKind};

#[path = "designs/contract.rs"]
mod contract;
#[path = "designs/processes.rs"]
mod processes;

/// One test of the set: its name and what it checks of a design.
type Test = fn(QueueKind) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>;

macro_rules! tests {
    ($($module:ident :: $test:ident),+ $(,)?) => {
        &[$((stringify!($test), |k| Box::pin($module::$test(k)))),+]
    };
}

/// Every test, in the order they are listed (each runs for every design).
const SET: &[(&str, Test)] = tests![
    contract::exactly_once_under_concurrency,
    contract::an_empty_queue_answers,
    contract::a_dead_workers_job_comes_back,
    contract::depth_is_exact_and_reset_empties,
    contract::sequence_blocks_are_unique,
    contract::a_retried_enqueue_adds_nothing_twice,
    contract::the_snapshot_names_jobs_by_seq,
    contract::a_held_job_is_fenced,
    contract::a_removed_job_is_named_lost_in_one_process,
    processes::produce_and_work_processes_are_exact,
    processes::a_removed_job_is_named_lost_across_processes,
    processes::kill9_of_a_worker_loses_nothing,
    processes::a_strict_crash_loses_nothing,
    processes::bad_input_is_one_line_and_exit_2,
];

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // The tests wait on servers and child processes far more than they compute.
    args.test_threads.get_or_insert(4);
    let trials = QueueKind::ALL
        .iter()
        .flat_map(|&kind| {
            SET.iter().map(move |&(name, test)| {
                Trial::test(format!("{kind}::{name}"), move || run(kind, test))
            })
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// Runs one test on a runtime of its own; a panic is the test's failure, with its message.
fn run(kind: QueueKind, test: Test) -> Result<(), Failed> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failed::from(format!("runtime: {e}")))?;
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| rt.block_on(test(kind))));
    rt.shutdown_background();
    result.map_err(|p| {
        let msg = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panicked".into());
        Failed::from(format!("{kind}: {msg}"))
    })
}

/// A config of the shared servers with a database and stream of this test's own, the
/// design set up and emptied.
async fn prepared(
    kind: QueueKind,
    test: &str,
    tweak: impl FnOnce(&mut Config),
) -> (Config, Arc<dyn Queue>) {
    let mut cfg = common::config(&format!("{test}_{}", kind.name())).await;
    tweak(&mut cfg);
    let q = queue::open(kind, &cfg).await.expect("open queue");
    q.setup(true).await.expect("setup");
    (cfg, q)
}

/// Jobs with these seqs, intended at a fixed time plus their seq.
fn jobs(range: std::ops::Range<i64>) -> Vec<NewJob> {
    range
        .map(|seq| NewJob {
            seq,
            enqueued_at_us: 1_700_000_000_000_000 + seq,
        })
        .collect()
}

/// Waits (polling the queue, never a fixed sleep) until `ready` holds of its state.
async fn until(q: &Arc<dyn Queue>, what: &str, ready: impl Fn(&queue::QueueState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let st = q.state().await.expect("state");
        if ready(&st) {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `qbench --config CFG --quiet ARGS`, in the background.
fn spawn(cfg: &Path, args: &[&str]) -> Child {
    common::spawn_quiet(cfg, args)
}

/// Completed seqs as the queue itself recorded them, sorted, duplicates kept.
async fn recorded_done(q: &Arc<dyn Queue>) -> Vec<i64> {
    let mut done = q.snapshot().await.expect("snapshot").completed;
    done.sort_unstable();
    done
}

/// How often each seq was seen.
fn counts(seqs: impl IntoIterator<Item = i64>) -> HashMap<i64, u32> {
    let mut m = HashMap::new();
    for s in seqs {
        *m.entry(s).or_default() += 1;
    }
    m
}

fn recovery(kind: QueueKind) -> Recovery {
    kind.info().recovery
}
