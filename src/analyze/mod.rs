//! `analyze`: result folders in, per-test rows, red flags and findings out.
//! Reads files only; never opens a connection.

pub mod findings;
pub mod load;
pub mod report;
pub mod summary;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub use findings::Finding;
pub use summary::Row;

pub const SUMMARY_FORMAT: &str = "qbench.summary";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    pub format: String,
    pub version: u32,
    pub generated_at: String,
    pub inputs: Vec<PathBuf>,
    /// Comparability and other whole-analysis warnings.
    pub warnings: Vec<String>,
    pub caveats: Vec<String>,
    pub findings: Vec<Finding>,
    pub tests: Vec<Row>,
}

/// Reads every folder and computes the analysis.
pub fn analyze(folders: &[PathBuf]) -> Result<Analysis> {
    let mut read = vec![];
    for f in folders {
        read.push(load::read_folder(f)?);
    }
    let mut rows = vec![];
    let mut missing = vec![];
    for f in &read {
        for g in &f.tests {
            rows.push(summary::row(g, f));
            missing.push((
                g.test.clone(),
                g.parts.iter().flat_map(|p| p.missing.clone()).collect(),
            ));
        }
    }
    rows.sort_by_key(|r| (order(&r.queue), scenario_order(&r.scenario), r.test.clone()));
    findings::red_flags(&mut rows, &missing);
    let (findings, caveats) = findings::findings(&rows);
    Ok(Analysis {
        format: SUMMARY_FORMAT.into(),
        version: crate::output::manifest::FORMAT_VERSION,
        generated_at: crate::clock::rfc3339(std::time::SystemTime::now()),
        inputs: folders.to_vec(),
        warnings: findings::comparability(&read),
        caveats,
        findings,
        tests: rows,
    })
}

/// Writes `summary.csv` and `summary.json` into `dir` (each whole or not at all).
pub fn write(a: &Analysis, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    crate::output::ensure_writable(dir, "--output")?;
    let mut csv = csv::Writer::from_writer(vec![]);
    for r in &a.tests {
        csv.serialize(r)?;
    }
    let csv_path = dir.join("summary.csv");
    let json_path = dir.join("summary.json");
    crate::output::write_atomic(
        &csv_path,
        &csv.into_inner().context("building summary.csv")?,
    )?;
    crate::output::write_atomic(&json_path, &serde_json::to_vec_pretty(a)?)?;
    Ok((csv_path, json_path))
}

fn order(queue: &str) -> usize {
    [
        "skip_locked",
        "delete_returning",
        "partitioned",
        "valkey_streams",
    ]
    .iter()
    .position(|q| *q == queue)
    .unwrap_or(9)
}

pub fn scenario_order(s: &str) -> usize {
    ["cold", "warm", "load"]
        .iter()
        .position(|x| *x == s)
        .unwrap_or(9)
}
