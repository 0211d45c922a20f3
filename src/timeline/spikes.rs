//! Spikes and what caused them. A spike is a run of seconds whose end-to-end p99 is
//! over `factor` × the test's median per-second p99, with the seconds just before it
//! in which nothing completed (a stall shows only when its jobs finish).
//!
//! An event near a spike (overlapping it, or ended at most 2 s before it) is named its
//! cause only when it beats chance: it began before or at the spike's first second, and
//! either its kind covers a small share of the test's seconds ([`RARE_SHARE`]) or it
//! lasted a good part of the spike ([`LASTED_SHARE`]). Valkey logging 29 fsync stalls in
//! 180 s puts one in half of all 5 s windows: such an event is said to coincide, with
//! the share of the test its kind covers. A lock wait whose blocker the server did not
//! name is a symptom, said, never a cause. With no cause a spike is "unexplained",
//! never dropped.

use hdrhistogram::Histogram;

use super::{quantile_ms, Event, Second, Timeline};
use crate::stats::new_histogram;

/// The default spike factor (`analyze --spike-factor`).
pub const FACTOR: f64 = 5.0;
/// A factor of 1 or less would call half of every test a spike.
pub fn check_factor(k: f64) -> Result<(), crate::error::UsageError> {
    if k.is_finite() && k > 1.0 {
        Ok(())
    } else {
        Err(crate::error::UsageError::new(format!(
            "--spike-factor {k} is invalid: give a number over 1 (the default is {FACTOR})"
        )))
    }
}

/// A spike's seconds are also this far above the median: on a sub-millisecond Valkey,
/// 5x the median is scheduler noise.
pub const MIN_RISE_MS: f64 = 5.0;

/// An event that ended this long before a spike is still near it.
const LEAD_S: f64 = 2.0;
/// A kind of event covering at most this share of the test's seconds is rare enough
/// that overlapping a spike by chance is unlikely.
pub const RARE_SHARE: f64 = 0.10;
/// An event that lasted at least this share of the spike explains it whatever how often
/// its kind occurs.
pub const LASTED_SHARE: f64 = 0.5;

#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    pub start_s: f64,
    pub end_s: f64,
    pub peak_p99_ms: f64,
    /// Seconds of it in which nothing completed while jobs waited.
    pub stalled_s: f64,
    /// The producer's schedule lag (p99, ms) in it: high means qbench itself fell behind.
    pub producer_lag_p99_ms: Option<f64>,
    /// Indexes into the timeline's events: those that beat chance.
    pub causes: Vec<usize>,
    /// Events near it that do not (began too late, or a kind too common to single out,
    /// or a symptom), each with the share of the test its kind covers.
    pub coincident: Vec<(usize, f64)>,
    /// The longest stall the server reported in it that was too short to explain it
    /// (under a tenth of its peak p99), if any.
    pub minor_stall_ms: Option<f64>,
}

