//! The audit verdict of a finished test, and the warnings it owes the user.

use std::sync::Arc;

use super::audit::AuditReport;
use super::load::Done;
use crate::format::durability::Tier;
use crate::format::metrics::{AuditKind, Errors, Outage, QueueState};
use crate::queue::{Queue, ServerInfo};

pub struct Verdict {
    pub kind: AuditKind,
    pub report: Option<AuditReport>,
    pub queue_state: Option<QueueState>,
    pub warnings: Vec<String>,
}

/// What the run's end looked like, for the verdict.
pub struct Ending<'a> {
    pub depth: Option<u64>,
    pub interrupted: bool,
    pub drain_timed_out: bool,
    pub outages: &'a [Outage],
    pub errors: &'a Errors,
    pub server: Option<&'a ServerInfo>,
    /// Epoch seconds at which the test started (outages are told relative to it).
    pub started_epoch_s: f64,
}

/// Audits the test: exact when this process both produced and worked, from the queue's
/// own counts when it only worked, not at all when it only produced.
pub async fn judge(queue: &Arc<dyn Queue>, done: &Done, end: &Ending<'_>) -> Verdict {
    let mut warnings = vec![];
    let (kind, report, queue_state) = match (&done.outcome, &done.state) {
        (Some(o), Some(s)) => {
            let mut r = s.audit.report(o.taken, end.depth.unwrap_or(0));
            r.lost = r.lost.saturating_sub(o.unsent);
            if r.lost > 0 {
                let missing = s.audit.missing(o.taken, 10);
                warnings.push(format!(
                    "{} job(s) LOST: produced and never completed, not in the queue (first seqs: {missing:?})",
                    r.lost
                ));
            }
            (AuditKind::Exact, Some(r), None)
        }
        (None, Some(s)) => {
            let qs = queue.state().await.ok();
            let mut r = s.audit.report(0, 0);
            if let Some(q) = qs {
                r.left_in_queue = q.pending + q.in_flight;
                r.lost = q.produced.saturating_sub(q.completed + r.left_in_queue);
                if r.lost > 0 {
                    warnings.push(format!(
                        "{} job(s) LOST according to the queue: produced {}, completed {}, still queued {}",
                        r.lost, q.produced, q.completed, r.left_in_queue
                    ));
                }
            }
            (AuditKind::QueueState, Some(r), qs)
        }
        _ => (AuditKind::None, None, None),
    };
    if let Some(r) = &report {
        left_and_duplicated(r, end, &mut warnings);
    }
    outage_warnings(queue, report.as_ref(), end, &mut warnings);
    let e = end.errors;
    if e.producer + e.worker + e.reaper > 0 {
        warnings.push(format!(
            "errors during the run: producer {}, workers {}, reaper {}",
            e.producer, e.worker, e.reaper
        ));
    }
    Verdict {
        kind,
        report,
        queue_state,
        warnings,
    }
}

fn left_and_duplicated(r: &AuditReport, end: &Ending<'_>, warnings: &mut Vec<String>) {
    if r.left_in_queue > 0 && !end.interrupted {
        warnings.push(format!(
            "{} job(s) were still in the queue when the test ended{}",
            r.left_in_queue,
            if end.drain_timed_out {
                " (drain timeout reached)"
            } else {
                ""
            }
        ));
    }
    if r.duplicated > 0 {
        warnings.push(format!(
            "{} job(s) were completed more than once ({} extra completions)",
            r.duplicated, r.extra_completions
        ));
    }
}

/// When the server was unreachable, and what a restart of it took with it.
fn outage_warnings(
    queue: &Arc<dyn Queue>,
    report: Option<&AuditReport>,
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
    let lost = report.map_or(0, |r| r.lost);
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
