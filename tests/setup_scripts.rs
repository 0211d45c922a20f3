//! The setup scripts' version logic, on the releases the seed names, without installing
//! anything: a fake /etc/os-release decides which PostgreSQL a release would get (and
//! refuses one too old), and a fake server binary decides whether a Redis is new enough.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn os_release(dir: &Path, id: &str, version: &str) -> PathBuf {
    let p = dir.join(format!("os-release-{id}-{version}"));
    std::fs::write(
        &p,
        format!("PRETTY_NAME=\"{id} {version}\"\nID={id}\nVERSION_ID=\"{version}\"\n"),
    )
    .expect("write os-release");
    p
}

fn check_platform(release: &Path) -> Output {
    Command::new("bash")
        .arg(repo().join("setup/install_pg.sh"))
        .arg("--check-platform")
        .env("QBENCH_OS_RELEASE", release)
        .output()
        .expect("bash")
}

#[test]
fn each_release_gets_its_postgresql_or_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    for (id, version, major) in [
        ("debian", "12", "15"),
        ("debian", "13", "17"),
        ("ubuntu", "22.04", "14"),
        ("ubuntu", "24.04", "16"),
    ] {
        let o = check_platform(&os_release(dir.path(), id, version));
        assert!(o.status.success(), "{id} {version}: {}", text(&o));
        assert!(
            text(&o).contains(&format!(
                "{id} {version}: PostgreSQL {major} from the distribution"
            )),
            "{id} {version}: {}",
            text(&o)
        );
    }
    // Ubuntu 20.04 and Debian 11 ship PostgreSQL 12 and 13, which have no pg_stat_wal.
    for (id, version, major) in [("ubuntu", "20.04", "12"), ("debian", "11", "13")] {
        let o = check_platform(&os_release(dir.path(), id, version));
        assert!(!o.status.success(), "{}", text(&o));
        assert!(
            text(&o).contains(&format!(
                "{id} {version} ships PostgreSQL {major}, older than 14"
            )),
            "{}",
            text(&o)
        );
    }
    // A release nobody listed goes on, saying so; the installed version is checked later.
    let o = check_platform(&os_release(dir.path(), "fedora", "41"));
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("not one qbench was tested on"),
        "{}",
        text(&o)
    );
}

/// A server binary that prints `version` like `redis-server --version`.
fn fake_server(dir: &Path, version: &str) -> PathBuf {
    let p = dir.join(format!("redis-server-{version}"));
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho \"Redis server v={version} sha=00000000:0 malloc=libc bits=64 build=0\"\n"),
    )
    .expect("write");
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    p
}

#[test]
fn a_redis_without_xautoclaim_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |version: &str| {
        Command::new("bash")
            .arg(repo().join("setup/install_valkey.sh"))
            // Choose and check only: nothing is installed or configured.
            .arg("--check-server")
            .env("QBENCH_VALKEY_SERVER", fake_server(dir.path(), version))
            .output()
            .expect("bash")
    };
    for old in ["6.0.16", "5.0.14"] {
        let o = run(old);
        assert!(!o.status.success(), "{old}: {}", text(&o));
        assert!(
            text(&o).contains("older than 6.2 (no XAUTOCLAIM"),
            "{old}: {}",
            text(&o)
        );
    }
    for ok in ["6.2.14", "7.0.15"] {
        let o = run(ok);
        assert!(o.status.success(), "{ok}: {}", text(&o));
    }
}
