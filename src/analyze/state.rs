//! The state of an open-loop test, judged on its production window: `sustained`
//! (completions kept up), `stalled` (a backlog built and drained within the window, or
//! was draining at its end: the stall is the test's tail, and its latency is the
//! finding) or `over_capacity` (completions fell behind arrivals for good and the backlog
//! still stood at the end: its latency measures the backlog and the test's length, so it
//! is ranked by completed throughput). Closed-loop, incomplete and horizon tests have no
//! state.

use super::load::TestGroup;
use crate::format::summary::Row;

pub const SUSTAINED: &str = "sustained";
pub const STALLED: &str = "stalled";
pub const OVER_CAPACITY: &str = "over_capacity";

/// Completions over the steady part of the window below this share of the offered rate
/// mean arrivals outran the workers (2 %: above a one-second rate's rounding).
const KEPT_UP: f64 = 0.98;
/// Seconds of arrivals a queue may hold beyond the jobs in hand before it is a backlog:
/// a stall shorter than this is below what a once-a-second depth sees anyway.
const BACKLOG_S: f64 = 0.25;

/// One second of the test on the producer's clock: jobs produced and completed in it
/// (every process's), and the queue's depth at its end (the deepest reading).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Second {
    pub produced: u64,
    pub completed: u64,
    pub depth: Option<u64>,
    /// When the producer's interval filed here ended (s since it began). Its ticks are
    /// late now and then and the lateness adds up, so after a long run second k can hold
    /// the interval that ended at k - 0.5: jobs due are counted to this, not to k.
    pub ends_at: Option<f64>,
}

/// What a test's state rests on: its offered rate and window, the jobs a queue may
/// hold without a backlog, and its seconds (index 0 ends 1 s after the load began).
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub offered: f64,
    pub duration_s: f64,
    pub in_hand: f64,
    pub seconds: Vec<Second>,
}

/// `(state, why)`, or empty strings for a test with no state.
pub fn judge(g: &TestGroup, row: &Row) -> (String, String) {
    if !row.complete || row.closed_loop || row.scenario == "horizon" {
        return (String::new(), String::new());
    }
    match window(g, row) {
        Some(w) => {
            let (state, why) = of(&w);
            (state.to_string(), why)
        }
        None => (String::new(), String::new()),
    }
}

