//! The horizon scenario's results, from each horizon test's files: claim latency before
//! and during the hold (exact, from the `.hlog`'s per-second `claim` histograms merged
//! over each window), the time to an SLO breach, claim latency per dead tuple (a linear
//! fit), dead-tuple and index growth, and the recovery after release.

use std::path::Path;

use anyhow::Result;
use hdrhistogram::Histogram;

use super::load::TestGroup;
use super::Finding;
use crate::format::horizon::{
    read_rows, HorizonRecord, HorizonResult, HorizonRow, TimelineRow, HORIZON_CSV,
};
use crate::stats::{new_histogram, Metric};
use crate::text::thousands;

/// A recovery window's length, and how close to the baseline it must come.
const RECOVERY_WINDOW_S: f64 = 10.0;
const RECOVERY_TOLERANCE: f64 = 1.10;
/// Seconds in a row over the goal that make a breach (one slow second is not one).
const BREACH_RUN: usize = 3;

/// One second of the test: its end, and its claim and end-to-end histograms.
struct Second {
    t_s: f64,
    claim: Histogram<u64>,
    e2e: Histogram<u64>,
}

/// The per-second histograms of a test's `.hlog`, on the test's clock.
fn seconds(hlog: &Path) -> Result<Vec<Second>> {
    let intervals = crate::format::hlog::read(hlog)?;
    let Some(t0) = intervals
        .iter()
        .map(|i| i.start_epoch_s)
        .min_by(f64::total_cmp)
    else {
        return Ok(vec![]);
    };
    let mut out: Vec<Second> = vec![];
    for i in intervals {
        let t_s = ((i.start_epoch_s - t0 + i.length_s) * 1000.0).round() / 1000.0;
        let idx = match out.iter().position(|s| (s.t_s - t_s).abs() < 1e-6) {
            Some(idx) => idx,
            None => {
                out.push(Second {
                    t_s,
                    claim: new_histogram(),
                    e2e: new_histogram(),
                });
                out.len() - 1
            }
        };
        let s = &mut out[idx];
        match i.metric {
            Some(Metric::Claim) => s.claim.add(&i.histogram)?,
            Some(Metric::E2e) => s.e2e.add(&i.histogram)?,
            _ => {}
        }
    }
    out.sort_by(|a, b| a.t_s.total_cmp(&b.t_s));
    Ok(out)
}

/// The p99 (ms) of the seconds ending in (from, to], merged exactly.
fn p99(secs: &[Second], from: f64, to: f64, pick: fn(&Second) -> &Histogram<u64>) -> Option<f64> {
    let mut h = new_histogram();
    for s in secs.iter().filter(|s| s.t_s > from && s.t_s <= to) {
        h.add(pick(s)).ok()?;
    }
    (!h.is_empty()).then(|| h.value_at_quantile(0.99) as f64 / 1000.0)
}

fn claim(s: &Second) -> &Histogram<u64> {
    &s.claim
}

fn e2e(s: &Second) -> &Histogram<u64> {
    &s.e2e
}

/// Least squares of y on x: (slope, R²); `None` with fewer than 5 points or no spread.
pub fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 5 {
        return None;
    }
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - my).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let r2 = if syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        0.0
    };
    Some((slope, r2))
}

/// A second of the test as the breach rule sees it: its end, its end-to-end p99, and
/// whether jobs were waiting.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub t_s: f64,
    pub p99_ms: Option<f64>,
    pub waiting: bool,
}

/// The first second from which `BREACH_RUN` seconds in a row broke the goal. A second
/// in which nothing completed while jobs waited is a stall: it breaks the goal too.
pub fn first_breach(rows: &[Checked], slo_ms: f64) -> Option<f64> {
    let mut run = 0;
    for (i, r) in rows.iter().enumerate() {
        let over = match r.p99_ms {
            Some(p) => p > slo_ms,
            None => r.waiting,
        };
        run = if over { run + 1 } else { 0 };
        if run == BREACH_RUN {
            return Some(rows[i + 1 - BREACH_RUN].t_s);
        }
    }
    None
}

/// Whether dead tuples rose through the hold: the means of ten equal slices of it never
/// fall, and the last is above the first.
pub fn monotonic(dead: &[f64]) -> Option<bool> {
    let n = dead.len();
    if n < 10 {
        return None;
    }
    let means: Vec<f64> = (0..10)
        .map(|i| {
            let slice = &dead[i * n / 10..(i + 1) * n / 10];
            slice.iter().sum::<f64>() / slice.len() as f64
        })
        .collect();
    Some(means.windows(2).all(|w| w[1] >= w[0]) && means[9] > means[0])
}

