//! Capacity in the analysis: each folder's `sweep/` files (MST searches, burn-downs,
//! worker scaling) as one line per design and tier, one CSV row per step and per
//! worker count, the MST columns of summary.csv, and the finding.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::format::capacity::{
    read_burndown, read_scaling, read_sweep, Burndown, DesignCapacity, Outcome, ScalingFile,
    ScalingRow, StepRow, SweepFile,
};
use crate::format::summary::{Finding, Row};
use crate::text::thousands;

/// What one folder's `sweep/` holds.
#[derive(Debug, Default, Clone)]
pub struct Found {
    pub sweeps: Vec<SweepFile>,
    pub burndowns: Vec<Burndown>,
    pub scalings: Vec<ScalingFile>,
}

impl Found {
    pub fn is_empty(&self) -> bool {
        self.sweeps.is_empty() && self.burndowns.is_empty() && self.scalings.is_empty()
    }
}

fn ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(suffix))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Reads `folder/sweep/`; a malformed file is refused with its name (exit code 2).
pub fn read(folder: &Path) -> Result<Found> {
    let dir = folder.join("sweep");
    Ok(Found {
        sweeps: ending(&dir, "_sweep.json")
            .iter()
            .map(|p| read_sweep(p))
            .collect::<Result<_>>()?,
        burndowns: ending(&dir, "_burndown.json")
            .iter()
            .map(|p| read_burndown(p))
            .collect::<Result<_>>()?,
        scalings: ending(&dir, "_scaling.json")
            .iter()
            .map(|p| read_scaling(p))
            .collect::<Result<_>>()?,
    })
}

/// One line per sweep (its folder's burn-down and scaling fit of the same design and
/// tier beside it), the step rows, and the scaling rows.
pub fn build(found: &[Found]) -> (Vec<DesignCapacity>, Vec<StepRow>, Vec<ScalingRow>) {
    let (mut caps, mut steps, mut scaling) = (vec![], vec![], vec![]);
    for f in found {
        for s in &f.sweeps {
            // Only a burn-down of the same shape stands beside the MST.
            let bd = f.burndowns.iter().find(|b| {
                b.queue == s.queue
                    && b.tier == s.tier
                    && b.workers == s.workers
                    && b.processing_ms == s.processing_ms
                    && b.audit == "exact"
            });
            let usl = f
                .scalings
                .iter()
                .find(|x| x.queue == s.queue && x.tier == s.tier)
                .and_then(|x| x.usl);
            let r = &s.result;
            caps.push(DesignCapacity {
                queue: s.queue.clone(),
                backend: s.backend.clone(),
                tier: s.tier.clone(),
                smoke: s.smoke,
                wakeup: s.wakeup.clone(),
                slo_p99_ms: s.goal.slo_p99_ms,
                outcome: r.outcome,
                mst_jobs_s: r.mst_jobs_s,
                confirmed: r.confirmed,
                first_fail_jobs_s: r.first_fail_jobs_s,
                limited_by: r.limited_by.clone(),
                steps: s.steps.len(),
                workers: s.workers,
                processing_ms: s.processing_ms,
                worker_bound_jobs_s: s.worker_bound_jobs_s,
                bottleneck: s.bottleneck.clone(),
                note: r.note.clone(),
                burndown_jobs_s: bd.map(|b| b.jobs_s),
                burndown_workers: bd.map(|b| b.workers),
                usl,
                workload: s.workload.clone(),
            });
            for st in &s.steps {
                steps.push(StepRow {
                    queue: s.queue.clone(),
                    backend: s.backend.clone(),
                    tier: s.tier.clone(),
                    smoke: s.smoke,
                    wakeup: s.wakeup.clone(),
                    sweep: s.started_at.clone(),
                    workers: s.workers,
                    processing_ms: s.processing_ms,
                    slo_p99_ms: s.goal.slo_p99_ms,
                    rate_jobs_s: st.rate_jobs_s,
                    pass: st.pass,
                    failed: st.failed.join(";"),
                    achieved_jobs_s: st.achieved_jobs_s,
                    p50_ms: st.p50_ms,
                    p99_ms: st.p99_ms,
                    p999_ms: st.p999_ms,
                    is_mst: r.mst_jobs_s == Some(st.rate_jobs_s),
                    outcome: r.outcome.name().into(),
                    mst_jobs_s: r.mst_jobs_s,
                    confirmed: r.confirmed,
                    first_fail_jobs_s: r.first_fail_jobs_s,
                    limited_by: r.limited_by.clone().unwrap_or_default(),
                    worker_bound_jobs_s: s.worker_bound_jobs_s,
                    burndown_jobs_s: bd.map(|b| b.jobs_s),
                    burndown_workers: bd.map(|b| b.workers),
                });
            }
        }
        for x in &f.scalings {
            for p in &x.points {
                let u = x.usl;
                scaling.push(ScalingRow {
                    queue: x.queue.clone(),
                    backend: x.backend.clone(),
                    tier: x.tier.clone(),
                    workers: p.workers,
                    jobs_s: p.jobs_s,
                    audit: p.audit.clone(),
                    fit_jobs_s: u.map(|u| u.at(f64::from(p.workers))),
                    lambda: u.map(|u| u.lambda),
                    sigma: u.map(|u| u.sigma),
                    kappa: u.map(|u| u.kappa),
                    peak_workers: u.and_then(|u| u.peak_workers),
                    peak_jobs_s: u.and_then(|u| u.peak_jobs_s),
                    peak_extrapolated: u.map(|u| u.peak_extrapolated),
                    r2: u.map(|u| u.r2),
                });
            }
        }
    }
    (caps, steps, scaling)
}

