//! Burn-down: pre-fill a reset queue with N jobs, then drain it with W workers and
//! count jobs/s from the first claim to the last completion. Closed loop (there is no
//! arrival process, so there is no queueing latency to report), the way River's
//! `river bench` and Oban's published figures are measured; and per worker count, the
//! points the Universal Scalability Law is fitted to.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::clock::rfc3339;
use crate::config::Config;
use crate::error::Interrupted;
use crate::format::capacity::{
    self, Burndown, ScalingFile, ScalingPoint, BURNDOWN_FORMAT, SCALING_FORMAT,
};
use crate::format::files::OutputDir;
use crate::format::manifest::Role;
use crate::format::FORMAT_VERSION;
use crate::queue::{self, QueueKind};
use crate::session::Session;
use crate::text::thousands;
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Env, Identity, Plan, Spec, StopRule};

/// The drain ends once the queue has been empty this long with no job in hand.
const IDLE: Duration = Duration::from_secs(1);

/// Fills the reset queue with `n` jobs, as fast as the server takes them.
async fn prefill(s: &Session, kind: QueueKind, cfg: &Config, n: u64) -> Result<()> {
    let queue = queue::open(kind, cfg).await?;
    queue.setup(true).await?;
    let b = &cfg.benchmark;
    let report = workload::run(Spec {
        id: Identity::new(format!("{kind}_prefill"), Role::Produce),
        plan: Plan {
            produce: Some(ProducePlan {
                rate: None,
                count: Some(n),
                duration: None,
                connections: b.producer_connections as usize,
                max_batch: ProducePlan::MAX_BATCH,
            }),
            work: None,
            stop: StopRule::ProducerDone,
        },
        env: Env::new(queue, cfg.clone(), s.shutdown.clone()),
    })
    .await?;
    if report.interrupted {
        return Err(Interrupted.into());
    }
    let produced = report.summary.produced.unwrap_or(0);
    if produced != n {
        anyhow::bail!("pre-filling {kind} stored {produced} of {n} jobs; the burn-down would measure a different queue (see the warnings above)");
    }
    Ok(())
}

/// Pre-fills `n` jobs, drains them with the config's workers into `dir/name_*` (no
/// files without a `dir`), and returns what was measured (`files` relative to `rel_to`).
pub async fn run(
    s: &Session,
    kind: QueueKind,
    cfg: &Config,
    n: u64,
    dir: Option<&Path>,
    name: &str,
    rel_to: &Path,
) -> Result<Burndown> {
    let out = dir.map(|d| OutputDir::prepare(d, name, true)).transpose()?;
    prefill(s, kind, cfg, n).await?;
    let queue = queue::open(kind, cfg).await?;
    let b = &cfg.benchmark;
    let workers = b.num_workers.get();
    let mut extra = serde_json::Map::new();
    extra.insert(
        "burndown".into(),
        serde_json::json!({"prefilled": n, "closed_loop": true}),
    );
    let report = workload::run(Spec {
        id: Identity {
            scenario: Some("burndown".into()),
            label: format!(
                "burn-down {kind}: {} jobs, {workers} workers",
                thousands(n as f64)
            ),
            ..Identity::new(name, Role::Work)
        },
        plan: Plan {
            produce: None,
            work: Some(WorkPlan::from_config(b)),
            stop: StopRule::UntilIdle {
                idle: IDLE,
                max: None,
            },
        },
        env: Env {
            output: out,
            extra,
            ..s.env(queue.clone(), cfg)
        },
    })
    .await?;
    if report.interrupted {
        return Err(Interrupted.into());
    }
    let s = &report.summary;
    let completed = s.completed.unwrap_or(0);
    let left = s.left_in_queue.unwrap_or(0);
    let duplicated = s.duplicated.unwrap_or(0);
    // The queue was reset and filled by this process alone: every job once, none left.
    let audit = if completed == n && left == 0 && duplicated == 0 {
        "exact".to_string()
    } else {
        format!("{completed} of {n} completed, {left} left, {duplicated} duplicated")
    };
    let seconds = s
        .window_start_epoch_s
        .zip(s.window_end_epoch_s)
        .map_or(0.0, |(a, b)| b - a);
    let durability = queue.server().info().await.ok().and_then(|i| i.durability);
    Ok(Burndown {
        format: BURNDOWN_FORMAT.into(),
        version: FORMAT_VERSION,
        queue: kind.name().into(),
        backend: kind.backend().name().into(),
        tier: durability.map_or("unknown".into(), |d| d.tier().name().into()),
        host: sysinfo::System::host_name().unwrap_or_default(),
        started_at: rfc3339(report.started_at),
        closed_loop: true,
        workers,
        processing_ms: b.job_processing_time_ms,
        prefilled: n,
        completed,
        left_in_queue: left,
        duplicated,
        seconds,
        jobs_s: s.throughput_jobs_s.unwrap_or(0.0),
        files: dir.map_or(String::new(), |d| {
            d.strip_prefix(rel_to).unwrap_or(d).display().to_string()
        }),
        audit,
    })
}

