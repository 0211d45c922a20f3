//! Exactly-once audit: which producer sequence numbers were completed, and which more
//! than once. Two bits per job in lazily grown chunks: 180,000 jobs cost 45 KB, so memory
//! barely moves with the length of a run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

const CHUNK_BITS: usize = 1 << 16;
const WORDS: usize = CHUNK_BITS / 64;
/// Seqs beyond this are not ours (a stray entry); they are counted, not tracked.
pub const MAX_TRACKED_SEQ: i64 = 1 << 30;

#[derive(Default)]
struct Chunk {
    seen: Vec<AtomicU64>,
    dup: Vec<AtomicU64>,
}

impl Chunk {
    fn new() -> Chunk {
        Chunk {
            seen: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
            dup: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

#[derive(Default)]
pub struct Audit {
    chunks: RwLock<Vec<Arc<Chunk>>>,
    completions: AtomicU64,
    extra_completions: AtomicU64,
    duplicated_jobs: AtomicU64,
    foreign: AtomicU64,
}

/// The audit's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Produced jobs never completed and no longer in the queue.
    pub lost: u64,
    /// Jobs completed more than once.
    pub duplicated: u64,
    /// Completions beyond the first, summed over jobs.
    pub extra_completions: u64,
    /// Produced jobs still in the queue when the test ended (not lost: not drained).
    pub left_in_queue: u64,
    /// Completions of jobs with sequence numbers this run never produced.
    pub foreign: u64,
}

impl Audit {
    pub fn new() -> Audit {
        Audit::default()
    }

    fn chunk(&self, idx: usize) -> Arc<Chunk> {
        if let Some(c) = self
            .chunks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(idx)
        {
            return c.clone();
        }
        let mut w = self.chunks.write().unwrap_or_else(|p| p.into_inner());
        while w.len() <= idx {
            w.push(Arc::new(Chunk::new()));
        }
        w[idx].clone()
    }

    /// Notes a completion of `seq`; returns true if it had been completed before.
    pub fn complete(&self, seq: i64) -> bool {
        self.completions.fetch_add(1, Ordering::Relaxed);
        if !(0..MAX_TRACKED_SEQ).contains(&seq) {
            self.foreign.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let s = seq as usize;
        let chunk = self.chunk(s / CHUNK_BITS);
        let (w, bit) = ((s % CHUNK_BITS) / 64, 1u64 << (s % 64));
        if chunk.seen[w].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            return false;
        }
        self.extra_completions.fetch_add(1, Ordering::Relaxed);
        if chunk.dup[w].fetch_or(bit, Ordering::Relaxed) & bit == 0 {
            self.duplicated_jobs.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Distinct sequence numbers in `0..produced` that were completed.
    pub fn completed_of(&self, produced: u64) -> u64 {
        let chunks = self.chunks.read().unwrap_or_else(|p| p.into_inner());
        let mut n = 0u64;
        for (ci, c) in chunks.iter().enumerate() {
            let base = (ci * CHUNK_BITS) as u64;
            if base >= produced {
                break;
            }
            for (wi, word) in c.seen.iter().enumerate() {
                let lo = base + (wi * 64) as u64;
                if lo >= produced {
                    break;
                }
                let mut bits = word.load(Ordering::Relaxed);
                let valid = produced - lo;
                if valid < 64 {
                    bits &= (1u64 << valid) - 1;
                }
                n += u64::from(bits.count_ones());
            }
        }
        n
    }

    /// Sequence numbers in `0..produced` never completed (at most `limit` of them).
    pub fn missing(&self, produced: u64, limit: usize) -> Vec<i64> {
        let chunks = self.chunks.read().unwrap_or_else(|p| p.into_inner());
        let mut out = vec![];
        for seq in 0..produced {
            if out.len() >= limit {
                break;
            }
            let s = seq as usize;
            let done = chunks.get(s / CHUNK_BITS).is_some_and(|c| {
                c.seen[(s % CHUNK_BITS) / 64].load(Ordering::Relaxed) & (1 << (s % 64)) != 0
            });
            if !done {
                out.push(seq as i64);
            }
        }
        out
    }

    pub fn completions(&self) -> u64 {
        self.completions.load(Ordering::Relaxed)
    }

    pub fn duplicated(&self) -> u64 {
        self.duplicated_jobs.load(Ordering::Relaxed)
    }

    /// The verdict when this process produced `produced` jobs (seqs 0..produced) and
    /// `left_in_queue` are still queued: exact, per sequence number.
    pub fn report(&self, produced: u64, left_in_queue: u64) -> AuditReport {
        let done = self.completed_of(produced);
        let missing = produced - done;
        AuditReport {
            lost: missing.saturating_sub(left_in_queue),
            duplicated: self.duplicated(),
            extra_completions: self.extra_completions.load(Ordering::Relaxed),
            left_in_queue,
            foreign: self.foreign.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_lost_duplicated_and_left() {
        let a = Audit::new();
        for s in 0..200_000i64 {
            if s != 5 && s != 70_000 {
                assert!(!a.complete(s));
            }
        }
        assert!(a.complete(7));
        assert!(a.complete(7));
        assert!(a.complete(8));
        let r = a.report(200_000, 0);
        assert_eq!(r.lost, 2);
        assert_eq!(r.duplicated, 2);
        assert_eq!(r.extra_completions, 3);
        assert_eq!(a.missing(200_000, 10), vec![5, 70_000]);
        let r = a.report(200_000, 1);
        assert_eq!((r.lost, r.left_in_queue), (1, 1));
        // Only seqs below `produced` count.
        assert_eq!(a.report(6, 0).lost, 1);
    }

    #[test]
    fn stray_sequence_numbers_are_counted_not_tracked() {
        let a = Audit::new();
        a.complete(-1);
        a.complete(MAX_TRACKED_SEQ + 10);
        assert_eq!(a.report(0, 0).foreign, 2);
        assert!(a.chunks.read().expect("lock").is_empty());
    }
}
