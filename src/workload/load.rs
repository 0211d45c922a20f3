//! The load of one test: its producer and its workers, started and stopped together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::outages::Outages;
use super::producer::{self, ProduceOutcome, ProducerHandle};
use super::stop::Observed;
use super::worker::{self, WorkState, Workers};
use super::Plan;
use crate::queue::Queue;
use crate::stats::Recorders;

pub struct Load {
    producer: Option<ProducerHandle>,
    workers: Option<Workers>,
    /// When the load began: the producer's t0, else when the workers were let go.
    began: Instant,
}

/// What the load did, once stopped.
pub struct Done {
    pub outcome: Option<ProduceOutcome>,
    pub state: Option<Arc<WorkState>>,
}

/// Jobs produced and completed so far, and the errors that came with them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub produced: u64,
    pub completed: u64,
    pub errors: u64,
}

impl Load {
    /// Opens every connection first (a wrong server or a missing schema fails here,
    /// before any file exists), then starts the workers and the producer's clock.
    pub async fn start(
        plan: &Plan,
        queue: &Arc<dyn Queue>,
        recorders: &Recorders,
        outages: &Arc<Outages>,
        visibility: Duration,
        acked: Option<Arc<AtomicU64>>,
        gate: &Gate,
    ) -> Result<Load> {
        // Workers alone wait at the gate with their connections open, and claim nothing
        // before it (their empty polls would count); beside a producer, the producer waits.
        let worker_gate = plan.produce.is_none().then_some(gate);
        let workers = match &plan.work {
            Some(w) => Some(
                worker::start(
                    queue.clone(),
                    w,
                    recorders,
                    visibility,
                    outages.clone(),
                    worker_gate,
                )
                .await?,
            ),
            None => None,
        };
        let producer = match &plan.produce {
            Some(p) => {
                let started =
                    producer::start(queue.clone(), p, recorders, outages.clone(), acked, gate)
                        .await;
                match started {
                    Ok(p) => Some(p),
                    Err(e) => {
                        if let Some(w) = workers {
                            w.stop().await;
                        }
                        return Err(e);
                    }
                }
            }
            None => None,
        };
        let began = producer.as_ref().map_or_else(
            || workers.as_ref().map_or_else(Instant::now, |w| w.began),
            ProducerHandle::t0,
        );
        Ok(Load {
            producer,
            workers,
            began,
        })
    }

    /// When load started: the producer's t0, else when the workers began.
    pub fn t0(&self) -> Instant {
        self.began
    }

    pub fn counts(&self) -> Counts {
        let w = self.workers.as_ref().map(|w| &w.state);
        Counts {
            produced: self.producer.as_ref().map_or(0, ProducerHandle::produced),
            completed: w.map_or(0, |s| s.completed.load(Ordering::Acquire)),
            errors: self.producer.as_ref().map_or(0, ProducerHandle::errors)
                + w.map_or(0, |s| s.errors.load(Ordering::Relaxed)),
        }
    }

    /// Jobs not completed yet, from this process's own counts, when it both produces and
    /// works (every job is its own): no query to the server.
    pub fn local_depth(&self) -> Option<u64> {
        let c = self.counts();
        (self.producer.is_some() && self.workers.is_some())
            .then(|| c.produced.saturating_sub(c.completed))
    }

    pub fn observe(&self, started: Instant) -> Observed {
        let w = self.workers.as_ref().map(|w| &w.state);
        Observed {
            local_depth: self.local_depth(),
            elapsed: started.elapsed(),
            producer_done: self.producer.as_ref().is_none_or(ProducerHandle::is_done),
            started_work: w.is_some_and(|s| s.first_claim_us.load(Ordering::Acquire) != 0),
            in_hand: w.map_or(0, |s| s.in_hand.load(Ordering::Acquire)),
        }
    }

    pub fn produces(&self) -> bool {
        self.producer.is_some()
    }

    pub fn works(&self) -> bool {
        self.workers.is_some()
    }

    /// Stops offering first, then lets the workers finish the jobs in their hands.
    pub async fn stop(self) -> Done {
        let outcome = match self.producer {
            Some(p) => Some(p.stop().await),
            None => None,
        };
        let state = match self.workers {
            Some(w) => Some(w.stop().await),
            None => None,
        };
        Done { outcome, state }
    }
}

impl Done {
    pub fn counts(&self) -> Counts {
        Counts {
            produced: self.outcome.as_ref().map_or(0, |o| o.produced),
            completed: self
                .state
                .as_ref()
                .map_or(0, |s| s.completed.load(Ordering::Acquire)),
            errors: self.outcome.as_ref().map_or(0, |o| o.errors)
                + self
                    .state
                    .as_ref()
                    .map_or(0, |s| s.errors.load(Ordering::Relaxed)),
        }
    }
}

/// `--start-at`: when load begins, so processes on several hosts begin together.
pub struct Gate {
    pub at: Option<std::time::SystemTime>,
    pub shutdown: crate::shutdown::Shutdown,
}

impl Gate {
    /// Waits until the start time (at once without one, or if it has passed); Ctrl-C
    /// during the wait ends the test before it began.
    pub async fn wait(&self) -> Result<()> {
        let Some(at) = self.at else { return Ok(()) };
        let Ok(left) = at.duration_since(std::time::SystemTime::now()) else {
            return Ok(());
        };
        tokio::select! {
            _ = tokio::time::sleep(left) => Ok(()),
            _ = self.shutdown.cancelled() => Err(crate::error::Interrupted.into()),
        }
    }
}