/// How many jobs a burn-down pre-fills: a number given, or enough for about `seconds`
/// at a measured rate (the sweep's), so a slow workload does not drain 100,000 jobs
/// for a quarter of an hour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    Jobs(u64),
    Seconds { seconds: f64, fallback: u64 },
}

/// Fewer jobs than this drain too fast for a rate to mean much.
const MIN_JOBS: u64 = 1_000;

impl Size {
    /// The default: about 60 s (10 s with --quick), 100,000 jobs (20,000) when no rate
    /// is known.
    pub fn default_for(quick: bool) -> Size {
        if quick {
            Size::Seconds {
                seconds: 10.0,
                fallback: 20_000,
            }
        } else {
            Size::Seconds {
                seconds: 60.0,
                fallback: 100_000,
            }
        }
    }

    /// The jobs to pre-fill, given the rate measured so far (jobs/s), if any.
    pub fn jobs(self, rate: Option<f64>) -> u64 {
        match (self, rate.filter(|r| *r > 0.0)) {
            (Size::Jobs(n), _) => n,
            (Size::Seconds { seconds, .. }, Some(r)) => ((r * seconds).ceil() as u64).max(MIN_JOBS),
            (Size::Seconds { fallback, .. }, None) => fallback,
        }
    }
}

/// `DIR/DESIGN_burndown.json` with its test under `DIR/DESIGN/burndown/`.
pub async fn write_one(
    s: &Session,
    kind: QueueKind,
    cfg: &Config,
    n: u64,
    dir: &Path,
) -> Result<Burndown> {
    let sub = dir.join(kind.name()).join("burndown");
    let name = format!("{}_burndown", kind.name());
    let bd = run(s, kind, cfg, n, Some(&sub), &name, dir).await?;
    capacity::write(&bd, &dir.join(capacity::burndown_file(kind.name())))?;
    println!("{}", describe(&bd));
    Ok(bd)
}

/// The burn-down in one line, labelled closed loop.
pub fn describe(bd: &Burndown) -> String {
    format!(
        "{} burn-down (closed loop: a pre-filled queue, no arrivals): {} jobs drained by {} workers × {} ms in {:.2} s: {} jobs/s; audit {}",
        bd.queue,
        thousands(bd.prefilled as f64),
        bd.workers,
        bd.processing_ms,
        bd.seconds,
        thousands(bd.jobs_s),
        bd.audit
    )
}

/// Burn-down at each worker count, then the USL fit: `DIR/DESIGN_scaling.json`,
/// rewritten after each count.
pub async fn scaling(
    s: &Session,
    kind: QueueKind,
    cfg: &Config,
    counts: &[u32],
    n: u64,
    dir: &Path,
) -> Result<ScalingFile> {
    let path = dir.join(capacity::scaling_file(kind.name()));
    let mut file = ScalingFile {
        format: SCALING_FORMAT.into(),
        version: FORMAT_VERSION,
        queue: kind.name().into(),
        backend: kind.backend().name().into(),
        tier: String::new(),
        host: sysinfo::System::host_name().unwrap_or_default(),
        closed_loop: true,
        processing_ms: cfg.benchmark.job_processing_time_ms,
        prefilled: n,
        points: vec![],
        usl: None,
    };
    for &w in counts {
        let mut c = cfg.clone();
        c.benchmark.num_workers = w.into();
        let sub = dir.join(kind.name()).join(format!("workers_{w}"));
        let name = format!("{}_workers_{w}", kind.name());
        let bd = run(s, kind, &c, n, Some(&sub), &name, dir).await?;
        println!(
            "{kind} scaling: {w} worker(s): {} jobs/s (burn-down of {} jobs, audit {})",
            thousands(bd.jobs_s),
            thousands(n as f64),
            bd.audit
        );
        file.tier = bd.tier.clone();
        file.points.push(ScalingPoint {
            workers: w,
            jobs_s: bd.jobs_s,
            files: bd.files,
            audit: bd.audit,
        });
        let pts: Vec<(f64, f64)> = file
            .points
            .iter()
            .filter(|p| p.audit == "exact")
            .map(|p| (f64::from(p.workers), p.jobs_s))
            .collect();
        file.usl = crate::stats::usl::fit(&pts);
        capacity::write(&file, &path).context("writing the scaling file")?;
    }
    if let Some(f) = &file.usl {
        println!(
            "{kind} USL fit: λ {:.0} jobs/s per worker, contention σ {:.4}, coherency κ {:.6}, peak {} (R² {:.3})",
            f.lambda,
            f.sigma,
            f.kappa,
            match (f.peak_workers, f.peak_jobs_s) {
                (Some(n), Some(x)) if f.peak_extrapolated => format!(
                    "{n:.1} workers at {} jobs/s, projected beyond the largest count measured",
                    thousands(x)
                ),
                (Some(n), Some(x)) => format!("{n:.1} workers at {} jobs/s", thousands(x)),
                _ => "none (no retrograde within the fit)".into(),
            },
            f.r2
        );
    }
    Ok(file)
}
