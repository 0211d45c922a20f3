//! ARCHITECTURE.md's invariants, grepped: each test fails when a module reaches across a
//! boundary the architecture draws.

use std::path::{Path, PathBuf};

fn sources(dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, String)>) {
        for e in std::fs::read_dir(p).expect("read src").flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&path).expect("read source");
                out.push((path, text));
            }
        }
    }
    let mut out = vec![];
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir),
        &mut out,
    );
    assert!(!out.is_empty(), "no sources under src/{dir}");
    out
}

/// Lines of `dir`'s sources that mention any of `needles`, outside comments.
fn offenders(dir: &str, needles: &[&str]) -> Vec<String> {
    let mut out = vec![];
    for (path, text) in sources(dir) {
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if needles.iter().any(|n| code.contains(n)) {
                out.push(format!("{}:{}: {}", path.display(), i + 1, code));
            }
        }
    }
    out
}

#[test]
fn readers_and_formats_open_no_connection() {
    let forbidden = [
        "crate::queue",
        "crate::workload",
        "crate::suite",
        "crate::capacity",
        "crate::horizon",
        "crate::samplers",
        "crate::local",
        "crate::commands",
        "tokio_postgres",
        "redis::",
    ];
    for dir in ["analyze", "graph", "format", "html_report", "timeline"] {
        let bad = offenders(dir, &forbidden);
        assert!(
            bad.is_empty(),
            "src/{dir} reaches past the formats:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn no_match_on_a_design_outside_the_queue_and_local_servers() {
    for dir in [
        "analyze",
        "graph",
        "format",
        "workload",
        "suite",
        "capacity",
        "horizon",
        "commands",
        "samplers",
        "stats",
        "config",
        "html_report",
        "timeline",
    ] {
        // A match arm names the variant left of its `=>`.
        let bad: Vec<String> = offenders(dir, &["Backend::", "QueueKind::"])
            .into_iter()
            .filter(|l| {
                l.split_once("=>").is_some_and(|(arm, _)| {
                    arm.contains("Backend::") || arm.contains("QueueKind::")
                })
            })
            .collect();
        assert!(
            bad.is_empty(),
            "src/{dir} matches on a design:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn the_runner_knows_no_command_and_the_suite_no_command() {
    let bad = offenders(
        "workload",
        &[
            "crate::commands",
            "crate::suite",
            "crate::capacity",
            "crate::horizon",
        ],
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let bad = offenders("suite", &["crate::commands", "crate::capacity"]);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    // A sweep's step is an ordinary test: the runner's, not the suite's.
    let bad = offenders("capacity", &["crate::commands", "crate::suite"]);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    let bad = offenders(
        "horizon",
        &["crate::commands", "crate::suite", "crate::capacity"],
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn measurement_knows_no_server_crate() {
    for dir in ["stats", "samplers"] {
        let bad = offenders(dir, &["tokio_postgres", "redis::", "crate::queue"]);
        assert!(bad.is_empty(), "src/{dir}:\n{}", bad.join("\n"));
    }
}
