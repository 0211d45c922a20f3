//! The audit verdict of a finished test, by identity, and the warnings it owes the user.

use std::sync::Arc;
use std::time::Duration;

use super::load::Done;
use crate::format::audit::{
    judge, AuditFile, AuditKind, Evidence, Judgement, QueueSnapshot, SeqSet,
};
use crate::format::durability::Tier;
use crate::format::metrics::{Errors, Outage};
use crate::queue::{Queue, ServerInfo, Snapshot};

/// How long reading the queue by seq at the end may take before the verdict gives up
/// (inconclusive, never lost).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(60);

/// The queue by seq when the test ended, or why it could not be read. Only a process
/// that ran workers looks: a producer alone leaves the judging to them.
pub async fn snapshot(queue: &Arc<dyn Queue>, done: &Done) -> Option<Result<Snapshot, String>> {
    done.state.as_ref()?;
    Some(
        match tokio::time::timeout(SNAPSHOT_TIMEOUT, queue.snapshot()).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!(
                "it took longer than {} s",
                SNAPSHOT_TIMEOUT.as_secs()
            )),
        },
    )
}

/// This process's audit file: what it produced, completed and saw left.
/// The moments the audit file records, on qbench's clock, µs since the epoch.
pub struct LookTimes {
    /// The load had stopped: every acknowledgement was in hand.
    pub stopped_us: i64,
    /// The look at the queue began.
    pub looked_at_us: i64,
}

pub fn audit_file(
    test: &str,
    run_id: &str,
    done: &Done,
    snap: Option<&Result<Snapshot, String>>,
    times: LookTimes,
) -> AuditFile {
    let mut f = AuditFile::new(test, run_id);
    let at_epoch_s = times.looked_at_us as f64 / 1e6;
    if let Some(o) = &done.outcome {
        f.produced = Some(o.produced_seqs.clone());
        f.produced_until_epoch_s = Some(times.stopped_us as f64 / 1e6);
        f.uncertain = Some(o.uncertain.clone());
    }
    if let Some(s) = &done.state {
        f.completed = Some(s.audit.completed());
        f.completed_again = s.audit.completed_again();
        f.late = Some(s.audit.late_set());
    }
    match snap {
        Some(Ok(s)) => {
            f.snapshot = Some(QueueSnapshot {
                at_epoch_s,
                left: SeqSet::from_unsorted(s.left.iter().map(|&(seq, _)| seq).collect()),
                completed: SeqSet::from_unsorted(s.completed.clone()),
                completions_unrecorded: s.completions_unrecorded,
            })
        }
        Some(Err(why)) => f.snapshot_error = Some(why.clone()),
        None => {}
    }
    f
}

/// The verdict over this process's own file.
pub fn judge_file(f: &AuditFile) -> Judgement {
    let snapshot = match (&f.snapshot, &f.snapshot_error) {
        (Some(s), _) => Some(Ok(s)),
        (None, Some(why)) => Some(Err(why.clone())),
        (None, None) => None,
    };
    let e = Evidence {
        produced: f.produced.iter().collect(),
        uncertain: f.uncertain.iter().collect(),
        completed: f.completed.iter().collect(),
        completed_again: vec![&f.completed_again[..]],
        late: f.late.iter().collect(),
        snapshot,
    };
    judge(&e)
}

/// What the run's end looked like, for the warnings.
pub struct Ending<'a> {
    pub interrupted: bool,
    pub drain_timed_out: bool,
    pub outages: &'a [Outage],
    pub errors: &'a Errors,
    pub server: Option<&'a ServerInfo>,
    /// Epoch seconds at which the test started (outages are told relative to it).
    pub started_epoch_s: f64,
}

