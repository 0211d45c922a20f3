//! `qbench local start|stop`: throwaway servers that outlive one command.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::Signal;

use crate::cli::{GlobalArgs, LocalAction, LocalArgs};
use crate::error::usage;
use crate::local::{self, process, LocalServers, LocalState};
use crate::session::Session;

/// `--local` starts servers for one command; `local` manages its own.
pub fn check(args: LocalArgs, global: &GlobalArgs) -> Result<super::Job> {
    if global.local {
        return Err(usage(
            "--local does not apply to `local`: `qbench local start` starts servers by itself",
        ));
    }
    Ok(super::Job::Local(args, global.local_options()))
}

pub async fn run(s: &Session, args: &LocalArgs, options: &local::Options) -> Result<()> {
    match args.action {
        LocalAction::Start => start(s, options).await,
        LocalAction::Stop => stop().await,
    }
}

fn read_state() -> Option<LocalState> {
    let text = std::fs::read_to_string(local::state_file()).ok()?;
    serde_json::from_str(&text).ok()
}

async fn start(s: &Session, options: &local::Options) -> Result<()> {
    if let Some(old) = read_state() {
        let alive = [
            Some(old.postgres_pid),
            Some(old.valkey_pid),
            old.stunnel_pid,
        ]
        .into_iter()
        .flatten()
        .chain(old.valkey_node_pids.iter().copied())
        .any(process::is_alive);
        if alive {
            return Err(usage(format!(
                "local servers are already running (PostgreSQL on port {}, Valkey on port {}); \
                 run `qbench local stop` first",
                old.postgres_port, old.valkey_port
            )));
        }
    }
    local::preflight(options)?;
    let servers = LocalServers::start(&s.cfg, true, options).await?;
    let mut reach = s.cfg.clone();
    servers.apply_to(&mut reach);
    // A pgpass file lets psql and pgbench in; the password itself is never printed.
    let pgpass = servers.root().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "{}:{}:*:{}:{}\n",
            reach.postgres.host,
            servers.postgres.port,
            s.cfg.postgres.user,
            s.cfg
                .postgres
                .password
                .replace('\\', "\\\\")
                .replace(':', "\\:")
        ),
    )?;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600))?;
    let state = servers.into_state(&s.cfg);
    std::fs::write(local::state_file(), serde_json::to_string_pretty(&state)?)
        .context("writing the local servers' state file")?;
    println!("export PGHOST={}", reach.postgres.host);
    println!("export PGPORT={}", state.postgres_port);
    println!("export PGUSER={}", state.user);
    println!("export PGDATABASE={}", state.database);
    println!("export PGPASSFILE={}", pgpass.display());
    println!("export QBENCH_VALKEY_URL={}", reach.valkey.url);
    if options.tls {
        println!("export PGSSLMODE={}", reach.postgres.sslmode.name());
        println!("export PGSSLROOTCERT='{}'", reach.postgres.sslrootcert);
        println!(
            "export QBENCH_VALKEY_TLS_CA_FILE='{}'",
            reach.valkey.tls_ca_file
        );
    } else {
        // What an earlier `local start --tls` exported would point at servers now gone.
        println!("unset PGSSLMODE PGSSLROOTCERT PGSSLCERT PGSSLKEY QBENCH_VALKEY_TLS_CA_FILE");
    }
    println!("# The password is the configured postgres.password (not printed).");
    println!("# Stop them with: qbench local stop");
    Ok(())
}

async fn stop() -> Result<()> {
    let Some(s) = read_state() else {
        println!("no local servers are running");
        return Ok(());
    };
    if let Some(pid) = s.stunnel_pid {
        process::stop(pid, None, Signal::SIGTERM, Duration::from_secs(5)).await;
    }
    tokio::join!(
        process::stop(
            s.postgres_pid,
            None,
            Signal::SIGINT,
            Duration::from_secs(30)
        ),
        process::stop(s.valkey_pid, None, Signal::SIGTERM, Duration::from_secs(15)),
    );
    for &pid in &s.valkey_node_pids {
        process::stop(pid, None, Signal::SIGTERM, Duration::from_secs(15)).await;
    }
    let _ = std::fs::remove_dir_all(&s.root);
    let _ = std::fs::remove_file(local::state_file());
    println!(
        "stopped PostgreSQL (port {}) and Valkey (port {})",
        s.postgres_port, s.valkey_port
    );
    Ok(())
}
