//! `TEST_audit.json`: which jobs, by sequence number, a process produced, completed and
//! saw left in the queue. `analyze` merges these files exactly across processes and hosts.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Result;
use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::read::{bad, parse_json, read_text};
use super::FORMAT_VERSION;

pub const AUDIT_FORMAT: &str = "qbench.audit";

/// A set of sequence numbers. On disk: the smallest, the count, and a deflated bitmap
/// from the smallest to the largest, in base64 — a dense run of a million seqs is a few
/// hundred bytes, a scattered one an eighth of a byte per number spanned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    /// Sorted, without repeats.
    seqs: Vec<i64>,
}

impl SeqSet {
    pub fn new() -> SeqSet {
        SeqSet::default()
    }

    /// From numbers in any order, repeats allowed.
    pub fn from_unsorted(mut seqs: Vec<i64>) -> SeqSet {
        seqs.sort_unstable();
        seqs.dedup();
        SeqSet { seqs }
    }

    pub fn len(&self) -> u64 {
        self.seqs.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.seqs.is_empty()
    }

    pub fn contains(&self, seq: i64) -> bool {
        self.seqs.binary_search(&seq).is_ok()
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.seqs.iter().copied()
    }

    pub fn first(&self, n: usize) -> Vec<i64> {
        self.seqs.iter().take(n).copied().collect()
    }

    pub fn union(&self, o: &SeqSet) -> SeqSet {
        let mut v = Vec::with_capacity(self.seqs.len() + o.seqs.len());
        let (mut a, mut b) = (self.seqs.iter().peekable(), o.seqs.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) if x < y => {
                    v.push(x);
                    a.next();
                }
                (Some(&&x), Some(&&y)) if y < x => {
                    v.push(y);
                    b.next();
                }
                (Some(&&x), Some(_)) => {
                    v.push(x);
                    a.next();
                    b.next();
                }
                (Some(&&x), None) => {
                    v.push(x);
                    a.next();
                }
                (None, Some(&&y)) => {
                    v.push(y);
                    b.next();
                }
                (None, None) => break,
            }
        }
        SeqSet { seqs: v }
    }

    /// The numbers of `self` that are not in `o`.
    pub fn minus(&self, o: &SeqSet) -> SeqSet {
        SeqSet {
            seqs: self
                .seqs
                .iter()
                .copied()
                .filter(|s| !o.contains(*s))
                .collect(),
        }
    }

    /// The numbers in both.
    pub fn and(&self, o: &SeqSet) -> SeqSet {
        SeqSet {
            seqs: self
                .seqs
                .iter()
                .copied()
                .filter(|s| o.contains(*s))
                .collect(),
        }
    }

    fn encode(&self) -> std::io::Result<String> {
        let (Some(&lo), Some(&hi)) = (self.seqs.first(), self.seqs.last()) else {
            return Ok(String::new());
        };
        let span = (hi - lo) as usize + 1;
        let mut bytes = vec![0u8; span.div_ceil(8)];
        for &s in &self.seqs {
            let i = (s - lo) as usize;
            bytes[i / 8] |= 1 << (i % 8);
        }
        let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&bytes)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(z.finish()?))
    }

    fn decode(lo: i64, n: u64, bits: &str) -> Result<SeqSet, String> {
        if n == 0 {
            return Ok(SeqSet::new());
        }
        let raw = base64::engine::general_purpose::STANDARD
            .decode(bits)
            .map_err(|e| format!("bits are not base64: {e}"))?;
        let mut bytes = Vec::new();
        flate2::read::DeflateDecoder::new(&raw[..])
            .take(1 << 30)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("bits are not deflated: {e}"))?;
        let mut seqs = Vec::with_capacity(n as usize);
        for (i, b) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if b & (1 << bit) != 0 {
                    seqs.push(lo + (i * 8 + bit) as i64);
                }
            }
        }
        if seqs.len() as u64 != n || seqs.first() != Some(&lo) {
            return Err(format!(
                "bits hold {} numbers from {:?}, the header says {n} from {lo}",
                seqs.len(),
                seqs.first()
            ));
        }
        Ok(SeqSet { seqs })
    }
}

#[derive(Serialize, Deserialize)]
struct SeqSetFile {
    lo: i64,
    n: u64,
    bits: String,
}

impl Serialize for SeqSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bits = self.encode().map_err(serde::ser::Error::custom)?;
        SeqSetFile {
            lo: self.seqs.first().copied().unwrap_or(0),
            n: self.len(),
            bits,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeqSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SeqSet, D::Error> {
        let f = SeqSetFile::deserialize(d)?;
        SeqSet::decode(f.lo, f.n, &f.bits).map_err(serde::de::Error::custom)
    }
}

/// What the queue held, by sequence number, when a worker process ended.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueueSnapshot {
    /// When it was read, seconds since the epoch.
    pub at_epoch_s: f64,
    /// Jobs still pending or in flight.
    pub left: SeqSet,
    /// Jobs the queue itself records as completed (rows marked completed, the archive,
    /// or Valkey's completion bitmap): catches completions of a process killed before it
    /// wrote its own file.
    pub completed: SeqSet,
}

