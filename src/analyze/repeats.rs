//! Repeated runs (`run-suite --repeat N`) and labelled variants (`--label`): each
//! figure's median across runs with a 95 % bootstrap interval, outlier runs flagged, and
//! comparisons (ratio of medians, its interval, Welch's p). The run is the unit: every
//! figure here takes one value per run; merged-histogram percentiles stay per run.

use std::collections::BTreeMap;

use anyhow::Result;

use super::load::Folder;
use crate::error::UsageError;
use crate::format::summary::{best_pg, group_key, groups, pooled, Comparison, Row};
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

fn compare(
    kind: &str,
    figure: (&str, Getter),
    a: (&str, &[&Row]),
    b: (&str, &[&Row]),
) -> Option<Comparison> {
    let (name, f) = figure;
    let (va, vb) = (values(a.1, f), values(b.1, f));
    let r = confidence::ratio(&va, &vb)?;
    let verdict = match (r.significant(), r.low, r.high) {
        (Some(true), Some(lo), Some(hi)) => format!(
            "{} {name} is {:.2}× {}'s (95 % CI {lo:.2}–{hi:.2}, Welch p {:.3})",
            a.0,
            r.ratio,
            b.0,
            r.welch_p.unwrap_or(f64::NAN)
        ),
        (Some(false), Some(lo), Some(hi)) => format!(
            "{} vs {} {name}: no significant difference ({:.2}×, 95 % CI {lo:.2}–{hi:.2}, Welch p {:.3}{})",
            a.0,
            b.0,
            r.ratio,
            r.welch_p.unwrap_or(f64::NAN),
            if (r.ratio - 1.0).abs() < confidence::NOISE { "; under 2 %" } else { "" }
        ),
        _ => format!(
            "{} vs {} {name}: {:.2}× (single run: no interval)",
            a.0, b.0, r.ratio
        ),
    };
    let first = a.1.first()?;
    Some(Comparison {
        kind: kind.into(),
        scenario: first.scenario.clone(),
        tier: first.durability_tier.clone(),
        figure: name.into(),
        a: a.0.into(),
        b: b.0.into(),
        n_a: va.len(),
        n_b: vb.len(),
        a_values: va,
        b_values: vb,
        ratio: r.ratio,
        ci_low: r.low,
        ci_high: r.high,
        welch_p: r.welch_p,
        significant: r.significant(),
        verdict,
    })
}

/// Valkey against the best PostgreSQL design (by median p99) of the same scenario, tier,
/// label and wakeup kind; each design against each other label of itself.
pub fn comparisons(rows: &[Row]) -> Vec<Comparison> {
    // The same exclusion as the findings: a group with any unclean run is not compared.
    // Horizon tests run each design at its own rate: their rows are not compared here.
    let meds: Vec<Row> = pooled(rows)
        .into_iter()
        .filter(|r| r.comparable() && r.scenario != "horizon")
        .collect();
    let runs_of = |m: &Row| -> Vec<&Row> {
        rows.iter()
            .filter(|r| group_key(r) == group_key(m))
            .collect()
    };
    let mut out = vec![];
    let mut keys: Vec<(String, String, String)> = meds
        .iter()
        .map(|r| {
            (
                r.scenario.clone(),
                r.durability_tier.clone(),
                r.label.clone(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    for (sc, tier, label) in &keys {
        let same: Vec<&Row> = meds
            .iter()
            .filter(|r| (&r.scenario, &r.durability_tier, &r.label) == (sc, tier, label))
            .collect();
        for valkey in same.iter().filter(|r| r.backend == "valkey") {
            for notify in [false, true] {
                let pg = same
                    .iter()
                    .copied()
                    .filter(|r| r.backend != "postgresql" || (r.wakeup == "notify") == notify);
                let Some(best) = best_pg(pg) else { continue };
                let (va, vb) = (runs_of(valkey), runs_of(best));
                for fig in FIGURES {
                    out.extend(compare(
                        "valkey vs best postgresql",
                        fig,
                        (&valkey.variant(), &va),
                        (&best.variant(), &vb),
                    ));
                }
            }
        }
    }
    out.extend(across_labels(&meds, &runs_of));
    out
}

fn across_labels<'a>(meds: &[Row], runs_of: &dyn Fn(&Row) -> Vec<&'a Row>) -> Vec<Comparison> {
    let mut out = vec![];
    for (i, a) in meds.iter().enumerate() {
        for b in &meds[i + 1..] {
            let same = (a.design(), &a.scenario, &a.durability_tier)
                == (b.design(), &b.scenario, &b.durability_tier);
            if !same || a.label == b.label {
                continue;
            }
            let (na, nb) = (a.variant(), b.variant());
            let (va, vb) = (runs_of(a), runs_of(b));
            for fig in FIGURES {
                out.extend(compare("label", fig, (&nb, &vb), (&na, &va)));
            }
        }
    }
    out
}

fn repeated(rows: &[Row]) -> bool {
    rows.iter().any(|r| r.repeat.is_some()) || rows.iter().any(|r| !r.label.is_empty())
}

/// With repeats or labels: which differences the intervals support, and which are noise.
pub fn finding(
    rows: &[Row],
    comparisons: &[Comparison],
) -> Option<crate::format::summary::Finding> {
    if !repeated(rows) || comparisons.is_empty() {
        return None;
    }
    let lines: Vec<String> = comparisons
        .iter()
        .filter(|c| matches!(c.figure.as_str(), "throughput" | "p50" | "p99"))
        .map(|c| {
            let tier = if c.tier.is_empty() {
                String::new()
            } else {
                format!(" [{}]", c.tier)
            };
            format!(
                "{}{tier}: {} (n = {}/{})",
                c.scenario, c.verdict, c.n_a, c.n_b
            )
        })
        .collect();
    Some(crate::format::summary::Finding {
        question: "6. Across repeated runs, which differences are real?".into(),
        answer: lines.join("; "),
    })
}

/// A single run per design: every comparison is a point without an interval; say so.
pub fn single_run_caveat(rows: &[Row]) -> Option<String> {
    let pooled_any = groups(rows).values().any(|g| g.len() > 1);
    (!pooled_any && !rows.is_empty()).then(|| {
        "single run per design: no interval on any figure or comparison, and this machine's run-to-run noise can exceed the differences shown; `run-suite --repeat 5` gives medians with 95 % intervals".to_string()
    })
}