/// Seconds after `from` until a 10 s window's claim p99 came within 10 % of `base`, if
/// it did before `until`.
fn recovery(secs: &[Second], base: f64, from: f64, until: f64) -> Option<f64> {
    let mut t = from;
    while t + RECOVERY_WINDOW_S <= until + 1e-9 {
        if p99(secs, t, t + RECOVERY_WINDOW_S, claim)
            .is_some_and(|p| p <= base * RECOVERY_TOLERANCE)
        {
            return Some(t - from);
        }
        t += 1.0;
    }
    None
}

/// The share of the baseline's 10 s windows that meet the recovery rule against the
/// baseline itself: how much of the rule is noise on this machine.
fn baseline_within(secs: &[Second], base: f64, from: f64, to: f64) -> Option<f64> {
    let mut t = from;
    let (mut ok, mut all) = (0u32, 0u32);
    while t + RECOVERY_WINDOW_S <= to + 1e-9 {
        all += 1;
        ok += u32::from(
            p99(secs, t, t + RECOVERY_WINDOW_S, claim)
                .is_some_and(|p| p <= base * RECOVERY_TOLERANCE),
        );
        t += 1.0;
    }
    (all > 0).then(|| f64::from(ok) / f64::from(all))
}

/// The result of one horizon test and its timeline, or `None` for another scenario.
pub fn result(g: &TestGroup) -> Result<Option<(HorizonResult, Vec<TimelineRow>)>> {
    let Some(part) = g.parts.first() else {
        return Ok(None);
    };
    let m = &part.manifest;
    if m.scenario.as_deref() != Some("horizon") {
        return Ok(None);
    }
    let Some(rec) = m.extra.get("horizon") else {
        return Ok(None);
    };
    let rec: HorizonRecord = serde_json::from_value(rec.clone()).map_err(|e| {
        crate::format::read::bad(&part.manifest_path, format!("its horizon object: {e}"))
    })?;
    let rows = read_rows(&g.folder.join(format!("{}_{HORIZON_CSV}", g.test)))?;
    let secs = seconds(&g.folder.join(format!("{}_latency.hlog", g.test)))?;
    let r = compute(g, m, &rec, &rows, &secs);
    let timeline = rows
        .iter()
        .map(|row| TimelineRow {
            test: g.test.clone(),
            queue: m.queue.clone(),
            holder: r.holder.clone(),
            smoke: m.smoke,
            t_s: row.t_s,
            claim_p99_ms: row.claim_p99_ms,
            e2e_p99_ms: row.e2e_p99_ms,
            dead_tuples: row.dead_tuples,
            hold_started_s: rec.outcome.hold_started_s.unwrap_or(rec.phases.baseline_s),
            released_s: rec.outcome.released_s.unwrap_or(rec.phases.hold_end_s()),
        })
        .collect();
    Ok(Some((r, timeline)))
}

/// The hold as it happened: from the holder's start to its release or to the server
/// ending it, whichever came first.
fn hold_window(rec: &HorizonRecord) -> (f64, f64) {
    let p = rec.phases;
    let start = rec.outcome.hold_started_s.unwrap_or(p.baseline_s);
    let released = rec.outcome.released_s.unwrap_or(p.hold_end_s());
    let end = rec.outcome.killed_s.map_or(released, |k| k.min(released));
    (start, end.max(start))
}

/// The queue's own recovery: whether the hold built a backlog (more than a second of
/// arrivals, and twice the baseline's deepest), and when after the release it was
/// worked off, which can take far longer than the claims. A test that drained to empty
/// worked it off by its end.
fn backlog(
    g: &TestGroup,
    rows: &[HorizonRow],
    baseline: &[&HorizonRow],
    in_hold: &[&HorizonRow],
    released: f64,
    rec: &HorizonRecord,
) -> (bool, Option<f64>) {
    let base_depth = baseline.iter().filter_map(|r| r.depth).max().unwrap_or(0);
    let built = in_hold.iter().filter_map(|r| r.depth).max().unwrap_or(0);
    let backlog_built = built > base_depth.max(1) * 2 && built as f64 > rec.rate_jobs_s;
    let drained_at = g
        .parts
        .iter()
        .all(|p| p.summary.left_in_queue == Some(0))
        .then(|| {
            g.parts
                .iter()
                .map(|p| p.summary.duration_s)
                .fold(0.0, f64::max)
        });
    let cleared = rows
        .iter()
        .filter(|r| r.t_s - 0.5 > released)
        .find(|r| r.depth.is_some_and(|d| d <= base_depth))
        .map(|r| r.t_s)
        .or(drained_at)
        .map(|t| t - released);
    (backlog_built, cleared.filter(|_| backlog_built))
}