/// One process's `TEST_audit.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditFile {
    pub format: String,
    pub version: u32,
    pub test: String,
    /// The same id as this process's manifest: a file from another run is refused.
    pub run_id: String,
    /// Jobs the server acknowledged to this process's producer.
    pub produced: Option<SeqSet>,
    /// Jobs sent, then given up on after an error with no acknowledgement: they may or
    /// may not be in the queue, so they are never counted lost.
    pub uncertain: Option<SeqSet>,
    /// Jobs this process's workers completed (the queue accepted the completion).
    pub completed: Option<SeqSet>,
    /// `[seq, times]`: jobs this process's workers completed more than once.
    pub completed_again: Vec<(i64, u32)>,
    /// Completions the queue refused because the lease had expired (another worker had,
    /// or would, take the job): work done twice, completed once.
    pub late: Option<SeqSet>,
    /// The queue when the process ended; `None` with `snapshot_error` if it could not be read.
    pub snapshot: Option<QueueSnapshot>,
    pub snapshot_error: Option<String>,
}

impl AuditFile {
    pub fn new(test: &str, run_id: &str) -> AuditFile {
        AuditFile {
            format: AUDIT_FORMAT.into(),
            version: FORMAT_VERSION,
            test: test.into(),
            run_id: run_id.into(),
            produced: None,
            uncertain: None,
            completed: None,
            completed_again: vec![],
            late: None,
            snapshot: None,
            snapshot_error: None,
        }
    }
}

/// How the audit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// Every sequence number produced was found completed or still in the queue, or is
    /// named lost: producer records, worker records and the queue's own all at hand.
    Exact,
    /// A work process alone does not know what was produced: `qbench analyze` judges,
    /// over every process's audit file of the test.
    Deferred,
    /// Something needed was unknown (the queue could not be read at the end, or jobs were
    /// produced after the last look at it): never reported as lost.
    Inconclusive,
    /// A producer alone: nothing to audit yet.
    None,
}

/// Everything the verdict is drawn from; each process contributes what it knows.
#[derive(Default)]
pub struct Evidence<'a> {
    pub produced: Vec<&'a SeqSet>,
    pub uncertain: Vec<&'a SeqSet>,
    /// One set per worker process.
    pub completed: Vec<&'a SeqSet>,
    pub completed_again: Vec<&'a [(i64, u32)]>,
    pub late: Vec<&'a SeqSet>,
    /// The queue at the end, or why it is not known.
    pub snapshot: Option<Result<&'a QueueSnapshot, String>>,
}

/// The verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub kind: AuditKind,
    /// Produced, acknowledged, and neither completed nor in the queue (`Exact` only).
    pub lost: SeqSet,
    /// `(seq, completions)` for jobs completed more than once, across all processes.
    pub duplicated: Vec<(i64, u32)>,
    /// Jobs of this test still in the queue at the end.
    pub left: u64,
    pub late: u64,
    /// Completed or left jobs this test never produced (an earlier run's leftovers).
    pub foreign: u64,
    pub uncertain: u64,
    /// Why the verdict is inconclusive or deferred.
    pub note: Option<String>,
}

/// Merges the evidence by identity: lost = produced − (completed by anyone ∪ left);
/// duplicated = completed more than once, within or across processes.
pub fn judge(e: &Evidence<'_>) -> Judgement {
    let union = |sets: &[&SeqSet]| sets.iter().fold(SeqSet::new(), |a, b| a.union(b));
    let produced = union(&e.produced);
    let uncertain = union(&e.uncertain);
    let mut by_workers = SeqSet::new();
    let mut counts: HashMap<i64, u32> = HashMap::new();
    for c in &e.completed {
        for s in by_workers.and(c).iter() {
            *counts.entry(s).or_insert(1) += 1;
        }
        by_workers = by_workers.union(c);
    }
    for again in &e.completed_again {
        for &(s, n) in again.iter() {
            *counts.entry(s).or_insert(1) += n.saturating_sub(1);
        }
    }
    let mut duplicated: Vec<(i64, u32)> = counts.into_iter().collect();
    duplicated.sort_unstable();
    let late = e.late.iter().map(|l| l.len()).sum();
    let ours = produced.union(&uncertain);
    let base = Judgement {
        kind: AuditKind::None,
        lost: SeqSet::new(),
        duplicated,
        left: 0,
        late,
        foreign: by_workers.minus(&ours).len(),
        uncertain: uncertain.len(),
        note: None,
    };
    let snapshot = match &e.snapshot {
        None if e.completed.is_empty() => return base,
        None => {
            return Judgement {
                kind: AuditKind::Inconclusive,
                note: Some("no worker read the queue when it ended".into()),
                ..base
            }
        }
        Some(Err(why)) => {
            return Judgement {
                kind: AuditKind::Inconclusive,
                note: Some(format!("the queue could not be read at the end: {why}")),
                ..base
            }
        }
        Some(Ok(s)) => s,
    };
    let foreign = by_workers.union(&snapshot.left).minus(&ours).len();
    if e.produced.is_empty() {
        return Judgement {
            kind: AuditKind::Deferred,
            left: snapshot.left.len(),
            foreign: 0,
            note: Some(
                "what was produced is in the producers' audit files: `qbench analyze` over the folder judges".into(),
            ),
            ..base
        };
    }
    let done = by_workers.union(&snapshot.completed);
    Judgement {
        kind: AuditKind::Exact,
        lost: produced.minus(&done).minus(&snapshot.left),
        left: snapshot.left.and(&ours).len(),
        foreign,
        ..base
    }
}

