//! The rate a horizon test offers when `--rate` does not say: half the MST of a sweep of
//! this very workload; failing that, half the smaller of the design's ceiling (a sweep
//! with no simulated work) and the workers' own ceiling; failing that, the configured
//! rate. The output says which it used.

use std::path::PathBuf;

use anyhow::Result;

use crate::config::Config;
use crate::format::capacity::{read_sweep, sweep_file, SweepFile};
use crate::queue::Queue;
use crate::text::thousands;

/// `(rate, where it came from)`.
pub async fn rate(
    queue: &dyn Queue,
    cfg: &Config,
    explicit: Option<f64>,
    dirs: &[PathBuf],
) -> Result<(f64, String)> {
    if let Some(r) = explicit {
        return Ok((r, "--rate".into()));
    }
    let kind = queue.kind();
    let tier = match queue.server().info().await.ok().and_then(|i| i.durability) {
        Some(d) => d.tier().name().to_string(),
        None => kind
            .backend()
            .tier(cfg.benchmark.durability)
            .name()
            .to_string(),
    };
    let want = crate::workload::key::of(queue, cfg, &tier);
    let mut sweeps: Vec<(PathBuf, SweepFile)> = vec![];
    for dir in dirs {
        let path = dir.join(sweep_file(kind.name()));
        if path.exists() {
            sweeps.push((path.clone(), read_sweep(&path)?));
        }
    }
    let half = |x: f64| (x / 2.0).round().max(1.0);
    // This workload's own MST.
    for (path, s) in &sweeps {
        let same = s
            .workload
            .as_ref()
            .is_some_and(|w| w.differences(&want).is_empty());
        if let (true, Some(mst)) = (same, s.result.mst_jobs_s) {
            return Ok((
                half(mst),
                format!(
                    "half the MST@{} ms of this workload, {} jobs/s ({})",
                    s.goal.slo_p99_ms,
                    thousands(mst),
                    path.display()
                ),
            ));
        }
    }
    // The design's ceiling and the workers' own, whichever is smaller.
    let ceiling = sweeps.iter().find_map(|(path, s)| {
        let w = s.workload.as_ref()?;
        let same_design = w.queue == want.queue
            && w.options == want.options
            && w.tier == want.tier
            && w.wakeup == want.wakeup;
        (same_design && w.is_design_ceiling())
            .then_some(())
            .and(s.result.mst_jobs_s)
            .map(|m| {
                (
                    m,
                    format!(
                        "the design's ceiling, {} jobs/s ({})",
                        thousands(m),
                        path.display()
                    ),
                )
            })
    });
    let nominal = want.nominal_ceiling().map(|n| {
        (
            n,
            format!(
                "the workers' ceiling, {} jobs/s ({} workers × {} ms)",
                thousands(n),
                want.workers.unwrap_or(0),
                want.processing_ms.unwrap_or(0.0)
            ),
        )
    });
    let lowest = [ceiling, nominal]
        .into_iter()
        .flatten()
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((x, why)) = lowest {
        return Ok((
            half(x),
            format!("half {why}: no sweep of this workload found"),
        ));
    }
    match cfg.benchmark.rate_jobs_s() {
        Some(r) => Ok((
            r,
            "benchmark.production_rate: no sweep of this design and no simulated work to bound it".into(),
        )),
        None => Err(crate::error::usage(
            "the horizon scenario offers a steady rate below capacity: set --rate to a number of jobs/s, not max",
        )),
    }
}
