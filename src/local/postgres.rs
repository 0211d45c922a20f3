//! A throwaway PostgreSQL: initdb into a temporary directory, a free port, the seed's
//! tuning scaled to this machine's memory. As root it runs as an unprivileged user,
//! because initdb and postgres refuse to run as root.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::process::{self, Supervised};
use crate::config::Postgres;
pub use crate::format::manifest::Tuning;
use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};

/// The seed's PostgreSQL settings (for an 8 GiB VM), scaled to `total_mb` of memory.
pub fn tuning_for_memory(total_mb: u64) -> Tuning {
    // Seed: shared_buffers 2GB, effective_cache_size 6GB, maintenance_work_mem 512MB,
    // work_mem 32MB, max_connections 200 — that is 1/4, 3/4 and 1/16 of 8 GiB.
    let scale = |seed_mb: u64, floor: u64| (seed_mb * total_mb / 8192).max(floor);
    Tuning {
        shared_buffers_mb: scale(2048, 128),
        effective_cache_size_mb: scale(6144, 256),
        maintenance_work_mem_mb: scale(512, 64).min(2048),
        work_mem_mb: scale(32, 4).min(64),
        max_connections: 200,
    }
}

fn conf_lines(t: &Tuning) -> String {
    format!(
        "shared_buffers = '{}MB'\neffective_cache_size = '{}MB'\nmaintenance_work_mem = '{}MB'\nwork_mem = '{}MB'\nmax_connections = {}\n",
        t.shared_buffers_mb,
        t.effective_cache_size_mb,
        t.maintenance_work_mem_mb,
        t.work_mem_mb,
        t.max_connections
    )
}

pub fn total_memory_mb() -> u64 {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    (sys.total_memory() / (1024 * 1024)).max(1024)
}

pub struct LocalPostgres {
    pub port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub bin_dir: PathBuf,
    pub tuning: Tuning,
    pub process: Supervised,
    /// initdb -U made the configured user the bootstrap superuser.
    superuser: String,
    run_as: Option<(Uid, Gid, String)>,
}

/// initdb and postgres refuse root: pick the `postgres` user, else `nobody`.
fn unprivileged_user() -> Result<Option<(Uid, Gid, String)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Ok(Some(u)) = User::from_name(name) {
            return Ok(Some((u.uid, u.gid, name.to_string())));
        }
    }
    bail!("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL; create one (useradd postgres)")
}

fn as_user(cmd: &mut Command, run_as: &Option<(Uid, Gid, String)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid, _)) = run_as {
        cmd.uid(uid.as_raw()).gid(gid.as_raw());
    }
}

fn chown(path: &Path, run_as: &Option<(Uid, Gid, String)>) -> Result<()> {
    if let Some((uid, gid, _)) = run_as {
        std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
            .with_context(|| format!("chown {}", path.display()))?;
    }
    Ok(())
}

/// The last lines of a log, to explain a failed start.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join(" | ")
}

