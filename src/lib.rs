//! qbench: PostgreSQL queue designs against Valkey Streams, measured honestly.
//!
//! `run` is the whole program behind the command line, so tests call it in-process.

pub mod analyze;
pub mod build;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod cost;
pub mod cost_driver;
pub mod error;
pub mod format;
pub mod graph;
pub mod horizon;
pub mod html_report;
pub mod local;
pub mod mask;
pub mod progress;
pub mod queue;
pub mod samplers;
pub mod schema;
pub mod session;
pub mod shutdown;
pub mod stats;
pub mod suite;
pub mod text;
pub mod timeline;
pub mod tls;
pub mod workload;

use std::process::ExitCode;
use std::sync::OnceLock;

use anyhow::Result;
use clap::Parser;

use crate::build::Build;
use crate::cli::Cli;
use crate::config::Config;
use crate::error::{exit_code, one_line};
use crate::session::{Choices, Session};
use crate::shutdown::Shutdown;

/// Secrets of the effective config, scrubbed from any error line as a last defence.
static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

pub fn main_entry() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::flag_error(e),
    };
    // One TLS provider for the process (the redis crate takes the default one).
    let _ = tls::provider().install_default();
    let threads = build::runtime_threads();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qbench: error: cannot start the async runtime: {e}");
            return ExitCode::from(error::EXIT_FAILURE);
        }
    };
    let result = rt.block_on(run(cli, Build::new(Some(threads))));
    // Do not wait for tasks still parked on the network.
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let secrets = SECRETS.get().map(Vec::as_slice).unwrap_or(&[]);
            eprintln!("qbench: error: {}", one_line(&e, secrets));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Loads the config, checks the command, starts `--local` servers if it needs them,
/// and runs it; Ctrl-C, SIGTERM and SIGHUP stop it cleanly.
pub async fn run(cli: Cli, build: Build) -> Result<()> {
    run_with(cli, Shutdown::install(), build).await
}

/// As [`run`], with a shutdown handle the caller controls (tests interrupt runs with it).
pub async fn run_with(cli: Cli, shutdown: Shutdown, build: Build) -> Result<()> {
    if let Some(done) = commands::generated(&cli.command) {
        return done;
    }
    let env = |k: &str| std::env::var(k).ok();
    let (cfg, source) = Config::load(cli.global.config.as_deref(), &env, &cli.global.overrides()?)?;
    let _ = SECRETS.set(cfg.secrets());
    // Every check that needs no server, before --local starts any.
    let job = commands::check(cli.command, &cfg, &cli.global)?;
    let choices = Choices {
        quiet: cli.global.quiet,
        accept_durability_mismatch: cli.global.accept_durability_mismatch,
    };
    let mut session = Session::new(cfg, source, shutdown, choices).with_build(build);
    if cli.global.local && job.needs_servers() {
        session
            .start_local(&job.local_options(cli.global.local_options()))
            .await?;
    }
    let result = job.run(&session).await;
    session.stop().await;
    result
}
