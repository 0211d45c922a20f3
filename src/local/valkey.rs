//! A throwaway Valkey on a free port, persisting as the durability tier asks: strict
//! fsyncs its append-only file on every write, relaxed once a second, volatile (the
//! seed's way) keeps nothing.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use super::binaries::{self, ValkeyFlavor};
use super::postgres::log_tail;
use super::process::{self, Supervised};
use crate::format::durability::Tier;

/// The persistence flags of a tier (RDB snapshots off in all: they are not a tier).
pub fn persistence_args(tier: Tier) -> [&'static str; 6] {
    let (aof, fsync) = match tier {
        Tier::Strict => ("yes", "always"),
        Tier::Relaxed => ("yes", "everysec"),
        Tier::Volatile => ("no", "everysec"),
    };
    ["--save", "", "--appendonly", aof, "--appendfsync", fsync]
}

pub struct LocalValkey {
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub binary: PathBuf,
    pub flavor: ValkeyFlavor,
    pub process: Supervised,
    pub tier: Tier,
    /// A node of a `--valkey-cluster` (its cluster state file lives in `dir`).
    pub cluster: bool,
}

impl LocalValkey {
    pub fn prepare(root: &Path, port: u16, tier: Tier) -> Result<LocalValkey> {
        Self::prepare_named(root, "valkey", port, tier, false)
    }

    /// A server whose files are `root/name` and `root/name.log`.
    pub fn prepare_named(
        root: &Path,
        name: &str,
        port: u16,
        tier: Tier,
        cluster: bool,
    ) -> Result<LocalValkey> {
        let (binary, flavor) = binaries::valkey_server()?;
        let dir = root.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(LocalValkey {
            port,
            log: root.join(format!("{name}.log")),
            dir,
            binary,
            flavor,
            process: Supervised::new(Signal::SIGTERM, Duration::from_secs(15), Signal::SIGKILL),
            tier,
            cluster,
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Whether the server's log since byte `from` shows no clean shutdown (a SIGKILL
    /// leaves no line; a shutdown writes "ready to exit").
    pub fn left_by_a_crash(&self, from: u64) -> bool {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let since = text.get(from as usize..).unwrap_or_default();
        !String::from_utf8_lossy(since).contains("ready to exit")
    }

    /// The log's length now.
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map_or(0, |m| m.len())
    }

    pub async fn start(&mut self, detached: bool) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(persistence_args(self.tier))
            // Records stalls of 10 ms or more (forks, fsyncs, slow commands) for the
            // timelines; the default 0 records none.
            .args(["--latency-monitor-threshold", "10"])
            .args(["--daemonize", "no"])
            .args(match self.cluster {
                // nodes.conf is relative to --dir: the node finds its cluster after a restart.
                true => &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                ][..],
                false => &[],
            })
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .with_context(|| format!("opening {}", self.log.display()))?,
            );
        let child = if detached {
            process::spawn_detached(cmd)
        } else {
            process::spawn_tied(cmd, Signal::SIGTERM)
        }
        .with_context(|| format!("starting {}", self.binary.display()))?;
        self.process.started(child);
        self.wait_ready().await
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = redis::Client::open(self.url())?;
        loop {
            if let Some(status) = self.process.exited() {
                bail!(
                    "{} exited during start ({status}): {}",
                    self.binary.display(),
                    log_tail(&self.log, 5)
                );
            }
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "Valkey did not answer PING within 30 s: {}",
                    log_tail(&self.log, 5)
                );
            }
            // Fine-grained: a crash trial times the restart by it.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stop, then start on the same port: a cold server (empty unless it persists).
    pub async fn restart(&mut self, detached: bool) -> Result<()> {
        self.process.stop().await;
        self.start(detached).await
    }
}
