//! `qbench horizon`: the horizon scenario for the designs named, through the suite (the
//! same tests `run-suite --scenarios horizon` runs, into the same folders), then a line
//! per test of what the hold did, read back from its files.

use anyhow::Result;

use crate::cli::{GlobalArgs, HorizonArgs, HorizonCmdArgs, RunSuiteArgs};
use crate::config::Config;
use crate::error::UsageError;
use crate::format::horizon::{HolderSpec, Phases};
use crate::horizon::HorizonOptions;
use crate::queue::QueueKind;
use crate::suite::{self, Outcome, Scenario, SuiteOptions};
use crate::Ctx;

/// The schedule and rate: the flags, else the defaults (`--quick`'s shorter ones). With
/// `total_s` (the command's `--duration`), the recovery is what the run leaves after
/// the baseline and the hold.
fn options_at(
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
fn flag_rate(global: &GlobalArgs) -> Option<f64> {
    match global.benchmark.production_rate {
        Some(crate::config::Rate::Fixed(r)) => Some(r),
        _ => None,
    }
}

/// `qbench horizon`'s options, checked before any server starts. `--duration` on the
/// command line is the whole run: the recovery is what it leaves.
pub fn options(a: &HorizonCmdArgs, cfg: &Config, global: &GlobalArgs) -> Result<HorizonOptions> {
    QueueKind::parse_list(&a.queue)?;
    cfg.benchmark.wakeup.single()?;
    let total = global.benchmark.production_duration;
    Ok(options_at(
        &a.horizon,
        a.quick,
        a.slo_p99_ms,
        total,
        flag_rate(global),
    )?)
}

/// run-suite's horizon options when its scenarios include horizon (the suite's
/// `--duration` is each other test's length, so it does not shape the phases).
pub fn suite_options(a: &RunSuiteArgs, global: &GlobalArgs) -> Result<Option<HorizonOptions>> {
    let scenarios = Scenario::parse_list(&a.scenarios)?;
    if !scenarios.contains(&Scenario::Horizon) {
        return Ok(None);
    }
    Ok(Some(options_at(
        &a.horizon,
        a.quick,
        a.capacity_args.slo_p99_ms,
        None,
        flag_rate(global),
    )?))
}

pub async fn run(ctx: &mut Ctx, args: &HorizonCmdArgs) -> Result<()> {
    let opts = options(args, &ctx.cfg, &ctx.global)?;
    let kinds = QueueKind::parse_list(&args.queue)?;
    let mut backends = vec![];
    for k in &kinds {
        if !backends.contains(&k.backend()) {
            backends.push(k.backend());
        }
    }
    let names: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
    let names = names.join(",");
    let wakeups = ctx.cfg.benchmark.wakeup.clone();
    let matrix = suite::plan::Matrix {
        backends: &backends,
        queues: Some(&names),
        scenarios: &[Scenario::Horizon],
        wakeups: &wakeups,
        repeat: 1,
        label: None,
        holder: Some(args.horizon.holder.name()),
    };
    let tests = suite::plan(&matrix, &args.out)?;
    let suite_opts = SuiteOptions {
        backends,
        tests,
        out: args.out.clone(),
        quick: args.quick,
        force: args.force,
        horizon: Some(opts),
    };
    let outcomes = suite::run(ctx, &suite_opts).await?;
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(t, o)| match o {
            Outcome::Failed(e) => Some(format!("{}: {e}", t.name)),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        return Err(anyhow::anyhow!(
            "horizon test(s) failed: {}",
            failed.join("; ")
        ));
    }
    Ok(())
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
        let p = options_at(&args(), false, 100.0, None, None)
            .expect("defaults")
            .phases;
        assert_eq!((p.baseline_s, p.hold_s, p.recovery_s), (60.0, 600.0, 300.0));
        let p = options_at(&args(), true, 100.0, None, None)
            .expect("quick")
            .phases;
        assert_eq!((p.baseline_s, p.hold_s, p.recovery_s), (15.0, 30.0, 30.0));
        // --duration: the recovery is what is left after the baseline and the hold.
        let p = options_at(&args(), false, 100.0, Some(1000.0), None)
            .expect("total")
            .phases;
        assert_eq!(p.recovery_s, 340.0);
        let e = options_at(&args(), false, 100.0, Some(500.0), None).expect_err("too short");
        assert!(e.to_string().contains("longer than the run"), "{e}");
        let mut a = args();
        a.recovery = Some(10.0);
        let e = options_at(&a, false, 100.0, Some(500.0), None).expect_err("disagrees");
        assert!(e.to_string().contains("disagrees"), "{e}");
        a.recovery = Some(-1.0);
        let e = options_at(&a, false, 100.0, None, None).expect_err("negative");
        assert!(e.to_string().contains("--recovery"), "{e}");
        let mut a = args();
        a.holder = Holder::Analytics;
        a.analytics_seconds = Some(0.5);
        assert!(options_at(&a, false, 100.0, None, None).is_err());
    }
}
