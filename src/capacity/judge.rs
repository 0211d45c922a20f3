//! A step's verdict, from the files its test wrote: the figures over the window after
//! the settle period, and each criterion of the goal.

use crate::format::capacity::{Goal, Step};
use crate::format::hlog::Interval;
use crate::format::metrics::{IntervalLine, Summary};
use crate::stats::{new_histogram, Metric, Percentiles};

/// What a step was asked to do.
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    pub rate: f64,
    pub settle_s: f64,
    pub window_s: f64,
    /// Jobs the workers may hold at once (workers × batch): in the depth, not queued.
    pub in_hand: f64,
}

/// Least-squares slope of y over x, and its standard error.
fn slope(points: &[(f64, f64)]) -> (f64, f64) {
    let n = points.len() as f64;
    if points.len() < 3 {
        return (0.0, f64::INFINITY);
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return (0.0, f64::INFINITY);
    }
    let b = sxy / sxx;
    let sse: f64 = points
        .iter()
        .map(|p| (p.1 - my - b * (p.0 - mx)).powi(2))
        .sum();
    (b, (sse / (n - 2.0) / sxx).sqrt())
}

/// The end-to-end latency of jobs completed after the settle period, with the
/// censored jobs (those a drain left behind, at their age then).
fn window_latency(hlog: &[Interval], settle_s: f64) -> Option<Percentiles> {
    let t0 = hlog
        .iter()
        .map(|i| i.start_epoch_s)
        .fold(f64::INFINITY, f64::min);
    let mut h = new_histogram();
    for i in hlog {
        let late = i.start_epoch_s - t0 >= settle_s - 1e-6;
        let take = match i.metric {
            Some(Metric::E2e) => late,
            Some(Metric::E2eCensored) => true,
            _ => false,
        };
        if take {
            // Both come from histograms of the same bounds: adding cannot fail.
            let _ = h.add(&i.histogram);
        }
    }
    Percentiles::of(&h)
}

fn lag_p99(hlog: &[Interval], settle_s: f64) -> Option<f64> {
    let t0 = hlog
        .iter()
        .map(|i| i.start_epoch_s)
        .fold(f64::INFINITY, f64::min);
    let mut h = new_histogram();
    for i in hlog
        .iter()
        .filter(|i| i.metric == Some(Metric::ScheduleLag))
    {
        if i.start_epoch_s - t0 >= settle_s - 1e-6 {
            let _ = h.add(&i.histogram);
        }
    }
    Percentiles::of(&h).map(|p| p.p99)
}

/// The step's rates and depths over its window.
struct Window {
    secs: f64,
    produced_jobs_s: f64,
    achieved_jobs_s: f64,
    depths: Vec<(f64, f64)>,
}

/// The intervals wholly between the end of the settle period and the end of production
/// (50 ms of slack for the timer): the drain's first interval does not count, nor does
/// one that straddles the settle's end. The collector's ticks drift late on a busy
/// machine, so the window may be a second short; its rates divide by its own length.
fn window(lines: &[IntervalLine], asked: Asked) -> Window {
    const SLACK: f64 = 0.05;
    let end = asked.settle_s + asked.window_s;
    let window: Vec<&IntervalLine> = lines
        .iter()
        .filter(|l| l.t_s - l.interval_s >= asked.settle_s - SLACK && l.t_s <= end + SLACK)
        .collect();
    let secs: f64 = window.iter().map(|l| l.interval_s).sum::<f64>().max(1e-9);
    Window {
        secs,
        produced_jobs_s: window.iter().map(|l| l.produced).sum::<u64>() as f64 / secs,
        achieved_jobs_s: window.iter().map(|l| l.completed).sum::<u64>() as f64 / secs,
        depths: window
            .iter()
            .filter_map(|l| l.depth.map(|d| (l.t_s, d as f64)))
            .collect(),
    }
}

/// What a step's window measured, each criterion's input.
struct Measured {
    secs: f64,
    produced_jobs_s: f64,
    achieved_jobs_s: f64,
    slope_jobs_s: f64,
    slope_se: f64,
    depth_max: u64,
    depth_mean: f64,
    depth_bound: f64,
    e2e: Option<Percentiles>,
    lag: Option<f64>,
    errors: u64,
    censored: u64,
}

