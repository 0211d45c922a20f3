//! The audit by identity across every process of a test: the producers' acknowledged
//! seqs, every worker's completions, and the queue as the last process to end saw it.

use super::load::Part;
use crate::format::audit::{judge, AuditKind, Evidence, Judgement};

/// The part whose look at the queue came last: its snapshot is the end of the test.
pub fn last_look(parts: &[Part]) -> Option<usize> {
    parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.audit.snapshot.as_ref()?.at_epoch_s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

fn epoch_s(rfc3339: &str) -> Option<f64> {
    humantime::parse_rfc3339(rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

pub fn merge(parts: &[Part], last: Option<usize>) -> Judgement {
    let files: Vec<_> = parts.iter().map(|p| &p.audit).collect();
    let failed = files.iter().find_map(|f| f.snapshot_error.clone());
    let snapshot = match (last, failed) {
        (Some(i), _) => files[i].snapshot.as_ref().map(Ok),
        (None, Some(why)) => Some(Err(why)),
        (None, None) => None,
    };
    let e = Evidence {
        produced: files.iter().filter_map(|f| f.produced.as_ref()).collect(),
        uncertain: files.iter().filter_map(|f| f.uncertain.as_ref()).collect(),
        completed: files.iter().filter_map(|f| f.completed.as_ref()).collect(),
        completed_again: files.iter().map(|f| &f.completed_again[..]).collect(),
        late: files.iter().filter_map(|f| f.late.as_ref()).collect(),
        snapshot,
    };
    let j = judge(&e);
    // A producer that went on after the last look put jobs nobody saw: not lost, unknown.
    let seen_at = last
        .and_then(|i| files[i].snapshot.as_ref())
        .map(|s| s.at_epoch_s);
    let late_producer = parts.iter().find(|p| {
        p.audit.produced.is_some()
            && seen_at
                .zip(epoch_s(&p.manifest.ended_at))
                .is_some_and(|(seen, end)| end > seen)
    });
    match late_producer {
        Some(p) if j.kind == AuditKind::Exact => Judgement {
            kind: AuditKind::Inconclusive,
            lost: Default::default(),
            note: Some(format!(
                "the producer {} went on after the last worker looked at the queue; end the workers last",
                p.manifest.instance.as_deref().unwrap_or(&p.manifest.test)
            )),
            ..j
        },
        _ => j,
    }
}
