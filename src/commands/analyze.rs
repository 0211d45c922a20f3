//! `qbench analyze`: result folders in; tables, findings, summary.csv and summary.json out.

use std::path::PathBuf;

use anyhow::Result;

use crate::analyze::{self, report};
use crate::cli::AnalyzeArgs;
use crate::error::{usage, AuditFailed};

/// The folders to read: the flags given, else the default run-suite folders that exist.
fn inputs(args: &AnalyzeArgs) -> Result<Vec<PathBuf>> {
    let mut folders: Vec<PathBuf> = args
        .pg_results
        .iter()
        .chain(args.valkey_results.iter())
        .chain(args.results.iter())
        .cloned()
        .collect();
    if folders.is_empty() {
        folders = ["results/vm1_pg", "results/vm2_valkey"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.is_dir())
            .collect();
        if folders.is_empty() {
            return Err(usage(
                "no results to analyze: pass --pg-results DIR and/or --valkey-results DIR (or --results DIR)",
            ));
        }
    }
    folders.dedup();
    Ok(folders)
}

pub fn run(args: &AnalyzeArgs) -> Result<()> {
    let folders = inputs(args)?;
    crate::timeline::spikes::check_factor(args.spike_factor)?;
    let analysis = analyze::analyze_with(&folders, args.spike_factor)?;
    let (csv, json) = analyze::write(&analysis, &args.output)?;
    print!("{}", report::render(&analysis));
    println!(
        "\nWrote {} and {} ({} tests).",
        csv.display(),
        json.display(),
        analysis.tests.len()
    );
    // The audit across processes is judged here: a loss fails, as it fails a suite.
    let lost: u64 = analysis.tests.iter().filter_map(|r| r.lost).sum();
    if lost > 0 {
        return Err(AuditFailed(format!(
            "audit failed: {lost} job(s) lost; the red flags name the tests and their seqs"
        ))
        .into());
    }
    Ok(())
}