/// Everything the verdict and the end of the run owe the user, in plain words.
pub fn warnings(queue: &Arc<dyn Queue>, j: &Judgement, end: &Ending<'_>) -> Vec<String> {
    let mut w = vec![];
    if !j.lost.is_empty() {
        w.push(format!(
            "{} job(s) LOST: produced and acknowledged, never completed and not in the queue (seqs {:?}{})",
            j.lost.len(),
            j.lost.first(10),
            if j.lost.len() > 10 { " …" } else { "" }
        ));
    }
    if j.kind == AuditKind::Inconclusive {
        w.push(format!(
            "the audit is inconclusive: {}",
            j.note.as_deref().unwrap_or("unknown")
        ));
    }
    if j.left > 0 && !end.interrupted {
        w.push(format!(
            "{} job(s) were still in the queue when the test ended{}: recorded at their age as censored samples (e2e_censored), so the latencies do not leave them out",
            j.left,
            if end.drain_timed_out { " (drain timeout reached)" } else { "" }
        ));
    }
    if !j.duplicated.is_empty() {
        w.push(format!(
            "{} job(s) were completed more than once (seqs {:?})",
            j.duplicated.len(),
            j.duplicated
                .iter()
                .take(10)
                .map(|d| d.0)
                .collect::<Vec<_>>()
        ));
    }
    if j.late > 0 {
        w.push(format!(
            "{} completion(s) were refused because the job had been handed to another worker or completed already: the work was done twice and completed once; in a design with a lease, one (visibility_timeout_s) longer than a batch's work avoids it",
            j.late
        ));
    }
    if j.foreign > 0 {
        w.push(format!(
            "{} completed or queued job(s) were not produced by this test: an earlier run's jobs were still in the queue; reset it (setup-schema --reset) before a test",
            j.foreign
        ));
    }
    outage_warnings(queue, j.lost.len(), end, &mut w);
    let e = end.errors;
    if e.producer + e.worker + e.reaper > 0 {
        w.push(format!(
            "errors during the run: producer {}, workers {}, reaper {}",
            e.producer, e.worker, e.reaper
        ));
    }
    w
}

/// When the server was unreachable, and what a restart of it took with it.
fn outage_warnings(
    queue: &Arc<dyn Queue>,
    lost: u64,
    end: &Ending<'_>,
    warnings: &mut Vec<String>,
) {
    for o in end.outages {
        let at = |e: f64| e - end.started_epoch_s;
        warnings.push(format!(
            "the server was unreachable or failing from t={:.1} s to {} ({} failed calls); producer and workers reconnected",
            at(o.start_epoch_s),
            o.end_epoch_s.map_or("the end of the test".into(), |e| format!("t={:.1} s", at(e))),
            o.errors
        ));
    }
    if end.outages.is_empty() || lost == 0 {
        return;
    }
    let server = queue.server().backend().title();
    let durability = end.server.and_then(|s| s.durability.as_ref());
    warnings.push(match durability.map(|d| (d, d.tier())) {
        Some((d, Tier::Volatile)) => format!(
            "{lost} job(s) were lost while {server} was unreachable: it runs without persistence ({d}), so a restart drops what it held; the server lost them, not qbench"
        ),
        Some((d, Tier::Relaxed)) => format!(
            "{lost} job(s) were lost while {server} was unreachable: it does not sync every write ({d}), so a crash can drop its last acknowledged jobs"
        ),
        Some((d, Tier::Strict)) => format!(
            "{lost} job(s) were lost while {server} was unreachable although it syncs every write ({d}): that is a real loss, not the server's settings"
        ),
        None => format!(
            "{lost} job(s) were lost while {server} was unreachable (persistence settings unknown): jobs it held when it went down did not survive its restart"
        ),
    });
}

/// Workers that waited for NOTIFYs that never came: the producer did not notify (another
/// process run with `--wakeup poll`), so every pickup fell back to the slow poll. A
/// burn-down (`prefilled`) owes none: its jobs were all there before its workers started.
pub fn silent_notify(s: &crate::format::metrics::Summary, prefilled: bool) -> Option<String> {
    let w = s.wakeup.as_ref()?;
    let woke = w.mode == "notify" && w.notifications_received == Some(0);
    (woke && !prefilled && s.completed.unwrap_or(0) > 0 && s.produced.is_none()).then(|| {
        "wakeup = notify, but no notification arrived while jobs were completed: the producer did not NOTIFY (run it with --wakeup notify too), so idle workers only looked at their fallback poll (10 × poll_interval_ms; a library design's own poll interval)".to_string()
    })
}
