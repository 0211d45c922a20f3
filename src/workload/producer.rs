//! The open-loop producer. Job i is due at t0 + i/rate and carries that intended time.
//! A pacer thread (std sleep: finer than tokio's millisecond timer) publishes how many
//! jobs are due; connection tasks take everything due (up to a batch) and send it in one
//! round trip. A slow server makes the producer fall behind and catch up; the lateness is
//! recorded as schedule lag and counts in every latency, because stamps are intended times.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::outages::Outages;
use super::warn_limited;
use crate::clock::Clock;
use crate::queue::{NewJob, Producer, Queue};
use crate::stats::{Metric, Recorders, Shard};

/// How many jobs and how fast.
#[derive(Debug, Clone)]
pub struct ProducePlan {
    /// Jobs per second; `None` offers jobs as fast as the server takes them.
    pub rate: Option<f64>,
    /// Stop after this many jobs.
    pub count: Option<u64>,
    /// Stop offering after this long (with a rate: count = rate × duration).
    pub duration: Option<Duration>,
    pub connections: usize,
    /// Most jobs sent in one round trip (jobs that fell due together).
    pub max_batch: usize,
}

impl ProducePlan {
    /// Most jobs that fell due together and go out in one round trip.
    pub const MAX_BATCH: usize = 500;

    /// `rate` jobs/s (`None`: as fast as the server takes them) for `duration`, over the
    /// config's producer connections.
    pub fn paced(
        rate: Option<f64>,
        duration: Duration,
        b: &crate::config::Benchmark,
    ) -> ProducePlan {
        ProducePlan {
            rate,
            count: None,
            duration: Some(duration),
            connections: b.producer_connections as usize,
            max_batch: Self::MAX_BATCH,
        }
    }

    /// Total jobs of a paced run, if bounded.
    pub fn total(&self) -> Option<u64> {
        match (self.count, self.rate, self.duration) {
            (Some(n), _, _) => Some(n),
            (None, Some(r), Some(d)) => Some((r * d.as_secs_f64()).round() as u64),
            _ => None,
        }
    }
}

/// What producing achieved.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProduceOutcome {
    pub produced: u64,
    /// Highest sequence number handed out + 1 (seqs 0..taken were attempted).
    pub taken: u64,
    /// Jobs abandoned unsent because the run was stopped while the server failed.
    pub unsent: u64,
    pub errors: u64,
    pub started: Option<Instant>,
    pub last_done: Option<Instant>,
    /// Jobs per second offered: produced / (last send − t0 + one slot).
    pub achieved_rate: f64,
}

pub struct Shared {
    t0: Instant,
    wall0_us: i64,
    rate: Option<f64>,
    total: u64,
    deadline: Option<Instant>,
    due: AtomicU64,
    next: AtomicU64,
    notify: Notify,
    finished: AtomicBool,
    pub produced: AtomicU64,
    pub errors: AtomicU64,
    unsent: AtomicU64,
    last_done: Mutex<Option<Instant>>,
    /// Shared with the workers: when the server could not be reached.
    outages: Arc<Outages>,
}

enum Take {
    Batch(u64, u64),
    NothingDue,
    Finished,
}

impl Shared {
    fn take(&self, max: u64) -> Take {
        loop {
            let next = self.next.load(Ordering::Acquire);
            if next >= self.total || self.finished.load(Ordering::Acquire) {
                return Take::Finished;
            }
            let due = match self.rate {
                Some(_) => self.due.load(Ordering::Acquire),
                None => {
                    if self.deadline.is_some_and(|d| Instant::now() >= d) {
                        return Take::Finished;
                    }
                    self.total
                }
            };
            if next >= due {
                return Take::NothingDue;
            }
            let n = (due - next).min(max);
            if self
                .next
                .compare_exchange(next, next + n, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Take::Batch(next, n);
            }
        }
    }

    /// Intended send instant and wall µs of job `seq`.
    fn intended(&self, seq: u64) -> (Instant, i64) {
        match self.rate {
            Some(r) => {
                let offset = seq as f64 / r;
                (
                    self.t0 + Duration::from_secs_f64(offset),
                    self.wall0_us + (offset * 1e6).round() as i64,
                )
            }
            None => {
                let now = Instant::now();
                (now, Clock::get().wall_us(now))
            }
        }
    }
}

pub struct ProducerHandle {
    pub shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
    pacer: Option<std::thread::JoinHandle<()>>,
    stop: CancellationToken,
}

/// Connects every producer connection (errors here are the user's: wrong server,
/// missing schema), then starts the clock and the pacer.
pub async fn start(
    queue: Arc<dyn Queue>,
    plan: &ProducePlan,
    recorders: &Recorders,
    outages: Arc<Outages>,
) -> Result<ProducerHandle> {
    let mut producers = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections.max(1) {
        producers.push(queue.producer().await?);
    }
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        t0,
        wall0_us: Clock::get().wall_us(t0),
        rate: plan.rate,
        total: plan.total().unwrap_or(u64::MAX),
        deadline: match (plan.rate, plan.duration) {
            (None, Some(d)) => Some(t0 + d),
            _ => None,
        },
        due: AtomicU64::new(0),
        next: AtomicU64::new(0),
        notify: Notify::new(),
        finished: AtomicBool::new(false),
        produced: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        unsent: AtomicU64::new(0),
        last_done: Mutex::new(None),
        outages,
    });
    let stop = CancellationToken::new();
    let pacer = plan.rate.map(|_| {
        let s = shared.clone();
        std::thread::Builder::new()
            .name("qbench-pacer".into())
            .spawn(move || pace(&s))
    });
    let pacer = match pacer {
        Some(Ok(h)) => Some(h),
        Some(Err(e)) => return Err(anyhow::anyhow!("starting the pacer thread: {e}")),
        None => None,
    };
    let tasks = producers
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            tokio::spawn(connection(
                i,
                p,
                queue.clone(),
                shared.clone(),
                recorders.shard(i),
                plan.max_batch.max(1) as u64,
                stop.clone(),
            ))
        })
        .collect();
    Ok(ProducerHandle {
        shared,
        tasks,
        pacer,
        stop,
    })
}

