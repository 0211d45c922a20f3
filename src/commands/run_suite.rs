//! `qbench run-suite`: the seed's matrix, resumable and interruptible.

use anyhow::Result;

use crate::cli::{BackendArg, RunSuiteArgs};
use crate::error::AuditFailed;
use crate::queue::Backend;
use crate::suite::crash::Target;
use crate::suite::{self, Outcome, Scenario, SuiteOptions};
use crate::Ctx;
use crate::{analyze, graph};

pub async fn run(ctx: &mut Ctx, args: &RunSuiteArgs) -> Result<()> {
    let backends = match args.backend {
        BackendArg::Pg => vec![Backend::Postgresql],
        BackendArg::Valkey => vec![Backend::Valkey],
        BackendArg::All => Backend::ALL.to_vec(),
    };
    let scenarios = Scenario::parse_list(&args.scenarios)?;
    let wakeups = ctx.cfg.benchmark.wakeup.clone();
    let matrix = suite::plan::Matrix {
        backends: &backends,
        queues: args.queues.as_deref(),
        scenarios: &scenarios,
        wakeups: &wakeups,
        repeat: args.repeat,
        label: args.label.as_deref(),
        holder: Some(args.horizon.holder.name()),
    };
    let tests = suite::plan(&matrix, &args.out)?;
    if args.capacity {
        // Bad capacity flags are refused before the matrix runs, not after it.
        let dir = args.out.join("sweep");
        crate::commands::sweep::options(&args.capacity_args, args.quick, &dir, args.quick)?;
    }
    if args.quick {
        // Smoke runs: every test short; the manifests say so (smoke = true).
        let b = &mut ctx.cfg.benchmark;
        b.production_duration = b.production_duration.min(5.0);
        b.warmup_duration = b.warmup_duration.min(3.0);
        b.drain_timeout_s = b.drain_timeout_s.min(20.0);
    }
    let opts = SuiteOptions {
        backends,
        tests,
        out: args.out.clone(),
        quick: args.quick,
        force: args.force,
        horizon: crate::commands::horizon::suite_options(args, &ctx.global)?,
    };
    let outcomes = suite::run(ctx, &opts).await?;
    let crash_lost = crash_trials(ctx, &opts, args.crash_trials).await?;
    if args.capacity {
        capacity(ctx, &opts, args).await?;
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
    report(&opts);
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
async fn crash_trials(ctx: &mut Ctx, opts: &SuiteOptions, n: u32) -> Result<Option<String>> {
    if n == 0 {
        return Ok(None);
    }
    let mut targets: Vec<Target> = vec![];
    for t in &opts.tests {
        if !targets.iter().any(|x| x.kind == t.kind) {
            targets.push(Target {
                kind: t.kind,
                cfg: t.config(&ctx.cfg),
                dir: suite::backend_dir(&opts.out, t.kind.backend()),
            });
        }
    }
    let files = crate::suite::crash::run_all(ctx, targets, n).await?;
    Ok(crate::suite::crash::strict_broken(&files))
}

/// `--capacity`: each design's sweep and burn-down into `DIR/<backend>/sweep/`, after the
/// matrix (a design already swept in a run of the same kind is skipped unless --force).
async fn capacity(ctx: &Ctx, opts: &SuiteOptions, args: &RunSuiteArgs) -> Result<()> {
    let mut kinds: Vec<crate::queue::QueueKind> = vec![];
    for t in &opts.tests {
        if !kinds.contains(&t.kind) {
            kinds.push(t.kind);
        }
    }
    let n = args
        .capacity_args
        .burndown
        .unwrap_or(if args.quick { 20_000 } else { 100_000 });
    for kind in kinds {
        let dir = suite::backend_dir(&opts.out, kind.backend()).join("sweep");
        let done = crate::format::capacity::read_sweep(
            &dir.join(crate::format::capacity::sweep_file(kind.name())),
        )
        .is_ok_and(|f| {
            f.smoke == args.quick
                && f.result.outcome != crate::format::capacity::Outcome::Incomplete
        });
        if done && !args.force {
            eprintln!("qbench: sweep {kind}: already complete, skipped (--force re-runs it)");
            continue;
        }
        let o = crate::commands::sweep::options(&args.capacity_args, args.quick, &dir, args.quick)?;
        // The suite's wakeup list runs the sweep in the first mode.
        let mut cfg = crate::capacity::capacity_config(&ctx.cfg);
        cfg.benchmark.wakeup = crate::config::Wakeups::one(cfg.benchmark.wakeup.modes()[0]);
        crate::commands::sweep::sweep_all(ctx, &[kind], &cfg, &o, n).await?;
    }
    Ok(())
}

/// From nothing to charts: analyze the suite's own folders and draw the six charts.
/// A failure here is reported, not allowed to hide the suite's own result.
fn report(opts: &SuiteOptions) {
    let folders: Vec<std::path::PathBuf> = opts
        .backends
        .iter()
        .map(|b| suite::backend_dir(&opts.out, *b))
        .filter(|d| {
            std::fs::read_dir(d).is_ok_and(|mut e| {
                e.any(|f| {
                    f.is_ok_and(|f| f.file_name().to_string_lossy().ends_with("_manifest.json"))
                })
            })
        })
        .collect();
    let analysis_dir = opts.out.join("analysis");
    let graphs_dir = opts.out.join("graphs");
    let result = (|| -> Result<()> {
        let analysis = analyze::analyze(&folders)?;
        let (csv, _) = analyze::write(&analysis, &analysis_dir)?;
        println!();
        print!("{}", analyze::report::render(&analysis));
        let data = graph::Data::from_rows(analysis.tests.clone(), None)?;
        graph::draw_all(&data, &graphs_dir)?;
        let capacity = graph::capacity::CapacityData {
            steps: analysis.capacity_steps.clone(),
            scaling: analysis.scaling.clone(),
        };
        graph::capacity::draw(&capacity, &graphs_dir)?;
        let timelines = graph::timeline::draw_all(&analysis.tests, &graphs_dir)?;
        for f in &timelines.failed {
            eprintln!("qbench: warning: no timeline: {f}");
        }
        let page = crate::html_report::write(
            &analysis_dir.join("summary.json"),
            &graphs_dir,
            &opts.out.join("report.html"),
        )?;
        println!("\nResults: {}", opts.out.display());
        println!("Report:  {}", page.display());
        println!("Summary: {}", csv.display());
        println!(
            "Charts:  {}/*.png (300 DPI) and *.svg",
            graphs_dir.display()
        );
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!(
            "qbench: warning: the suite's results are written, but analyzing them failed: {}",
            crate::error::one_line(&e, &[])
        );
    }
}
