//! What every scenario's test shares: the warmup before the measured window (its numbers
//! thrown away, its losses not) and the measured window itself, at the suite's rate.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use super::scenarios::Test;
use crate::config::Benchmark;
use crate::error::Interrupted;
use crate::format::files::OutputDir;
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Env, Plan, Sidecar, Spec, StopRule};

/// The suite's plan at `rate` for `duration` seconds, draining after.
pub fn plan_at(cfg: &crate::config::Config, rate: f64, duration: f64) -> Plan {
    let b = &cfg.benchmark;
    Plan {
        produce: Some(ProducePlan::paced(
            Some(rate),
            Duration::from_secs_f64(duration),
            b,
        )),
        work: Some(WorkPlan::from_config(b)),
        stop: StopRule::Drain {
            timeout: Duration::from_secs_f64(b.drain_timeout_s),
        },
    }
}

/// Runs the warmup; returns what the manifest records of it and a warning if it left
/// jobs behind. Acknowledged jobs it lost are lost by the design: the test fails.
async fn warmup_run(spec: Spec, b: &Benchmark) -> Result<(serde_json::Value, Option<String>)> {
    let warm = workload::run(spec).await?;
    if warm.interrupted {
        return Err(Interrupted.into());
    }
    let s = &warm.summary;
    if let Some(lost) = s.lost.filter(|l| *l > 0) {
        return Err(crate::error::AuditFailed(format!(
            "the warmup lost {lost} acknowledged job(s) (first seqs {:?})",
            s.lost_seqs
        ))
        .into());
    }
    let warning = s.left_in_queue.filter(|l| *l > 0).map(|left| {
        let w = format!(
            "the warmup left {left} job(s) in the queue: the measured test completes them too, so its row is flagged and not compared (lower benchmark.warmup_rate)"
        );
        eprintln!("qbench: warning: {w}");
        w
    });
    let value = json!({
        "rate_jobs_s": b.warmup_rate,
        "duration_s": b.warmup_duration,
        "produced": s.produced,
        "completed": s.completed,
        "left_in_queue": s.left_in_queue,
        "lost": s.lost,
    });
    Ok((value, warning))
}

/// The warmup before a warm (or load) test, at `warmup_rate` for `warmup_duration`
/// seconds on the test's queue, which is not reset after: its outcome goes into
/// `t.extra`, a warning about jobs it left into the returned list.
pub async fn warm_up(t: &mut Test<'_>) -> Result<Vec<String>> {
    let b = t.cfg.benchmark.clone();
    if b.warmup_duration <= 0.0 {
        return Ok(vec![]);
    }
    let spec = Spec {
        id: t.id(
            format!("{}_warmup", t.planned.name),
            format!("{} warmup", t.label),
        ),
        plan: plan_at(&t.cfg, b.warmup_rate, b.warmup_duration),
        env: t.env(),
    };
    let (value, warning) = warmup_run(spec, &b).await?;
    t.extra.insert("warmup".into(), value);
    Ok(warning.into_iter().collect())
}

/// The measured test: the suite's rate for its duration, then the drain; its files in
/// `out`, `sidecar` beside it, `warnings` added to the suite's.
pub async fn window(
    t: Test<'_>,
    out: OutputDir,
    sidecar: Option<Box<dyn Sidecar>>,
    warnings: Vec<String>,
) -> Result<workload::Report> {
    let b = &t.cfg.benchmark;
    let Some(rate) = b.rate_jobs_s() else {
        out.discard();
        return Err(crate::error::usage(
            "run-suite offers a fixed rate: set benchmark.production_rate to a number of jobs/s, not max",
        ));
    };
    let env = t.env();
    let mut all = env.warnings.clone();
    all.extend(warnings);
    workload::run(Spec {
        id: t.id(t.planned.name.clone(), t.label.clone()),
        plan: plan_at(&t.cfg, rate, b.production_duration),
        env: Env {
            output: Some(out),
            extra: t.extra,
            sidecar,
            warnings: all,
            ..env
        },
    })
    .await
}

/// The interrupted marker a scenario returns when Ctrl-C stopped what came before its
/// measured window (its half-written files are removed).
pub fn interrupted(out: OutputDir) -> anyhow::Error {
    out.discard();
    Interrupted.into()
}
