//! `qbench local start|stop`: throwaway servers that outlive one command.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::cli::{LocalAction, LocalArgs};
use crate::error::usage;
use crate::local::{self, process, LocalServers, LocalState};
use crate::Ctx;

pub async fn run(ctx: &Ctx, args: &LocalArgs) -> Result<()> {
    match args.action {
        LocalAction::Start => start(ctx).await,
        LocalAction::Stop => stop().await,
    }
}

fn read_state() -> Option<LocalState> {
    let text = std::fs::read_to_string(local::state_file()).ok()?;
    serde_json::from_str(&text).ok()
}

async fn start(ctx: &Ctx) -> Result<()> {
    if let Some(s) = read_state() {
        if process::is_alive(s.postgres_pid) || process::is_alive(s.valkey_pid) {
            return Err(usage(format!(
                "local servers are already running (PostgreSQL on port {}, Valkey on port {}); \
                 run `qbench local stop` first",
                s.postgres_port, s.valkey_port
            )));
        }
    }
    let servers = LocalServers::start(&ctx.cfg, true).await?;
    // A pgpass file lets psql and pgbench in; the password itself is never printed.
    let pgpass = servers.root().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "127.0.0.1:{}:*:{}:{}\n",
            servers.postgres.port,
            ctx.cfg.postgres.user,
            ctx.cfg
                .postgres
                .password
                .replace('\\', "\\\\")
                .replace(':', "\\:")
        ),
    )?;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600))?;
    let valkey_url = servers.valkey.url();
    let state = servers.into_state(&ctx.cfg);
    std::fs::write(local::state_file(), serde_json::to_string_pretty(&state)?)
        .context("writing the local servers' state file")?;
    println!("export PGHOST=127.0.0.1");
    println!("export PGPORT={}", state.postgres_port);
    println!("export PGUSER={}", state.user);
    println!("export PGDATABASE={}", state.database);
    println!("export PGPASSFILE={}", pgpass.display());
    println!("export QBENCH_VALKEY_URL={valkey_url}");
    println!("# The password is the configured postgres.password (not printed).");
    println!("# Stop them with: qbench local stop");
    Ok(())
}

async fn stop() -> Result<()> {
    let Some(s) = read_state() else {
        println!("no local servers are running");
        return Ok(());
    };
    tokio::join!(
        process::stop(
            s.postgres_pid,
            None,
            Signal::SIGINT,
            Duration::from_secs(30)
        ),
        process::stop(s.valkey_pid, None, Signal::SIGTERM, Duration::from_secs(15)),
    );
    let _ = std::fs::remove_dir_all(&s.root);
    let _ = std::fs::remove_file(local::state_file());
    println!(
        "stopped PostgreSQL (port {}) and Valkey (port {})",
        s.postgres_port, s.valkey_port
    );
    Ok(())
}