/// A row's second lies inside (from, to] by its middle (rows are stamped at their end).
fn within(r: &HorizonRow, from: f64, to: f64) -> bool {
    let mid = r.t_s - 0.5;
    mid > from && mid <= to
}

fn checked(rows: &[&HorizonRow]) -> Vec<Checked> {
    rows.iter()
        .map(|r| Checked {
            t_s: r.t_s,
            p99_ms: r.e2e_p99_ms,
            waiting: r.depth.is_some_and(|d| d > 0),
        })
        .collect()
}

/// What the hold did to the tables: claim cost and buffers per 10,000 dead tuples (a
/// least-squares fit with its R²), whether dead tuples only grew, the index at each end.
struct HoldGrowth {
    claim: Option<(f64, f64)>,
    buffers: Option<(f64, f64)>,
    dead_monotonic: Option<bool>,
    index_start: Option<i64>,
    index_end: Option<i64>,
}

fn hold_growth(in_hold: &[&HorizonRow]) -> HoldGrowth {
    let per_10k = |y: fn(&HorizonRow) -> Option<f64>| {
        let pts: Vec<(f64, f64)> = in_hold
            .iter()
            .filter_map(|r| Some((r.dead_tuples? as f64 / 10_000.0, y(r)?)))
            .collect();
        fit(&pts)
    };
    let dead: Vec<f64> = in_hold
        .iter()
        .filter_map(|r| r.dead_tuples.map(|d| d as f64))
        .collect();
    let mut index = in_hold.iter().filter_map(|r| r.index_bytes);
    HoldGrowth {
        claim: per_10k(|r| r.claim_p99_ms),
        buffers: per_10k(|r| r.claim_buffers.map(|b| b as f64)),
        dead_monotonic: monotonic(&dead),
        index_start: index.next(),
        index_end: in_hold.iter().filter_map(|r| r.index_bytes).next_back(),
    }
}

