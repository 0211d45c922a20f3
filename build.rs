//! Names the commit qbench was built from in `--version` and every manifest, so a
//! result can be traced to its code. Outside a git checkout it says so.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = match git(&["rev-parse", "--short=12", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            // Uncommitted changes to tracked files make the build differ from the commit.
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}-modified")
            } else {
                c
            }
        }
        _ => "unknown: not built from a git checkout".to_string(),
    };
    println!("cargo:rustc-env=QBENCH_COMMIT={commit}");
    // A new commit or a checkout changes HEAD or the ref it points to.
    for f in [".git/HEAD", ".git/index", ".git/refs/heads"] {
        if std::path::Path::new(f).exists() {
            println!("cargo:rerun-if-changed={f}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
