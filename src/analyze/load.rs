//! Reading result folders: every manifest, grouped by test, with the files it names.
//! Analysis reads files only and never opens a connection. Anything malformed is a
//! `UsageError` naming the file (and line): exit code 2, no panic.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::de::DeserializeOwned;

use crate::error::UsageError;
use crate::output::manifest::{
    IntervalLine, Manifest, Summary, FORMAT_VERSION, MANIFEST_FORMAT, METRICS_FORMAT,
};
use crate::samplers::system;
use crate::stats::hlog;
use crate::stats::{HistSet, Metric};
use crate::suite::{BaselineManifest, BASELINE_FORMAT};

/// One process's files for one test.
#[derive(Debug)]
pub struct Part {
    pub manifest: Manifest,
    pub manifest_path: PathBuf,
    pub intervals: Vec<IntervalLine>,
    pub summary: Summary,
    pub system: Option<Vec<system::Row>>,
    pub missing: Vec<String>,
}

/// Every process's files of one test in one folder, latencies merged.
#[derive(Debug)]
pub struct TestGroup {
    pub folder: PathBuf,
    pub test: String,
    pub parts: Vec<Part>,
    /// All intervals of all parts, summed per metric: exact, never averaged.
    pub latency: HistSet,
}

#[derive(Debug, Default)]
pub struct Folder {
    pub path: PathBuf,
    pub tests: Vec<TestGroup>,
    pub baseline: Option<BaselineManifest>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError::new(format!("{}: {what}", path.display())))
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot read: {e}")))
}

fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        anyhow::Error::new(UsageError::new(format!(
            "{}:{}: not a valid qbench file ({e}); the file is truncated or corrupt",
            path.display(),
            e.line()
        )))
    })
}

/// Checks `format` and `version` before anything else, so a file from a newer qbench
/// is refused with a clear line instead of half-read.
fn check_version(path: &Path, v: &serde_json::Value, format: &str) -> Result<()> {
    let got_format = v["format"].as_str().unwrap_or("");
    if got_format != format {
        return Err(bad(
            path,
            format!("is not a {format} file (format {got_format:?})"),
        ));
    }
    match v["version"].as_u64() {
        Some(n) if n == u64::from(FORMAT_VERSION) => Ok(()),
        Some(n) => Err(bad(
            path,
            format!(
                "has format version {n}, this qbench reads version {FORMAT_VERSION}; \
                 analyze it with the qbench that wrote it"
            ),
        )),
        None => Err(bad(path, "has no format version")),
    }
}

/// `TEST_metrics.jsonl`: interval lines, then a summary as the last line.
pub fn read_metrics(path: &Path) -> Result<(Vec<IntervalLine>, Summary)> {
    parse_metrics(&read_text(path)?, path)
}

/// Parses a metrics file's text; `path` only names it in errors.
pub fn parse_metrics(text: &str, path: &Path) -> Result<(Vec<IntervalLine>, Summary)> {
    if !text.is_empty() && !text.ends_with('\n') {
        let line = text.lines().count();
        return Err(bad(
            path,
            format!("line {line} is incomplete: the file is truncated"),
        ));
    }
    let mut intervals = vec![];
    let mut summary = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if summary.is_some() {
            return Err(bad(path, format!("line {n}: data after the summary line")));
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            bad(
                path,
                format!("line {n}: not JSON ({e}); the file is truncated or corrupt"),
            )
        })?;
        if v["v"].as_u64() != Some(u64::from(FORMAT_VERSION)) {
            return Err(bad(
                path,
                format!(
                    "line {n}: {METRICS_FORMAT} version {} is not the version this qbench reads ({FORMAT_VERSION})",
                    v["v"]
                ),
            ));
        }
        match v["type"].as_str() {
            Some("interval") => intervals.push(
                serde_json::from_value(v)
                    .map_err(|e| bad(path, format!("line {n}: malformed interval: {e}")))?,
            ),
            Some("summary") => {
                summary = Some(
                    serde_json::from_value(v)
                        .map_err(|e| bad(path, format!("line {n}: malformed summary: {e}")))?,
                )
            }
            other => return Err(bad(path, format!("line {n}: unknown line type {other:?}"))),
        }
    }
    let summary = summary.ok_or_else(|| {
        bad(
            path,
            "has no summary line: the file is truncated (the test did not finish writing)",
        )
    })?;
    Ok((intervals, summary))
}

pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let bytes = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    parse_csv(&bytes, path)
}

/// Parses CSV rows; `path` only names the file in errors.
pub fn parse_csv<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<Vec<T>> {
    let mut r = csv::Reader::from_reader(bytes);
    let mut rows = vec![];
    for rec in r.deserialize() {
        rows.push(rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(path, format!("line {line}: {e}"))
        })?);
    }
    Ok(rows)
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
    let mut missing = vec![];
    let sys_path = file("system.csv");
    let system = if sys_path.exists() {
        Some(read_csv(&sys_path)?)
    } else {
        missing.push("system.csv".into());
        None
    };
    let stats = match manifest.backend {
        crate::queue::Backend::Postgresql => "db_stats.csv",
        crate::queue::Backend::Valkey => "valkey_stats.csv",
    };
    if !file(stats).exists() {
        missing.push(stats.into());
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
    let mut names: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| bad(path, format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with("_manifest.json"))
        })
        .collect();
    names.sort();
    if names.is_empty() {
        return Err(anyhow::Error::new(UsageError::new(format!(
            "no qbench results in {} (no *_manifest.json files)",
            path.display()
        ))));
    }
    let mut folder = Folder {
        path: path.to_path_buf(),
        ..Default::default()
    };
    let mut groups: BTreeMap<String, Vec<Part>> = BTreeMap::new();
    for mp in names {
        let text = read_text(&mp)?;
        let v: serde_json::Value = parse_json(&mp, &text)?;
        if v["format"] == BASELINE_FORMAT {
            check_version(&mp, &v, BASELINE_FORMAT)?;
            folder.baseline = Some(parse_json(&mp, &text)?);
            continue;
        }
        check_version(&mp, &v, MANIFEST_FORMAT)?;
        let manifest: Manifest = parse_json(&mp, &text)?;
        let part = read_part(path, mp, manifest)?;
        groups
            .entry(part.manifest.test.clone())
            .or_default()
            .push(part);
    }
    for (test, parts) in groups {
        let mut latency = HistSet::default();
        for p in &parts {
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
                if let Some(m) = iv.metric {
                    e2e += u64::from(m == Metric::E2e) * iv.histogram.len();
                    merge(&mut latency, m, &iv.histogram, &hl)?;
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
        }
        folder.tests.push(TestGroup {
            folder: path.to_path_buf(),
            test,
            parts,
            latency,
        });
    }
    Ok(folder)
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
