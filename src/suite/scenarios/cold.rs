//! The cold scenario: the server restarted (and the page cache dropped where allowed)
//! before an ordinary measured window, with an exact account of what "cold" meant.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use crate::config::Config;
use crate::queue::{self, QueueKind};
use crate::session::Session;

pub struct Cold;

#[async_trait::async_trait(?Send)]
impl super::Scenario for Cold {
    fn extra_s(&self, _b: &crate::config::Benchmark, _o: &crate::suite::SuiteOptions) -> f64 {
        2.0
    }

    async fn before(
        &self,
        s: &Session,
        t: &crate::suite::Planned,
        cfg: &Config,
    ) -> Result<Option<(String, serde_json::Value)>> {
        Ok(Some(("cold_start".into(), prepare(s, t.kind, cfg).await?)))
    }

    async fn run(&self, t: super::Test<'_>) -> Result<crate::workload::Report> {
        let out = crate::format::files::OutputDir::prepare(t.dir(), &t.planned.name, true)?;
        crate::suite::measured::window(t, out, None, vec![]).await
    }
}

/// Restarts the server when qbench can (its own `--local` server, or a configured
/// `restart_command`), then drops the OS page cache where permitted.
async fn prepare(s: &Session, kind: QueueKind, cfg: &Config) -> Result<serde_json::Value> {
    let backend = kind.backend();
    let how = if s.restart(backend).await? {
        "qbench restarted its --local server"
    } else {
        let cmd = backend.restart_command(cfg).to_string();
        if cmd.trim().is_empty() {
            "not restarted (no --local, no restart_command): the queue was only emptied and reconnected"
        } else {
            run_restart_command(&cmd).await?;
            wait_reachable(kind, cfg).await?;
            "restarted by restart_command"
        }
    };
    let restarted = !how.starts_with("not");
    let (dropped, note) = match drop_page_cache() {
        Ok(()) => (true, "sync; echo 3 > /proc/sys/vm/drop_caches".to_string()),
        Err(e) => (false, format!("not permitted here: {e}")),
    };
    Ok(json!({
        "server_restarted": restarted,
        "how": how,
        "page_cache_dropped": dropped,
        "page_cache": note,
        "queue_reset": true,
        "reconnected": true,
    }))
}

async fn run_restart_command(cmd: &str) -> Result<()> {
    let out = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .context("running restart_command")?;
    if !out.status.success() {
        bail!(
            "restart_command failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

async fn wait_reachable(kind: QueueKind, cfg: &Config) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match queue::open(kind, cfg).await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e.context("the server did not come back within 60 s of restart_command"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

fn drop_page_cache() -> std::io::Result<()> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { nix::libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3")
}
