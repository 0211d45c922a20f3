//! `qbench analyze`: result folders in; tables, findings, summary.csv and summary.json out.

use std::path::PathBuf;

use anyhow::Result;

use crate::analyze::{self, report};
use crate::cli::AnalyzeArgs;
use crate::error::{usage, AuditFailed};
use crate::format::layout::result_folders;

/// The folders to read: each one given and the folders any command writes below it
/// (`vm1_pg/`, `vm2_valkey/`, `crash/`), else those under `results/`.
fn inputs(args: &AnalyzeArgs) -> Result<Vec<PathBuf>> {
    let given: Vec<&PathBuf> = args
        .pg_results
        .iter()
        .chain(args.valkey_results.iter())
        .chain(args.results.iter())
        .collect();
    if given.is_empty() {
        let found = result_folders(std::path::Path::new("results"));
        if found.is_empty() {
            return Err(usage(
                "no results to analyze in results/: pass --results DIR (the folder a command wrote into)",
            ));
        }
        return Ok(found);
    }
    let mut folders = vec![];
    for dir in given {
        let found = result_folders(dir);
        // A folder with nothing recognisable is read as it is, so its reader names what
        // is wrong with it (missing, not a folder, no qbench results).
        if found.is_empty() {
            folders.push(dir.clone());
        }
        for f in found {
            if !folders.contains(&f) {
                folders.push(f);
            }
        }
    }
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