/// Fills the MST columns of every row whose workload a sweep measured: the same design
/// and options, tier, wakeup, workers, processing time, payload and batch, and the same
/// kind of run (smoke or not). A design's ceiling (0 ms of work) fills only a test with
/// no work either; a sweep that did not record its workload fills none. An MST found is
/// given as such; a search with no failure up to its ceiling gives no MST and says so.
pub fn annotate(rows: &mut [Row], caps: &[DesignCapacity]) {
    for r in rows.iter_mut() {
        let Some(c) = caps.iter().find(|c| matches(c, r)) else {
            continue;
        };
        r.mst_slo_p99_ms = Some(c.slo_p99_ms);
        r.mst_confirmed = c.confirmed;
        match (c.outcome, c.mst_jobs_s) {
            (Outcome::Found, Some(m)) => {
                r.mst_jobs_s = Some(m);
                r.mst_limited_by = c.limited_by.clone().unwrap_or_default();
            }
            (Outcome::NoFailure, Some(m)) => {
                r.mst_limited_by = format!("none up to {} (a lower bound)", thousands(m));
            }
            _ => r.mst_limited_by = format!("no result ({})", c.outcome.name()),
        }
    }
}

/// Whether a sweep measured this row's workload.
pub fn matches(c: &DesignCapacity, r: &Row) -> bool {
    match (&c.workload, &r.workload) {
        (Some(cw), Some(rw)) => c.smoke == r.smoke && cw.differences(rw).is_empty(),
        _ => false,
    }
}

