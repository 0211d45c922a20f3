//! River's background work, run by the elected leader among a run's processes
//! (internal/maintenance/ and internal/leadership/elector.go at fdf6cdf), at River's
//! intervals, from qbench's reaper (called about every second):
//! - the elector, every 5 s: the leader renews its 15-s term, the others delete an
//!   expired one and try to take it;
//! - the rescuer, every 30 s (or every RescueStuckJobsAfter, when shorter, so that a
//!   test's rescue in seconds is not held up): jobs running longer than
//!   RescueStuckJobsAfter become retryable, due after River's backoff of
//!   (errors + 1)^4 s ± 10 %, or discarded after their last attempt;
//! - the scheduler, every 5 s: retryable jobs due within the next 5 s become available
//!   (one transaction; an insert notification for those due now, in notify mode);
//! - the cleaner, every 30 s: completed and cancelled jobs finalized over 24 h ago, and
//!   discarded ones over 7 days ago, deleted 10,000 at a time.

use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use deadpool_postgres::ClientWrapper as Client;

use crate::schema::SqlFile;

const ELECT_EVERY: Duration = Duration::from_secs(5);
const LEADER_TTL_S: f64 = 15.0;
const RESCUE_EVERY: Duration = Duration::from_secs(30);
const SCHEDULE_EVERY: Duration = Duration::from_secs(5);
const CLEAN_EVERY: Duration = Duration::from_secs(30);
const COMPLETED_RETENTION: Duration = Duration::from_secs(24 * 3600);
const DISCARDED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// A full batch of the rescuer, scheduler and cleaner: another pass follows at once.
const BATCH: u64 = 10_000;

/// When each service last ran, and whether this process leads.
pub struct Maintenance {
    pub client_id: String,
    pub rescue_after: Duration,
    pub notify: bool,
    leader: bool,
    elected: Option<Instant>,
    rescued: Option<Instant>,
    scheduled: Option<Instant>,
    cleaned: Option<Instant>,
}

fn due(last: &mut Option<Instant>, every: Duration) -> bool {
    if last.is_some_and(|t| t.elapsed() < every) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

impl Maintenance {
    pub fn new(client_id: String, rescue_after: Duration, notify: bool) -> Maintenance {
        Maintenance {
            client_id,
            rescue_after,
            notify,
            leader: false,
            elected: None,
            rescued: None,
            scheduled: None,
            cleaned: None,
        }
    }

    /// Runs what is due; returns the jobs rescued.
    pub async fn tick(&mut self, c: &mut Client, sql: &SqlFile) -> Result<u64> {
        if due(&mut self.elected, ELECT_EVERY) {
            self.leader = self.elect(c, sql).await?;
        }
        if !self.leader {
            return Ok(0);
        }
        let mut rescued = 0;
        if due(&mut self.rescued, RESCUE_EVERY.min(self.rescue_after)) {
            rescued = self.rescue(c, sql).await?;
        }
        if due(&mut self.scheduled, SCHEDULE_EVERY) {
            while schedule(c, sql, self.notify).await? == BATCH {}
        }
        if due(&mut self.cleaned, CLEAN_EVERY) {
            let now = SystemTime::now();
            let (done, discarded) = (now - COMPLETED_RETENTION, now - DISCARDED_RETENTION);
            let st = c.prepare_cached(sql.get("clean")).await?;
            while c.execute(&st, &[&done, &discarded]).await? == BATCH {}
        }
        Ok(rescued)
    }

    async fn elect(&self, c: &mut Client, sql: &SqlFile) -> Result<bool> {
        let me = &self.client_id;
        if self.leader {
            let st = c.prepare_cached(sql.get("reelect")).await?;
            return Ok(c.query_opt(&st, &[me, &LEADER_TTL_S]).await?.is_some());
        }
        let tx = c.transaction().await?;
        tx.execute(sql.get("leader_expired"), &[]).await?;
        let won = tx.query_opt(sql.get("elect"), &[me, &LEADER_TTL_S]).await?;
        tx.commit().await?;
        Ok(won.is_some())
    }

    /// JobGetStuck then JobRescueMany, a page of ids at a time.
    async fn rescue(&self, c: &mut Client, sql: &SqlFile) -> Result<u64> {
        let stuck = c.prepare_cached(sql.get("stuck")).await?;
        let rescue = c.prepare_cached(sql.get("rescue")).await?;
        let (mut after, mut total) = (0i64, 0u64);
        loop {
            let horizon = SystemTime::now() - self.rescue_after;
            let rows = c.query(&stuck, &[&after, &horizon]).await?;
            let Some(last) = rows.last() else {
                return Ok(total);
            };
            after = last.try_get(0)?;
            let now = SystemTime::now();
            let (mut ids, mut finalized, mut due_at, mut states) = (vec![], vec![], vec![], vec![]);
            for r in &rows {
                let (attempt, max): (i16, i16) = (r.try_get(1)?, r.try_get(2)?);
                let errors: i32 = r.try_get(3)?;
                ids.push(r.try_get::<_, i64>(0)?);
                if attempt < max {
                    finalized.push(None);
                    due_at.push(now + backoff(errors));
                    states.push("retryable");
                } else {
                    finalized.push(Some(now));
                    due_at.push(now);
                    states.push("discarded");
                }
            }
            c.execute(&rescue, &[&ids, &finalized, &due_at, &states])
                .await?;
            total += rows.len() as u64;
            if (rows.len() as u64) < BATCH {
                return Ok(total);
            }
        }
    }
}

/// River's default retry policy: (errors so far + 1)^4 seconds, ± 10 %.
fn backoff(errors: i32) -> Duration {
    let base = f64::from(errors.max(0) + 1).powi(4);
    Duration::from_secs_f64(base * (0.9 + 0.2 * crate::queue::pg::jitter_fraction()))
}

/// One JobSchedule pass in its transaction; returns the jobs made available.
async fn schedule(c: &mut Client, sql: &SqlFile, notify: bool) -> Result<u64> {
    let horizon = SystemTime::now() + SCHEDULE_EVERY;
    let tx = c.transaction().await?;
    let r = tx.query_one(sql.get("schedule"), &[&horizon]).await?;
    let (moved, due_now): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
    if notify && due_now > 0 {
        tx.execute(sql.get("notify"), &[]).await?;
    }
    tx.commit().await?;
    Ok(u64::try_from(moved).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// River's backoff on known truth: 1 s after no error, 16 s after one, within 10 %.
    #[test]
    fn backoff_is_rivers() {
        for _ in 0..100 {
            let first = backoff(0).as_secs_f64();
            assert!((0.9..=1.1).contains(&first), "{first}");
            let second = backoff(1).as_secs_f64();
            assert!((14.4..=17.6).contains(&second), "{second}");
        }
    }
}
