//! One clock per process. Durations come from the monotonic clock; the wall-clock µs that
//! travel inside jobs are derived from it through one anchor taken at start, so a clock
//! step (NTP) during a run cannot bend a measured duration. Producers and workers on
//! different hosts still need synchronised clocks: e2e and queue wait cross hosts.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant0: Instant,
    wall0_us: i64,
}

impl Clock {
    /// The process-wide clock (anchored at first use).
    pub fn get() -> Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        *CLOCK.get_or_init(|| Clock {
            instant0: Instant::now(),
            wall0_us: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
        })
    }

    /// Wall-clock µs since the Unix epoch at `t`.
    pub fn wall_us(&self, t: Instant) -> i64 {
        match t.checked_duration_since(self.instant0) {
            Some(d) => self.wall0_us + d.as_micros() as i64,
            None => self.wall0_us - self.instant0.duration_since(t).as_micros() as i64,
        }
    }

    pub fn now_us(&self) -> i64 {
        self.wall_us(Instant::now())
    }

    /// The instant at which the wall clock read `us` (inverse of [`Clock::wall_us`]).
    pub fn instant_at(&self, us: i64) -> Instant {
        let d = us - self.wall0_us;
        if d >= 0 {
            self.instant0 + Duration::from_micros(d as u64)
        } else {
            self.instant0
                .checked_sub(Duration::from_micros((-d) as u64))
                .unwrap_or(self.instant0)
        }
    }

    pub fn system_time(&self, t: Instant) -> SystemTime {
        UNIX_EPOCH + Duration::from_micros(self.wall_us(t).max(0) as u64)
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_and_instant_round_trip() {
        let c = Clock::get();
        let t = Instant::now() + Duration::from_millis(1500);
        let us = c.wall_us(t);
        let back = c.instant_at(us);
        let diff = if back > t { back - t } else { t - back };
        assert!(diff < Duration::from_micros(2), "{diff:?}");
        assert!((c.now_us() - us).abs() < 2_000_000);
    }
}
