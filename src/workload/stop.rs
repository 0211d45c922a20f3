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
    /// waiting at most `timeout` for the drain. What is left is reported. A producer
    /// still sending `timeout` after its planned duration (the server is down for good,
    /// say) ends the test too.
    Drain { timeout: Duration },
}

/// What the stop rule looks at, read from the producer and the workers.
#[derive(Debug, Clone, Copy)]
pub struct Observed {
    /// Jobs not completed, from this process's counts (when it produces and works).
    pub local_depth: Option<u64>,
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
    /// The queue is asked whether it is empty at most once a second (its cost is on the
    /// server being measured).
    asked: Option<Instant>,
    empty: bool,
    /// The drain bound ran out before the queue was empty.
    pub drain_timed_out: bool,
    /// How long the producer is planned to run, if it runs by time.
    produce_for: Option<Duration>,
}

impl Stopper {
    pub fn new(rule: StopRule, produce_for: Option<Duration>) -> Stopper {
        Stopper {
            produce_for,
            rule,
            idle_since: None,
            produced_at: None,
            asked: None,
            empty: false,
            drain_timed_out: false,
        }
    }

    /// Whether the queue is empty, asking the server at most once a second.
    async fn queue_empty(&mut self, queue: &Arc<dyn Queue>) -> bool {
        if self
            .asked
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.asked = Some(Instant::now());
            self.empty = super::depth_of(queue).await == Some(0);
        }
        self.empty
    }

    /// True when the test should end. The queue's depth is asked only when the rule
    /// needs to know whether it is empty and this process's own counts cannot say.
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
                if o.started_work && o.in_hand == 0 && self.queue_empty(queue).await {
                    let since = *self.idle_since.get_or_insert_with(Instant::now);
                    since.elapsed() >= idle
                } else {
                    self.idle_since = None;
                    false
                }
            }
            StopRule::Drain { timeout } => {
                if !o.producer_done {
                    let overdue = self.produce_for.is_some_and(|p| o.elapsed >= p + *timeout);
                    self.drain_timed_out = overdue;
                    overdue
                } else if self.produced_at.is_some_and(|t| t.elapsed() >= *timeout) {
                    self.drain_timed_out = true;
                    true
                } else if o.in_hand > 0 {
                    false
                } else if o.local_depth == Some(0) {
                    true
                } else {
                    // The counts say jobs are missing (lost to a restart, say): the queue
                    // decides, and the audit will name them.
                    self.queue_empty(queue).await
                }
            }
        }
    }
}
