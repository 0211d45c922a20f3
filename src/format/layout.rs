//! Where each command puts its files under a results folder: every writer names its
//! folders from here, and every reader finds them from here, so `analyze --results DIR`
//! reads whatever layout any command wrote under DIR.

use std::path::{Path, PathBuf};

/// PostgreSQL's and Valkey's tests, as the seed names the two VMs' folders.
pub const PG_DIR: &str = "vm1_pg";
pub const VALKEY_DIR: &str = "vm2_valkey";
/// `crash-test`'s crash files.
pub const CRASH_DIR: &str = "crash";
/// Sweeps, burn-downs and worker scaling, inside a results folder.
pub const SWEEP_DIR: &str = "sweep";
/// What every command's ending writes beside its results.
pub const ANALYSIS_DIR: &str = "analysis";
pub const GRAPHS_DIR: &str = "graphs";
pub const REPORT_FILE: &str = "report.html";

/// Whether `dir` itself holds results: a test's manifest, a crash file or a sweep.
pub fn holds_results(dir: &Path) -> bool {
    if dir.join(SWEEP_DIR).is_dir() {
        return true;
    }
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.ends_with("_manifest.json") || n.ends_with("_crash.json"))
        })
    })
}

/// The folders of results at or under `dir`: `dir` itself when it holds results (`produce`
/// or `work --out DIR`, `sweep --out DIR`), and each folder a command writes below it
/// (`vm1_pg/`, `vm2_valkey/`, `crash/`) that does. Empty when there are none.
pub fn result_folders(dir: &Path) -> Vec<PathBuf> {
    std::iter::once(dir.to_path_buf())
        .chain([PG_DIR, VALKEY_DIR, CRASH_DIR].map(|d| dir.join(d)))
        .filter(|d| holds_results(d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_commands_layout() {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        assert!(result_folders(d).is_empty());
        std::fs::create_dir_all(d.join(PG_DIR)).expect("mkdir");
        std::fs::write(d.join(PG_DIR).join("t_manifest.json"), "{}").expect("write");
        std::fs::create_dir_all(d.join(VALKEY_DIR).join(SWEEP_DIR)).expect("mkdir");
        std::fs::create_dir_all(d.join("graphs")).expect("mkdir");
        assert_eq!(
            result_folders(d),
            vec![d.join(PG_DIR), d.join(VALKEY_DIR)],
            "the backends' folders, not the ending's"
        );
        std::fs::write(d.join("w_manifest.json"), "{}").expect("write");
        assert_eq!(
            result_folders(d)[0],
            d,
            "a folder of hand-run tests reads itself"
        );
    }
}