impl LocalPostgres {
    /// initdb into `root/pg` and write the configuration; the server is not started.
    /// `statements`: load pg_stat_statements, tracking statements inside functions.
    pub async fn init(
        root: &Path,
        pg: &Postgres,
        port: u16,
        statements: bool,
    ) -> Result<LocalPostgres> {
        let bin_dir = super::binaries::pg_bin_dir()?;
        let run_as = unprivileged_user()?;
        let data_dir = root.join("pg");
        std::fs::create_dir_all(&data_dir)?;
        chown(&data_dir, &run_as)?;
        let log = root.join("postgres.log");

        let mut initdb = Command::new(bin_dir.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data_dir)
            .args(["-U", &pg.user, "-E", "UTF8", "--locale=C", "--no-sync"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .stdin(Stdio::null());
        as_user(&mut initdb, &run_as);
        let out = tokio::task::spawn_blocking(move || initdb.output())
            .await?
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }

        let tuning = tuning_for_memory(total_memory_mb());
        let mut conf = format!(
            "\n# qbench --local\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\n{}log_min_messages = warning\n",
            data_dir.display(),
            conf_lines(&tuning)
        );
        if statements {
            conf.push_str(
                "shared_preload_libraries = 'pg_stat_statements'\npg_stat_statements.track = all\n",
            );
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(data_dir.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut f, conf.as_bytes())?;

        Ok(LocalPostgres {
            port,
            data_dir,
            log,
            bin_dir,
            tuning,
            // Fast shutdown (disconnect clients, checkpoint, exit); immediate when killed:
            // the data directory is thrown away anyway.
            process: Supervised::new(Signal::SIGINT, Duration::from_secs(30), Signal::SIGQUIT),
            superuser: pg.user.clone(),
            run_as,
        })
    }

    /// Whether the data directory was left by a crash: `pg_controldata` reads the state
    /// the control file holds ("in production" after a kill; "shut down" after a
    /// clean stop). Called while the server is down.
    pub fn left_by_a_crash(&self) -> Result<bool> {
        let mut cmd = std::process::Command::new(self.bin_dir.join("pg_controldata"));
        cmd.arg("-D").arg(&self.data_dir).env("LC_ALL", "C");
        as_user(&mut cmd, &self.run_as);
        let out = cmd.output().context("running pg_controldata")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let state = text
            .lines()
            .find_map(|l| l.strip_prefix("Database cluster state:"))
            .map(str::trim)
            .with_context(|| format!("pg_controldata printed no cluster state: {}", text.trim()))?;
        Ok(state == "in production")
    }

    /// Starts the server and waits until it accepts connections.
    pub async fn start(&mut self, detached: bool) -> Result<()> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let mut cmd = Command::new(self.bin_dir.join("postgres"));
        cmd.arg("-D")
            .arg(&self.data_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        as_user(&mut cmd, &self.run_as);
        let child = if detached {
            process::spawn_detached(cmd)
        } else {
            // Immediate shutdown if qbench dies: the data directory is thrown away anyway.
            process::spawn_tied(cmd, Signal::SIGQUIT)
        }
        .context("starting postgres")?;
        self.process.started(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.process.exited() {
                bail!(
                    "postgres exited during start ({status}): {}",
                    log_tail(&self.log, 5)
                );
            }
            if self.socket_client("postgres").await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres did not accept connections within 60 s: {}",
                    log_tail(&self.log, 5)
                );
            }
            // Fine-grained: a crash trial times the restart by it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A superuser connection over the Unix socket (trusted; only the owner can reach it).
    pub async fn socket_client(&self, database: &str) -> Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::Config::new()
            .host_path(&self.data_dir)
            .port(self.port)
            .user(&self.superuser)
            .dbname(database)
            .connect_timeout(Duration::from_secs(2))
            .connect(tokio_postgres::NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Gives the configured user its password and creates the configured database.
    pub async fn provision(&self, pg: &Postgres) -> Result<()> {
        let c = self.socket_client("postgres").await?;
        // Keep the password out of the server log even if the statement failed.
        c.batch_execute("SET log_min_error_statement = panic; SET log_statement = none")
            .await?;
        let literal = pg.password.replace('\'', "''");
        c.batch_execute(&format!(
            "ALTER ROLE \"{}\" WITH LOGIN PASSWORD '{literal}'",
            pg.user
        ))
        .await
        .context("setting the local server's password")?;
        let exists = c
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&pg.database],
            )
            .await?
            .is_some();
        if !exists {
            c.batch_execute(&format!("CREATE DATABASE \"{}\"", pg.database))
                .await
                .context("creating the local database")?;
        }
        Ok(())
    }

    /// TLS only: `ssl = on` with the throwaway certificate, and pg_hba.conf rejecting
    /// every TCP login that is not encrypted (first match wins, so these lines go first).
    /// Called before the first start.
    pub fn require_tls(&self, certs: &super::tls::Certificates) -> Result<()> {
        // The server user must own a key only it can read.
        let key = self.data_dir.join("server.key");
        std::fs::copy(&certs.key, &key).context("copying the TLS key")?;
        chown(&key, &self.run_as)?;
        let conf = format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            certs.cert.display(),
            key.display()
        );
        let mut f = OpenOptions::new()
            .append(true)
            .open(self.data_dir.join("postgresql.conf"))?;
        std::io::Write::write_all(&mut f, conf.as_bytes())?;
        let hba = self.data_dir.join("pg_hba.conf");
        let rest = std::fs::read_to_string(&hba).context("reading pg_hba.conf")?;
        std::fs::write(
            &hba,
            format!(
                "# qbench --local --tls: TCP logins must be encrypted\n\
                 hostnossl all all 0.0.0.0/0 reject\nhostnossl all all ::/0 reject\n{rest}"
            ),
        )
        .context("writing pg_hba.conf")?;
        Ok(())
    }

    /// Stop, then start on the same port and data: a cold server process.
    pub async fn restart(&mut self, detached: bool) -> Result<()> {
        self.process.stop().await;
        self.start(detached).await
    }

    /// Which user runs the server (for the manifest).
    pub fn run_as_name(&self) -> Option<&str> {
        self.run_as.as_ref().map(|(_, _, n)| n.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuning_scales_with_memory() {
        let t = tuning_for_memory(8192);
        assert_eq!(t.shared_buffers_mb, 2048);
        assert_eq!(t.effective_cache_size_mb, 6144);
        assert_eq!(t.maintenance_work_mem_mb, 512);
        assert_eq!(t.work_mem_mb, 32);
        let small = tuning_for_memory(2048);
        assert_eq!(small.shared_buffers_mb, 512);
        assert_eq!(small.work_mem_mb, 8);
        let big = tuning_for_memory(24 * 1024);
        assert_eq!(big.shared_buffers_mb, 6144);
        assert_eq!(big.work_mem_mb, 64, "capped");
    }
}
