//! `qbench run-suite`: the seed's matrix, resumable and interruptible, then (as asked)
//! crash trials and each design's capacity, and the ending every command shares.

use anyhow::Result;

use super::ending::Show;
use crate::capacity::SweepOptions;
use crate::cli::{BackendArg, GlobalArgs, RunSuiteArgs};
use crate::config::Config;
use crate::error::AuditFailed;
use crate::queue::{Backend, QueueKind};
use crate::session::Session;
use crate::suite::crash::Target;
use crate::suite::{self, Outcome, Scenario, SuiteOptions};

/// A suite whose flags were checked: its tests, the config they run with, and what
/// comes after the matrix.
pub struct Plan {
    backends: Vec<Backend>,
    tests: Vec<suite::Planned>,
    horizon: Option<crate::horizon::HorizonOptions>,
    /// `--capacity`: the search and goal (each design's folder is set when it runs).
    capacity: Option<SweepOptions>,
    args: RunSuiteArgs,
}

impl Plan {
    /// The suite on the session's servers; `--quick` shortens every test (the
    /// manifests say smoke = true).
    fn suite(&self, cfg: &Config) -> SuiteOptions {
        let mut cfg = cfg.clone();
        if self.args.quick {
            let b = &mut cfg.benchmark;
            b.production_duration = b.production_duration.min(5.0);
            b.warmup_duration = b.warmup_duration.min(3.0);
            b.drain_timeout_s = b.drain_timeout_s.min(20.0);
        }
        SuiteOptions {
            cfg,
            backends: self.backends.clone(),
            tests: self.tests.clone(),
            out: self.args.out.clone(),
            quick: self.args.quick,
            force: self.args.force,
            horizon: self.horizon.clone(),
        }
    }
}

pub fn check(args: RunSuiteArgs, cfg: &Config, global: &GlobalArgs) -> Result<Plan> {
    super::servers((), cfg, global)?;
    if args.crash_trials > 0 {
        super::crashes_allowed(global)?;
    }
    let backends = match args.backend {
        BackendArg::Pg => vec![Backend::Postgresql],
        BackendArg::Valkey => vec![Backend::Valkey],
        BackendArg::All => Backend::ALL.to_vec(),
    };
    let scenarios = Scenario::parse_list(&args.scenarios)?;
    let matrix = suite::plan::Matrix {
        backends: &backends,
        queues: args.queues.as_deref(),
        scenarios: &scenarios,
        wakeups: &cfg.benchmark.wakeup,
        repeat: args.repeat,
        label: args.label.as_deref(),
        holder: Some(args.horizon.holder.name()),
    };
    let tests = suite::plan(&matrix, &args.out)?;
    // Bad capacity flags are refused before the matrix runs, not after it.
    let capacity = args
        .capacity
        .then(|| super::options::sweep(&args.capacity_args, args.quick, &args.out))
        .transpose()?;
    let horizon = scenarios
        .contains(&Scenario::Horizon)
        .then(|| {
            super::options::horizon(
                &args.horizon,
                args.quick,
                args.capacity_args.slo_p99_ms,
                None,
                super::options::flag_rate(global),
            )
        })
        .transpose()?;
    Ok(Plan {
        backends,
        tests,
        horizon,
        capacity,
        args,
    })
}

pub async fn run(s: &Session, p: Plan) -> Result<()> {
    let suite = p.suite(&s.cfg);
    let outcomes = suite::run(s, &suite).await?;
    let crash_lost = crash_trials(s, &suite, p.args.crash_trials).await?;
    if let Some(opts) = &p.capacity {
        capacity(s, &suite, opts, &p.args).await?;
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Failed(_)))
        .map(|(t, _)| t.name.as_str())
        .collect();
    let lost: u64 = outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            Outcome::Ran(r) => r.summary.lost,
            _ => None,
        })
        .sum();
    super::ending::report(s, &p.args.out, &p.args.end, Show::Tables);
    if !failed.is_empty() {
        return Err(anyhow::anyhow!(
            "{} test(s) failed: {}",
            failed.len(),
            failed.join(", ")
        ));
    }
    if lost > 0 {
        return Err(
            AuditFailed(format!("audit failed: {lost} job(s) lost across the suite")).into(),
        );
    }
    if let Some(broken) = crash_lost {
        return Err(AuditFailed(broken).into());
    }
    Ok(())
}

/// `--crash-trials N`: each design's server crashed N times into its backend's folder
/// (`DESIGN_TIER_crash.json`, read by analyze). Returns what broke the strict tier's
/// promise, if anything did.
async fn crash_trials(s: &Session, opts: &SuiteOptions, n: u32) -> Result<Option<String>> {
    if n == 0 {
        return Ok(None);
    }
    let mut targets: Vec<Target> = vec![];
    for t in &opts.tests {
        if !targets.iter().any(|x| x.kind == t.kind) {
            targets.push(Target {
                kind: t.kind,
                cfg: t.config(&opts.cfg),
                dir: suite::backend_dir(&opts.out, t.kind.backend()),
            });
        }
    }
    let files = crate::suite::crash::run_all(s, targets, n).await?;
    Ok(crate::suite::crash::strict_broken(&files))
}

/// `--capacity`: each design's sweep of the suite's workload and its burn-down into
/// `DIR/<backend>/sweep/`, after the matrix (a sweep of this very workload, of the same
/// kind of run, is reused unless --force).
async fn capacity(
    s: &Session,
    suite: &SuiteOptions,
    opts: &SweepOptions,
    args: &RunSuiteArgs,
) -> Result<()> {
    let mut kinds: Vec<QueueKind> = vec![];
    for t in &suite.tests {
        if !kinds.contains(&t.kind) {
            kinds.push(t.kind);
        }
    }
    let n = match args.capacity_args.burndown {
        Some(0) => None,
        Some(n) => Some(crate::capacity::burndown::Size::Jobs(n)),
        None => Some(crate::capacity::burndown::Size::default_for(args.quick)),
    };
    for kind in kinds {
        let dir = suite::backend_dir(&suite.out, kind.backend()).join("sweep");
        // The suite's own workload (its workers and processing time), so the MST
        // describes the tests it ran beside; the suite's wakeup list runs it in the
        // first mode. (`qbench sweep` measures the design's ceiling, with no work.)
        let mut cfg = suite.cfg.clone();
        cfg.benchmark.wakeup = crate::config::Wakeups::one(cfg.benchmark.wakeup.modes()[0]);
        let done = crate::capacity::already_swept(kind, &cfg, opts, &dir).await?;
        if done && !args.force {
            eprintln!("qbench: sweep {kind}: this workload's sweep is already complete, skipped (--force re-runs it)");
            continue;
        }
        let o = SweepOptions {
            dir,
            ..opts.clone()
        };
        crate::capacity::sweep_all(s, &[kind], &cfg, &o, n).await?;
    }
    Ok(())
}
