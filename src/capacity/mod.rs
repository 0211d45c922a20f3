//! Capacity: the maximum sustainable throughput within a p99 goal (MST@SLO), found by a
//! ramp then a bisection of open-loop steps (`sweep`); the burn-down of a pre-filled
//! queue (closed loop, as published queue figures are measured); and burn-down per
//! worker count with the Universal Scalability Law fitted to it.

pub mod burndown;
mod judge;
pub mod search;
mod step;

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::clock::rfc3339;
use crate::config::Config;
use crate::error::Interrupted;
use crate::format::capacity::{
    self, Goal, Outcome, Step, SweepFile, SweepResult, CRITERIA, SWEEP_FORMAT,
};
use crate::format::FORMAT_VERSION;
use crate::queue::{self, QueueKind};
use crate::session::Session;
use crate::text::thousands;
use search::{Next, Search, SearchPlan};

/// Jobs a step's window must hold for its p99 to mean something (with 200, the p99 is
/// the third-slowest job): the search's floor is this over the window.
pub const MIN_WINDOW_JOBS: f64 = 200.0;

/// What a sweep of one design does, and where its files go (`DIR/sweep`).
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub dir: PathBuf,
    pub search: SearchPlan,
    pub settle_s: f64,
    pub step_s: f64,
    pub goal: Goal,
    pub smoke: bool,
}

/// The config a capacity measurement runs with: no simulated work unless the user set
/// some, so the queue, not the workers' sleep, bounds the rate.
pub fn capacity_config(cfg: &Config) -> Config {
    let mut c = cfg.clone();
    if !cfg.benchmark_set.contains("job_processing_time_ms") {
        c.benchmark.job_processing_time_ms = 0.0;
    }
    c
}

/// What bounds the rate, in words, for the output and the file.
fn bottleneck(cfg: &Config) -> (Option<f64>, String) {
    let b = &cfg.benchmark;
    let w = b.num_workers.get();
    match b.capacity_jobs_s() {
        None => (
            None,
            format!(
                "{w} workers with no simulated work: each is bound only by its round trips, so the rate measured is the queue's (and its server's) at this concurrency"
            ),
        ),
        Some(cap) => (
            Some(cap),
            format!(
                "{w} workers × {} ms of simulated work: the workers cap the rate at {} jobs/s whatever the queue could take, so an MST near it is the workers' ceiling, not the queue's",
                b.job_processing_time_ms,
                thousands(cap)
            ),
        ),
    }
}

/// The result of the steps so far, and the sentence that says it.
fn result(kind: QueueKind, file: &SweepFile, next: Next) -> SweepResult {
    let slo = file.goal.slo_p99_ms;
    // The rate's last run decides what it is blamed on (a retried failure ran twice).
    let last = |rate: f64| file.steps.iter().rev().find(|s| s.rate_jobs_s == rate);
    let limited = |rate: f64| last(rate).and_then(|s| s.failed.first().cloned());
    let (outcome, mst, fail, confirmed, note) = match next {
        Next::Found {
            pass,
            fail,
            confirmed,
        } => (
            Outcome::Found,
            Some(pass),
            Some(fail),
            Some(confirmed),
            format!(
                "{kind}: the highest rate within p99 ≤ {slo} ms is {} jobs/s; {} jobs/s failed ({}){}",
                thousands(pass),
                thousands(fail),
                limited(fail).unwrap_or_default(),
                if confirmed {
                    ""
                } else {
                    "; the MST's second run failed: this machine's noise is larger than --precision, so read it as approximate"
                }
            ),
        ),
        Next::FirstStepFailed { fail } => (
            Outcome::FirstStepFailed,
            None,
            Some(fail),
            None,
            format!(
                "{kind}: every rate down to the floor failed, the last at {} jobs/s ({}): no rate is known to pass; a longer --step-duration lowers the floor ({} jobs/s now), or the design cannot take this workload here",
                thousands(fail),
                last(fail).and_then(|s| s.reason.clone()).unwrap_or_default(),
                thousands(file.floor_jobs_s)
            ),
        ),
        Next::NoFailure { pass } => (
            Outcome::NoFailure,
            Some(pass),
            None,
            None,
            format!(
                "{kind}: every step passed up to --max-rate {} jobs/s: the MST is at least that",
                thousands(pass)
            ),
        ),
        Next::StepLimit { pass, fail } => (
            Outcome::StepLimit,
            None,
            fail,
            None,
            format!(
                "{kind}: the search stopped at its step limit ({} steps) with the last pass at {} and the first failure at {} jobs/s: no MST is claimed",
                file.steps.len(),
                pass.map_or("-".into(), thousands),
                fail.map_or("-".into(), thousands)
            ),
        ),
        Next::Run(_) => (
            Outcome::Incomplete,
            None,
            None,
            None,
            format!("{kind}: the sweep was stopped before it found a result"),
        ),
    };
    SweepResult {
        outcome,
        mst_jobs_s: mst,
        mst_achieved_jobs_s: mst.and_then(last).map(|s| s.achieved_jobs_s),
        confirmed,
        first_fail_jobs_s: fail,
        limited_by: fail.and_then(limited),
        note,
    }
}

