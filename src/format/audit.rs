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

/// A set of sequence numbers, held as sorted runs of consecutive numbers: seqs come in
/// blocks the server hands out, so a run of a million jobs is a handful of runs, not
/// eight megabytes. On disk: the smallest, the count, and a deflated bitmap from the
/// smallest to the largest, in base64 — a dense million is a few hundred bytes, a
/// scattered set an eighth of a byte per number spanned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqSet {
    /// Inclusive `(first, last)`, sorted, neither overlapping nor touching.
    runs: Vec<(i64, i64)>,
}

impl SeqSet {
    pub fn new() -> SeqSet {
        SeqSet::default()
    }

    /// From numbers in any order, repeats allowed.
    pub fn from_unsorted(mut seqs: Vec<i64>) -> SeqSet {
        seqs.sort_unstable();
        let mut set = SeqSet::new();
        for s in seqs {
            set.push(s);
        }
        set
    }

    /// Adds `seq`: O(1) when numbers come in ascending order (repeats allowed), a
    /// search and an insert otherwise.
    pub fn push(&mut self, seq: i64) {
        match self.runs.last_mut() {
            None => self.runs.push((seq, seq)),
            Some(last) if seq > last.1 => {
                if seq == last.1 + 1 {
                    last.1 = seq;
                } else {
                    self.runs.push((seq, seq));
                }
            }
            Some(last) if seq >= last.0 => {}
            Some(_) => {
                *self = self.union(&SeqSet {
                    runs: vec![(seq, seq)],
                })
            }
        }
    }

    pub fn len(&self) -> u64 {
        self.runs.iter().map(|&(a, b)| (b - a) as u64 + 1).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub fn contains(&self, seq: i64) -> bool {
        let i = self.runs.partition_point(|&(_, b)| b < seq);
        self.runs.get(i).is_some_and(|&(a, _)| a <= seq)
    }

    pub fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        self.runs.iter().flat_map(|&(a, b)| a..=b)
    }

    /// The runs, inclusive `(first, last)`, in order.
    pub fn runs(&self) -> &[(i64, i64)] {
        &self.runs
    }

    /// The set as text: `7, 10-12`.
    pub fn to_text(&self) -> Vec<String> {
        self.runs
            .iter()
            .map(|&(a, b)| {
                if a == b {
                    a.to_string()
                } else {
                    format!("{a}-{b}")
                }
            })
            .collect()
    }

    pub fn first(&self, n: usize) -> Vec<i64> {
        self.iter().take(n).collect()
    }

