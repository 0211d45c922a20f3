//! Latency measurement, independent of any backend: HdrHistograms in µs with 3
//! significant digits, recorded into shards and merged exactly (never averaged).

pub mod confidence;
pub mod noise;
pub mod usl;

use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Largest value a histogram tracks: one hour in µs. Larger values are clamped.
pub const MAX_US: u64 = 3_600_000_000;
pub const SIGFIGS: u8 = 3;

/// The latencies qbench measures, each a tag in the `.hlog` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Intended enqueue → completed.
    E2e,
    /// Intended enqueue → claimed.
    QueueWait,
    /// Claimed → completed.
    Service,
    /// The producer's enqueue call.
    Enqueue,
    /// How late the producer sent each job against its schedule.
    ScheduleLag,
    /// Jobs still in the queue when the test ended, at their age then (intended enqueue
    /// → end): censored samples, so a drain that times out cannot hide the slowest jobs.
    E2eCensored,
    /// Intended enqueue → claimed, for jobs that arrived while their worker was idle
    /// (waiting for work since before they were due): the wakeup's own latency.
    Pickup,
    /// The claim call's round trip: every claim of a design that polls (an empty one
    /// found nothing, at full cost), only those that returned a job where the claim
    /// blocks (an empty Valkey claim is a read that waited out its BLOCK).
    Claim,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::E2e,
        Metric::QueueWait,
        Metric::Service,
        Metric::Enqueue,
        Metric::ScheduleLag,
        Metric::E2eCensored,
        Metric::Pickup,
        Metric::Claim,
    ];
    pub const WORKER: [Metric; 6] = [
        Metric::E2e,
        Metric::QueueWait,
        Metric::Service,
        Metric::E2eCensored,
        Metric::Pickup,
        Metric::Claim,
    ];
    pub const PRODUCER: [Metric; 2] = [Metric::Enqueue, Metric::ScheduleLag];

    pub fn tag(self) -> &'static str {
        match self {
            Metric::E2e => "e2e",
            Metric::QueueWait => "queue_wait",
            Metric::Service => "service",
            Metric::Enqueue => "enqueue",
            Metric::ScheduleLag => "schedule_lag",
            Metric::E2eCensored => "e2e_censored",
            Metric::Pickup => "pickup",
            Metric::Claim => "claim",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.tag() == tag)
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants within the crate's limits.
    Histogram::new_with_bounds(1, MAX_US, SIGFIGS).expect("valid histogram bounds")
}

/// One histogram per metric, and per metric the values that fell outside its range.
#[derive(Clone, Debug)]
pub struct HistSet {
    hists: Vec<Histogram<u64>>,
    /// Values above an hour, recorded as an hour.
    clamped: Vec<u64>,
    /// Negative values (clock skew between hosts), recorded as 0.
    negative: Vec<u64>,
}

impl Default for HistSet {
    fn default() -> Self {
        HistSet {
            hists: Metric::ALL.iter().map(|_| new_histogram()).collect(),
            clamped: vec![0; Metric::ALL.len()],
            negative: vec![0; Metric::ALL.len()],
        }
    }
}

impl HistSet {
    /// Records a latency: out-of-range values are kept at the bound, and counted.
    #[inline]
    pub fn record(&mut self, m: Metric, us: i64) {
        self.record_n(m, us, 1);
    }

    #[inline]
    pub fn record_n(&mut self, m: Metric, us: i64, n: u64) {
        let i = m.index();
        if us < 0 {
            self.negative[i] += n;
        } else if us > MAX_US as i64 {
            self.clamped[i] += n;
        }
        let v = us.clamp(0, MAX_US as i64) as u64;
        // Cannot fail: v is within the histogram's bounds.
        let _ = self.hists[i].record_n(v, n);
    }

    /// `(tag, count)` of values clamped at an hour, for the metrics that had any.
    pub fn clamped(&self) -> Vec<(&'static str, u64)> {
        nonzero(&self.clamped)
    }

    /// `(tag, count)` of negative values recorded as 0.
    pub fn negative(&self) -> Vec<(&'static str, u64)> {
        nonzero(&self.negative)
    }

    pub fn get(&self, m: Metric) -> &Histogram<u64> {
        &self.hists[m.index()]
    }

    /// Adds `other` into self and empties `other`.
    pub fn drain_from(&mut self, other: &mut HistSet) {
        self.add(other);
        other.reset();
    }