/// Publishes the number of jobs due, waking at each job's due time (at most every 100 µs).
fn pace(s: &Shared) {
    let Some(rate) = s.rate else { return };
    loop {
        if s.finished.load(Ordering::Acquire) {
            return;
        }
        let elapsed = s.t0.elapsed().as_secs_f64();
        let due = ((elapsed * rate).floor() as u64 + 1).min(s.total);
        if due > s.due.load(Ordering::Acquire) {
            s.due.store(due, Ordering::Release);
            s.notify.notify_waiters();
        }
        if due >= s.total {
            return;
        }
        let next_at = s.t0 + Duration::from_secs_f64(due as f64 / rate);
        let wait = next_at
            .saturating_duration_since(Instant::now())
            .max(Duration::from_micros(100));
        std::thread::sleep(wait.min(Duration::from_millis(50)));
    }
}

async fn connection(
    index: usize,
    mut producer: Box<dyn Producer>,
    queue: Arc<dyn Queue>,
    s: Arc<Shared>,
    shard: Shard,
    max_batch: u64,
    stop: CancellationToken,
) {
    let outages = s.outages.clone();
    let mut jobs: Vec<NewJob> = Vec::with_capacity(max_batch as usize);
    loop {
        let notified = s.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if stop.is_cancelled() {
            return;
        }
        let (start, n) = match s.take(max_batch) {
            Take::Finished => return,
            Take::NothingDue => {
                tokio::select! {
                    _ = notified => {}
                    _ = stop.cancelled() => return,
                }
                continue;
            }
            Take::Batch(start, n) => (start, n),
        };
        jobs.clear();
        let send_at = Instant::now();
        shard.with(|h| {
            for seq in start..start + n {
                let (due_at, due_us) = s.intended(seq);
                jobs.push(NewJob {
                    seq: seq as i64,
                    enqueued_at_us: due_us,
                });
                let lag = send_at.saturating_duration_since(due_at);
                h.record(Metric::ScheduleLag, lag.as_micros() as i64);
            }
        });
        let mut backoff = Duration::from_millis(50);
        loop {
            let call = Instant::now();
            match producer.enqueue(&jobs).await {
                Ok(()) => {
                    outages.success();
                    let done = Instant::now();
                    shard
                        .with(|h| h.record_n(Metric::Enqueue, (done - call).as_micros() as i64, n));
                    s.produced.fetch_add(n, Ordering::AcqRel);
                    if let Ok(mut l) = s.last_done.lock() {
                        *l = Some(l.map_or(done, |p| p.max(done)));
                    }
                    break;
                }
                Err(e) => {
                    s.errors.fetch_add(1, Ordering::Relaxed);
                    outages.error();
                    warn_limited(&format!(
                        "producer connection {index}: enqueue failed, retrying: {e:#}"
                    ));
                    // A stopped run gives up on a batch it cannot send; the audit knows.
                    if stop.is_cancelled() {
                        s.unsent.fetch_add(n, Ordering::Relaxed);
                        return;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    if let Ok(p) = queue.producer().await {
                        producer = p;
                    }
                }
            }
        }
    }
}

impl ProducerHandle {
    pub fn produced(&self) -> u64 {
        self.shared.produced.load(Ordering::Acquire)
    }

    pub fn errors(&self) -> u64 {
        self.shared.errors.load(Ordering::Relaxed)
    }

    pub fn t0(&self) -> Instant {
        self.shared.t0
    }

    /// True once every job has been handed out and sent.
    pub fn is_done(&self) -> bool {
        self.tasks.iter().all(JoinHandle::is_finished)
    }

    /// Waits until all jobs are sent (or `stop` is requested).
    pub async fn wait(&mut self) {
        for t in &mut self.tasks {
            let _ = t.await;
        }
    }

    /// Stops offering new jobs; batches in flight finish.
    pub async fn stop(mut self) -> ProduceOutcome {
        self.shared.finished.store(true, Ordering::Release);
        self.stop.cancel();
        self.shared.notify.notify_waiters();
        self.wait().await;
        if let Some(p) = self.pacer.take() {
            let _ = tokio::task::spawn_blocking(move || p.join()).await;
        }
        let s = &self.shared;
        let produced = s.produced.load(Ordering::Acquire);
        let last_done = s.last_done.lock().ok().and_then(|l| *l);
        let span = last_done.map_or(0.0, |l| (l - s.t0).as_secs_f64());
        let achieved_rate = match s.rate {
            // n jobs fill n slots of 1/rate: an on-time run reads exactly the rate.
            Some(r) if produced > 0 => produced as f64 / (span + 1.0 / r),
            None if span > 0.0 => produced as f64 / span,
            _ => 0.0,
        };
        ProduceOutcome {
            produced,
            taken: s.next.load(Ordering::Acquire).min(s.total),
            unsent: s.unsent.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            started: Some(s.t0),
            last_done,
            achieved_rate,
        }
    }
}
