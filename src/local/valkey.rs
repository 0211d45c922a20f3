//! A throwaway Valkey on a free port, without persistence (`--save "" --appendonly no`),
//! as the seed runs it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::sys::signal::Signal;

use super::binaries::{self, ValkeyFlavor};
use super::postgres::log_tail;
use super::process::{self, Supervised};

pub struct LocalValkey {
    pub port: u16,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub binary: PathBuf,
    pub flavor: ValkeyFlavor,
    pub process: Supervised,
}

impl LocalValkey {
    pub fn prepare(root: &Path, port: u16) -> Result<LocalValkey> {
        let (binary, flavor) = binaries::valkey_server()?;
        let dir = root.join("valkey");
        std::fs::create_dir_all(&dir)?;
        Ok(LocalValkey {
            port,
            log: root.join("valkey.log"),
            dir,
            binary,
            flavor,
            process: Supervised::new(Signal::SIGTERM, Duration::from_secs(15), Signal::SIGKILL),
        })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self, detached: bool) -> Result<()> {
        let mut cmd = Command::new(&self.binary);
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
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
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stop, then start on the same port: an empty, cold server (no persistence).
    pub async fn restart(&mut self, detached: bool) -> Result<()> {
        self.process.stop().await;
        self.start(detached).await
    }
}
