//! The horizon scenario: a steady open-loop load below capacity through three phases
//! (baseline, a transaction held open elsewhere, release and recovery), with the
//! holder and a once-a-second read of the server beside it. `qbench horizon` and
//! `run-suite --scenarios …,horizon` both run [`prepare`]'d tests through `workload`.

mod rate;
mod sidecar;

pub use rate::rate;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use crate::config::Config;
use crate::error::UsageError;
use crate::format::files::OutputDir;
use crate::format::horizon::{HolderSpec, HorizonRecord, Phases, HORIZON_CSV, RELATIONS_CSV};
use crate::queue::Queue;
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
    /// `--rate` on the command line: else half the design's MST from a sweep, else the
    /// configured rate.
    pub rate: Option<f64>,
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
            && !(h.query_s.is_finite()
                && h.query_s >= 1.0
                && h.query_s <= p.hold_s
                && h.queries >= 1)
        {
            return Err(UsageError::new(format!(
                "--analytics-queries {} and --analytics-seconds {} are invalid: at least 1 query, each from 1 s to the --hold ({} s), so they overlap within it",
                h.queries, h.query_s, p.hold_s
            )));
        }
        Ok(())
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
    // Two probes: the holder's timing must not wait on the sampler's reads.
    let mut sampler_probe = queue.horizon().await?;
    let holder_probe = queue.horizon().await?;
    let settings = sampler_probe.settings().await?;
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
    let state: sidecar::Shared = Arc::new(std::sync::Mutex::new(sidecar::State::Idle));
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let sampler = Sampler {
        probe: sampler_probe,
        holder: opts.holder,
        phases: opts.phases,
        state: state.clone(),
        started: Some(started_tx),
        rows: csv::Writer::from_writer(out.create(HORIZON_CSV)?),
        relations: csv::Writer::from_writer(out.create(RELATIONS_CSV)?),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let sampler = tokio::spawn(sampler.run(rx, stop.clone()));
    let holder = tokio::spawn(sidecar::hold(
        holder_probe,
        opts.holder,
        opts.phases,
        started_rx,
        state,
        stop.clone(),
    ));
    let record = HorizonRecord {
        holder: opts.holder,
        phases: opts.phases,
        rate_jobs_s: rate,
        rate_source,
        slo_p99_ms: opts.slo_p99_ms,
        settings,
        outcome: Default::default(),
        sampler_error: None,
    };
    Ok(Prepared {
        plan,
        sidecar: Box::new(HorizonSidecar {
            sampler,
            holder,
            stop,
            record,
        }),
        ticks: tx,
    })
}
