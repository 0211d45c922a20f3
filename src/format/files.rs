//! Result files of one test. Each is written as `NAME.partial` and renamed when the test
//! ends, so a finished file is always whole; only a killed process leaves `.partial` files.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::error::UsageError;

/// Every kind of file a test can write; `TEST_<kind>`.
pub const KINDS: [&str; 9] = [
    "metrics.jsonl",
    "latency.hlog",
    "system.csv",
    "db_stats.csv",
    "valkey_stats.csv",
    "pgbench.csv",
    "pgbench_alone.csv",
    "audit.json",
    "manifest.json",
];

pub struct OutputDir {
    dir: PathBuf,
    stem: String,
    pending: Mutex<Vec<(PathBuf, PathBuf)>>,
}

/// File stems become file names: keep them to a safe alphabet.
pub fn check_name(what: &str, name: &str) -> Result<(), UsageError> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(UsageError::new(format!(
            "{what} {name:?} is invalid: use letters, digits, _ - and . (not leading)"
        )))
    }
}

/// Creates `dir` if needed and proves it writable, or says why not (exit code 2);
/// `flag` is the option that chose it, named in the message.
pub fn ensure_writable(dir: &Path, flag: &str) -> Result<(), UsageError> {
    let fail = |e: std::io::Error| {
        UsageError::new(format!(
            "cannot write results to {}: {e}; choose another {flag} folder",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let probe = dir.join(format!(".qbench-write-test-{}", std::process::id()));
    File::create(&probe).map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

impl OutputDir {
    /// Checks the folder before anything runs: writable, and no finished results under
    /// this name unless `force`. Stale `.partial` files of this name are removed.
    pub fn prepare(dir: &Path, stem: &str, force: bool) -> Result<OutputDir, UsageError> {
        check_name("test name", stem)?;
        ensure_writable(dir, "--out")?;
        let manifest = dir.join(format!("{stem}_manifest.json"));
        if manifest.exists() && !force {
            return Err(UsageError::new(format!(
                "results for {stem} already exist in {} ({}); pass --force to replace them, \
                 or another --name / --instance",
                dir.display(),
                manifest.display()
            )));
        }
        for kind in KINDS {
            let f = dir.join(format!("{stem}_{kind}"));
            let _ = std::fs::remove_file(with_partial(&f));
            if force {
                let _ = std::fs::remove_file(&f);
            }
        }
        Ok(OutputDir {
            dir: dir.to_path_buf(),
            stem: stem.to_string(),
            pending: Mutex::new(Vec::new()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stem(&self) -> &str {
        &self.stem
    }

    pub fn path(&self, kind: &str) -> PathBuf {
        self.dir.join(format!("{}_{kind}", self.stem))
    }

    /// Opens `TEST_<kind>.partial` for writing.
    pub fn create(&self, kind: &str) -> Result<BufWriter<File>> {
        let fin = self.path(kind);
        let partial = with_partial(&fin);
        let f =
            File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
        if let Ok(mut p) = self.pending.lock() {
            p.push((partial, fin));
        }
        Ok(BufWriter::new(f))
    }

    /// Removes every file written so far (a test stopped before it began measuring).
    pub fn discard(&self) {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        for (partial, _) in pending {
            let _ = std::fs::remove_file(partial);
        }
    }

    /// Renames every file written so far into place; returns their names.
    pub fn finish(&self) -> Result<Vec<String>> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut names = vec![];
        for (partial, fin) in pending {
            std::fs::rename(&partial, &fin)
                .with_context(|| format!("renaming {} into place", partial.display()))?;
            if let Some(n) = fin.file_name() {
                names.push(n.to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }
}

fn with_partial(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Writes a whole file atomically: `.partial`, then rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let partial = with_partial(path);
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming {}", path.display()))?;
    Ok(())
}
