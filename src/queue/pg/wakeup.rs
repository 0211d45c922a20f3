//! How idle PostgreSQL workers learn of new jobs. `poll`: claim again after
//! `poll_interval_ms`, a floor on pickup latency and an empty transaction per idle
//! worker per interval. `notify`: the enqueue NOTIFYs the queue's channel once per batch
//! (its payload the batch's size); one LISTEN connection per process wakes that many
//! idle workers, and a poll every 10 × `poll_interval_ms` covers a notification missed
//! while the listener reconnects.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_trait::async_trait;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

use crate::config::{Postgres, Wakeup};
use crate::queue::{Claimed, Consumer, HandOff, WakeupReport};

/// The channel a design's enqueues notify: one per queue table.
pub fn channel(table: &str) -> String {
    format!("qbench_{table}")
}

/// The mode, and what notifying has cost this process so far.
pub struct WakeupCounts {
    pub mode: Wakeup,
    /// Notifications this process's producers sent (one per batch that added jobs).
    pub sent: AtomicU64,
    /// Notifications this process's listener received (from every producer).
    pub received: AtomicU64,
    /// Whether this process listens at all (a producer alone does not).
    pub listening: AtomicBool,
}

impl WakeupCounts {
    pub fn new(mode: Wakeup) -> WakeupCounts {
        WakeupCounts {
            mode,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        }
    }

    pub fn report(&self) -> WakeupReport {
        let notify = self.mode == Wakeup::Notify;
        WakeupReport {
            mode: self.mode.name().into(),
            notifications_sent: notify.then(|| self.sent.load(Ordering::Relaxed)),
            notifications_received: (notify && self.listening.load(Ordering::Relaxed))
                .then(|| self.received.load(Ordering::Relaxed)),
        }
    }
}

/// The process's LISTEN connection. Dropped with the queue: its task ends, the
/// connection closes.
pub struct Listener {
    wake: Arc<Wake>,
    task: JoinHandle<()>,
}

/// What the listener tells idle workers: a generation that moves on every notification
/// (a worker compares it with the one it saw before its claim, so a notification that
/// came during the claim is never missed), and a Notify that wakes the waiting ones.
#[derive(Default)]
pub struct Wake {
    generation: AtomicU64,
    notify: Notify,
}