/// Reads an audit file and checks that it belongs to the run its manifest names.
pub fn read_audit(path: &Path, run_id: &str) -> Result<AuditFile> {
    let text = read_text(path)?;
    let v: serde_json::Value = parse_json(path, &text)?;
    if v["format"] != AUDIT_FORMAT || v["version"].as_u64() != Some(u64::from(FORMAT_VERSION)) {
        return Err(bad(
            path,
            format!(
                "is not a {AUDIT_FORMAT} file of version {FORMAT_VERSION}; analyze it with the qbench that wrote it"
            ),
        ));
    }
    let a: AuditFile = parse_json(path, &text)?;
    if a.run_id != run_id {
        return Err(bad(
            path,
            format!(
                "belongs to run {} but its manifest to run {run_id}: the file is left over from another run; re-run the test or remove the stale file",
                a.run_id
            ),
        ));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_round_trip_and_combine() {
        let a = SeqSet::from_unsorted(vec![5, 1, 3, 3, 1_000_000]);
        let text = serde_json::to_string(&a).expect("ser");
        let back: SeqSet = serde_json::from_str(&text).expect("de");
        assert_eq!(a, back);
        let dense = SeqSet::from_unsorted((1_000..1_001_000).collect());
        let text = serde_json::to_string(&dense).expect("ser");
        assert!(
            text.len() < 2_000,
            "a dense million is small: {}",
            text.len()
        );
        assert_eq!(serde_json::from_str::<SeqSet>(&text).expect("de"), dense);
        let b = SeqSet::from_unsorted(vec![3, 4]);
        assert_eq!(
            a.union(&b).iter().collect::<Vec<_>>(),
            [1, 3, 4, 5, 1_000_000]
        );
        assert_eq!(a.minus(&b).iter().collect::<Vec<_>>(), [1, 5, 1_000_000]);
        assert_eq!(a.and(&b).iter().collect::<Vec<_>>(), [3]);
        let empty: SeqSet =
            serde_json::from_str(&serde_json::to_string(&SeqSet::new()).expect("ser")).expect("de");
        assert!(empty.is_empty());
    }

    fn set(v: &[i64]) -> SeqSet {
        SeqSet::from_unsorted(v.to_vec())
    }

    #[test]
    fn losses_are_named_by_identity_and_never_cancelled_by_extras() {
        let produced = set(&[1, 2, 3, 4, 5, 6]);
        let w1 = set(&[1, 2, 3]);
        let w2 = set(&[3, 4]);
        // 5 left in the queue, plus an extra copy of an earlier run's job (99): a count
        // would let that extra hide the loss of 6.
        let snap = QueueSnapshot {
            at_epoch_s: 1.0,
            left: set(&[5, 99]),
            completed: set(&[]),
        };
        let e = Evidence {
            produced: vec![&produced],
            completed: vec![&w1, &w2],
            snapshot: Some(Ok(&snap)),
            ..Default::default()
        };
        let j = judge(&e);
        assert_eq!(j.kind, AuditKind::Exact);
        assert_eq!(j.lost.iter().collect::<Vec<_>>(), [6]);
        assert_eq!(j.duplicated, vec![(3, 2)]);
        assert_eq!((j.left, j.foreign), (1, 1));
        // The queue's own record of a completion (a killed worker's) counts.
        let snap2 = QueueSnapshot {
            completed: set(&[6]),
            ..snap.clone()
        };
        let e = Evidence {
            snapshot: Some(Ok(&snap2)),
            ..e
        };
        assert!(judge(&e).lost.is_empty());
        // Unknown end: inconclusive, never lost; no producer file: deferred.
        let e = Evidence {
            snapshot: Some(Err("timeout".into())),
            ..e
        };
        let j = judge(&e);
        assert_eq!(j.kind, AuditKind::Inconclusive);
        assert!(j.lost.is_empty() && j.note.expect("why").contains("timeout"));
        let e = Evidence {
            produced: vec![],
            snapshot: Some(Ok(&snap)),
            ..e
        };
        assert_eq!(judge(&e).kind, AuditKind::Deferred);
    }

    #[test]
    fn a_header_that_disagrees_with_the_bits_is_refused() {
        let a = SeqSet::from_unsorted(vec![10, 11, 12]);
        let mut v = serde_json::to_value(&a).expect("ser");
        v["n"] = serde_json::json!(4);
        assert!(serde_json::from_value::<SeqSet>(v.clone()).is_err());
        v["n"] = serde_json::json!(3);
        v["bits"] = serde_json::json!("not base64!");
        assert!(serde_json::from_value::<SeqSet>(v).is_err());
    }
}
