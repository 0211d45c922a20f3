//! Workers: each on its own connection, claim → simulated work (a sleep) → complete,
//! recording queue wait, service and end-to-end latency per job. Errors are counted and
//! the worker reconnects with backoff. On stop, jobs in hand are finished and completed.
//! The reaper hands expired leases back for the designs that have them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::audit::Audit;
use super::outages::Outages;
use super::warn_limited;
use crate::clock::Clock;
use crate::queue::{Consumer, HandOff, Queue};
use crate::stats::{Metric, Recorders, Shard};

#[derive(Debug, Clone)]
pub struct WorkPlan {
    pub workers: usize,
    pub processing: Duration,
}

impl WorkPlan {
    /// The config's workers and simulated work.
    pub fn from_config(b: &crate::config::Benchmark) -> WorkPlan {
        WorkPlan {
            workers: b.num_workers.get() as usize,
            processing: Duration::from_secs_f64(b.job_processing_time_ms / 1000.0),
        }
    }
}

/// Counters the collector, the stop rules and the audit read.
#[derive(Default)]
pub struct WorkState {
    pub claimed: AtomicU64,
    /// Claims that found nothing.
    pub empty_claims: AtomicU64,
    /// Completions the queue accepted.
    pub completed: AtomicU64,
    /// Completions the queue refused: the lease had run out.
    pub late: AtomicU64,
    /// Time workers were busy with jobs (claimed → completion answered, or → handed to a
    /// completer that writes later) summed over batches and workers: what the measured
    /// capacity is computed from.
    pub busy_us: AtomicU64,
    pub redelivered: AtomicU64,
    pub errors: AtomicU64,
    pub reaped: AtomicU64,
    pub reap_errors: AtomicU64,
    /// Jobs claimed and not yet completed (or given up).
    pub in_hand: AtomicI64,
    /// Wall µs of the first claim and of the last completion (0: none yet).
    pub first_claim_us: AtomicI64,
    pub last_complete_us: AtomicI64,
    pub last_claim_us: AtomicI64,
    pub first_redelivery_us: AtomicI64,
    pub last_redelivery_us: AtomicI64,
    pub audit: Audit,
    /// Shared with the producer: when the server could not be reached.
    pub outages: Arc<Outages>,
    /// The most jobs per second the design's protocol lets these workers take, whatever
    /// the server does (River: MaxWorkers per FetchCooldown); `None`: no such bound.
    pub protocol_bound: Option<f64>,
}

impl WorkState {
    /// Jobs per second `workers` could take if never idle: workers / mean busy time per
    /// job (the simulated work, timer rounding and the completion's round trip, or the
    /// hand-over to a completer; the claim's round trip is left out, since a blocking
    /// claim also waits for jobs to arrive), and never above the protocol's own bound.
    pub fn capacity(&self, workers: usize) -> Option<f64> {
        let busy = self.busy_us.load(Ordering::Relaxed) as f64 / 1e6;
        let jobs = self.completed.load(Ordering::Relaxed) + self.late.load(Ordering::Relaxed);
        let measured = (busy > 0.0 && jobs > 0).then(|| workers as f64 * jobs as f64 / busy)?;
        Some(self.protocol_bound.map_or(measured, |b| measured.min(b)))
    }

    pub fn throughput(&self) -> f64 {
        let (a, b) = (
            self.first_claim_us.load(Ordering::Acquire),
            self.last_complete_us.load(Ordering::Acquire),
        );
        let n = self.completed.load(Ordering::Acquire);
        if a == 0 || b <= a {
            return 0.0;
        }
        n as f64 / ((b - a) as f64 / 1e6)
    }
}

pub struct Workers {
    pub state: Arc<WorkState>,
    queue: Arc<dyn Queue>,
    tasks: Vec<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
    stop: CancellationToken,
    /// When the workers were let go (after `--start-at`'s gate, if any).
    pub began: Instant,
}