    /// Appends a run that starts after every number held, joining a touching one.
    fn append(&mut self, (a, b): (i64, i64)) {
        match self.runs.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => self.runs.push((a, b)),
        }
    }

    pub fn union(&self, o: &SeqSet) -> SeqSet {
        let mut all: Vec<(i64, i64)> = self.runs.iter().chain(&o.runs).copied().collect();
        all.sort_unstable();
        let mut out = SeqSet {
            runs: Vec::with_capacity(all.len()),
        };
        for r in all {
            out.append(r);
        }
        out
    }

    /// The numbers of `self` that are not in `o`.
    pub fn minus(&self, o: &SeqSet) -> SeqSet {
        let mut out = SeqSet::new();
        let mut j = 0;
        for &(a, b) in &self.runs {
            while j < o.runs.len() && o.runs[j].1 < a {
                j += 1;
            }
            // `from`: the first number of [a, b] not yet decided.
            let (mut from, mut k) = (a, j);
            loop {
                match o.runs.get(k) {
                    Some(&(c, d)) if c <= b => {
                        if c > from {
                            out.append((from, c - 1));
                        }
                        if d >= b {
                            break;
                        }
                        from = from.max(d + 1);
                        k += 1;
                    }
                    _ => {
                        out.append((from, b));
                        break;
                    }
                }
            }
        }
        out
    }

    /// The numbers in both.
    pub fn and(&self, o: &SeqSet) -> SeqSet {
        let mut out = SeqSet::new();
        let (mut i, mut j) = (0, 0);
        while i < self.runs.len() && j < o.runs.len() {
            let (a, b) = self.runs[i];
            let (c, d) = o.runs[j];
            let (lo, hi) = (a.max(c), b.min(d));
            if lo <= hi {
                out.append((lo, hi));
            }
            if b < d {
                i += 1;
            } else {
                j += 1;
            }
        }
        out
    }

    fn encode(&self) -> std::io::Result<String> {
        let (Some(&(lo, _)), Some(&(_, hi))) = (self.runs.first(), self.runs.last()) else {
            return Ok(String::new());
        };
        // Sets span at most a run's seqs; a span past 2^36 would be a bug, not data.
        let span = hi
            .checked_sub(lo)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|&d| d < 1 << 36)
            .ok_or_else(|| std::io::Error::other(format!("seqs {lo}..{hi} span too far")))?
            + 1;
        let mut bytes = vec![0u8; span.div_ceil(8)];
        for s in self.iter() {
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
        let mut set = SeqSet::new();
        let mut count = 0u64;
        // The header comes from a file: the bits must agree with it, and stop counting
        // once they cannot.
        'bits: for (i, b) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if b & (1 << bit) != 0 {
                    let Some(s) = i64::try_from(i * 8 + bit)
                        .ok()
                        .and_then(|d| lo.checked_add(d))
                    else {
                        return Err(format!(
                            "bit {} from {lo} is past the largest seq",
                            i * 8 + bit
                        ));
                    };
                    set.push(s);
                    count += 1;
                    if count > n {
                        break 'bits;
                    }
                }
            }
        }
        let first = set.runs.first().map(|r| r.0);
        if count != n || first != Some(lo) {
            return Err(format!(
                "bits hold {count} numbers from {first:?}, the header says {n} from {lo}"
            ));
        }
        Ok(set)
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
            lo: self.runs.first().map_or(0, |r| r.0),
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
    /// When the read began (a read shows the queue as it was when it began), seconds
    /// since the epoch on this process's clock.
    pub at_epoch_s: f64,
    /// Jobs still pending or in flight.
    pub left: SeqSet,
    /// Jobs the queue itself records as completed (rows marked completed, the archive,
    /// or Valkey's completion bitmap): catches completions of a process killed before it
    /// wrote its own file.
    pub completed: SeqSet,
    /// The queue keeps no record of completions (pgmq's delete): a job neither completed
    /// by a process whose file is here nor left cannot be told lost; the audit is then
    /// inconclusive, never "lost". False in files written before qbench recorded it.
    #[serde(default)]
    pub completions_unrecorded: bool,
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
    /// When this process's producer had stopped, every acknowledgement in hand: on the
    /// same clock as `snapshot.at_epoch_s`, so `analyze` can tell whether the last look
    /// at the queue came after it.
    #[serde(default)]
    pub produced_until_epoch_s: Option<f64>,
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
            produced_until_epoch_s: None,
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
#[derive(Default, Clone)]
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
            left: snapshot.left.minus(&by_workers).len(),
            foreign: 0,
            note: Some(
                "what was produced is in the producers' audit files: `qbench analyze` over the folder judges".into(),
            ),
            ..base
        };
    }
    let done = by_workers.union(&snapshot.completed);
    // A job some process completed after an older look counted it left is not left.
    let left = snapshot.left.minus(&done);
    let lost = produced.minus(&done).minus(&left);
    if snapshot.completions_unrecorded && !lost.is_empty() {
        return Judgement {
            kind: AuditKind::Inconclusive,
            left: left.and(&ours).len(),
            foreign,
            note: Some(format!(
                "{} job(s) were neither completed by a process whose record is here nor left in the queue, and the queue keeps no record of completions (pgmq's delete, graphile_worker without qbench's record): lost, or completed by a worker process that died before writing its record; run the design with its default options to tell them apart",
                lost.len()
            )),
            ..base
        };
    }
    Judgement {
        kind: AuditKind::Exact,
        lost,
        left: left.and(&ours).len(),
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

    /// Runs against a plain set, on sets with runs, gaps and scattered numbers.
    #[test]
    fn runs_agree_with_a_plain_set() {
        use std::collections::BTreeSet;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for _ in 0..300 {
            let mut make = || {
                let mut v = vec![];
                for _ in 0..next(6) {
                    let start = next(200) as i64 - 50;
                    let long = next(2) == 0;
                    let len = next(if long { 40 } else { 3 }) as i64;
                    v.extend(start..start + len);
                }
                v
            };
            let (a, b) = (make(), make());
            let (sa, sb) = (
                SeqSet::from_unsorted(a.clone()),
                SeqSet::from_unsorted(b.clone()),
            );
            let (pa, pb): (BTreeSet<i64>, BTreeSet<i64>) =
                (a.into_iter().collect(), b.into_iter().collect());
            let plain = |s: &SeqSet| s.iter().collect::<Vec<_>>();
            assert_eq!(
                plain(&sa.union(&sb)),
                pa.union(&pb).copied().collect::<Vec<_>>()
            );
            assert_eq!(
                plain(&sa.minus(&sb)),
                pa.difference(&pb).copied().collect::<Vec<_>>()
            );
            assert_eq!(
                plain(&sa.and(&sb)),
                pa.intersection(&pb).copied().collect::<Vec<_>>()
            );
            assert_eq!(sa.len(), pa.len() as u64);
            for probe in -60..200 {
                assert_eq!(sa.contains(probe), pa.contains(&probe), "{probe} in {sa:?}");
            }
            // Out-of-order pushes build the same set as sorted ones.
            let mut pushed = SeqSet::new();
            for &s in pa.iter().rev() {
                pushed.push(s);
            }
            assert_eq!(pushed, sa);
            let back: SeqSet =
                serde_json::from_str(&serde_json::to_string(&sa).expect("ser")).expect("de");
            assert_eq!(back, sa);
        }
    }

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
            completions_unrecorded: false,
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
        // A queue that keeps no record of completions cannot tell 6 lost from completed
        // by a process that died: inconclusive, naming how many; with nothing missing,
        // still exact.
        let unrecorded = QueueSnapshot {
            completions_unrecorded: true,
            ..snap.clone()
        };
        let j = judge(&Evidence {
            snapshot: Some(Ok(&unrecorded)),
            ..e.clone()
        });
        assert_eq!(j.kind, AuditKind::Inconclusive, "{j:?}");
        assert!(j.lost.is_empty(), "{j:?}");
        assert!(j.note.expect("why").starts_with("1 job(s)"));
        let w4 = set(&[6]);
        let j = judge(&Evidence {
            completed: vec![&w1, &w2, &w4],
            snapshot: Some(Ok(&unrecorded)),
            ..e.clone()
        });
        assert_eq!((j.kind, j.lost.len()), (AuditKind::Exact, 0), "{j:?}");
        // An older look that still saw 4 and 5, though a worker completed 4 after it:
        // 4 is completed, not left.
        let w3 = set(&[4, 6]);
        let older = QueueSnapshot {
            left: set(&[4, 5, 99]),
            ..snap.clone()
        };
        let e3 = Evidence {
            completed: vec![&w1, &w3],
            snapshot: Some(Ok(&older)),
            ..e.clone()
        };
        let j = judge(&e3);
        assert_eq!((j.left, j.lost.len()), (1, 0), "{j:?}");
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

    /// Headers from a file size nothing: a huge count or a seq near the end of the
    /// range is an error, not an allocation or an overflow.
    #[test]
    fn a_hostile_header_is_an_error_not_a_panic() {
        let a = SeqSet::from_unsorted(vec![1, 2, 3]);
        let mut v = serde_json::to_value(&a).expect("ser");
        v["n"] = serde_json::json!(u64::MAX);
        assert!(serde_json::from_value::<SeqSet>(v.clone()).is_err());
        v["n"] = serde_json::json!(3);
        v["lo"] = serde_json::json!(i64::MAX - 1);
        assert!(serde_json::from_value::<SeqSet>(v).is_err());
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