fn compute(
    g: &TestGroup,
    m: &crate::format::manifest::Manifest,
    rec: &HorizonRecord,
    rows: &[HorizonRow],
    secs: &[Second],
) -> HorizonResult {
    let p = rec.phases;
    let (hold_at, hold_end) = hold_window(rec);
    let released = rec.outcome.released_s.unwrap_or(p.hold_end_s());
    // The baseline's first 10 s warm the caches when there is time to spare.
    let skip = if p.baseline_s > 20.0 { 10.0 } else { 0.0 };
    let base_claim = p99(secs, skip, hold_at, claim);
    let late_hold = hold_at + (hold_end - hold_at) * 2.0 / 3.0;
    let hold_claim = p99(secs, late_hold, hold_end, claim);
    let base_e2e = p99(secs, skip, hold_at, e2e);
    let hold_e2e = p99(secs, late_hold, hold_end, e2e);
    // The server's columns are read at a row's end, after its second: a row counts in
    // the hold only if the holder still held when it was read.
    let in_hold: Vec<&HorizonRow> = rows
        .iter()
        .filter(|r| r.t_s > hold_at && r.t_s <= hold_end)
        .filter(|r| matches!(r.holder.as_str(), "holding" | "none"))
        .collect();
    let baseline: Vec<&HorizonRow> = rows.iter().filter(|r| within(r, skip, hold_at)).collect();
    let after: Vec<&HorizonRow> = rows
        .iter()
        .filter(|r| within(r, hold_at, p.total_s()))
        .collect();
    let growth = hold_growth(&in_hold);
    // Recovery means something only if the hold made claims slower than the rule allows,
    // and a recovery phase is at least one window long.
    let degraded = base_claim
        .zip(hold_claim)
        .is_some_and(|(b, h)| h > b * RECOVERY_TOLERANCE);
    let judged = base_claim.filter(|_| degraded && p.recovery_s >= RECOVERY_WINDOW_S);
    let recovered_in = judged.and_then(|b| recovery(secs, b, released, p.total_s()));
    let breach = first_breach(&checked(&after), rec.slo_p99_ms);
    let (backlog_built, backlog_cleared_s) = backlog(g, rows, &baseline, &in_hold, released, rec);
    let mut r = HorizonResult {
        test: g.test.clone(),
        queue: m.queue.clone(),
        backend: m.backend.clone(),
        holder: rec.holder.kind.name().into(),
        smoke: m.smoke,
        rate_jobs_s: rec.rate_jobs_s,
        baseline_s: p.baseline_s,
        hold_s: p.hold_s,
        recovery_s: p.recovery_s,
        held_s: (!rec.outcome.never_held).then_some(hold_end - hold_at),
        baseline_claim_p99_ms: base_claim,
        hold_claim_p99_ms: hold_claim,
        claim_p99_ratio: base_claim.zip(hold_claim).map(|(b, h)| h / b),
        baseline_e2e_p99_ms: base_e2e,
        hold_e2e_p99_ms: hold_e2e,
        e2e_p99_ratio: base_e2e.zip(hold_e2e).map(|(b, h)| h / b),
        slo_p99_ms: rec.slo_p99_ms,
        breach_after_s: breach.map(|t| (t - hold_at).max(0.0)),
        breach_phase: breach.map(|t| p.at(t - 0.5).to_string()),
        breached_in_baseline: first_breach(&checked(&baseline), rec.slo_p99_ms).is_some(),
        claim_ms_per_10k_dead: growth.claim.map(|f| f.0),
        fit_r2: growth.claim.map(|f| f.1),
        buffers_per_10k_dead: growth.buffers.map(|f| f.0),
        buffers_fit_r2: growth.buffers.map(|f| f.1),
        dead_at_hold_start: in_hold.first().and_then(|r| r.dead_tuples),
        peak_dead_tuples: rows.iter().filter_map(|r| r.dead_tuples).max(),
        dead_monotonic: growth.dead_monotonic,
        index_bytes_hold_start: growth.index_start,
        index_bytes_hold_end: growth.index_end,
        peak_xmin_age: rows.iter().filter_map(|r| r.xmin_age).max(),
        recovery_s_measured: recovered_in,
        recovered: judged.map(|_| recovered_in.is_some()),
        degraded,
        backlog_built,
        backlog_cleared_s,
        baseline_windows_within: base_claim.and_then(|b| baseline_within(secs, b, skip, hold_at)),
        holder_killed_s: rec.outcome.killed_s,
        holder_killed_by: rec.outcome.killed_by.clone(),
        lost: g.parts.iter().map(|p| p.summary.lost).sum(),
        note: String::new(),
    };
    r.note = if rec.outcome.never_held {
        format!("nothing was held: {}", rec.outcome.held)
    } else {
        note(&r)
    };
    r
}

/// The result in one sentence.
fn note(r: &HorizonResult) -> String {
    let mut s = match (r.baseline_claim_p99_ms, r.hold_claim_p99_ms) {
        (Some(b), Some(h)) => format!(
            "claim p99 {b:.1} ms before the hold, {h:.1} ms in its last third (×{:.1})",
            h / b
        ),
        _ => "no claim latencies to compare".into(),
    };
    if let Some(d) = r.peak_dead_tuples {
        s.push_str(&format!("; dead tuples peaked at {}", thousands(d as f64)));
    }
    if let (Some(k), Some(r2)) = (r.claim_ms_per_10k_dead, r.fit_r2) {
        s.push_str(&format!(" (+{k:.2} ms per 10k dead, R² {r2:.2})"));
    }
    match r.breach_after_s {
        Some(t) => s.push_str(&format!(
            "; p99 broke {} ms {t:.0} s into the hold",
            r.slo_p99_ms
        )),
        None => s.push_str(&format!("; p99 stayed within {} ms", r.slo_p99_ms)),
    }
    match (r.recovered, r.recovery_s_measured) {
        (Some(true), Some(t)) => s.push_str(&format!(
            "; back within 10 % of baseline {t:.0} s after release"
        )),
        (Some(false), _) => {
            s.push_str("; not back within 10 % of baseline before the recovery phase ended")
        }
        _ => {}
    }
    match (r.backlog_built, r.backlog_cleared_s) {
        (true, Some(t)) => s.push_str(&format!(
            "; its backlog was worked off {t:.0} s after release"
        )),
        (true, None) => s.push_str("; its backlog was not worked off before the test ended"),
        _ => {}
    }
    if let Some(t) = r.holder_killed_s {
        s.push_str(&format!(
            "; the server ended the holder at {t:.0} s ({})",
            r.holder_killed_by.as_deref().unwrap_or("?")
        ));
    }
    s
}