fn measure(
    asked: Asked,
    goal: &Goal,
    lines: &[IntervalLine],
    summary: &Summary,
    hlog: &[Interval],
) -> Measured {
    let w = window(lines, asked);
    let (slope_jobs_s, slope_se) = slope(&w.depths);
    Measured {
        secs: w.secs,
        produced_jobs_s: w.produced_jobs_s,
        achieved_jobs_s: w.achieved_jobs_s,
        slope_jobs_s,
        slope_se,
        depth_max: w.depths.iter().map(|d| d.1 as u64).max().unwrap_or(0),
        depth_mean: w.depths.iter().map(|d| d.1).sum::<f64>() / w.depths.len().max(1) as f64,
        // Little's law: a mean number waiting above rate × SLO is a mean wait above the SLO.
        depth_bound: asked.rate * goal.slo_p99_ms / 1000.0 + asked.in_hand,
        e2e: window_latency(hlog, asked.settle_s),
        lag: lag_p99(hlog, asked.settle_s),
        errors: summary.errors.producer + summary.errors.worker + summary.errors.reaper,
        censored: summary.censored.unwrap_or(0),
    }
}

/// Each criterion the step failed, with why in words.
fn failures(
    m: &Measured,
    asked: Asked,
    goal: &Goal,
    summary: &Summary,
) -> Vec<(&'static str, String)> {
    let mut failed = vec![];
    let audit_exact = summary.audit == crate::format::metrics::AuditKind::Exact;
    let (lost, dup, errors) = (
        summary.lost.unwrap_or(0),
        summary.duplicated.unwrap_or(0),
        m.errors,
    );
    if !audit_exact || lost > 0 || dup > 0 || errors > 0 || !summary.complete {
        failed.push((
            "audit",
            format!(
                "audit not clean: lost {lost}, duplicated {dup}, errors {errors}{}",
                if audit_exact { "" } else { ", audit not exact" }
            ),
        ));
    }
    let lag_bad = m.lag.is_some_and(|l| l > goal.max_lag_p99_ms);
    if m.produced_jobs_s < goal.min_achieved * asked.rate || lag_bad {
        failed.push((
            "producer",
            format!(
                "the producer offered {:.0} of {:.0} jobs/s, schedule-lag p99 {} ms (bound {} ms): the client or the enqueue path, not the claim, set this limit",
                m.produced_jobs_s,
                asked.rate,
                m.lag.map_or("?".into(), |l| format!("{l:.1}")),
                goal.max_lag_p99_ms
            ),
        ));
    }
    if m.achieved_jobs_s < goal.min_achieved * asked.rate {
        failed.push((
            "throughput",
            format!(
                "completed {:.0} jobs/s, below {:.0} % of the {:.0} offered",
                m.achieved_jobs_s,
                goal.min_achieved * 100.0,
                asked.rate
            ),
        ));
    }
    failed.extend(depth_failure(m, asked, goal));
    failed.extend(p99_failure(m, goal));
    failed
}

/// Growth must be real (2 standard errors above 0) and material: above a fraction of the
/// rate, or adding more backlog over the window than an SLO's worth of arrivals (which a
/// long SLO's p99 could not see yet).
fn depth_failure(m: &Measured, asked: Asked, goal: &Goal) -> Option<(&'static str, String)> {
    let growing = m.slope_jobs_s - 2.0 * m.slope_se > 0.0
        && (m.slope_jobs_s > goal.max_depth_slope_of_rate * asked.rate
            || m.slope_jobs_s * m.secs > asked.rate * goal.slo_p99_ms / 1000.0);
    (growing || m.depth_mean > m.depth_bound).then(|| {
        (
            "depth",
            format!(
                "the queue grew {:+.1} ± {:.1} jobs/s, mean depth {:.0} (bound {:.0}), max {}",
                m.slope_jobs_s, m.slope_se, m.depth_mean, m.depth_bound, m.depth_max
            ),
        )
    })
}

fn p99_failure(m: &Measured, goal: &Goal) -> Option<(&'static str, String)> {
    match m.e2e {
        Some(p) if p.p99 <= goal.slo_p99_ms && m.censored == 0 => None,
        Some(p) => Some((
            "p99",
            format!(
                "e2e p99 {:.1} ms above the {} ms goal{}",
                p.p99,
                goal.slo_p99_ms,
                if m.censored > 0 {
                    format!(
                        " ({} job(s) still queued at the end, counted at their age)",
                        m.censored
                    )
                } else {
                    String::new()
                }
            ),
        )),
        None => Some(("p99", "no job completed after the settle period".into())),
    }
}