/// Opens every worker's connection first (failures here are the user's), then starts them.
pub async fn start(
    queue: Arc<dyn Queue>,
    plan: &WorkPlan,
    recorders: &Recorders,
    visibility_timeout: Duration,
    outages: Arc<Outages>,
    gate: Option<&super::load::Gate>,
) -> anyhow::Result<Workers> {
    let state = Arc::new(WorkState {
        outages,
        protocol_bound: queue.throughput_bound(plan.workers),
        ..WorkState::default()
    });
    let stop = CancellationToken::new();
    let mut consumers = Vec::with_capacity(plan.workers);
    for i in 0..plan.workers {
        consumers.push(queue.consumer(i).await?);
    }
    if let Some(g) = gate {
        g.wait().await?;
    }
    let began = Instant::now();
    let tasks = consumers
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            tokio::spawn(worker(
                i,
                c,
                queue.clone(),
                plan.clone(),
                recorders.shard(i),
                state.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let reaper = Some(tokio::spawn(reaper(
        queue.clone(),
        visibility_timeout,
        state.clone(),
        stop.clone(),
    )));
    Ok(Workers {
        state,
        queue,
        tasks,
        reaper,
        stop,
        began,
    })
}

fn set_once(slot: &AtomicI64, v: i64) {
    let _ = slot.compare_exchange(0, v, Ordering::AcqRel, Ordering::Acquire);
}

async fn worker(
    index: usize,
    mut consumer: Box<dyn Consumer>,
    queue: Arc<dyn Queue>,
    plan: WorkPlan,
    shard: Shard,
    st: Arc<WorkState>,
    stop: CancellationToken,
) {
    let clock = Clock::get();
    let mut slot = Slot {
        index,
        plan,
        shard,
        st,
        held: Vec::new(),
        idle_since: None,
        polls: queue.kind().polls(),
        pending: tokio::task::JoinSet::new(),
    };
    let mut backoff = Duration::from_millis(50);
    while !stop.is_cancelled() {
        let claim_began = clock.now_us();
        let claim_start = Instant::now();
        let failed = match consumer.claim().await {
            Ok(jobs) if jobs.is_empty() => {
                slot.st.outages.success();
                backoff = Duration::from_millis(50);
                slot.found_nothing(&*consumer, claim_began, claim_start);
                // The design decides how an idle worker learns of new jobs.
                tokio::select! {
                    _ = consumer.idle() => {}
                    _ = stop.cancelled() => {}
                }
                continue;
            }
            Ok(jobs) => {
                slot.st.outages.success();
                backoff = Duration::from_millis(50);
                slot.process(&mut *consumer, jobs, claim_start).await.err()
            }
            Err(e) => Some(slot.claim_failed(e)),
        };
        if let Some(e) = failed {
            warn_limited(&format!("worker {index}: {e:#}; reconnecting"));
            consumer = match reconnect(&queue, index, &mut backoff, &stop).await {
                Some(c) => c,
                None => break,
            };
        }
    }
    // Jobs the design fetched for this process before the stop are worked too.
    while let Ok(jobs) = consumer.drain().await {
        if jobs.is_empty()
            || slot
                .process(&mut *consumer, jobs, Instant::now())
                .await
                .is_err()
        {
            break;
        }
    }
    // The last consumer gone, a completer writes what waits; its outcomes settle here.
    drop(consumer);
    while slot.pending.join_next().await.is_some() {}
}

/// One worker's own state between claims.
struct Slot {
    index: usize,
    plan: WorkPlan,
    shard: Shard,
    st: Arc<WorkState>,
    /// The jobs of the last claim: (seq, intended enqueue µs).
    held: Vec<(i64, i64)>,
    /// When this worker's last claim began, if that claim found the queue empty: a job
    /// due after it arrived while the worker was idle, so its queue wait is the wakeup's
    /// (tag `pickup`). A worker busy with a batch, or reconnecting, is not idle.
    idle_since: Option<i64>,
    /// A polling design's empty claim is a full claim that found nothing (under a held
    /// horizon, the costliest: it walks every dead entry); a blocking one's is a wait.
    polls: bool,
    /// Completions handed to a completer, settled when written.
    pending: tokio::task::JoinSet<()>,
}

impl Slot {
    /// A claim found nothing: counted (when a statement ran) and timed by polling designs.
    fn found_nothing(&mut self, consumer: &dyn Consumer, began_us: i64, start: Instant) {
        if let Some(rt) = consumer.claim_round_trip(start.elapsed()) {
            if self.polls {
                self.shard
                    .with(|h| h.record(Metric::Claim, rt.as_micros() as i64));
            }
            self.st.empty_claims.fetch_add(1, Ordering::Relaxed);
        }
        self.idle_since.get_or_insert(began_us);
    }

    fn claim_failed(&mut self, e: anyhow::Error) -> anyhow::Error {
        self.idle_since = None;
        self.st.errors.fetch_add(1, Ordering::Relaxed);
        self.st.outages.error();
        e.context("claim failed")
    }

    /// Records the claim, does the simulated work, and completes the jobs (or hands them
    /// to the design's completer); an error is counted, and the jobs come back as the
    /// design recovers them.
    async fn process(
        &mut self,
        consumer: &mut dyn Consumer,
        jobs: Vec<crate::queue::Claimed>,
        claim_start: Instant,
    ) -> anyhow::Result<()> {
        let claimed_at = Instant::now();
        let n = jobs.len();
        self.st.in_hand.fetch_add(n as i64, Ordering::AcqRel);
        let claim = Claim {
            at_us: Clock::get().wall_us(claimed_at),
            round_trip_us: consumer
                .claim_round_trip(claimed_at - claim_start)
                .map(|d| d.as_micros() as i64),
            idle_us: self.idle_since.take(),
        };
        claimed(&self.st, &self.shard, &jobs, &mut self.held, claim);
        if !self.plan.processing.is_zero() {
            for _ in 0..n {
                tokio::time::sleep(self.plan.processing).await;
            }
        }
        let (st, shard, held) = (&self.st, &self.shard, &self.held);
        let done = match consumer.hand_off(jobs).await {
            Ok(HandOff::Done(late)) => settle(st, shard, held, (claimed_at, None), Ok(late)),
            Ok(later) => {
                // The completer writes it later; this worker claims again meanwhile: it
                // was busy until now, the job's service lasts until the write.
                let freed = Some(Instant::now());
                let (st, shard, held, index) =
                    (st.clone(), shard.clone(), held.clone(), self.index);
                self.pending.spawn(async move {
                    let outcome = later.outcome().await;
                    if let Err(e) = settle(&st, &shard, &held, (claimed_at, freed), outcome) {
                        warn_limited(&format!(
                            "worker {index}: the completer could not confirm writing {} job(s) (outcome unknown; a job left running comes back when the design recovers it): {e:#}",
                            held.len()
                        ));
                    }
                });
                while self.pending.try_join_next().is_some() {}
                Ok(())
            }
            Err(e) => settle(st, shard, held, (claimed_at, None), Err(e)),
        };
        done.map_err(|e| {
            e.context(format!(
                "completing {n} job(s) failed, the design recovers them"
            ))
        })
    }
}

/// Settles a completion: the jobs it covers leave the worker's hands; those the queue
/// accepted are completed, those it refused late; a failure is counted and returned.
/// `span`: when the jobs were claimed, and when the worker was freed if before now (a
/// hand-over to a completer).
fn settle(
    st: &WorkState,
    shard: &Shard,
    held: &[(i64, i64)],
    span: (Instant, Option<Instant>),
    outcome: anyhow::Result<Vec<i64>>,
) -> anyhow::Result<()> {
    let done_at = Instant::now();
    let (claimed_at, freed_at) = (span.0, span.1.unwrap_or(done_at));
    st.in_hand.fetch_sub(held.len() as i64, Ordering::AcqRel);
    match outcome {
        Ok(late) => {
            st.outages.success();
            let busy = (freed_at - claimed_at).as_micros() as u64;
            st.busy_us.fetch_add(busy, Ordering::Relaxed);
            completed(st, shard, held, &late, claimed_at, done_at);
            Ok(())
        }
        Err(e) => {
            st.errors.fetch_add(1, Ordering::Relaxed);
            st.outages.error();
            Err(e)
        }
    }
}

/// When a claim answered and what it took.
struct Claim {
    at_us: i64,
    /// The claim's round trip (none when no statement ran).
    round_trip_us: Option<i64>,
    /// Since when the worker had been idle (its last claim found nothing).
    idle_us: Option<i64>,
}

/// Records a claim: its round trip, queue wait per job (and pickup for jobs due after
/// the worker found the queue empty), redeliveries, and the jobs now held.
fn claimed(
    st: &WorkState,
    shard: &Shard,
    jobs: &[crate::queue::Claimed],
    held: &mut Vec<(i64, i64)>,
    claim: Claim,
) {
    let Claim {
        at_us: claimed_us,
        round_trip_us,
        idle_us,
    } = claim;
    st.claimed.fetch_add(jobs.len() as u64, Ordering::Relaxed);
    set_once(&st.first_claim_us, claimed_us);
    st.last_claim_us.store(claimed_us, Ordering::Release);
    held.clear();
    let mut redelivered = 0;
    shard.with(|h| {
        if let Some(rt) = round_trip_us {
            h.record(Metric::Claim, rt);
        }
        for j in jobs {
            let wait = claimed_us - j.enqueued_at_us;
            h.record(Metric::QueueWait, wait);
            if idle_us.is_some_and(|t| j.enqueued_at_us >= t) {
                h.record(Metric::Pickup, wait);
            }
            held.push((j.seq, j.enqueued_at_us));
            redelivered += u64::from(j.attempts > 1);
        }
    });
    if redelivered > 0 {
        st.redelivered.fetch_add(redelivered, Ordering::Relaxed);
        set_once(&st.first_redelivery_us, claimed_us);
        st.last_redelivery_us
            .fetch_max(claimed_us, Ordering::AcqRel);
    }
}

/// Records a completion the queue answered: the jobs it accepted are completed (latency
/// and audit); those it refused because their lease ran out are late, not completed.
fn completed(
    st: &WorkState,
    shard: &Shard,
    held: &[(i64, i64)],
    late: &[i64],
    claimed_at: Instant,
    done_at: Instant,
) {
    let done_us = Clock::get().wall_us(done_at);
    let service = (done_at - claimed_at).as_micros() as i64;
    let accepted: Vec<(i64, i64)> = held
        .iter()
        .copied()
        .filter(|(seq, _)| !late.contains(seq))
        .collect();
    shard.with(|h| {
        for &(_, enq) in &accepted {
            h.record(Metric::E2e, done_us - enq);
        }
        h.record_n(Metric::Service, service, accepted.len() as u64);
    });
    for &(seq, _) in &accepted {
        st.audit.complete(seq);
    }
    for &seq in late {
        st.audit.late(seq);
    }
    st.late.fetch_add(late.len() as u64, Ordering::Relaxed);
    st.completed
        .fetch_add(accepted.len() as u64, Ordering::AcqRel);
    if !accepted.is_empty() {
        st.last_complete_us.fetch_max(done_us, Ordering::AcqRel);
    }
}

/// A new consumer after an error, with backoff; `None` once the run is stopping.
async fn reconnect(
    queue: &Arc<dyn Queue>,
    index: usize,
    backoff: &mut Duration,
    stop: &CancellationToken,
) -> Option<Box<dyn Consumer>> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(*backoff) => {}
            _ = stop.cancelled() => return None,
        }
        *backoff = (*backoff * 2).min(Duration::from_secs(2));
        match queue.consumer(index).await {
            Ok(c) => return Some(c),
            Err(e) => warn_limited(&format!("worker {index}: reconnect failed: {e:#}")),
        }
    }
}