/// Every horizon test's result, and all their timelines.
pub fn build(groups: &[&TestGroup]) -> Result<(Vec<HorizonResult>, Vec<TimelineRow>)> {
    let (mut out, mut timeline) = (vec![], vec![]);
    for g in groups {
        if let Some((r, t)) = result(g)? {
            out.push(r);
            timeline.extend(t);
        }
    }
    Ok((out, timeline))
}

/// "Which design degrades least while a transaction is held, and how fast does it
/// recover?": designs ranked by their claim p99 ratio only against runs of the same
/// holder and schedule; Valkey's control by its end-to-end ratio.
pub fn finding(results: &[HorizonResult]) -> Option<Finding> {
    if results.is_empty() {
        return None;
    }
    // Designs compare only at the same rate, holder and schedule: a design offered less
    // suffers less by construction.
    type Key = (String, u64, u64, u64);
    let key = |r: &HorizonResult| -> Key {
        (
            r.holder.clone(),
            r.rate_jobs_s.round() as u64,
            r.baseline_s.to_bits(),
            r.hold_s.to_bits(),
        )
    };
    let held: Vec<&HorizonResult> = results
        .iter()
        .filter(|r| r.backend == "postgresql" && r.held_s.is_some())
        .collect();
    let mut groups: Vec<Key> = vec![];
    for r in &held {
        if !groups.contains(&key(r)) {
            groups.push(key(r));
        }
    }
    let mut parts = vec![];
    for k in &groups {
        let mut these: Vec<&HorizonResult> =
            held.iter().copied().filter(|r| key(r) == *k).collect();
        these.sort_by(|a, b| damage(a).total_cmp(&damage(b)));
        parts.push(ranked(&these));
    }
    for r in results
        .iter()
        .filter(|r| r.held_s.is_none() && r.holder != "none")
    {
        parts.push(format!("{}: {}.", r.test, r.note));
    }
    for v in results.iter().filter(|r| r.backend == "valkey") {
        parts.push(format!(
            "Valkey (the control, an idle connection held, {:.0} s): e2e p99 ×{} over the same schedule.",
            v.hold_s,
            v.e2e_p99_ratio.map_or("?".into(), |x| format!("{x:.2}"))
        ));
    }
    if results.iter().any(|r| r.smoke) {
        parts.push("Smoke runs (--quick: a 30 s hold): not for conclusions.".into());
    }
    Some(Finding {
        question: "8. Which design degrades least while a transaction is held, and how fast does it recover?".into(),
        answer: parts.join(" "),
    })
}

/// The absolute damage a design ranks by: its late-hold claim p99, then its late-hold
/// end-to-end p99 (a missing figure ranks last).
fn damage(r: &HorizonResult) -> f64 {
    r.hold_claim_p99_ms.unwrap_or(f64::INFINITY) + r.hold_e2e_p99_ms.unwrap_or(f64::INFINITY) * 1e-9
}

/// One group's sentence: the designs by late-hold claim p99 (absolute), each with its
/// ratio to its own baseline as context. The lead says when the first two are within
/// the p99 noise threshold.
fn ranked(these: &[&HorizonResult]) -> String {
    let Some(first) = these.first() else {
        return String::new();
    };
    let head = format!(
        "{} holder, {:.0} s hold, {} jobs/s",
        first.holder,
        first.hold_s,
        thousands(first.rate_jobs_s)
    );
    let lead = match these {
        [only] => format!(
            "{} is the only design at this rate, holder and schedule, so it is compared with none",
            only.queue
        ),
        [a, b, ..] => {
            let close = match (a.hold_claim_p99_ms, b.hold_claim_p99_ms) {
                (Some(x), Some(y)) if x > 0.0 => {
                    (y / x).ln() <= crate::stats::noise::threshold("p99")
                }
                _ => false,
            };
            if close {
                format!(
                    "{} and {} suffer alike (late-hold claim p99 within this machine's noise)",
                    a.queue, b.queue
                )
            } else {
                format!("{} suffers least (the lowest late-hold claim p99)", a.queue)
            }
        }
        [] => String::new(),
    };
    let each: Vec<String> = these.iter().map(|r| one(r)).collect();
    format!("{head}: {lead}: {}.", each.join("; "))
}

