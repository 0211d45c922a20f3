//! Typed reading of result files. Anything malformed is a `UsageError` that names the
//! file (and line): exit code 2, never a panic, never a half-read value.

use std::path::Path;

use anyhow::Result;
use serde::de::DeserializeOwned;

use super::manifest::{Manifest, MANIFEST_FORMAT};
use super::FORMAT_VERSION;
use crate::error::UsageError;

pub fn bad(path: &Path, what: impl std::fmt::Display) -> anyhow::Error {
    anyhow::Error::new(UsageError::new(format!("{}: {what}", path.display())))
}

pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| bad(path, format!("cannot read: {e}")))
}

pub fn parse_json<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T> {
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

/// Reads a test's manifest, its format and version checked first.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let text = read_text(path)?;
    let v: serde_json::Value = parse_json(path, &text)?;
    check_version(path, &v, MANIFEST_FORMAT)?;
    parse_json(path, &text)
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

/// A JSON file that names its `format` and `version`: refused, naming the file, unless
/// both are the ones this qbench reads.
pub fn read_versioned<T: DeserializeOwned>(path: &Path, format: &str) -> Result<T> {
    let text = read_text(path)?;
    let v: serde_json::Value = parse_json(path, &text)?;
    if v["format"] != format || v["version"].as_u64() != Some(u64::from(super::FORMAT_VERSION)) {
        return Err(bad(
            path,
            format!(
                "is not a {format} file of version {}",
                super::FORMAT_VERSION
            ),
        ));
    }
    parse_json(path, &text)
}
