//! Repeated runs (`run-suite --repeat N`) and labelled variants (`--label`): each
//! figure's median across runs with a 95 % bootstrap interval, and outlier runs flagged.
//! The run is the unit: every figure here takes one value per run; merged-histogram
//! percentiles stay per run. The comparisons between variants are the verdict's.

use std::collections::BTreeMap;

use anyhow::Result;

use super::load::Folder;
use crate::error::UsageError;
use crate::format::summary::{groups, Row};
use crate::stats::confidence::{self, Estimate};

type Getter = fn(&Row) -> Option<f64>;

/// The figures pooled across runs, with the name comparisons give them.
pub const FIGURES: [(&str, Getter); 5] = [
    ("throughput", |r| r.throughput_jobs_s),
    ("p50", |r| r.p50_ms),
    ("p99", |r| r.p99_ms),
    ("p99.9", |r| r.p999_ms),
    ("server CPU per job", |r| r.server_cpu_us_per_job),
];

/// The test's name without `.rK`, from the folder's own files (before rows exist).
fn stem(test: &str) -> &str {
    match test.rsplit_once(".r") {
        Some((s, k)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => test,
    }
}

/// Repeats of one test must differ in nothing but the repeat: the same workload,
/// durability tier, server version and host. Anything else is two experiments pooled.
pub fn check_settings(folders: &[Folder]) -> Result<()> {
    let mut paths: Vec<std::path::PathBuf> = vec![];
    for f in folders {
        let p = std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone());
        if paths.contains(&p) {
            return Err(UsageError::new(format!(
                "{} is given twice: its runs would count twice and narrow every interval",
                f.path.display()
            ))
            .into());
        }
        paths.push(p);
    }
    let mut seen: BTreeMap<(&str, String), (&std::path::Path, serde_json::Value)> = BTreeMap::new();
    for g in folders.iter().flat_map(|f| &f.tests) {
        let m = &g.parts[0].manifest;
        let mut knobs = serde_json::to_value(&m.knobs)?;
        if let Some(k) = knobs.as_object_mut() {
            // The config's list of modes; the mode this test ran in is in its name.
            k.remove("wakeup");
            k.insert(
                "durability_tier".into(),
                serde_json::to_value(m.durability_tier)?,
            );
            k.insert(
                "server_version".into(),
                serde_json::to_value(&m.server_version)?,
            );
            k.insert("host".into(), serde_json::to_value(&m.host.hostname)?);
            // Encrypted and plaintext runs are different experiments (none recorded: off).
            k.insert(
                "server_tls".into(),
                m.server_tls.as_deref().unwrap_or("off").into(),
            );
            k.insert("smoke".into(), m.smoke.into());
        }
        let path = g.parts[0].manifest_path.as_path();
        // Tiers side by side are separate experiments by design, never repeats.
        let key = (stem(&g.test), format!("{:?}", m.durability_tier));
        match seen.get(&key) {
            None => {
                seen.insert(key, (path, knobs));
            }
            Some((first, k0)) if *k0 != knobs => {
                let differ: Vec<String> = knobs
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(key, v)| k0.get(key.as_str()) != Some(*v))
                    .map(|(key, v)| {
                        format!(
                            "{key} {} vs {v}",
                            k0.get(key.as_str()).unwrap_or(&serde_json::Value::Null)
                        )
                    })
                    .collect();
                return Err(UsageError::new(format!(
                    "{} and {} are repeats of {} with different settings ({}): pool only runs that differ in the repeat; analyze them apart or re-run",
                    first.display(),
                    path.display(),
                    stem(&g.test),
                    differ.join(", ")
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn values(runs: &[&Row], f: Getter) -> Vec<f64> {
    runs.iter().filter_map(|r| f(r)).collect()
}

/// Fills each row's `n_runs`, intervals and outlier marks from its group's clean runs.
pub fn annotate(rows: &mut [Row]) {
    for idx in groups(rows).into_values() {
        let pooled: Vec<usize> = idx
            .iter()
            .copied()
            .filter(|&i| rows[i].comparable())
            .collect();
        let runs: Vec<Row> = pooled.iter().map(|&i| rows[i].clone()).collect();
        let refs: Vec<&Row> = runs.iter().collect();
        let est: Vec<Option<Estimate>> = FIGURES
            .iter()
            .map(|(_, f)| confidence::estimate(&values(&refs, *f)))
            .collect();
        for &i in &idx {
            let r = &mut rows[i];
            r.n_runs = Some(pooled.len());
            let ci = |k: usize| est[k].map_or((None, None), |e| (e.low, e.high));
            (r.throughput_ci_low, r.throughput_ci_high) = ci(0);
            (r.p50_ci_low, r.p50_ci_high) = ci(1);
            (r.p99_ci_low, r.p99_ci_high) = ci(2);
            (r.p999_ci_low, r.p999_ci_high) = ci(3);
            (
                r.server_cpu_us_per_job_ci_low,
                r.server_cpu_us_per_job_ci_high,
            ) = ci(4);
        }
        for (name, f) in FIGURES {
            let v: Vec<(usize, f64)> = pooled
                .iter()
                .filter_map(|&i| f(&rows[i]).map(|x| (i, x)))
                .collect();
            let marks = confidence::outliers(&v.iter().map(|x| x.1).collect::<Vec<_>>());
            for ((i, _), out) in v.iter().zip(marks) {
                if out {
                    let o = &mut rows[*i].outlier;
                    if !o.is_empty() {
                        o.push_str(", ");
                    }
                    o.push_str(name);
                }
            }
        }
    }
}

/// A single run per design: every comparison is a point without an interval; say so.
pub fn single_run_caveat(rows: &[Row]) -> Option<String> {
    let pooled_any = groups(rows).values().any(|g| g.len() > 1);
    (!pooled_any && !rows.is_empty()).then(|| {
        "single run per design: no interval on any figure or comparison, and this machine's run-to-run noise can exceed the differences shown; `run-suite --repeat 5` gives medians with 95 % intervals".to_string()
    })
}