fn print_step(kind: QueueKind, n: usize, s: &Step) {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    println!(
        "{kind} step {n}: {} jobs/s offered, {} completed/s; e2e p50 {} p99 {} ms; depth {:+.1}/s (max {}); lag p99 {} ms: {}",
        thousands(s.rate_jobs_s),
        thousands(s.achieved_jobs_s),
        ms(s.p50_ms),
        ms(s.p99_ms),
        s.depth_slope_jobs_s,
        s.depth_max,
        ms(s.schedule_lag_p99_ms),
        match &s.reason {
            None => "PASS".to_string(),
            Some(r) => format!("FAIL ({}): {r}", s.failed.join(", ")),
        }
    );
}

/// The sweep file before its first step: settings, server and goal.
async fn header(
    s: &Session,
    kind: QueueKind,
    cfg: &Config,
    opts: &SweepOptions,
) -> Result<SweepFile> {
    let queue = queue::open(kind, cfg).await?;
    queue.setup(true).await?;
    // The tier asked for, as every test checks it (a mismatch is refused unless accepted).
    let accept = s.choices.accept_durability_mismatch;
    if let Some(w) = crate::workload::tier::check(&queue, cfg.benchmark.durability, accept).await? {
        eprintln!("qbench: warning: {kind}: {w}");
    }
    let durability = queue.server().info().await?.durability;
    let tier = durability
        .as_ref()
        .map_or("unknown".into(), |d| d.tier().name().to_string());
    let load = crate::workload::key::of(queue.as_ref(), cfg, &tier);
    let (worker_bound, words) = bottleneck(cfg);
    let b = &cfg.benchmark;
    let now = rfc3339(std::time::SystemTime::now());
    Ok(SweepFile {
        format: SWEEP_FORMAT.into(),
        version: FORMAT_VERSION,
        queue: kind.name().into(),
        backend: kind.backend().name().into(),
        tier,
        server_durability: durability.map_or("unknown".into(), |d| d.to_string()),
        host: sysinfo::System::host_name().unwrap_or_default(),
        smoke: opts.smoke,
        started_at: now.clone(),
        ended_at: now,
        workers: b.num_workers.get(),
        processing_ms: b.job_processing_time_ms,
        wakeup: queue.server().wakeup().mode,
        worker_bound_jobs_s: worker_bound,
        bottleneck: words,
        start_jobs_s: opts.search.start,
        factor: opts.search.factor,
        precision: opts.search.precision,
        floor_jobs_s: opts.search.floor,
        ceiling_jobs_s: opts.search.ceiling,
        settle_s: opts.settle_s,
        step_s: opts.step_s,
        goal: opts.goal.clone(),
        steps: vec![],
        result: SweepResult {
            outcome: Outcome::Incomplete,
            mst_jobs_s: None,
            mst_achieved_jobs_s: None,
            confirmed: None,
            first_fail_jobs_s: None,
            limited_by: None,
            note: String::new(),
        },
        workload: Some(load),
    })
}

/// The search never starts above what the workers themselves can do (that step fails by
/// construction, and the search would come down at two wasted steps): a start above
/// their ceiling becomes 80 % of it, leaving room for the queue's own cost; the ramp
/// climbs from there. Returns the plan and what was changed, in words.
pub fn below_the_workers(mut plan: SearchPlan, bound: Option<f64>) -> (SearchPlan, Option<String>) {
    let Some(bound) = bound.filter(|b| plan.start > *b) else {
        return (plan, None);
    };
    plan.start = (bound * 0.8).floor().max(plan.floor);
    let note = format!(
        "starting at {} jobs/s, 80 % of the workers' ceiling ({}), not above it",
        thousands(plan.start),
        thousands(bound)
    );
    (plan, Some(note))
}

