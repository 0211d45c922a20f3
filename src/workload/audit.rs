//! The in-process records of the audit by identity: which sequence numbers this process
//! produced, completed (and how often), and had refused as late. One bit per number in
//! lazily grown chunks keyed by `seq / 65536`: sequence numbers come in blocks the server
//! hands out, so they need not start near 0; 180,000 jobs cost about 23 KB.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::format::audit::SeqSet;

const CHUNK_BITS: i64 = 1 << 16;
const WORDS: usize = (CHUNK_BITS / 64) as usize;

struct Chunk(Vec<AtomicU64>);

/// A set of sequence numbers many tasks insert into at once.
#[derive(Default)]
pub struct SeqBits {
    chunks: RwLock<HashMap<i64, Arc<Chunk>>>,
    len: AtomicU64,
}

impl SeqBits {
    fn chunk(&self, key: i64) -> Arc<Chunk> {
        if let Some(c) = self
            .chunks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return c.clone();
        }
        let mut w = self.chunks.write().unwrap_or_else(|p| p.into_inner());
        w.entry(key)
            .or_insert_with(|| Arc::new(Chunk((0..WORDS).map(|_| AtomicU64::new(0)).collect())))
            .clone()
    }

    /// Adds `seq`; returns true if it was there already.
    pub fn insert(&self, seq: i64) -> bool {
        let (key, bit) = (seq.div_euclid(CHUNK_BITS), seq.rem_euclid(CHUNK_BITS));
        let chunk = self.chunk(key);
        let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
        let before = chunk.0[word].fetch_or(mask, Ordering::Relaxed);
        let had = before & mask != 0;
        if !had {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        had
    }

    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy as a plain set, for the audit file and the verdict.
    pub fn to_set(&self) -> SeqSet {
        let chunks = self.chunks.read().unwrap_or_else(|p| p.into_inner());
        let mut keys: Vec<i64> = chunks.keys().copied().collect();
        keys.sort_unstable();
        // In ascending order, so the set grows by runs and never holds a number per job.
        let mut set = SeqSet::new();
        for key in keys {
            for (w, word) in chunks[&key].0.iter().enumerate() {
                let mut bits = word.load(Ordering::Relaxed);
                while bits != 0 {
                    let b = bits.trailing_zeros() as i64;
                    set.push(key * CHUNK_BITS + w as i64 * 64 + b);
                    bits &= bits - 1;
                }
            }
        }
        set
    }
}

/// What this process's workers did, by sequence number.
#[derive(Default)]
pub struct Audit {
    completed: SeqBits,
    /// Completions beyond the first of a job, per job (rare: kept in a map).
    again: Mutex<HashMap<i64, u32>>,
    late: Mutex<Vec<i64>>,
}

impl Audit {
    pub fn new() -> Audit {
        Audit::default()
    }

    /// Notes a completion the queue accepted; returns true if this process had already
    /// completed the job.
    pub fn complete(&self, seq: i64) -> bool {
        let again = self.completed.insert(seq);
        if again {
            *self
                .again
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(seq)
                .or_insert(1) += 1;
        }
        again
    }

    /// Notes a completion the queue refused: the lease had run out.
    pub fn late(&self, seq: i64) {
        self.late
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(seq);
    }

    pub fn completed(&self) -> SeqSet {
        self.completed.to_set()
    }

    /// `(seq, times)` for every job completed more than once here.
    pub fn completed_again(&self) -> Vec<(i64, u32)> {
        let mut v: Vec<(i64, u32)> = self
            .again
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(&s, &n)| (s, n))
            .collect();
        v.sort_unstable();
        v
    }

    pub fn late_set(&self) -> SeqSet {
        SeqSet::from_unsorted(self.late.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_hold_any_range_of_numbers() {
        let b = SeqBits::default();
        let base = 1_795_000_000_000_000i64;
        for s in [base, base + 1, base + 70_000, -5, 0] {
            assert!(!b.insert(s));
        }
        assert!(b.insert(base + 1));
        assert_eq!(b.len(), 5);
        assert_eq!(
            b.to_set().iter().collect::<Vec<_>>(),
            [-5, 0, base, base + 1, base + 70_000]
        );
    }

    #[test]
    fn repeats_and_late_completions_are_kept_apart() {
        let a = Audit::new();
        for s in 0..200_000i64 {
            assert!(!a.complete(s));
        }
        assert!(a.complete(7));
        assert!(a.complete(7));
        assert!(a.complete(8));
        a.late(9);
        assert_eq!(a.completed().len(), 200_000);
        assert_eq!(a.completed_again(), vec![(7, 3), (8, 2)]);
        assert_eq!(a.late_set().iter().collect::<Vec<_>>(), [9]);
    }
}