/// "the highest rate within p99 ≤ X ms is A for skip_locked, B for …", per SLO and tier.
pub fn finding(caps: &[DesignCapacity]) -> Option<Finding> {
    if caps.is_empty() {
        return None;
    }
    let mut keys: Vec<(String, u64)> = caps
        .iter()
        .map(|c| (c.tier.clone(), c.slo_p99_ms.to_bits()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut parts = vec![];
    for (tier, slo) in keys {
        let slo = f64::from_bits(slo);
        let these: Vec<&DesignCapacity> = caps
            .iter()
            .filter(|c| c.tier == tier && c.slo_p99_ms == slo)
            .collect();
        let each: Vec<String> = these.iter().map(|c| one(c)).collect();
        parts.push(format!(
            "In the {tier} tier, the highest rate within p99 ≤ {slo} ms is {}.",
            each.join(", ")
        ));
    }
    let mut notes = vec![];
    if caps.iter().any(|c| c.smoke) {
        notes.push("Smoke sweeps (--quick, 10 s steps): not for conclusions.".to_string());
    }
    if caps.iter().any(|c| c.worker_bound_jobs_s.is_some()) {
        notes.push("Where the work is simulated, the workers' own ceiling (workers × 1000 / processing ms) caps the MST, not the queue.".to_string());
    }
    if caps.iter().any(|c| c.burndown_jobs_s.is_some()) {
        notes.push("Burn-down is closed loop (a pre-filled queue, no arrivals), as River and Oban publish theirs: an upper bound an open-loop MST should not exceed by much.".to_string());
    }
    parts.extend(notes);
    Some(Finding {
        question: "7. How far can each design go before p99 breaks its goal (MST@SLO)?".into(),
        answer: parts.join(" "),
    })
}

fn one(c: &DesignCapacity) -> String {
    let bd = match (c.burndown_jobs_s, c.burndown_workers) {
        (Some(b), Some(w)) => format!("; burn-down {} jobs/s with {w} workers", thousands(b)),
        _ => String::new(),
    };
    match (c.outcome, c.mst_jobs_s) {
        (Outcome::Found, Some(m)) => format!(
            "{} jobs/s for {} (limited by {}{}{bd})",
            thousands(m),
            c.queue,
            c.limited_by.as_deref().unwrap_or("?"),
            if c.confirmed == Some(false) {
                "; its second run failed, so it is approximate"
            } else {
                ""
            }
        ),
        (Outcome::NoFailure, Some(m)) => {
            format!(
                "at least {} jobs/s for {} (nothing failed up to --max-rate{bd})",
                thousands(m),
                c.queue
            )
        }
        (Outcome::FirstStepFailed, _) => format!(
            "unknown for {} (its first step, {} jobs/s, failed: start lower{bd})",
            c.queue,
            c.first_fail_jobs_s.map_or("?".into(), thousands)
        ),
        _ => format!("unknown for {} (the sweep did not finish{bd})", c.queue),
    }
}

/// The console's capacity tables: the designs' ceilings (sweeps with no simulated work)
/// and the workloads' MSTs, never in one table.
pub fn table(caps: &[DesignCapacity]) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    if caps.is_empty() {
        return o;
    }
    let (ceilings, loads): (Vec<&DesignCapacity>, Vec<&DesignCapacity>) =
        caps.iter().partition(|c| c.is_design_ceiling());
    section(
        &mut o,
        "CAPACITY: each design's ceiling (no simulated work: the queue and its server bound the rate)",
        &ceilings,
    );
    section(
        &mut o,
        "CAPACITY: each workload's maximum sustainable throughput within the p99 goal",
        &loads,
    );
    if caps
        .iter()
        .any(|c| c.usl.is_some_and(|u| u.peak_extrapolated))
    {
        let _ = writeln!(
            o,
            "  * the USL peak lies beyond the largest worker count measured: a projection"
        );
    }
    let _ = writeln!(o, "  Arrivals are evenly spaced (job i due at t0 + i/rate): bursty real traffic reaches its p99 goal at a lower rate.");
    o
}

fn section(o: &mut String, title: &str, caps: &[&DesignCapacity]) {
    use std::fmt::Write;
    if caps.is_empty() {
        return;
    }
    let rule = "─".repeat(80);
    let _ = writeln!(o, "\n{title}\n{rule}");
    let _ = writeln!(
        o,
        "{:<17} {:<9} {:>7} {:>10} {:>10} {:<11} {:>10} {:>12}",
        "Queue", "Tier", "SLO ms", "MST j/s", "fail j/s", "limited by", "burn-down", "USL peak"
    );
    for c in caps {
        let mst = match (c.outcome, c.mst_jobs_s) {
            (Outcome::NoFailure, Some(m)) => format!("≥{}", thousands(m)),
            (_, Some(m)) => thousands(m),
            _ => "-".into(),
        };
        let peak = c.usl.and_then(|u| {
            let (n, x) = u.peak_workers.zip(u.peak_jobs_s)?;
            let beyond = if u.peak_extrapolated { "*" } else { "" };
            Some(format!("{} @{n:.0}{beyond}", thousands(x)))
        });
        let _ = writeln!(
            o,
            "{:<17} {:<9} {:>7} {:>10} {:>10} {:<11} {:>10} {:>12}",
            c.queue,
            c.tier,
            c.slo_p99_ms,
            mst,
            c.first_fail_jobs_s.map_or("-".into(), thousands),
            c.limited_by.as_deref().unwrap_or("-"),
            c.burndown_jobs_s.map_or("-".into(), thousands),
            peak.unwrap_or_else(|| "-".into())
        );
    }
    let mut said: Vec<&str> = vec![];
    for c in caps {
        if !said.contains(&c.bottleneck.as_str()) {
            said.push(&c.bottleneck);
            let _ = writeln!(o, "  {}", c.bottleneck);
        }
        if c.confirmed == Some(false) {
            let _ = writeln!(
                o,
                "  {}: the MST's second run failed, so read it as approximate (this machine's noise is beyond --precision)",
                c.queue
            );
        }
    }
}