impl Wake {
    /// A notification announcing `jobs` jobs: wakes that many waiting workers (more than
    /// are waiting only leaves one spare permit: at most one extra claim).
    fn announce(&self, jobs: usize) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        for _ in 0..jobs.clamp(1, 4096) {
            self.notify.notify_one();
        }
    }

    /// Jobs may have come while nobody listened: every waiting worker looks.
    fn everyone(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.notify.notify_waiters();
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits for a notification after generation `seen`, or for `fallback`.
    async fn wait(&self, seen: u64, fallback: Duration) {
        let notified = self.notify.notified();
        tokio::pin!(notified);
        // Registered before the generation is read: a notification between the two
        // still wakes this worker.
        notified.as_mut().enable();
        if self.generation() != seen {
            return;
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(fallback) => {}
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Listener {
    /// Moves on with every notification.
    pub fn generation(&self) -> u64 {
        self.wake.generation()
    }

    /// Waits for a notification after generation `seen`, or for `fallback`.
    pub async fn wait(&self, seen: u64, fallback: Duration) {
        self.wake.wait(seen, fallback).await
    }

    /// Connects and LISTENs now (a failure here is the user's: one clear line), then
    /// keeps listening in the background, reconnecting with backoff.
    pub async fn start(
        pg: &Postgres,
        channel: String,
        counts: Arc<WakeupCounts>,
    ) -> Result<Listener> {
        let wake = Arc::new(Wake::default());
        let first = listen(pg, &channel, wake.clone(), counts.clone()).await?;
        counts.listening.store(true, Ordering::Relaxed);
        let (pg, w) = (pg.clone(), wake.clone());
        let task = tokio::spawn(async move {
            let (mut client, mut driver) = first;
            loop {
                let _ = driver.await;
                drop(client);
                let mut backoff = Duration::from_millis(50);
                (client, driver) = loop {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    if let Ok(c) = listen(&pg, &channel, w.clone(), counts.clone()).await {
                        break c;
                    }
                };
                w.everyone();
            }
        });
        Ok(Listener { wake, task })
    }
}

/// One LISTEN connection: the client, and the task that reads its notifications (it
/// ends when the connection does).
async fn listen(
    pg: &Postgres,
    channel: &str,
    wake: Arc<Wake>,
    counts: Arc<WakeupCounts>,
) -> Result<(Client, JoinHandle<()>)> {
    let (client, mut conn) = super::bounded(
        pg,
        super::client_config(pg).connect(super::tls::connector(pg)?),
    )
    .await?;
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = messages.next().await {
            if let AsyncMessage::Notification(n) = m {
                counts.received.fetch_add(1, Ordering::Relaxed);
                // Wake as many idle workers as the batch has jobs, or all of them.
                match jobs_announced(n.payload()) {
                    Some(jobs) => wake.announce(jobs),
                    None => wake.everyone(),
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .with_context(|| format!("LISTEN {channel}"))?;
    Ok((client, driver))
}

/// The jobs a notification announces: its payload as a number (qbench's), the `count`
/// of a JSON object (graphile-worker's `{"r":…,"count":N}`), one for other JSON or none
/// (River's); `None`, every waiting worker, for a queue's name (pg-boss wakes every
/// worker of the queue it names).
fn jobs_announced(payload: &str) -> Option<usize> {
    if let Ok(n) = payload.parse() {
        return Some(n);
    }
    match serde_json::from_str::<serde_json::Value>(payload) {
        Ok(v) => Some(
            v["count"]
                .as_u64()
                .map_or(1, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        ),
        Err(_) if payload.is_empty() => Some(1),
        Err(_) => None,
    }
}

/// How a worker waits after finding the queue empty.
#[derive(Clone)]
pub enum Wait {
    Poll(Duration),
    Notify {
        listener: Arc<Listener>,
        fallback: Duration,
    },
}

/// What a PostgreSQL design's consumer does itself; [`Waiting`] adds how a worker waits
/// when the queue is empty, the same for every PostgreSQL design.
#[async_trait]
pub trait Claims: Send + 'static {
    async fn claim(&mut self) -> Result<Vec<Claimed>>;
    /// Returns the seqs the queue refused (their lease ran out).
    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>>;
    /// See [`Consumer::hand_off`]: by default the completion, written now.
    async fn hand_off(&mut self, jobs: Vec<Claimed>) -> Result<HandOff> {
        Ok(HandOff::Done(self.complete(jobs).await?))
    }
}

pub struct Waiting<C> {
    pub inner: C,
    pub wait: Wait,
    /// The listener's generation when the last claim began.
    pub seen: u64,
}

impl<C> Waiting<C> {
    pub fn new(inner: C, wait: Wait) -> Waiting<C> {
        Waiting {
            inner,
            wait,
            seen: 0,
        }
    }
}

#[async_trait]
impl<C: Claims> Consumer for Waiting<C> {
    async fn claim(&mut self) -> Result<Vec<Claimed>> {
        if let Wait::Notify { listener, .. } = &self.wait {
            self.seen = listener.wake.generation();
        }
        self.inner.claim().await
    }

    async fn complete(&mut self, jobs: Vec<Claimed>) -> Result<Vec<i64>> {
        self.inner.complete(jobs).await
    }

    async fn hand_off(&mut self, jobs: Vec<Claimed>) -> Result<HandOff> {
        self.inner.hand_off(jobs).await
    }

    async fn idle(&mut self) {
        match &self.wait {
            Wait::Poll(d) => tokio::time::sleep(*d).await,
            Wait::Notify { listener, fallback } => listener.wake.wait(self.seen, *fallback).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    /// Polls once, as an executor would.
    fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
        std::pin::Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    /// A notification of k jobs wakes k of the workers waiting, not all (graphile-worker's
    /// nudge of `count` idle workers): four waits registered, two jobs announced, two
    /// ready; the others wake on the next announcement.
    #[tokio::test]
    async fn a_notification_wakes_as_many_waiting_workers_as_it_announces() {
        let wake = super::Wake::default();
        let seen = wake.generation();
        let mut waits: Vec<_> = (0..4)
            .map(|_| Box::pin(wake.wait(seen, Duration::from_secs(600))))
            .collect();
        for w in &mut waits {
            assert!(poll_once(w).is_pending(), "registered, waiting");
        }
        wake.announce(2);
        let mut ready = 0;
        let mut left = vec![];
        for mut w in waits {
            match poll_once(&mut w) {
                Poll::Ready(()) => ready += 1,
                Poll::Pending => left.push(w),
            }
        }
        assert_eq!((ready, left.len()), (2, 2));
        wake.announce(2);
        for mut w in left {
            assert!(poll_once(&mut w).is_ready());
        }
    }

    #[test]
    fn a_notification_announces_its_jobs() {
        assert_eq!(super::jobs_announced("7"), Some(7));
        assert_eq!(super::jobs_announced(r#"{"r":0.42,"count":5}"#), Some(5));
        assert_eq!(super::jobs_announced(""), Some(1));
        assert_eq!(super::jobs_announced(r#"{"queue":"default"}"#), Some(1));
        assert_eq!(super::jobs_announced("qbench"), None, "pg-boss's: everyone");
    }
}
