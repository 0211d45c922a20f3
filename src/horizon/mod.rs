//! The horizon scenario: a steady open-loop load below capacity through three phases
//! (baseline, a transaction held open elsewhere, release and recovery), with the
//! holder and a once-a-second read of the server beside it. `qbench horizon` and
//! `run-suite --scenarios …,horizon` both run [`prepare`]'d tests through `workload`.

mod sidecar;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::config::Config;
use crate::error::UsageError;
use crate::format::capacity::{read_sweep, sweep_file};
use crate::format::files::OutputDir;
use crate::format::horizon::{HolderSpec, HorizonRecord, Phases, HORIZON_CSV, RELATIONS_CSV};
use crate::queue::{Queue, QueueKind};
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{Plan, Sidecar, StopRule, Tick};
use sidecar::{HorizonSidecar, Sampler};

/// What a horizon test runs.
#[derive(Debug, Clone)]
pub struct HorizonOptions {
    pub holder: HolderSpec,
    pub phases: Phases,
    /// The end-to-end goal a breach is judged against.
    pub slo_p99_ms: f64,
}

impl HorizonOptions {
    /// Checks the phases and the holder before anything starts.
    pub fn check(&self) -> Result<(), UsageError> {
        let p = &self.phases;
        for (name, v) in [
            ("--baseline", p.baseline_s),
            ("--hold", p.hold_s),
            ("--recovery", p.recovery_s),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(UsageError::new(format!(
                    "{name} {v} is invalid: a phase is a number of seconds of at least 0"
                )));
            }
        }
        if p.hold_s < 1.0 {
            return Err(UsageError::new(format!(
                "--hold {} is too short: hold the transaction for at least 1 s",
                p.hold_s
            )));
        }
        let h = &self.holder;
        if h.kind == crate::format::horizon::Holder::Analytics
            && !(h.query_s.is_finite() && h.query_s >= 1.0 && h.queries >= 1)
        {
            return Err(UsageError::new(format!(
                "--analytics-queries {} and --analytics-seconds {} are invalid: at least 1 query of at least 1 s",
                h.queries, h.query_s
            )));
        }
        Ok(())
    }
}

/// The rate a horizon test offers, and where it came from: `--rate` (or the config's
/// production_rate) when set, else half the MST of a sweep of the same design in the
/// same tier found under `dirs`, else the default rate.
pub fn rate(kind: QueueKind, cfg: &Config, dirs: &[PathBuf]) -> Result<(f64, String)> {
    let set = cfg.benchmark_set.contains("production_rate");
    if let (true, Some(r)) = (set, cfg.benchmark.rate_jobs_s()) {
        return Ok((r, "benchmark.production_rate (--rate)".into()));
    }
    let tier = kind.backend().tier(cfg.benchmark.durability).name();
    for dir in dirs {
        let path = dir.join(sweep_file(kind.name()));
        if !path.exists() {
            continue;
        }
        let sweep = read_sweep(&path)?;
        if let (Some(mst), true) = (sweep.result.mst_jobs_s, sweep.tier == tier) {
            let r = (mst / 2.0).round().max(1.0);
            return Ok((
                r,
                format!(
                    "half the MST@{} ms of {} ({mst:.0} jobs/s)",
                    sweep.goal.slo_p99_ms,
                    path.display()
                ),
            ));
        }
    }
    match cfg.benchmark.rate_jobs_s() {
        Some(r) => Ok((r, "the default production_rate (no sweep of this design found)".into())),
        None => Err(crate::error::usage(
            "the horizon scenario offers a steady rate below capacity: set --rate to a number of jobs/s, not max",
        )),
    }
}

/// Where a sweep of the designs in `out` may be: `qbench sweep --out` and
/// `run-suite --capacity` each put theirs in a `sweep` folder.
pub fn sweep_dirs(out: &Path, backend_dir: &Path) -> Vec<PathBuf> {
    vec![backend_dir.join("sweep"), out.join("sweep")]
}

/// A horizon test ready to run: its plan, the sidecar (holder and sampler) whose files
/// are already open in `out`, and the sender the test feeds it each second through.
pub struct Prepared {
    pub plan: Plan,
    pub sidecar: Box<dyn Sidecar>,
    pub ticks: tokio::sync::mpsc::UnboundedSender<Tick>,
}

pub async fn prepare(
    queue: &Arc<dyn Queue>,
    cfg: &Config,
    out: &OutputDir,
    opts: &HorizonOptions,
    (rate, rate_source): (f64, String),
) -> Result<Prepared> {
    let mut probe = queue.horizon().await?;
    let settings = probe.settings().await?;
    let b = &cfg.benchmark;
    let plan = Plan {
        produce: Some(ProducePlan::paced(
            Some(rate),
            Duration::from_secs_f64(opts.phases.total_s()),
            b,
        )),
        work: Some(WorkPlan::from_config(b)),
        stop: StopRule::Drain {
            timeout: Duration::from_secs_f64(b.drain_timeout_s),
        },
    };
    let sampler = Sampler {
        probe,
        holder: opts.holder,
        phases: opts.phases,
        rows: csv::Writer::from_writer(out.create(HORIZON_CSV)?),
        relations: csv::Writer::from_writer(out.create(RELATIONS_CSV)?),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(sampler.run(rx, stop.clone()));
    let record = HorizonRecord {
        holder: opts.holder,
        phases: opts.phases,
        rate_jobs_s: rate,
        rate_source,
        slo_p99_ms: opts.slo_p99_ms,
        settings,
        outcome: Default::default(),
    };
    Ok(Prepared {
        plan,
        sidecar: Box::new(HorizonSidecar { task, stop, record }),
        ticks: tx,
    })
}
