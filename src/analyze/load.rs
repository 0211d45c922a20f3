//! Reading result folders: every manifest, grouped by test, with the files it names.
//! Analysis reads files only and never opens a connection. Anything malformed is a
//! `UsageError` naming the file (and line): exit code 2, no panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::error::UsageError;
use crate::format::audit::{read_audit, AuditFile, Judgement};
use crate::format::hlog;
use crate::format::manifest::Manifest;
pub use crate::format::metrics::parse_metrics;
use crate::format::metrics::{read_metrics, IntervalLine, Summary};
pub use crate::format::read::parse_csv;
use crate::format::read::{bad, read_csv, read_manifest};
use crate::format::system;
use crate::stats::{HistSet, Metric};

/// One process's files for one test.
#[derive(Debug)]
pub struct Part {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub intervals: Vec<IntervalLine>,
    pub summary: Summary,
    pub audit: AuditFile,
    pub system: Option<Vec<system::Row>>,
    pub missing: Vec<String>,
}

/// Every process's files of one test in one folder, latencies merged.
#[derive(Debug)]
pub struct TestGroup {
    pub folder: PathBuf,
    pub test: String,
    pub parts: Vec<Part>,
    /// All intervals of all parts, summed per metric: exact, never averaged. Censored
    /// samples come from the process that looked at the queue last only.
    pub latency: HistSet,
    /// The audit by identity over every part.
    pub audit: Judgement,
}

#[derive(Debug, Default)]
pub struct Folder {
    pub path: PathBuf,
    pub tests: Vec<TestGroup>,
    /// Crash trials (`*_crash.json`): what each tier lost when the server was killed.
    pub crash: Vec<crate::format::crash::CrashFile>,
    /// Sweeps, burn-downs and worker scaling (`sweep/`).
    pub capacity: super::capacity::Found,
}

fn read_part(folder: &Path, manifest_path: PathBuf, manifest: Manifest) -> Result<Part> {
    let stem = manifest_path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix("_manifest.json"))
        .unwrap_or_default()
        .to_string();
    let file = |kind: &str| folder.join(format!("{stem}_{kind}"));
    let metrics = file("metrics.jsonl");
    if !metrics.exists() {
        return Err(bad(&metrics, "is missing (named by its manifest)"));
    }
    let (intervals, summary) = read_metrics(&metrics)?;
    let audit_path = file("audit.json");
    if !audit_path.exists() {
        return Err(bad(&audit_path, "is missing (named by its manifest)"));
    }
    let audit = read_audit(&audit_path, &manifest.run_id)?;
    let mut missing = vec![];
    let sys_path = file("system.csv");
    let system = if sys_path.exists() {
        Some(read_csv(&sys_path)?)
    } else {
        if !manifest.files.iter().any(|f| f.ends_with("_system.csv")) {
            missing.push("system.csv".into());
        }
        None
    };
    // Every file the manifest names must be there (the server's statistics among them).
    for f in &manifest.files {
        let kind = f.strip_prefix(&format!("{stem}_")).unwrap_or(f);
        if kind != "manifest.json" && !folder.join(f).exists() {
            missing.push(kind.to_string());
        }
    }
    if manifest.scenario.as_deref() == Some("load") && !file("pgbench.csv").exists() {
        missing.push("pgbench.csv".into());
    }
    if intervals.is_empty() {
        missing.push("metrics.jsonl intervals".into());
    }
    Ok(Part {
        manifest,
        manifest_path,
        intervals,
        summary,
        audit,
        system,
        missing,
    })
}