/// One design's line of finding 8.
fn one(r: &HorizonResult) -> String {
    let mut rec = match (r.degraded, r.recovered, r.recovery_s_measured) {
        (false, _, _) => "no degradation to recover from".to_string(),
        (true, Some(true), Some(t)) => format!("claims back to baseline {t:.0} s after release"),
        (true, Some(false), _) => "claims not back to baseline within the recovery phase".into(),
        _ => "recovery not measured".into(),
    };
    match (r.backlog_built, r.backlog_cleared_s) {
        (true, Some(t)) => rec.push_str(&format!(
            ", backlog worked off {t:.0} s after the hold ended"
        )),
        (true, None) => rec.push_str(", backlog not worked off by the test's end"),
        _ => {}
    }
    let breach = r.breach_after_s.map_or(String::new(), |t| {
        format!(", p99 over {} ms after {t:.0} s", r.slo_p99_ms)
    });
    format!(
        "{} late-hold claim p99 {} and e2e p99 {} (×{} and ×{} its baseline; {} dead tuples at peak{breach}), {rec}",
        r.queue,
        crate::text::ms_prose(r.hold_claim_p99_ms),
        crate::text::ms_prose(r.hold_e2e_p99_ms),
        r.claim_p99_ratio.map_or("?".into(), |x| format!("{x:.1}")),
        r.e2e_p99_ratio.map_or("?".into(), |x| format!("{x:.1}")),
        r.peak_dead_tuples
            .map_or("?".into(), |d| thousands(d as f64))
    )
}

