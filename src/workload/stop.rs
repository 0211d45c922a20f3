//! When a test ends: a rule, and the state it needs across checks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::queue::Queue;

/// When a test ends.
#[derive(Debug, Clone)]
pub enum StopRule {
    /// Producer only: when every job has been sent.
    ProducerDone,
    /// After this long.
    Duration(Duration),
    /// Workers only: once the queue has been empty, with no job in hand, for `idle`.
    /// Time before the first job does not count, so workers may start before producers.
    UntilIdle {
        idle: Duration,
        max: Option<Duration>,
    },
    /// Producer and workers: when producing is done and the queue has drained,
    /// waiting at most `timeout` for the drain. What is left is reported.
    Drain { timeout: Duration },
}

/// What the stop rule looks at, read from the producer and the workers.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    pub elapsed: Duration,
    pub producer_done: bool,
    /// A worker has claimed at least one job.
    pub started_work: bool,
    pub in_hand: i64,
}

/// A rule with its memory: when the queue became idle, when producing ended.
pub struct Stopper {
    rule: StopRule,
    idle_since: Option<Instant>,
    produced_at: Option<Instant>,
    /// The drain bound ran out before the queue was empty.
    pub drain_timed_out: bool,
}

impl Stopper {
    pub fn new(rule: StopRule) -> Stopper {
        Stopper {
            rule,
            idle_since: None,
            produced_at: None,
            drain_timed_out: false,
        }
    }

    /// True when the test should end. The queue's depth is asked only when the rule
    /// needs to know whether it is empty.
    pub async fn check(&mut self, o: &Observed, queue: &Arc<dyn Queue>) -> bool {
        if o.producer_done && self.produced_at.is_none() {
            self.produced_at = Some(Instant::now());
        }
        match &self.rule {
            StopRule::ProducerDone => o.producer_done,
            StopRule::Duration(d) => o.elapsed >= *d,
            StopRule::UntilIdle { idle, max } => {
                if max.is_some_and(|m| o.elapsed >= m) {
                    return true;
                }
                let idle = *idle;
                if o.started_work && o.in_hand == 0 && super::depth_of(queue).await == Some(0) {
                    let since = *self.idle_since.get_or_insert_with(Instant::now);
                    since.elapsed() >= idle
                } else {
                    self.idle_since = None;
                    false
                }
            }
            StopRule::Drain { timeout } => {
                if !o.producer_done {
                    false
                } else if self.produced_at.is_some_and(|t| t.elapsed() >= *timeout) {
                    self.drain_timed_out = true;
                    true
                } else {
                    o.in_hand == 0 && super::depth_of(queue).await == Some(0)
                }
            }
        }
    }
}
