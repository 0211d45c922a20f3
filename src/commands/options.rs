//! What the flag groups several commands share turn into: a capacity measurement's search
//! and goal (`sweep`, `run-suite --capacity`), and the horizon scenario's schedule
//! (`horizon`, `run-suite --scenarios …,horizon`). Checked here once, before any server
//! starts, so a composite command passes the runners options, never flags.

use std::path::Path;

use crate::capacity::search::SearchPlan;
use crate::capacity::{SweepOptions, MIN_WINDOW_JOBS};
use crate::cli::{CapacityArgs, GlobalArgs, HorizonArgs};
use crate::error::UsageError;
use crate::format::capacity::Goal;
use crate::format::horizon::{HolderSpec, Phases};
use crate::horizon::HorizonOptions;

/// A step's window shorter than this decides nothing: wrk2 warns that runs under
/// 10–20 s say little, and a knee needs time to show as a growing queue.
pub const MIN_STEP_S: f64 = 10.0;

/// The search and the goal from the capacity flags (`--quick`: short steps, a smoke run).
pub fn sweep(args: &CapacityArgs, quick: bool, dir: &Path) -> Result<SweepOptions, UsageError> {
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
        smoke: quick,
    })
}

/// The horizon scenario's schedule and rate: the flags, else the defaults (`--quick`'s
/// shorter ones). With `total_s` (`qbench horizon`'s `--duration`), the recovery is what
/// the run leaves after the baseline and the hold.
pub fn horizon(
    a: &HorizonArgs,
    quick: bool,
    slo_p99_ms: f64,
    total_s: Option<f64>,
    rate: Option<f64>,
) -> Result<HorizonOptions, UsageError> {
    let (baseline, hold, recovery, query) = if quick {
        (15.0, 30.0, 30.0, 10.0)
    } else {
        (60.0, 600.0, 300.0, 120.0)
    };
    let baseline_s = a.baseline.unwrap_or(baseline);
    let hold_s = a.hold.unwrap_or(hold);
    let recovery_s = match (a.recovery, total_s) {
        (Some(r), Some(t)) if (baseline_s + hold_s + r - t).abs() > 1e-9 => {
            return Err(UsageError::new(format!(
                "--duration {t} disagrees with --baseline {baseline_s} + --hold {hold_s} + --recovery {r}: give one or the other"
            )))
        }
        (Some(r), _) => r,
        (None, Some(t)) if baseline_s + hold_s > t => {
            return Err(UsageError::new(format!(
                "--hold {hold_s} is longer than the run: --duration {t} leaves {} s after --baseline {baseline_s}",
                (t - baseline_s).max(0.0)
            )))
        }
        (None, Some(t)) => t - baseline_s - hold_s,
        (None, None) => recovery,
    };
    let opts = HorizonOptions {
        holder: HolderSpec {
            kind: a.holder,
            queries: a.analytics_queries,
            query_s: a.analytics_seconds.unwrap_or(query),
        },
        phases: Phases {
            baseline_s,
            hold_s,
            recovery_s,
        },
        slo_p99_ms,
        rate,
    };
    opts.check()?;
    Ok(opts)
}

/// `--rate` as given on the command line (a config file's rate is only the fallback).
pub fn flag_rate(global: &GlobalArgs) -> Option<f64> {
    match global.benchmark.production_rate {
        Some(crate::config::Rate::Fixed(r)) => Some(r),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::horizon::Holder;

    fn args() -> HorizonArgs {
        HorizonArgs {
            holder: Holder::Xid,
            baseline: None,
            hold: None,
            recovery: None,
            analytics_queries: 3,
            analytics_seconds: None,
        }
    }

    #[test]
    fn defaults_quick_and_duration_shape_the_phases() {
        let p = horizon(&args(), false, 100.0, None, None)
            .expect("defaults")
            .phases;
        assert_eq!((p.baseline_s, p.hold_s, p.recovery_s), (60.0, 600.0, 300.0));
        let p = horizon(&args(), true, 100.0, None, None)
            .expect("quick")
            .phases;
        assert_eq!((p.baseline_s, p.hold_s, p.recovery_s), (15.0, 30.0, 30.0));
        // --duration: the recovery is what is left after the baseline and the hold.
        let p = horizon(&args(), false, 100.0, Some(1000.0), None)
            .expect("total")
            .phases;
        assert_eq!(p.recovery_s, 340.0);
        let e = horizon(&args(), false, 100.0, Some(500.0), None).expect_err("too short");
        assert!(e.to_string().contains("longer than the run"), "{e}");
        let mut a = args();
        a.recovery = Some(10.0);
        let e = horizon(&a, false, 100.0, Some(500.0), None).expect_err("disagrees");
        assert!(e.to_string().contains("disagrees"), "{e}");
        a.recovery = Some(-1.0);
        let e = horizon(&a, false, 100.0, None, None).expect_err("negative");
        assert!(e.to_string().contains("--recovery"), "{e}");
        let mut a = args();
        a.holder = Holder::Analytics;
        a.analytics_seconds = Some(0.5);
        assert!(horizon(&a, false, 100.0, None, None).is_err());
    }
}
