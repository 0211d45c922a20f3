//! Windows during which the server could not be reached: the first failed call opens one,
//! the next successful call closes it. Producer, workers and reaper share one tracker, so
//! the manifest can say exactly when a test ran without its server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::clock::Clock;
pub use crate::format::metrics::Outage;

#[derive(Default)]
pub struct Outages {
    open: AtomicBool,
    windows: Mutex<Vec<Outage>>,
}

fn now_s() -> f64 {
    Clock::get().now_us() as f64 / 1e6
}

impl Outages {
    pub fn error(&self) {
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        match w.last_mut() {
            Some(o) if o.end_epoch_s.is_none() => o.errors += 1,
            _ => w.push(Outage {
                start_epoch_s: now_s(),
                end_epoch_s: None,
                errors: 1,
            }),
        }
        self.open.store(true, Ordering::Release);
    }

    /// Called after every successful call: one atomic load unless a window is open.
    #[inline]
    pub fn success(&self) {
        if !self.open.load(Ordering::Acquire) {
            return;
        }
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = w.last_mut().filter(|o| o.end_epoch_s.is_none()) {
            o.end_epoch_s = Some(now_s());
        }
        self.open.store(false, Ordering::Release);
    }

    pub fn windows(&self) -> Vec<Outage> {
        self.windows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_open_a_window_and_a_success_closes_it() {
        let o = Outages::default();
        o.success();
        assert!(o.windows().is_empty());
        o.error();
        o.error();
        o.success();
        o.success();
        o.error();
        let w = o.windows();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].errors, 2);
        assert!(w[0].end_epoch_s.is_some_and(|e| e >= w[0].start_epoch_s));
        assert_eq!(w[1].end_epoch_s, None, "still open");
    }
}