/// The console's horizon table.
pub fn table(results: &[HorizonResult]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if results.is_empty() {
        return o;
    }
    let rule = "─".repeat(100);
    let _ = writeln!(
        o,
        "\nHORIZON: a transaction held open beside a steady load\n{rule}"
    );
    let _ = writeln!(
        o,
        "{:<17} {:<9} {:>6} {:>17} {:>17} {:>9} {:>14} {:>10} {:>9} {:>11} {:>12}",
        "Queue",
        "Holder",
        "j/s",
        "claim p99 ms",
        "e2e p99 ms",
        "breach s",
        "ms/10k dead",
        "dead peak",
        "index +MB",
        "claims back",
        "backlog gone"
    );
    let f = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.1}"));
    for r in results {
        let claim = format!("{}→{}", f(r.baseline_claim_p99_ms), f(r.hold_claim_p99_ms));
        let e2e = format!("{}→{}", f(r.baseline_e2e_p99_ms), f(r.hold_e2e_p99_ms));
        let slope = match (r.claim_ms_per_10k_dead, r.fit_r2) {
            (Some(k), Some(r2)) => format!("{k:.2} R²{r2:.2}"),
            _ => "-".into(),
        };
        let growth = r
            .index_bytes_hold_start
            .zip(r.index_bytes_hold_end)
            .map(|(a, b)| (b - a) as f64 / 1e6);
        let recovery = match (r.degraded, r.recovered, r.recovery_s_measured) {
            (false, _, _) => "not slowed".into(),
            (true, Some(true), Some(t)) => format!("{t:.0} s"),
            (true, Some(false), _) => "no".into(),
            _ => "-".into(),
        };
        let backlog = match (r.backlog_built, r.backlog_cleared_s) {
            (false, _) => "none".into(),
            (true, Some(t)) => format!("{t:.0} s"),
            (true, None) => "no".into(),
        };
        let _ = writeln!(
            o,
            "{:<17} {:<9} {:>6} {:>17} {:>17} {:>9} {:>14} {:>10} {:>9} {:>11} {:>12}",
            r.queue,
            r.holder,
            thousands(r.rate_jobs_s),
            claim,
            e2e,
            r.breach_after_s.map_or("-".into(), |t| format!("{t:.0}")),
            slope,
            r.peak_dead_tuples
                .map_or("-".into(), |d| thousands(d as f64)),
            growth.map_or("-".into(), |g| format!("{g:.1}")),
            recovery,
            backlog
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(queue: &str, rate: f64, base: f64, late: f64) -> HorizonResult {
        HorizonResult {
            test: format!("{queue}_horizon"),
            queue: queue.into(),
            backend: "postgresql".into(),
            holder: "idle".into(),
            rate_jobs_s: rate,
            baseline_s: 60.0,
            hold_s: 300.0,
            held_s: Some(300.0),
            baseline_claim_p99_ms: Some(base),
            hold_claim_p99_ms: Some(late),
            claim_p99_ratio: Some(late / base),
            hold_e2e_p99_ms: Some(late * 2.0),
            ..HorizonResult::default()
        }
    }

    #[test]
    fn horizon_ranks_by_absolute_damage_at_one_rate() {
        // Partitioned ×8.1 of a 13.5 ms baseline is 110 ms late in the hold; skip_locked
        // ×3.5 of 46 ms is 160 ms. By ratio skip_locked looked better.
        let r = vec![
            held("skip_locked", 500.0, 46.0, 160.0),
            held("partitioned", 500.0, 13.5, 110.0),
            held("delete_returning", 500.0, 35.0, 170.0),
        ];
        let f = finding(&r).expect("finding").answer;
        assert!(f.contains("partitioned suffers least"), "{f}");
        let at = |q: &str| f.find(&format!("{q} late-hold")).expect(q);
        assert!(
            at("partitioned") < at("skip_locked") && at("skip_locked") < at("delete_returning"),
            "{f}"
        );
        // Within the p99 noise of each other: said, not ranked as a win.
        let r = vec![
            held("skip_locked", 500.0, 46.0, 112.0),
            held("partitioned", 500.0, 13.5, 110.0),
        ];
        let f = finding(&r).expect("finding").answer;
        assert!(f.contains("suffer alike"), "{f}");
        // Another rate is another group: never ranked together.
        let r = vec![
            held("skip_locked", 250.0, 46.0, 60.0),
            held("partitioned", 500.0, 13.5, 110.0),
        ];
        let f = finding(&r).expect("finding").answer;
        assert_eq!(f.matches("compared with none").count(), 2, "{f}");
    }

    #[test]
    fn fit_finds_slope_and_r2() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0 + 0.5 * i as f64)).collect();
        let (k, r2) = fit(&pts).expect("fit");
        assert!((k - 0.5).abs() < 1e-9 && (r2 - 1.0).abs() < 1e-9);
        // Noise around a flat line: no slope to speak of, and R² says so.
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { 1.2 }))
            .collect();
        let (k, r2) = fit(&flat).expect("fit");
        assert!(k.abs() < 0.05 && r2 < 0.2, "{k} {r2}");
        assert!(fit(&pts[..4]).is_none());
        assert!(fit(&[(1.0, 1.0); 6]).is_none());
    }

    #[test]
    fn a_breach_needs_three_seconds_in_a_row_and_a_stall_is_one() {
        let rows: Vec<Checked> = [50.0, 150.0, 150.0, 40.0, 120.0, 130.0, 140.0, 200.0]
            .iter()
            .enumerate()
            .map(|(i, p)| Checked {
                t_s: i as f64 + 1.0,
                p99_ms: Some(*p),
                waiting: true,
            })
            .collect();
        assert_eq!(first_breach(&rows, 100.0), Some(5.0));
        assert_eq!(first_breach(&rows[..4], 100.0), None);
        // Nothing completed while jobs waited: a stall, over any goal.
        let mut stalled = rows[..4].to_vec();
        for r in stalled.iter_mut().skip(1) {
            r.p99_ms = None;
        }
        assert_eq!(first_breach(&stalled, 100.0), Some(2.0));
        for r in stalled.iter_mut() {
            r.waiting = false;
        }
        assert_eq!(
            first_breach(&stalled, 100.0),
            None,
            "an idle queue is no breach"
        );
    }

    #[test]
    fn growth_is_monotonic_only_when_every_slice_rises() {
        let rising: Vec<f64> = (0..100).map(|i| i as f64 * 10.0).collect();
        assert_eq!(monotonic(&rising), Some(true));
        let mut sawtooth = rising.clone();
        for v in sawtooth.iter_mut().skip(50).take(10) {
            *v = 0.0; // a vacuum removed them
        }
        assert_eq!(monotonic(&sawtooth), Some(false));
        assert_eq!(monotonic(&[1.0; 100]), Some(false));
        assert_eq!(monotonic(&rising[..5]), None);
        // The hold's last seconds count too, however many there are.
        let mut late_drop = rising[..19].to_vec();
        late_drop[18] = 0.0;
        assert_eq!(monotonic(&late_drop), Some(false));
    }
}
