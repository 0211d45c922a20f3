//! Saturation seen from any process: arrivals outpacing completions show as a queue that
//! grows second after second, or a queue wait that keeps rising. Either means latency now
//! measures the backlog and the test's length, not the design. Only an open-loop test
//! (jobs offered at a fixed rate) can be past its capacity: a closed-loop one (a
//! burn-down of a pre-filled queue, `--rate max`) sets its own pace, and its queue is
//! deep by construction.

use std::collections::VecDeque;

use crate::format::metrics::IntervalLine;

/// Seconds of steady growth that count as saturation.
const RUN: usize = 5;

pub struct Saturation {
    /// A backlog, not jobs in flight: the queue must also be deeper than this.
    floor: u64,
    depths: VecDeque<u64>,
    waits: VecDeque<f64>,
    /// The warning, once given.
    pub warning: Option<String>,
    /// Jobs are offered at a fixed rate: the only case with a capacity to be past.
    open_loop: bool,
}

fn keep_last<T>(q: &mut VecDeque<T>, v: T) {
    q.push_back(v);
    if q.len() > RUN + 1 {
        q.pop_front();
    }
}

/// True when each value is above the one before it.
fn rising<T: PartialOrd + Copy>(v: &VecDeque<T>) -> bool {
    v.len() > RUN && v.iter().zip(v.iter().skip(1)).all(|(a, b)| b > a)
}

impl Saturation {
    pub fn new(workers: usize, open_loop: bool) -> Saturation {
        Saturation {
            open_loop,
            floor: 2 * workers.max(1) as u64,
            depths: VecDeque::new(),
            waits: VecDeque::new(),
            warning: None,
        }
    }

    /// Looks at one second; returns the warning the first time the signs are there.
    pub fn observe(&mut self, line: &IntervalLine) -> Option<String> {
        if self.warning.is_some() || !self.open_loop {
            return None;
        }
        if let Some(d) = line.depth {
            keep_last(&mut self.depths, d);
        }
        if let Some(w) = line.queue_wait_ms.map(|w| w.p99) {
            keep_last(&mut self.waits, w);
        }
        let deep = self.depths.back().is_some_and(|&d| d > self.floor);
        let msg = if rising(&self.depths) && deep {
            format!(
                "arrivals outpace completions: the queue grew every second for {RUN} s (depth {} → {}); the workers are past their capacity and latency now measures the backlog, not the queue",
                self.depths[0],
                self.depths[RUN]
            )
        } else if rising(&self.waits) && self.waits[RUN] > 2.0 * self.waits[0] && deep {
            format!(
                "arrivals outpace completions: queue-wait p99 rose every second for {RUN} s ({:.1} → {:.1} ms); the workers are past their capacity",
                self.waits[0], self.waits[RUN]
            )
        } else {
            return None;
        };
        self.warning = Some(msg.clone());
        Some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::metrics::IntervalLatency;

    fn line(depth: u64, wait: f64) -> IntervalLine {
        IntervalLine {
            v: 2,
            kind: "interval".into(),
            t_s: 0.0,
            interval_s: 1.0,
            produced: 0,
            completed: 0,
            produced_total: 0,
            completed_total: 0,
            depth: Some(depth),
            e2e_ms: None,
            queue_wait_ms: Some(IntervalLatency {
                p50: wait,
                p95: wait,
                p99: wait,
                max: wait,
            }),
            claim_ms: None,
            errors: 0,
        }
    }

    #[test]
    fn a_growing_queue_is_called_saturated_once() {
        let mut s = Saturation::new(5, true);
        for d in [3, 5, 4, 6, 5] {
            assert!(s.observe(&line(d, 1.0)).is_none(), "noise is not growth");
        }
        let mut fired = vec![];
        for d in [100, 280, 460, 640, 820, 1000, 1200] {
            fired.extend(s.observe(&line(d, 1.0)));
        }
        assert_eq!(fired.len(), 1, "{fired:?}");
        assert!(fired[0].contains("capacity"), "{}", fired[0]);
    }

    #[test]
    fn a_closed_loop_run_is_never_called_saturated() {
        let mut s = Saturation::new(5, false);
        for d in (0..20)
            .map(|i| 100_000 - i * 100)
            .chain((0..20).map(|i| 100 + i * 500))
        {
            assert!(s.observe(&line(d, d as f64)).is_none());
        }
    }

    #[test]
    fn a_shallow_queue_is_not_saturated() {
        let mut s = Saturation::new(20, true);
        for d in 1..20 {
            assert!(s.observe(&line(d, d as f64)).is_none());
        }
    }
}
