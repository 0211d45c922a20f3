//! `analyze`: result folders in, per-test rows, red flags and findings out.
//! Reads files only; never opens a connection.

pub mod audit;
pub mod capacity;
pub mod findings;
pub mod flags;
pub mod horizon;
pub mod load;
pub mod repeats;
pub mod report;
pub mod shards;
pub mod spikes;
pub mod state;
pub mod summary;
pub mod verdict;

use std::path::PathBuf;

use anyhow::Result;

pub use crate::format::summary::{write, Analysis, Finding, Row, SUMMARY_FORMAT};

/// Reads every folder and computes the analysis, with the default spike factor.
pub fn analyze(folders: &[PathBuf]) -> Result<Analysis> {
    analyze_with(folders, crate::timeline::spikes::FACTOR)
}

/// As [`analyze`]; a spike is a second whose p99 is over `spike_factor` × the median.
pub fn analyze_with(folders: &[PathBuf], spike_factor: f64) -> Result<Analysis> {
    let mut read = vec![];
    for f in folders {
        read.push(load::read_folder(f)?);
    }
    repeats::check_settings(&read)?;
    let mut rows = vec![];
    let mut missing = vec![];
    for f in &read {
        for g in &f.tests {
            rows.push(summary::row(g));
            missing.push((
                g.test.clone(),
                g.parts.iter().flat_map(|p| p.missing.clone()).collect(),
            ));
        }
    }
    rows.sort_by_key(|r| (order(&r.queue), scenario_order(&r.scenario), r.test.clone()));
    flags::red_flags(&mut rows, &missing);
    let found: Vec<capacity::Found> = read.iter().map(|f| f.capacity.clone()).collect();
    let (caps, capacity_steps, scaling) = capacity::build(&found);
    capacity::annotate(&mut rows, &caps);
    repeats::annotate(&mut rows);
    let groups: Vec<&load::TestGroup> = read.iter().flat_map(|f| f.tests.iter()).collect();
    let (horizon, horizon_timeline) = horizon::build(&groups)?;
    let tails = spikes::build(&groups, &mut rows, spike_factor);
    let crash: Vec<_> = read.iter().flat_map(|f| f.crash.clone()).collect();
    // Findings speak of each figure's median across repeats; intervals come with them.
    let (mut findings, mut caveats) = findings::findings(&crate::format::summary::pooled(&rows));
    findings.extend(capacity::finding(&caps));
    findings.extend(horizon::finding(&horizon));
    findings.extend(tails.findings);
    caveats.extend(repeats::single_run_caveat(&rows));
    caveats.extend(findings::measured_durability(&crash));
    let mut warnings = flags::comparability(&read);
    // Said before the verdict's answers: results from unlike machines, and unlike tiers.
    let mut banners = warnings.clone();
    warnings.extend(findings::tier_banner(&rows));
    banners.extend(
        warnings
            .iter()
            .filter(|w| w.starts_with("MISMATCHED"))
            .cloned(),
    );
    warnings.extend(tails.warnings);
    let (verdict, comparisons) = verdict::build(&rows, &caps, &banners);
    Ok(Analysis {
        format: SUMMARY_FORMAT.into(),
        version: crate::format::FORMAT_VERSION,
        generated_at: crate::clock::rfc3339(std::time::SystemTime::now()),
        inputs: folders.to_vec(),
        warnings,
        caveats,
        findings,
        tests: rows,
        crash_trials: crash,
        comparisons,
        verdict,
        capacity: caps,
        capacity_steps,
        scaling,
        horizon,
        horizon_timeline,
        spikes: tails.spikes,
        events: tails.events,
    })
}

/// The seed's order of designs; others (a fifth design) follow by name. Cosmetic only.
fn order(queue: &str) -> (usize, String) {
    let seed = [
        "skip_locked",
        "delete_returning",
        "partitioned",
        "valkey_streams",
    ];
    let i = seed.iter().position(|q| *q == queue).unwrap_or(seed.len());
    (i, queue.to_string())
}

pub fn scenario_order(s: &str) -> usize {
    ["cold", "warm", "load", "horizon"]
        .iter()
        .position(|x| *x == s)
        .unwrap_or(9)
}
