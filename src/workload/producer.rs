//! The open-loop producer. Job i is due at t0 + i/rate and carries that intended time.
//! A pacer thread (std sleep: finer than tokio's millisecond timer) publishes how many
//! jobs are due; connection tasks take everything due (up to a batch) and send it in one
//! round trip. A slow server makes the producer fall behind and catch up; the lateness is
//! recorded as schedule lag and counts in every latency, because stamps are intended times.
//!
//! Job i carries a sequence number from blocks the queue's server hands out, so numbers
//! are unique across producer processes. Which numbers the server acknowledged is kept
//! for the audit; a batch given up on after an error of unknown outcome is "uncertain".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::audit::SeqBits;
use super::outages::Outages;
use super::warn_limited;
use crate::clock::Clock;
use crate::format::audit::SeqSet;
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
#[derive(Debug, Clone, Default)]
pub struct ProduceOutcome {
    pub produced: u64,
    /// The seqs the server acknowledged.
    pub produced_seqs: SeqSet,
    /// Seqs sent, then given up on after an error with no acknowledgement.
    pub uncertain: SeqSet,
    pub errors: u64,
    pub started: Option<Instant>,
    pub last_done: Option<Instant>,
    /// Jobs per second offered: produced / (last send − t0 + one slot).
    pub achieved_rate: f64,
    /// `--rate max`: stamps are send times, not a schedule.
    pub closed_loop: bool,
    /// Which seq was due when (paced runs).
    pub schedule: Option<Schedule>,
}

/// The producer's schedule: job i was due at `wall0_us + i / rate`, and its seq came
/// from block `i / block`.
#[derive(Debug, Clone, Default)]
pub struct Schedule {
    pub wall0_us: i64,
    pub rate: f64,
    pub block: u64,
    pub blocks: Vec<i64>,
}

impl Schedule {
    /// When the job with this seq was due (wall µs), if this producer made it.
    pub fn intended_us(&self, seq: i64) -> Option<i64> {
        let block = i64::try_from(self.block).ok()?;
        let k = self
            .blocks
            .iter()
            .position(|&start| (start..start + block).contains(&seq))?;
        let i = k as i64 * block + (seq - self.blocks[k]);
        Some(self.wall0_us + (i as f64 / self.rate * 1e6).round() as i64)
    }
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
    acked: SeqBits,
    uncertain: Mutex<Vec<i64>>,
    /// Job i's seq is `blocks[i / block] + i % block`; blocks are taken as needed.
    blocks: RwLock<Vec<i64>>,
    block: u64,
    alloc: tokio::sync::Mutex<()>,
    last_done: Mutex<Option<Instant>>,
    /// Shared with the workers: when the server could not be reached.
    outages: Arc<Outages>,
    /// A caller's count of acknowledged jobs (`Env::acked`).
    tap: Option<Arc<AtomicU64>>,
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

    /// The seq of job `i`, taking another block from the server when `i` needs one.
    async fn seq_of(&self, i: u64, queue: &Arc<dyn Queue>) -> Result<i64> {
        let k = (i / self.block) as usize;
        if let Some(&start) = self.blocks.read().unwrap_or_else(|p| p.into_inner()).get(k) {
            return Ok(start + (i % self.block) as i64);
        }
        let _one_at_a_time = self.alloc.lock().await;
        while self.blocks.read().unwrap_or_else(|p| p.into_inner()).len() <= k {
            let start = queue.allocate(self.block).await?;
            self.blocks
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .push(start);
        }
        let start = self.blocks.read().unwrap_or_else(|p| p.into_inner())[k];
        Ok(start + (i % self.block) as i64)
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
    tap: Option<Arc<AtomicU64>>,
    gate: &super::load::Gate,
) -> Result<ProducerHandle> {
    let mut producers = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections.max(1) {
        producers.push(queue.producer().await?);
    }
    let total = plan.total().unwrap_or(u64::MAX);
    // A bounded run takes all its numbers at once; an open-ended one a million at a time.
    let block = total.clamp(1, 1 << 20);
    let first = queue.allocate(block).await?;
    // Connections open and numbers in hand: the schedule starts at the gate.
    gate.wait().await?;
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        t0,
        wall0_us: Clock::get().wall_us(t0),
        rate: plan.rate,
        total,
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
        acked: SeqBits::default(),
        uncertain: Mutex::new(Vec::new()),
        blocks: RwLock::new(vec![first]),
        block,
        alloc: tokio::sync::Mutex::new(()),
        last_done: Mutex::new(None),
        outages,
        tap,
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
        let send_at = Instant::now();
        if !stamp(&s, &queue, start, n, &mut jobs, index, &stop).await {
            return;
        }
        shard.with(|h| {
            for i in start..start + n {
                let lag = send_at.saturating_duration_since(s.intended(i).0);
                h.record(Metric::ScheduleLag, lag.as_micros() as i64);
            }
        });
        if !send(&s, &queue, &mut producer, &jobs, &shard, index, &stop).await {
            return;
        }
    }
}

