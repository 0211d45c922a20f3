//! The audit by identity across every process of a test: the producers' acknowledged
//! seqs, every worker's completions, and the queue as the last process to end saw it.

use super::load::Part;
use crate::format::audit::{judge, AuditKind, Evidence, Judgement};

/// The part whose look at the queue came last: its snapshot is the end of the test.
pub fn last_look(parts: &[Part]) -> Option<usize> {
    parts
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, on_server(p, p.audit.snapshot.as_ref()?.at_epoch_s).0)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// A time on a process's clock moved to the queue server's clock, with how far off it
/// may be (half the offset reading's round trip; a second when the offset is unknown).
fn on_server(p: &Part, epoch_s: f64) -> (f64, f64) {
    match p.manifest.clock {
        Some(c) => (epoch_s + c.offset_ms / 1e3, c.rtt_ms / 2e3),
        None => (epoch_s, 1.0),
    }
}

fn epoch_s(rfc3339: &str) -> Option<f64> {
    humantime::parse_rfc3339(rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// Whether the producer of `p` may have had a job acknowledged after the last look
/// began, with both times on the server's clock and their uncertainty as margin.
fn produced_after(p: &Part, look: &Part, seen_epoch_s: f64) -> bool {
    let Some(end) = p
        .audit
        .produced_until_epoch_s
        .or_else(|| epoch_s(&p.manifest.ended_at))
    else {
        return true;
    };
    let (end, e1) = on_server(p, end);
    let (seen, e2) = on_server(look, seen_epoch_s);
    // 10 ms more for the clock's own drift over a run.
    end + e1 + e2 + 0.01 >= seen
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
    let late_producer = last.zip(seen_at).and_then(|(i, seen)| {
        // A process's own producer stopped before it looked: program order, no clocks.
        parts.iter().enumerate().find_map(|(j, p)| {
            (j != i && p.audit.produced.is_some() && produced_after(p, &parts[i], seen))
                .then_some(p)
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::audit::AuditKind;

    fn parts() -> Vec<Part> {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/two_workers");
        let mut folder = super::super::load::read_folder(&dir).expect("fixture");
        folder.tests.remove(0).parts
    }

    fn verdict(parts: &[Part]) -> AuditKind {
        merge(parts, last_look(parts)).kind
    }

    /// A producer acknowledged after the last look is unknown, not lost; which came
    /// first is judged on the server's clock, so a producer host whose clock runs
    /// ahead does not make an exact audit look late, nor one behind hide a late one.
    #[test]
    fn a_producer_after_the_last_look_is_judged_on_the_servers_clock() {
        let mut p = parts();
        assert_eq!(verdict(&p), AuditKind::Exact);
        let seen = p[last_look(&p).expect("a look")]
            .audit
            .snapshot
            .as_ref()
            .expect("snapshot")
            .at_epoch_s;
        let producer = p
            .iter()
            .position(|x| x.audit.produced.is_some())
            .expect("producer");
        // Acknowledged 5 ms before the look began: inside the margin, unknown.
        p[producer].audit.produced_until_epoch_s = Some(seen - 0.005);
        assert_eq!(verdict(&p), AuditKind::Inconclusive);
        // 2 s after the look by its own clock, but that clock is 3 s ahead of the
        // server's: on the server's clock it stopped a second before the look.
        p[producer].audit.produced_until_epoch_s = Some(seen + 2.0);
        assert_eq!(verdict(&p), AuditKind::Inconclusive);
        p[producer].manifest.clock = Some(crate::format::manifest::ClockOffset {
            offset_ms: -3000.0,
            rtt_ms: 0.2,
        });
        assert_eq!(verdict(&p), AuditKind::Exact);
        // A second before the look by its clock, which runs 3 s behind: late.
        p[producer].audit.produced_until_epoch_s = Some(seen - 1.0);
        p[producer].manifest.clock = Some(crate::format::manifest::ClockOffset {
            offset_ms: 3000.0,
            rtt_ms: 0.2,
        });
        let j = merge(&p, last_look(&p));
        assert_eq!(j.kind, AuditKind::Inconclusive);
        assert!(j.lost.is_empty(), "never counted lost");
    }
}
