//! One step of a sweep: an ordinary test (producer and workers in one process, exact
//! audit) at one offered rate for settle + window seconds, on a reset queue, then judged
//! from the files it wrote.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};

use super::judge::{judge, Asked};
use super::SweepOptions;
use crate::config::Config;
use crate::format::capacity::Step;
use crate::format::files::OutputDir;
use crate::format::manifest::Role;
use crate::format::{hlog, metrics};
use crate::queue::{self, QueueKind};
use crate::session::Session;
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Env, Identity, Plan, Spec, StopRule};

/// A step's folder, relative to the sweep file: `DESIGN/step_RATE`.
pub fn folder(kind: QueueKind, rate: f64) -> String {
    format!("{}/step_{rate:.0}", kind.name())
}

/// A failing step above capacity leaves a backlog: its drain is bounded (what is left
/// is censored at its age, so the verdict still sees it) so the search goes on.
fn drain_bound(cfg: &Config, opts: &SweepOptions) -> Duration {
    Duration::from_secs_f64(cfg.benchmark.drain_timeout_s.min(opts.step_s.max(30.0)))
}

/// Runs and judges the step at `rate`. `None` when Ctrl-C ended it.
pub async fn run(
    s: &Session,
    kind: QueueKind,
    cfg: &Config,
    opts: &SweepOptions,
    rate: f64,
    label: &str,
) -> Result<Option<Step>> {
    let rel = folder(kind, rate);
    let dir = opts.dir.join(&rel);
    let stem = format!("{}_step_{rate:.0}", kind.name());
    let out = OutputDir::prepare(&dir, &stem, true)?;
    let queue = queue::open(kind, cfg).await?;
    // Every step starts from an empty queue: a backlog left by a failed step would be
    // measured as this step's latency.
    queue.setup(true).await?;
    let b = &cfg.benchmark;
    let plan = Plan {
        produce: Some(ProducePlan::paced(
            Some(rate),
            Duration::from_secs_f64(opts.settle_s + opts.step_s),
            b,
        )),
        work: Some(WorkPlan::from_config(b)),
        stop: StopRule::Drain {
            timeout: drain_bound(cfg, opts),
        },
    };
    let mut extra = serde_json::Map::new();
    extra.insert(
        "sweep_step".into(),
        serde_json::json!({"rate_jobs_s": rate, "settle_s": opts.settle_s, "window_s": opts.step_s}),
    );
    let report = workload::run(Spec {
        id: Identity {
            scenario: Some("capacity".into()),
            smoke: opts.smoke,
            label: label.to_string(),
            ..Identity::new(stem.clone(), Role::Suite)
        },
        plan,
        env: Env {
            output: Some(out),
            extra,
            ..s.env(queue.clone(), cfg)
        },
    })
    .await?;
    if report.interrupted {
        return Ok(None);
    }
    let asked = Asked {
        rate,
        settle_s: opts.settle_s,
        window_s: opts.step_s,
        in_hand: f64::from(b.num_workers.get()) * f64::from(b.dequeue_batch),
    };
    judge_files(&dir, &stem, asked, opts, rel).map(Some)
}

/// Reads the step's metrics and latency log back and judges them.
fn judge_files(
    dir: &Path,
    stem: &str,
    asked: Asked,
    opts: &SweepOptions,
    rel: String,
) -> Result<Step> {
    let (lines, summary) = metrics::read_metrics(&dir.join(format!("{stem}_metrics.jsonl")))
        .context("reading the step's metrics back")?;
    let log = hlog::read(&dir.join(format!("{stem}_latency.hlog")))
        .context("reading the step's latency log back")?;
    Ok(judge(asked, &opts.goal, &lines, &summary, &log, rel))
}