/// Reads one folder of results.
pub fn read_folder(path: &Path) -> Result<Folder> {
    if !path.is_dir() {
        let what = if path.exists() {
            "is not a folder"
        } else {
            "does not exist"
        };
        return Err(anyhow::Error::new(UsageError::new(format!(
            "results folder {} {what}; pass the folder run-suite wrote (e.g. results/vm1_pg)",
            path.display()
        ))));
    }
    let ending = |suffix: &str| -> Result<Vec<PathBuf>> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| bad(path, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
            })
            .collect();
        v.sort();
        Ok(v)
    };
    let names = ending("_manifest.json")?;
    let crash = ending("_crash.json")?;
    let capacity = super::capacity::read(path)?;
    if names.is_empty() && crash.is_empty() && capacity.is_empty() {
        return Err(anyhow::Error::new(UsageError::new(format!(
            "no qbench results in {} (no *_manifest.json, *_crash.json or sweep/ files)",
            path.display()
        ))));
    }
    let mut folder = Folder {
        path: path.to_path_buf(),
        crash: crash
            .iter()
            .map(|p| crate::format::crash::read_crash(p))
            .collect::<Result<_>>()?,
        capacity,
        ..Default::default()
    };
    let mut groups: BTreeMap<String, Vec<Part>> = BTreeMap::new();
    for mp in names {
        let manifest = read_manifest(&mp)?;
        let part = read_part(path, mp, manifest)?;
        groups
            .entry(part.manifest.test.clone())
            .or_default()
            .push(part);
    }
    for (test, parts) in groups {
        one_coordinated_run(path, &test, &parts)?;
        let last = super::audit::last_look(&parts);
        let mut latency = HistSet::default();
        for (i, p) in parts.iter().enumerate() {
            merge_hlog(&mut latency, p, Some(i) == last)?;
        }
        let audit = super::audit::merge(&parts, last);
        folder.tests.push(TestGroup {
            folder: path.to_path_buf(),
            test,
            parts,
            latency,
            audit,
        });
    }
    Ok(folder)
}

/// The processes of one test that name a `--run-id` must name the same one: files of an
/// earlier coordinated run would otherwise be summed into this one's.
fn one_coordinated_run(folder: &Path, test: &str, parts: &[Part]) -> Result<()> {
    let mut ids: Vec<&str> = parts
        .iter()
        .map(|p| p.manifest.coordinated_run_id.as_deref().unwrap_or("(none)"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    // One id, or none at all; a file without one beside coordinated files is a leftover.
    if ids.len() > 1 {
        return Err(anyhow::Error::new(UsageError::new(format!(
            "{test} in {} holds files of the coordinated runs {}: move the other run's files \
             away (their --run-id differs), then analyze again",
            folder.display(),
            ids.join(" and ")
        ))));
    }
    Ok(())
}

/// Adds one process's `.hlog` into the test's histograms, checking it against its summary.
fn merge_hlog(latency: &mut HistSet, p: &Part, last_look: bool) -> Result<()> {
    let hl = p.manifest_path.with_file_name(
        p.manifest_path
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.replace("_manifest.json", "_latency.hlog"))
            .unwrap_or_default(),
    );
    if !hl.exists() {
        return Err(bad(&hl, "is missing (named by its manifest)"));
    }
    let mut e2e = 0u64;
    for iv in hlog::read(&hl)? {
        match iv.metric {
            // What was left is judged once, from the last look at the queue.
            Some(Metric::E2eCensored) if !last_look => {}
            Some(m) => {
                e2e += u64::from(m == Metric::E2e) * iv.histogram.len();
                merge(latency, m, &iv.histogram, &hl)?;
            }
            None => {}
        }
    }
    // Every completion is recorded; a shortfall means intervals were cut off.
    let completed = p.summary.completed.unwrap_or(0);
    if e2e < completed {
        return Err(bad(
            &hl,
            format!(
                "holds {e2e} end-to-end latencies but the test completed {completed} jobs: the file is truncated"
            ),
        ));
    }
    Ok(())
}

fn merge(
    into: &mut HistSet,
    m: Metric,
    h: &hdrhistogram::Histogram<u64>,
    path: &Path,
) -> Result<()> {
    into.add_histogram(m, h)
        .map_err(|e| bad(path, format!("a histogram cannot be merged ({e:?})")))
}