/// Fills `jobs` with jobs `start..start + n`: their seqs and intended times. A block of
/// seqs the server cannot hand out is retried like a failed send; false once stopping.
async fn stamp(
    s: &Shared,
    queue: &Arc<dyn Queue>,
    start: u64,
    n: u64,
    jobs: &mut Vec<NewJob>,
    index: usize,
    stop: &CancellationToken,
) -> bool {
    jobs.clear();
    let mut backoff = Duration::from_millis(50);
    for i in start..start + n {
        let seq = loop {
            match s.seq_of(i, queue).await {
                Ok(seq) => break seq,
                Err(e) => {
                    s.errors.fetch_add(1, Ordering::Relaxed);
                    s.outages.error();
                    warn_limited(&format!(
                        "producer connection {index}: no sequence numbers, retrying: {e:#}"
                    ));
                    if !pause(&mut backoff, stop).await {
                        return false;
                    }
                }
            }
        };
        jobs.push(NewJob {
            seq,
            enqueued_at_us: s.intended(i).1,
        });
    }
    true
}

/// Sleeps `backoff` (doubling it up to 2 s); false if the run is stopping.
async fn pause(backoff: &mut Duration, stop: &CancellationToken) -> bool {
    if stop.is_cancelled() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = stop.cancelled() => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(2));
    true
}

/// Sends one batch until the server acknowledges it, reconnecting with backoff; a retry
/// is idempotent by seq where the design can check it (`Producer::enqueue`; pgmq's
/// delete cannot, and the audit then names the job duplicated). False once the run stops while the batch cannot be sent: its
/// jobs are then uncertain (an attempt may have reached the queue).
async fn send(
    s: &Shared,
    queue: &Arc<dyn Queue>,
    producer: &mut Box<dyn Producer>,
    jobs: &[NewJob],
    shard: &Shard,
    index: usize,
    stop: &CancellationToken,
) -> bool {
    let n = jobs.len() as u64;
    let mut backoff = Duration::from_millis(50);
    let mut retry = false;
    loop {
        let call = Instant::now();
        match producer.enqueue(jobs, retry).await {
            Ok(()) => {
                s.outages.success();
                let done = Instant::now();
                shard.with(|h| h.record_n(Metric::Enqueue, (done - call).as_micros() as i64, n));
                for j in jobs {
                    s.acked.insert(j.seq);
                }
                s.produced.fetch_add(n, Ordering::AcqRel);
                if let Some(tap) = &s.tap {
                    tap.fetch_add(n, Ordering::AcqRel);
                }
                if let Ok(mut l) = s.last_done.lock() {
                    *l = Some(l.map_or(done, |p| p.max(done)));
                }
                return true;
            }
            Err(e) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                s.outages.error();
                warn_limited(&format!(
                    "producer connection {index}: enqueue failed, retrying: {e:#}"
                ));
                retry = true;
                if !pause(&mut backoff, stop).await {
                    s.uncertain
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend(jobs.iter().map(|j| j.seq));
                    return false;
                }
                if let Ok(p) = queue.producer().await {
                    *producer = p;
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
            produced_seqs: s.acked.to_set(),
            uncertain: SeqSet::from_unsorted(
                s.uncertain
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            ),
            errors: s.errors.load(Ordering::Relaxed),
            closed_loop: s.rate.is_none(),
            schedule: s.rate.map(|rate| Schedule {
                wall0_us: s.wall0_us,
                rate,
                block: s.block,
                blocks: s.blocks.read().unwrap_or_else(|p| p.into_inner()).clone(),
            }),
            started: Some(s.t0),
            last_done,
            achieved_rate,
        }
    }
}