fn epoch_s(rfc3339: &str) -> Option<f64> {
    humantime::parse_rfc3339(rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// The test's seconds from every process's intervals, on the producer's clock; `None`
/// without both a producer and workers (a process alone cannot judge the state).
fn window(g: &TestGroup, row: &Row) -> Option<Window> {
    let (offered, duration_s, workers) = (row.offered_rate?, row.duration_s?, row.workers?);
    let producer = g.parts.iter().find(|p| p.summary.produced.is_some())?;
    let t0 = epoch_s(&producer.manifest.started_at)?;
    let worker = g.parts.iter().find(|p| p.summary.completed.is_some())?;
    let batch = f64::from(worker.manifest.knobs.dequeue_batch.max(1));
    let mut seconds: Vec<Second> = vec![];
    for p in &g.parts {
        let start = epoch_s(&p.manifest.started_at)?;
        let is_producer = std::ptr::eq(p, producer);
        for i in &p.intervals {
            let end = start + i.t_s - t0;
            let at = end.round();
            // A clock a day off, or a NaN, places nothing.
            if !(1.0..=86_400.0).contains(&at) {
                continue;
            }
            let k = at as usize - 1;
            if seconds.len() <= k {
                seconds.resize(k + 1, Second::default());
            }
            let s = &mut seconds[k];
            s.produced += i.produced;
            s.completed += i.completed;
            s.depth = s.depth.max(i.depth);
            if is_producer {
                s.ends_at = Some(s.ends_at.map_or(end, |e: f64| e.max(end)));
            }
        }
    }
    Some(Window {
        offered,
        duration_s,
        in_hand: f64::from(workers) * batch,
        seconds,
    })
}

/// The state of a window and why, in words.
pub fn of(w: &Window) -> (&'static str, String) {
    let last = (w.duration_s.round() as usize).clamp(1, w.seconds.len().max(1));
    let inside = &w.seconds[..last.min(w.seconds.len())];
    let backlog = w.in_hand + (w.offered * BACKLOG_S).max(10.0);
    let depths = waiting(inside, w.offered);
    let held = through_two(&depths);
    let Some(&(end_t, end)) = depths.last() else {
        return ("", "no second of the production window was recorded".into());
    };
    let (peak_t, peak) = depths.iter().copied().max_by_key(|d| d.1).unwrap_or((0, 0));
    // The tail: the last 3 s or the last tenth of the window, whichever is longer.
    let tail = ((w.duration_s * 0.1).ceil() as usize).max(3);
    let from = depths
        .iter()
        .rev()
        .find(|(t, _)| *t + tail <= end_t)
        .map_or(depths[0].1, |d| d.1);
    let falling = (end as f64) < from as f64 - backlog / 2.0;
    let steady = steady_rate(inside, w.duration_s);
    let behind = steady.is_some_and(|c| c < KEPT_UP * w.offered);
    if end as f64 > backlog && !falling && behind {
        let c = steady.unwrap_or(0.0);
        return (
            OVER_CAPACITY,
            format!(
                "completions fell behind arrivals ({c:.0} of {:.0} jobs/s while the load was steady) and {end} jobs still waited, not draining, when producing ended",
                w.offered
            ),
        );
    }
    let held_peak = held.iter().map(|d| d.1).max().unwrap_or(0);
    if (held_peak as f64) <= backlog {
        return (
            SUSTAINED,
            format!(
                "completions kept up: never more than {held_peak} jobs waited through two seconds (a backlog is over {backlog:.0})"
            ),
        );
    }
    let how = if end as f64 <= backlog {
        let cleared = depths
            .iter()
            .find(|(t, d)| *t > peak_t && (*d as f64) <= backlog)
            .map_or(end_t, |d| d.0);
        format!("and drained by t = {cleared} s: completions stalled, then caught up")
    } else if falling {
        format!("and was draining at the end ({from} → {end} jobs over the last {tail} s): completions stalled, then caught up")
    } else {
        format!(
            "and still stood at {end} jobs when producing ended, after completions had kept up while the load was steady: a stall at the window's end"
        )
    };
    (
        STALLED,
        format!("a backlog built to {peak} jobs at t = {peak_t} s {how}"),
    )
}

/// The jobs waiting at the end of each second: those due by then (offered × the time the
/// producer's interval ended, else × t) and not
/// completed, or the queue's depth if it says more. A stalled server holds jobs on both
/// sides: in its queue, and in a producer that cannot send them (SIGSTOP on Valkey: the
/// depth reads nothing, but arrivals are still due). Seconds are 1-based.
fn waiting(inside: &[Second], offered: f64) -> Vec<(usize, u64)> {
    let mut completed = 0u64;
    inside
        .iter()
        .enumerate()
        .map(|(i, s)| {
            completed += s.completed;
            let due = (offered * s.ends_at.unwrap_or((i + 1) as f64)).round() as u64;
            (
                i + 1,
                due.saturating_sub(completed).max(s.depth.unwrap_or(0)),
            )
        })
        .collect()
}

/// What waited through each second and the next (the last second as it is): another
/// process's intervals, placed on the producer's clock by rounding, may leave one second
/// empty and the next double, which is one second's jump, not a backlog.
fn through_two(waiting: &[(usize, u64)]) -> Vec<(usize, u64)> {
    waiting
        .iter()
        .enumerate()
        .map(|(i, &(t, v))| (t, waiting.get(i + 1).map_or(v, |&(_, next)| v.min(next))))
        .collect()
}

/// The median second's completions from 20 % to 90 % of the window: unlike completed /
/// window it does not shrink by the latency of the last jobs, and unlike a mean a stall
/// near capacity (seconds of nothing, then a catch-up) does not pull it under the rate.
fn steady_rate(inside: &[Second], duration_s: f64) -> Option<f64> {
    let (a, b) = (
        (0.2 * duration_s).floor() as usize,
        (0.9 * duration_s).ceil() as usize,
    );
    let part = inside.get(a..b.min(inside.len()))?;
    let v: Vec<f64> = part.iter().map(|s| s.completed as f64).collect();
    crate::stats::confidence::median(&v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window of `depths` (one per second) at `rate`: produced on schedule, and
    /// completions what the depth says (what arrived less what the queue grew by).
    fn window(rate: u64, depths: &[u64]) -> Window {
        let mut before = depths.first().copied().unwrap_or(0);
        let seconds = depths
            .iter()
            .map(|&d| {
                let completed = (rate + before).saturating_sub(d);
                before = d;
                Second {
                    produced: rate,
                    completed,
                    depth: Some(d),
                    ends_at: None,
                }
            })
            .collect();
        Window {
            offered: rate as f64,
            duration_s: depths.len() as f64,
            in_hand: 20.0,
            seconds,
        }
    }

    /// Known truth: a queue that kept up, 100 jobs/s, whose ticks came 10 ms late each
    /// (60 s: 0.6 s of lateness, so every later interval is filed a second ahead). Due
    /// counted to the second's number made that a backlog of about 50 jobs, stalled;
    /// counted to when the interval ended, it is sustained.
    #[test]
    fn late_ticks_that_add_up_are_no_backlog() {
        let mut w = window(100, &[3; 60]);
        let mut seconds = vec![Second::default(); 61];
        for i in 0..60 {
            let end = (i + 1) as f64 * 1.01;
            let s = &mut seconds[end.round() as usize - 1];
            // A producer on schedule sends 100 jobs/s of real time: 101 per late tick.
            s.produced += 101;
            s.completed += 101;
            s.depth = Some(3);
            s.ends_at = Some(end);
        }
        w.seconds = seconds;
        assert_eq!(of(&w).0, SUSTAINED, "{:?}", of(&w));
        // Sabotage: the same seconds judged without when they ended.
        for s in &mut w.seconds {
            s.ends_at = None;
        }
        assert_eq!(of(&w).0, STALLED, "{:?}", of(&w));
    }

    #[test]
    fn a_queue_that_keeps_up_is_sustained() {
        let w = window(1000, &[12; 30]);
        assert_eq!(of(&w).0, SUSTAINED, "{:?}", of(&w));
    }

    #[test]
    fn a_six_second_stall_that_drains_is_stalled_not_dropped() {
        // 200 jobs/s; nothing completes for 6 s, then the backlog drains.
        let mut d = vec![5u64; 30];
        for (k, v) in [200, 400, 600, 800, 1000, 1200, 700, 200, 5]
            .iter()
            .enumerate()
        {
            d[10 + k] = *v;
        }
        let w = window(200, &d);
        let (state, why) = of(&w);
        assert_eq!(state, STALLED, "{why}");
        assert!(
            why.contains("1200 jobs") && why.contains("drained"),
            "{why}"
        );
    }

    #[test]
    fn a_backlog_still_draining_at_the_end_is_stalled() {
        let mut d = vec![5u64; 20];
        d[14..].copy_from_slice(&[900, 1800, 1500, 1100, 700, 300]);
        let (state, why) = of(&window(1000, &d));
        assert_eq!(state, STALLED, "{why}");
        assert!(why.contains("draining at the end"), "{why}");
    }

    #[test]
    fn arrivals_three_times_the_workers_are_over_capacity() {
        // 300 offered, 100 completed: the queue grows 200 a second to the end.
        let d: Vec<u64> = (1..=20).map(|t| t * 200).collect();
        let (state, why) = of(&window(300, &d));
        assert_eq!(state, OVER_CAPACITY, "{why}");
        assert!(why.contains("100 of 300 jobs/s"), "{why}");
    }

    #[test]
    fn a_stall_in_the_last_seconds_is_a_stall_not_a_lack_of_capacity() {
        // Kept up while the load was steady; the queue grew only in the last two seconds.
        let mut d = vec![5u64; 20];
        d[18] = 600;
        d[19] = 1200;
        let (state, why) = of(&window(600, &d));
        assert_eq!(state, STALLED, "{why}");
        assert!(why.contains("still stood at 1200 jobs"), "{why}");
    }

    #[test]
    fn without_depth_the_counts_decide() {
        // 70 of 100 jobs/s completed, second after second.
        let d: Vec<u64> = (1..=10).map(|t| t * 30).collect();
        let mut w = window(100, &d);
        for s in &mut w.seconds {
            s.depth = None;
        }
        assert_eq!(of(&w).0, OVER_CAPACITY, "{:?}", of(&w));
        let mut w = window(100, &[0; 10]);
        for s in &mut w.seconds {
            s.depth = None;
        }
        assert_eq!(of(&w).0, SUSTAINED);
    }

    #[test]
    fn a_stall_near_capacity_is_stalled_not_over_capacity() {
        // 1,000 offered to workers that take 1,030: a 6 s stop at t = 15 leaves 6,000
        // jobs that 30 spare jobs a second cannot drain by the end. The workers kept up
        // whenever they ran: a stall, not a lack of capacity.
        let mut d = vec![20u64; 30];
        for (i, v) in d.iter_mut().enumerate().skip(15) {
            *v = if i < 21 {
                20 + (i as u64 - 14) * 1000
            } else {
                6020 - (i as u64 - 20) * 30
            };
        }
        let (state, why) = of(&window(1000, &d));
        assert_eq!(state, STALLED, "{why}");
    }

    #[test]
    fn one_second_out_of_place_is_not_a_backlog() {
        // Another process's interval rounded into the next second: one second with no
        // completion, the next with two seconds' worth.
        let mut w = window(1000, &[12; 20]);
        w.seconds[8].completed = 0;
        w.seconds[9].completed = 2000;
        assert_eq!(of(&w).0, SUSTAINED, "{:?}", of(&w));
    }

    #[test]
    fn a_stall_that_holds_jobs_in_the_producer_is_seen_by_what_was_due() {
        // Valkey stopped for 6 s: the producer cannot send and the depth reads nothing
        // (or 0), yet 100 jobs a second fall due; afterwards they are sent and completed.
        let mut w = window(100, &[0; 20]);
        for s in &mut w.seconds[6..12] {
            (s.produced, s.completed, s.depth) = (0, 0, None);
        }
        w.seconds[12].produced = 700;
        w.seconds[12].completed = 400;
        w.seconds[13].completed = 400;
        let (state, why) = of(&w);
        assert_eq!(state, STALLED, "{why}");
        assert!(why.contains("600 jobs"), "{why}");
    }
}