/// Judges one step. `files` is where its test files are, relative to the sweep file.
pub fn judge(
    asked: Asked,
    goal: &Goal,
    lines: &[IntervalLine],
    summary: &Summary,
    hlog: &[Interval],
    files: String,
) -> Step {
    let m = measure(asked, goal, lines, summary, hlog);
    let failed = failures(&m, asked, goal, summary);
    Step {
        rate_jobs_s: asked.rate,
        files,
        window_s: m.secs,
        produced_jobs_s: m.produced_jobs_s,
        achieved_jobs_s: m.achieved_jobs_s,
        p50_ms: m.e2e.map(|p| p.p50),
        p99_ms: m.e2e.map(|p| p.p99),
        p999_ms: m.e2e.map(|p| p.p999),
        max_ms: m.e2e.map(|p| p.max),
        samples: m.e2e.map_or(0, |p| p.count),
        schedule_lag_p99_ms: m.lag,
        depth_slope_jobs_s: m.slope_jobs_s,
        depth_slope_se: if m.slope_se.is_finite() {
            m.slope_se
        } else {
            0.0
        },
        depth_max: m.depth_max,
        depth_mean: m.depth_mean,
        depth_bound: m.depth_bound,
        wakeup: summary
            .wakeup
            .as_ref()
            .map_or(String::new(), |w| w.mode.clone()),
        lost: summary.lost,
        duplicated: summary.duplicated,
        censored: m.censored,
        errors: m.errors,
        pass: failed.is_empty(),
        reason: (!failed.is_empty()).then(|| {
            failed
                .iter()
                .map(|f| f.1.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        }),
        failed: failed.into_iter().map(|f| f.0.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::{slope, window, Asked, IntervalLine};

    fn line(t_s: f64, interval_s: f64, produced: u64, completed: u64, depth: u64) -> IntervalLine {
        IntervalLine {
            v: 2,
            kind: "interval".into(),
            t_s,
            interval_s,
            produced,
            completed,
            produced_total: 0,
            completed_total: 0,
            depth: Some(depth),
            e2e_ms: None,
            queue_wait_ms: None,
            claim_ms: None,
            errors: 0,
        }
    }

    #[test]
    fn the_window_leaves_out_the_settle_and_the_drains_stub() {
        // 2 s of settle at a different rate, 10 s at 100/s, then a 0.15 s drain stub.
        let mut lines: Vec<IntervalLine> =
            (1..=2).map(|t| line(f64::from(t), 1.0, 5, 5, 0)).collect();
        lines.extend((3..=12).map(|t| line(f64::from(t) + 0.003, 1.0, 100, 100, 2)));
        lines.push(line(12.16, 0.157, 1, 3, 0));
        let asked = Asked {
            rate: 100.0,
            settle_s: 2.0,
            window_s: 10.0,
            in_hand: 1.0,
        };
        let w = window(&lines, asked);
        assert!((w.secs - 10.0).abs() < 1e-9, "{}", w.secs);
        assert!(
            (w.produced_jobs_s - 100.0).abs() < 1e-9,
            "{}",
            w.produced_jobs_s
        );
        assert_eq!(w.depths.len(), 10);
        // Ticks that drifted 0.4 s late: the interval straddling the end is left out.
        let drift: Vec<IntervalLine> = (1..=13)
            .map(|t| line(f64::from(t) + 0.4, 1.0, 100, 100, 2))
            .collect();
        let w = window(&drift, asked);
        assert!((w.secs - 9.0).abs() < 1e-9, "{}", w.secs);
        assert!((w.produced_jobs_s - 100.0).abs() < 1e-9);
    }

    #[test]
    fn slope_and_its_error() {
        let flat: Vec<(f64, f64)> = (0..20)
            .map(|i| (f64::from(i), 5.0 + f64::from(i % 2)))
            .collect();
        let (b, se) = slope(&flat);
        assert!(b.abs() < 0.1 && b.abs() < 2.0 * se + 0.05, "{b} {se}");
        let up: Vec<(f64, f64)> = (0..20)
            .map(|i| (f64::from(i), 3.0 * f64::from(i)))
            .collect();
        let (b, se) = slope(&up);
        assert!((b - 3.0).abs() < 1e-9 && se < 1e-6, "{b} {se}");
    }
}