impl Spike {
    pub fn duration_s(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// `autovacuum queue_jobs (85,000 dead tuples)`, or `unexplained`. Several events
    /// of one kind are named once, with how many there were.
    pub fn cause(&self, events: &[Event]) -> String {
        let also = self.coincidence(events);
        if self.causes.is_empty() {
            let base = match self.minor_stall_ms {
                Some(ms) => format!(
                    "unexplained (the server reported stalls of at most {ms:.0} ms, too short for it)"
                ),
                None => "unexplained".into(),
            };
            return match also {
                Some(c) => format!("{base}; {c}"),
                None => base,
            };
        }
        let named = name_once(self.causes.iter().map(|&i| &events[i]));
        match also {
            Some(c) => format!("{named} ({c})"),
            None => named,
        }
    }

    /// "coincides with checkpoint …, which covers 35 % of the test", or `None`.
    pub fn coincidence(&self, events: &[Event]) -> Option<String> {
        if self.coincident.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .coincident
            .iter()
            .map(|&(i, share)| {
                let e = &events[i];
                if e.symptom {
                    e.label.clone()
                } else {
                    format!(
                        "{}, which covers {:.0} % of the test",
                        e.label,
                        share * 100.0
                    )
                }
            })
            .collect();
        Some(format!("coincides with {}", parts.join("; ")))
    }
}

/// Events named once per kind, with how many more of it there were.
fn name_once<'a>(events: impl Iterator<Item = &'a Event>) -> String {
    let mut kinds: Vec<(&str, &str, usize)> = vec![];
    for e in events {
        match kinds.iter_mut().find(|(k, _, _)| *k == e.kind) {
            Some((_, _, n)) => *n += 1,
            None => kinds.push((e.kind, &e.label, 1)),
        }
    }
    kinds
        .iter()
        .map(|(kind, label, n)| match n {
            1 => label.to_string(),
            n => format!("{label} and {} more {kind} event(s)", n - 1),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The share of the test's seconds each kind of event covers (its spans joined).
fn coverage(t: &Timeline) -> Vec<(&'static str, f64)> {
    let length = t.seconds.last().map_or(0.0, |s| s.t_s).max(1.0);
    let mut kinds: Vec<&'static str> = t
        .events
        .iter()
        .filter(|e| !e.phase)
        .map(|e| e.kind)
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
        .into_iter()
        .map(|k| {
            let mut spans: Vec<(f64, f64)> = t
                .events
                .iter()
                .filter(|e| e.kind == k && !e.phase)
                .map(|e| (e.start_s.max(0.0), e.end_s.min(length)))
                .collect();
            spans.sort_by(|a, b| a.0.total_cmp(&b.0));
            let (mut covered, mut reach) = (0.0, f64::MIN);
            for (a, b) in spans {
                let from = a.max(reach);
                if b > from {
                    covered += b - from;
                }
                reach = reach.max(b);
            }
            (k, (covered / length).min(1.0))
        })
        .collect()
}

/// What the spikes of a test come to.
#[derive(Debug, Clone, PartialEq)]
pub struct Spikes {
    pub factor: f64,
    pub median_p99_ms: Option<f64>,
    pub threshold_ms: Option<f64>,
    pub list: Vec<Spike>,
    /// p99 of every completion outside the spikes, merged from their seconds.
    pub p99_outside_ms: Option<f64>,
    /// Spike seconds / seconds with a completion or a stall.
    pub time_share: f64,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A second in which jobs waited and none completed.
fn stalled(s: &Second) -> bool {
    s.completed == 0 && s.e2e.is_empty() && s.depth.unwrap_or(0) > 0
}

pub fn find(t: &Timeline, factor: f64) -> Spikes {
    let secs = &t.seconds;
    let p99: Vec<Option<f64>> = secs.iter().map(|s| quantile_ms(&s.e2e, 0.99)).collect();
    let median_p99_ms = median(p99.iter().flatten().copied().collect());
    let threshold_ms = median_p99_ms.map(|m| (m * factor).max(m + MIN_RISE_MS));
    let over = |i: usize| matches!((p99[i], threshold_ms), (Some(v), Some(th)) if v > th);
    let shares = coverage(t);
    let mut list = vec![];
    let mut in_spike = vec![false; secs.len()];
    let mut i = 0;
    while i < secs.len() {
        if !over(i) {
            i += 1;
            continue;
        }
        let mut a = i;
        while a > 0 && stalled(&secs[a - 1]) && !in_spike[a - 1] {
            a -= 1;
        }
        let mut b = i;
        while b + 1 < secs.len() && (over(b + 1) || stalled(&secs[b + 1])) {
            b += 1;
        }
        in_spike[a..=b].iter_mut().for_each(|x| *x = true);
        list.push(spike(t, a, b, &p99, &shares));
        i = b + 1;
    }
    let mut outside = new_histogram();
    for (s, _) in secs.iter().zip(&in_spike).filter(|(_, x)| !**x) {
        // Both come from one histogram shape: adding cannot fail.
        let _ = outside.add(&s.e2e);
    }
    let counted = secs
        .iter()
        .zip(&in_spike)
        .filter(|(s, x)| **x || !s.e2e.is_empty() || stalled(s))
        .count();
    let spiked = in_spike.iter().filter(|x| **x).count();
    Spikes {
        factor,
        median_p99_ms,
        threshold_ms,
        list,
        p99_outside_ms: quantile_ms(&outside, 0.99),
        time_share: if counted == 0 {
            0.0
        } else {
            spiked as f64 / counted as f64
        },
    }
}

fn spike(t: &Timeline, a: usize, b: usize, p99: &[Option<f64>], shares: &[(&str, f64)]) -> Spike {
    let secs = &t.seconds[a..=b];
    // Second `t` covers (t-1, t].
    let (start_s, end_s) = (secs[0].t_s - 1.0, secs[secs.len() - 1].t_s);
    let mut lag: Histogram<u64> = new_histogram();
    for s in secs {
        let _ = lag.add(&s.schedule_lag);
    }
    let peak_p99_ms = p99[a..=b].iter().flatten().copied().fold(0.0, f64::max);
    let near: Vec<usize> = t
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.phase)
        .filter(|(_, e)| e.start_s <= end_s && e.end_s >= start_s - LEAD_S)
        .map(|(i, _)| i)
        .collect();
    // A 15 ms fsync does not make a 300 ms p99: such events are said, not named.
    let too_short = |i: &usize| {
        t.events[*i]
            .stall_ms
            .is_some_and(|ms| ms < peak_p99_ms / 10.0)
    };
    let minor_stall_ms = near
        .iter()
        .filter(|i| too_short(i))
        .filter_map(|i| t.events[*i].stall_ms)
        .reduce(f64::max);
    let share = |e: &Event| {
        shares
            .iter()
            .find(|(k, _)| *k == e.kind)
            .map_or(0.0, |x| x.1)
    };
    let (mut causes, mut coincident) = (vec![], vec![]);
    for i in near.into_iter().filter(|i| !too_short(i)) {
        let e = &t.events[i];
        let lasted = e.stall_ms.map_or(e.end_s - e.start_s, |ms| ms / 1000.0);
        let in_time = e.start_s <= start_s + 1.0;
        let beats_chance = share(e) <= RARE_SHARE || lasted >= LASTED_SHARE * (end_s - start_s);
        if in_time && beats_chance && !e.symptom {
            causes.push(i);
        } else {
            coincident.push((i, share(e)));
        }
    }
    Spike {
        start_s,
        end_s,
        peak_p99_ms,
        stalled_s: secs.iter().filter(|s| stalled(s)).count() as f64,
        producer_lag_p99_ms: quantile_ms(&lag, 0.99),
        causes,
        coincident,
        minor_stall_ms,
    }
}

/// "driven by one 6 s stall during autovacuum queue_jobs (85,000 dead tuples)"; the
/// longest spike is named, the others counted.
pub fn story(s: &Spikes, events: &[Event]) -> Option<String> {
    let longest = s
        .list
        .iter()
        .max_by(|a, b| a.duration_s().total_cmp(&b.duration_s()))?;
    let cause = longest.cause(events);
    let what = match (longest.causes.is_empty(), longest.minor_stall_ms) {
        (false, _) => format!("during {cause}"),
        (true, None) => match longest.coincidence(events) {
            Some(c) => format!("with no event that beats chance: unexplained ({c})"),
            None => "with no server event under it: unexplained".into(),
        },
        (true, Some(ms)) => format!(
            "with no server event to explain it: unexplained (the server's own stalls were at most {ms:.0} ms)"
        ),
    };
    let others = match s.list.len() - 1 {
        0 => String::new(),
        n => {
            let unexplained = s
                .list
                .iter()
                .filter(|x| x.causes.is_empty() && !std::ptr::eq(*x, longest))
                .count();
            format!(" and {n} more spike(s), {unexplained} of them unexplained")
        }
    };
    Some(format!(
        "driven by a {:.0} s spike at t = {:.0} s (p99 up to {}) {what}{others}",
        longest.duration_s(),
        longest.start_s,
        crate::text::ms_prose(Some(longest.peak_p99_ms)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second(t: f64, p99_ms: Option<u64>, depth: u64) -> Second {
        let mut s = Second::new(t);
        if let Some(ms) = p99_ms {
            for _ in 0..100 {
                s.e2e.record(ms * 1000).expect("in range");
            }
            s.completed = 100;
        }
        s.depth = Some(depth);
        s
    }

    fn timeline(seconds: Vec<Second>, events: Vec<Event>) -> Timeline {
        Timeline {
            test: "t".into(),
            queue: "skip_locked".into(),
            backend: "postgresql".into(),
            smoke: false,
            seconds,
            events,
        }
    }

    fn event(kind: &'static str, start_s: f64, end_s: f64) -> Event {
        Event {
            kind,
            start_s,
            end_s,
            label: kind.into(),
            phase: false,
            stall_ms: None,
            symptom: false,
        }
    }

    /// 20 seconds at 10 ms, a stall at 9-10 (nothing completes) and 2 s ms jobs at 11.
    fn stalled_run() -> Vec<Second> {
        (1..=20)
            .map(|t| match t {
                9 | 10 => second(t as f64, None, 500),
                11 => second(t as f64, Some(2000), 10),
                _ => second(t as f64, Some(10), 5),
            })
            .collect()
    }

    #[test]
    fn a_stall_is_one_spike_from_its_first_silent_second() {
        let s = find(&timeline(stalled_run(), vec![]), FACTOR);
        assert_eq!(s.list.len(), 1, "{s:?}");
        let sp = &s.list[0];
        assert_eq!((sp.start_s, sp.end_s, sp.stalled_s), (8.0, 11.0, 2.0));
        assert!(sp.causes.is_empty());
        assert_eq!(sp.cause(&[]), "unexplained");
        assert!((s.time_share - 3.0 / 20.0).abs() < 1e-9, "{}", s.time_share);
        // Outside the spike every completion took 10 ms.
        let out = s.p99_outside_ms.expect("p99");
        assert!((out - 10.0).abs() < 0.1, "{out}");
    }

    #[test]
    fn overlapping_and_just_earlier_events_are_causes_later_and_phases_are_not() {
        let events = vec![
            event("vacuum", 6.5, 7.0),       // began 1.5 s before the spike
            event("checkpoint", 9.0, 9.5),   // overlaps
            event("autovacuum", 12.0, 13.0), // after it
            event("lock_wait", 3.0, 5.0),    // ended 3 s before
            Event {
                phase: true,
                stall_ms: None,
                symptom: false,
                ..event("pgbench", 0.0, 20.0)
            },
        ];
        let t = timeline(stalled_run(), events);
        let s = find(&t, FACTOR);
        assert_eq!(s.list[0].causes, vec![0, 1]);
        assert_eq!(s.list[0].cause(&t.events), "vacuum; checkpoint");
        let story = story(&s, &t.events).expect("story");
        assert!(
            story.contains("3 s spike at t = 8 s") && story.contains("during vacuum"),
            "{story}"
        );
    }

    #[test]
    fn a_steady_run_has_no_spike_and_a_higher_factor_finds_fewer() {
        let steady: Vec<Second> = (1..=10).map(|t| second(t as f64, Some(10), 1)).collect();
        assert!(find(&timeline(steady, vec![]), FACTOR).list.is_empty());
        let mut run = stalled_run();
        run[4] = second(5.0, Some(60), 1);
        assert_eq!(find(&timeline(run.clone(), vec![]), FACTOR).list.len(), 2);
        assert_eq!(find(&timeline(run, vec![]), 10.0).list.len(), 1);
    }

    #[test]
    fn a_server_stall_far_shorter_than_the_spike_is_said_not_named() {
        let stall = |ms: f64, at: f64| Event {
            stall_ms: Some(ms),
            symptom: false,
            ..event("latency_monitor", at - 1.0, at)
        };
        let t = timeline(stalled_run(), vec![stall(15.0, 9.0)]);
        let s = find(&t, FACTOR);
        assert!(s.list[0].causes.is_empty());
        assert_eq!(
            s.list[0].cause(&t.events),
            "unexplained (the server reported stalls of at most 15 ms, too short for it)"
        );
        // Two long ones are named once, counted.
        let t = timeline(stalled_run(), vec![stall(1500.0, 9.0), stall(900.0, 10.0)]);
        let s = find(&t, FACTOR);
        assert_eq!(
            s.list[0].cause(&t.events),
            "latency_monitor and 1 more latency_monitor event(s)"
        );
    }

    #[test]
    fn a_tiny_median_needs_a_real_rise() {
        // 0.4 ms seconds and one of 3 ms: 5x the median, but no spike under 5 ms more.
        let mut run: Vec<Second> = (1..=10).map(|t| second(t as f64, Some(0), 1)).collect();
        run[4] = second(5.0, Some(3), 1);
        assert!(find(&timeline(run, vec![]), FACTOR).list.is_empty());
    }

    #[test]
    fn an_event_after_the_first_second_or_of_a_common_kind_only_coincides() {
        // The spike covers 8-11 s (20 s test). A checkpoint forced at 10 s, after it began.
        let t = timeline(stalled_run(), vec![event("checkpoint", 10.0, 11.0)]);
        let sp = &find(&t, FACTOR).list[0];
        assert!(sp.causes.is_empty(), "{sp:?}");
        let c = sp.cause(&t.events);
        assert!(
            c.starts_with("unexplained; coincides with checkpoint, which covers 5 %"),
            "{c}"
        );
        // fsync delays every other second (50 % of the test), one at the spike's start.
        let mut ev: Vec<Event> = (0..10)
            .map(|k| event("fsync_delay", 2.0 * k as f64, 2.0 * k as f64 + 1.0))
            .collect();
        ev[4] = event("fsync_delay", 8.0, 9.0);
        let t = timeline(stalled_run(), ev);
        let sp = &find(&t, FACTOR).list[0];
        assert!(sp.causes.is_empty(), "{sp:?}");
        assert!(
            sp.cause(&t.events)
                .contains("which covers 50 % of the test"),
            "{}",
            sp.cause(&t.events)
        );
        // The same kind, but one that lasted the whole spike, explains it.
        let mut ev: Vec<Event> = (0..10)
            .map(|k| event("fsync_delay", 2.0 * k as f64, 2.0 * k as f64 + 1.0))
            .collect();
        ev[4] = event("fsync_delay", 7.5, 11.0);
        let t = timeline(stalled_run(), ev);
        let sp = &find(&t, FACTOR).list[0];
        assert_eq!(sp.causes.len(), 1, "{sp:?}");
    }

    #[test]
    fn a_lock_wait_without_a_blocker_is_a_symptom() {
        let symptom = Event {
            symptom: true,
            label: "lock waits (a symptom)".into(),
            ..event("lock_wait", 8.0, 11.0)
        };
        let t = timeline(stalled_run(), vec![symptom]);
        let sp = &find(&t, FACTOR).list[0];
        assert!(sp.causes.is_empty());
        assert_eq!(
            sp.cause(&t.events),
            "unexplained; coincides with lock waits (a symptom)"
        );
        let blocked = Event {
            label: "lock waits behind pid 7 (psql): LOCK TABLE queue_jobs".into(),
            ..event("lock_wait", 8.0, 11.0)
        };
        let t = timeline(stalled_run(), vec![blocked]);
        let sp = &find(&t, FACTOR).list[0];
        assert!(sp.cause(&t.events).contains("LOCK TABLE"), "{sp:?}");
    }
}
