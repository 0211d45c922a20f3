//! `qbench sweep`: each design's MST@SLO and burn-down, or (with a --workers list) its
//! burn-down per worker count and the USL fit. Files go to DIR/sweep/.

use std::path::Path;

use anyhow::Result;

use crate::capacity::search::SearchPlan;
use crate::capacity::{self, burndown, SweepOptions, MIN_WINDOW_JOBS};
use crate::cli::{CapacityArgs, SweepArgs};
use crate::config::Config;
use crate::error::{usage, UsageError};
use crate::format::capacity::{Goal, CRITERIA};
use crate::format::files::ensure_writable;
use crate::queue::QueueKind;
use crate::Ctx;

/// A step's window shorter than this decides nothing: wrk2 warns that runs under
/// 10–20 s say little, and a knee needs time to show as a growing queue.
pub const MIN_STEP_S: f64 = 10.0;

/// The search and the goal from the flags, checked before anything runs.
pub fn options(
    args: &CapacityArgs,
    quick: bool,
    dir: &Path,
    smoke: bool,
) -> Result<SweepOptions, UsageError> {
    let step_s = args
        .step_duration
        .unwrap_or(if quick { 10.0 } else { 60.0 });
    if step_s < MIN_STEP_S {
        return Err(UsageError::new(format!(
            "--step-duration {step_s} is too short: a step is judged over at least {MIN_STEP_S} s after its settle period"
        )));
    }
    let settle_s = args.settle.unwrap_or(if quick { 5.0 } else { 10.0 });
    if !(settle_s.is_finite() && settle_s >= 0.0) {
        return Err(UsageError::new(format!(
            "--settle {settle_s} is invalid: it must be a number of seconds of at least 0"
        )));
    }
    let floor = (MIN_WINDOW_JOBS / step_s).ceil();
    if args.start_rate < floor {
        return Err(UsageError::new(format!(
            "--start-rate {} is below the floor of {floor} jobs/s: a {step_s} s step needs {MIN_WINDOW_JOBS} jobs for its p99 to mean something",
            args.start_rate
        )));
    }
    if args.max_rate < args.start_rate {
        return Err(UsageError::new(format!(
            "--max-rate {} is below --start-rate {}",
            args.max_rate, args.start_rate
        )));
    }
    Ok(SweepOptions {
        dir: dir.to_path_buf(),
        search: SearchPlan {
            start: args.start_rate,
            factor: args.step_factor,
            precision: args.precision / 100.0,
            floor,
            // Rates are whole jobs/s (each names its step's folder).
            ceiling: args.max_rate.floor(),
        },
        settle_s,
        step_s,
        goal: Goal {
            slo_p99_ms: args.slo_p99_ms,
            min_achieved: 0.99,
            // Lag is inside the e2e latency already; the bound only names the client as
            // the limit when it alone eats half the goal.
            max_lag_p99_ms: args.max_lag_ms.unwrap_or(args.slo_p99_ms / 2.0),
            max_depth_slope_of_rate: 0.005,
            depth_bound_rule: "offered × SLO + workers × dequeue_batch".into(),
        },
        smoke,
    })
}

/// Sweeps (and burns down) each design in turn; the criteria are named once up front.
pub async fn sweep_all(
    ctx: &Ctx,
    kinds: &[QueueKind],
    cfg: &Config,
    opts: &SweepOptions,
    burndown_jobs: u64,
) -> Result<()> {
    if !ctx.global.quiet {
        eprintln!(
            "qbench: each step passes only if {}: e2e p99 ≤ {} ms, completions ≥ 99 % of offered, a flat depth, producer lag p99 ≤ {} ms, and a clean exact audit",
            CRITERIA.join(", "),
            opts.goal.slo_p99_ms,
            opts.goal.max_lag_p99_ms
        );
    }
    for &kind in kinds {
        capacity::sweep(ctx, kind, cfg, opts).await?;
        if burndown_jobs > 0 {
            burndown::write_one(ctx, kind, cfg, burndown_jobs, &opts.dir).await?;
        } else {
            // An older burn-down would stand beside this sweep's MST as if it were its own.
            let stale = opts
                .dir
                .join(crate::format::capacity::burndown_file(kind.name()));
            let _ = std::fs::remove_file(stale);
        }
    }
    Ok(())
}

/// Every check of `sweep`'s flags that needs no server: run before `--local` starts any.
pub fn precheck(args: &SweepArgs, cfg: &Config) -> Result<SweepOptions> {
    QueueKind::parse_list(&args.queue)?;
    cfg.benchmark.wakeup.single()?;
    let opts = options(
        &args.capacity,
        args.quick,
        &args.out.join("sweep"),
        args.quick,
    )?;
    if cfg.benchmark.num_workers.is_list() && args.capacity.burndown == Some(0) {
        return Err(usage(
            "--burndown 0 with a --workers list: worker scaling is measured by burn-down",
        ));
    }
    Ok(opts)
}

pub async fn run(ctx: &Ctx, args: &SweepArgs) -> Result<()> {
    let opts = precheck(args, &ctx.cfg)?;
    let kinds = QueueKind::parse_list(&args.queue)?;
    for (key, flag) in [
        ("production_rate", "--rate"),
        ("production_duration", "--duration"),
    ] {
        if ctx.cfg.benchmark_set.contains(key) {
            eprintln!("qbench: warning: {flag} is not used by sweep: the search picks each step's rate, and --step-duration its length");
        }
    }
    let cfg = capacity::capacity_config(&ctx.cfg);
    let n = args.capacity.burndown.unwrap_or(100_000);
    ensure_writable(&opts.dir, "--out")?;
    let workers = cfg.benchmark.num_workers.clone();
    if workers.is_list() {
        for kind in kinds {
            burndown::scaling(ctx, kind, &cfg, workers.counts(), n, &opts.dir).await?;
        }
        return Ok(());
    }
    sweep_all(ctx, &kinds, &cfg, &opts, n).await
}