    pub fn add(&mut self, other: &HistSet) {
        for (a, b) in self.hists.iter_mut().zip(other.hists.iter()) {
            if !b.is_empty() {
                // Same bounds on both sides: cannot fail.
                let _ = a.add(b);
            }
        }
        for i in 0..self.clamped.len() {
            self.clamped[i] += other.clamped[i];
            self.negative[i] += other.negative[i];
        }
    }

    /// Adds one histogram (e.g. an interval read from a log) into metric `m`.
    pub fn add_histogram(
        &mut self,
        m: Metric,
        h: &Histogram<u64>,
    ) -> Result<(), hdrhistogram::AdditionError> {
        self.hists[m.index()].add(h)
    }

    pub fn reset(&mut self) {
        self.hists.iter_mut().for_each(Histogram::reset);
        self.clamped.iter_mut().for_each(|c| *c = 0);
        self.negative.iter_mut().for_each(|c| *c = 0);
    }
}

fn nonzero(counts: &[u64]) -> Vec<(&'static str, u64)> {
    Metric::ALL
        .iter()
        .zip(counts)
        .filter(|(_, &n)| n > 0)
        .map(|(m, &n)| (m.tag(), n))
        .collect()
}

/// Recording shards: each worker or producer connection records into one of a few
/// shards (uncontended locks held for nanoseconds); the collector merges them each second.
#[derive(Clone)]
pub struct Recorders {
    shards: Arc<Vec<Mutex<HistSet>>>,
}

impl Recorders {
    pub fn new(shards: usize) -> Recorders {
        Recorders {
            shards: Arc::new((0..shards.max(1)).map(|_| Mutex::default()).collect()),
        }
    }

    pub fn shard(&self, i: usize) -> Shard {
        Shard {
            recorders: self.clone(),
            index: i % self.shards.len(),
        }
    }

    /// Moves everything recorded so far into `into`.
    pub fn drain_into(&self, into: &mut HistSet) {
        for s in self.shards.iter() {
            into.drain_from(&mut lock(s));
        }
    }
}

fn lock(m: &Mutex<HistSet>) -> MutexGuard<'_, HistSet> {
    // A panic while recording cannot leave a histogram half-updated in a way that matters.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Clone)]
pub struct Shard {
    recorders: Recorders,
    index: usize,
}

impl Shard {
    pub fn with<R>(&self, f: impl FnOnce(&mut HistSet) -> R) -> R {
        f(&mut lock(&self.recorders.shards[self.index]))
    }
}

/// Percentiles of one histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |v: u64| v as f64 / 1000.0;
        let q = |p: f64| ms(h.value_at_quantile(p));
        Some(Percentiles {
            count: h.len(),
            min: ms(h.min()),
            p25: q(0.25),
            p50: q(0.50),
            p75: q(0.75),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_exactly() {
        let r = Recorders::new(3);
        let mut single = HistSet::default();
        for i in 0..3000i64 {
            let v = (i * 37) % 10_000 + 1;
            r.shard(i as usize).with(|h| h.record(Metric::E2e, v));
            single.record(Metric::E2e, v);
        }
        let mut merged = HistSet::default();
        r.drain_into(&mut merged);
        let (a, b) = (merged.get(Metric::E2e), single.get(Metric::E2e));
        assert_eq!(a.len(), 3000);
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(a.value_at_quantile(q), b.value_at_quantile(q));
        }
        let mut again = HistSet::default();
        r.drain_into(&mut again);
        assert!(
            again.get(Metric::E2e).is_empty(),
            "draining empties the shards"
        );
    }

    #[test]
    fn out_of_range_values_are_clamped_and_counted() {
        let mut h = HistSet::default();
        h.record(Metric::E2e, -5);
        h.record(Metric::E2e, i64::MAX);
        h.record_n(Metric::QueueWait, -1, 3);
        let e = h.get(Metric::E2e);
        assert_eq!(e.len(), 2);
        assert_eq!(e.min(), 0);
        assert!(e.max() >= MAX_US);
        let mut total = HistSet::default();
        total.add(&h);
        assert_eq!(total.clamped(), vec![("e2e", 1)]);
        assert_eq!(total.negative(), vec![("e2e", 1), ("queue_wait", 3)]);
    }

    #[test]
    fn percentiles_are_in_ms() {
        let mut h = HistSet::default();
        for v in 1..=1000 {
            h.record(Metric::Service, v * 1000);
        }
        let p = Percentiles::of(h.get(Metric::Service)).expect("not empty");
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.p99 - 990.0).abs() < 2.0, "{p:?}");
        assert!(Percentiles::of(HistSet::default().get(Metric::E2e)).is_none());
    }
}