/// Sweeps one design: steps until the search ends, `DIR/sweep/DESIGN_sweep.json`
/// rewritten after each (Ctrl-C keeps the steps so far, marked incomplete).
pub async fn sweep(
    s: &Session,
    kind: QueueKind,
    cfg: &Config,
    opts: &SweepOptions,
) -> Result<SweepFile> {
    std::fs::create_dir_all(&opts.dir)
        .with_context(|| format!("creating {}", opts.dir.display()))?;
    let path = opts.dir.join(capacity::sweep_file(kind.name()));
    let mut file = header(s, kind, cfg, opts).await?;
    s.note(&format!("qbench: sweep {kind}: {}", file.bottleneck));
    let (plan, capped) = below_the_workers(opts.search, file.worker_bound_jobs_s);
    if let Some(note) = capped {
        file.start_jobs_s = plan.start;
        s.note(&format!("qbench: sweep {kind}: {note}"));
    }
    let mut search = Search::new(plan);
    loop {
        let next = search.next();
        let Next::Run(rate) = next else {
            file.result = result(kind, &file, next);
            file.ended_at = rfc3339(std::time::SystemTime::now());
            capacity::write(&file, &path)?;
            println!("{}", file.result.note);
            return Ok(file);
        };
        let label = format!(
            "sweep {kind} step {} at {} jobs/s",
            file.steps.len() + 1,
            thousands(rate)
        );
        let step = step::run(s, kind, cfg, opts, rate, &label).await;
        let step = match step {
            Ok(Some(s)) => s,
            other => {
                file.result = result(kind, &file, next);
                file.ended_at = rfc3339(std::time::SystemTime::now());
                capacity::write(&file, &path)?;
                other?;
                return Err(Interrupted.into());
            }
        };
        print_step(kind, file.steps.len() + 1, &step);
        search.record(rate, step.pass);
        file.steps.push(step);
        file.result = result(kind, &file, Next::Run(rate));
        file.ended_at = rfc3339(std::time::SystemTime::now());
        capacity::write(&file, &path)?;
    }
}

/// Whether `dir` holds a finished sweep of exactly the workload `cfg` would sweep (same
/// design and options, tier, wakeup, workers, processing time, payload and batch), with
/// the same goal, step length and kind of run: then it is reused. A sweep of another workload is said and
/// swept again, never reused.
pub async fn already_swept(
    kind: QueueKind,
    cfg: &Config,
    opts: &SweepOptions,
    dir: &std::path::Path,
) -> Result<bool> {
    let path = dir.join(capacity::sweep_file(kind.name()));
    let Ok(file) = capacity::read_sweep(&path) else {
        return Ok(false);
    };
    if file.smoke != opts.smoke || file.result.outcome == Outcome::Incomplete {
        return Ok(false);
    }
    // Another goal or step length asks another question of the same workload.
    if file.goal != opts.goal || file.step_s != opts.step_s || file.settle_s != opts.settle_s {
        eprintln!(
            "qbench: sweep {kind}: {} was judged against another goal or step length: sweeping again",
            path.display()
        );
        return Ok(false);
    }
    let queue = queue::open(kind, cfg).await?;
    let tier = match queue.server().info().await?.durability {
        Some(d) => d.tier().name().to_string(),
        None => "unknown".into(),
    };
    let want = crate::workload::key::of(queue.as_ref(), cfg, &tier);
    let differs = match &file.workload {
        Some(w) => w.differences(&want),
        None => vec!["the file did not record its workload".into()],
    };
    if !differs.is_empty() {
        eprintln!(
            "qbench: sweep {kind}: {} measured another workload ({}): sweeping this one",
            path.display(),
            differs.join(", ")
        );
    }
    Ok(differs.is_empty())
}

/// Sweeps (and burns down) each design in turn; the criteria are named once up front.
/// `burndown`: how many jobs each burn-down drains (`None`: no burn-down).
pub async fn sweep_all(
    s: &Session,
    kinds: &[QueueKind],
    cfg: &Config,
    opts: &SweepOptions,
    burndown: Option<burndown::Size>,
) -> Result<()> {
    s.note(&format!(
        "qbench: each step passes only if {}: e2e p99 ≤ {} ms, completions ≥ 99 % of offered, a flat depth, producer lag p99 ≤ {} ms, and a clean exact audit",
        CRITERIA.join(", "),
        opts.goal.slo_p99_ms,
        opts.goal.max_lag_p99_ms
    ));
    for &kind in kinds {
        let file = sweep(s, kind, cfg, opts).await?;
        if let Some(size) = burndown {
            let n = size.jobs(measured_rate(&file));
            burndown::write_one(s, kind, cfg, n, &opts.dir).await?;
        } else {
            // An older burn-down would stand beside this sweep's MST as if it were its own.
            let stale = opts.dir.join(capacity::burndown_file(kind.name()));
            let _ = std::fs::remove_file(stale);
        }
    }
    Ok(())
}

/// The completion rate a sweep measured at its MST, else at its fastest passing step.
fn measured_rate(file: &SweepFile) -> Option<f64> {
    file.result.mst_achieved_jobs_s.or_else(|| {
        file.steps
            .iter()
            .filter(|s| s.pass)
            .map(|s| s.achieved_jobs_s)
            .reduce(f64::max)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_above_the_workers_ceiling_starts_below_it() {
        let plan = SearchPlan {
            start: 500.0,
            factor: 1.5,
            precision: 0.03,
            floor: 20.0,
            ceiling: 1e6,
        };
        let (p, note) = below_the_workers(plan, Some(125.0));
        assert_eq!(p.start, 100.0);
        assert!(note.is_some_and(|n| n.contains("80 %")));
        assert_eq!(below_the_workers(plan, Some(1000.0)), (plan, None));
        assert_eq!(below_the_workers(plan, None), (plan, None));
        // Never below the floor.
        assert_eq!(below_the_workers(plan, Some(10.0)).0.start, 20.0);
    }
}