/// Puts expired leases back, a few times per visibility timeout.
async fn reaper(
    queue: Arc<dyn Queue>,
    visibility: Duration,
    st: Arc<WorkState>,
    stop: CancellationToken,
) {
    let outages = st.outages.clone();
    let every = (visibility / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.cancelled() => return,
        }
        match queue.reap().await {
            Ok(None) => return,
            Ok(Some(n)) => {
                outages.success();
                st.reaped.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                st.reap_errors.fetch_add(1, Ordering::Relaxed);
                outages.error();
                warn_limited(&format!("reaper: {e:#}"));
            }
        }
    }
}

impl Workers {
    /// Stops claiming; jobs in hand are finished and completed first.
    pub async fn stop(mut self) -> Arc<WorkState> {
        self.stop.cancel();
        self.queue.stopping();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(r) = self.reaper.take() {
            let _ = r.await;
        }
        if let Err(e) = self.queue.stopped().await {
            warn_limited(&format!("stopping the design's workers: {e:#}"));
        }
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known truth: 20 workers busy 10 ms per job could take 2,000 jobs/s, but a protocol
    /// bound of 200 (River's 20 per 100-ms cooldown) caps the figure.
    #[test]
    fn capacity_is_capped_by_the_protocol_bound() {
        let st = WorkState::default();
        st.busy_us.store(1_000 * 10_000, Ordering::Relaxed);
        st.completed.store(1_000, Ordering::Relaxed);
        let free = st.capacity(20).expect("capacity");
        assert!((free - 2_000.0).abs() < 1e-6, "{free}");
        let bound = WorkState {
            protocol_bound: Some(200.0),
            ..WorkState::default()
        };
        bound.busy_us.store(1_000 * 10_000, Ordering::Relaxed);
        bound.completed.store(1_000, Ordering::Relaxed);
        assert_eq!(bound.capacity(20), Some(200.0));
    }
}
