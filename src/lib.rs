//! qbench: PostgreSQL queue designs against Valkey Streams, measured honestly.
//!
//! `run` is the whole program behind the command line, so tests call it in-process.

pub mod analyze;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
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

use crate::cli::{Cli, Command};
use crate::config::{Config, Source};
use crate::error::{exit_code, one_line, usage};
use crate::local::LocalServers;
use crate::shutdown::Shutdown;

/// The version and the commit it was built from, as `--version` and manifests say it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("QBENCH_COMMIT"),
    ")"
);

/// Secrets of the effective config, scrubbed from any error line as a last defence.
static SECRETS: OnceLock<Vec<String>> = OnceLock::new();

/// Worker threads of the async runtime, for the manifest.
pub static RUNTIME_THREADS: OnceLock<usize> = OnceLock::new();

/// `QBENCH_THREADS`, else one less than the cores (at least 1): a benchmark client on
/// the server's host should leave it a core. Measured on 2 cores: one thread drained
/// skip_locked 5% faster than two and halved the producer's schedule-lag p99.
fn runtime_threads() -> usize {
    std::env::var("QBENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1))
                .max(1)
        })
}

/// Everything a subcommand needs.
pub struct Ctx {
    pub cfg: Config,
    pub source: Source,
    pub global: cli::GlobalArgs,
    pub shutdown: Shutdown,
    /// Set when qbench started the servers itself (`--local`).
    pub local: Option<local::LocalInfo>,
    /// Those servers, for the cold scenario's restarts; stopped when the command ends.
    pub servers: Option<LocalServers>,
}

impl Ctx {
    /// Refreshes `local` after servers were restarted (new pids).
    pub fn refresh_local(&mut self) {
        self.local = self.servers.as_ref().map(LocalServers::info);
    }
}

pub fn main_entry() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cli::flag_error(e),
    };
    // One TLS provider for the process (the redis crate takes the default one).
    let _ = tls::provider().install_default();
    let threads = runtime_threads();
    let _ = RUNTIME_THREADS.set(threads);
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
    let result = rt.block_on(run(cli));
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

/// Loads the config, starts `--local` servers if asked, and runs one subcommand.
pub async fn run(cli: Cli) -> Result<()> {
    let shutdown = Shutdown::install();
    run_with(cli, shutdown).await
}

/// As [`run`], with a shutdown handle the caller controls (tests interrupt runs with it).
pub async fn run_with(cli: Cli, shutdown: Shutdown) -> Result<()> {
    // Generated from the flags alone: no config, no server.
    match &cli.command {
        Command::Completions(a) => return commands::shell_docs::completions(a),
        Command::Man(a) => return commands::shell_docs::man(a),
        _ => {}
    }
    let env = |k: &str| std::env::var(k).ok();
    let (cfg, source) = Config::load(cli.global.config.as_deref(), &env, &cli.global.overrides())?;
    let _ = SECRETS.set(cfg.secrets());
    if cfg.benchmark.production_rate == config::Rate::Max
        && !matches!(cli.command, Command::Produce(_) | Command::Config)
    {
        return Err(usage(
            "--rate max (benchmark.production_rate = \"max\") applies to `produce` only",
        ));
    }
    let needs_servers = matches!(
        cli.command,
        Command::SetupSchema(_)
            | Command::Produce(_)
            | Command::Work(_)
            | Command::RunSuite(_)
            | Command::Sweep(_)
            | Command::Horizon(_)
            | Command::CrashTest(_)
    );
    // A list of worker counts is a worker-scaling sweep; every other command runs one.
    if !matches!(cli.command, Command::Sweep(_) | Command::Config) {
        cfg.benchmark.num_workers.single()?;
    }
    let crashes = match &cli.command {
        Command::CrashTest(_) => true,
        Command::RunSuite(a) => a.crash_trials > 0,
        _ => false,
    };
    if crashes && cli.global.valkey_cluster.is_some() {
        return Err(usage(
            "crash trials of a --valkey-cluster are not supported: run them against one \
             Valkey (leave --valkey-cluster out)",
        ));
    }
    if crashes && !cli.global.local {
        return Err(usage(
            "crash trials SIGKILL the servers: run them with --local, which starts throwaway ones (qbench never kills a server it did not start)",
        ));
    }
    // Flags that can be checked without a server are, before --local starts any.
    match &cli.command {
        Command::Produce(a)
            if a.count.is_some() && cli.global.benchmark.production_duration.is_some() =>
        {
            return Err(usage(
                "the argument '--count <N>' cannot be used with '--duration <S>'; see `qbench produce --help`",
            ));
        }
        Command::Sweep(a) => {
            commands::sweep::precheck(a, &cfg)?;
        }
        Command::RunSuite(a) => {
            if a.capacity {
                commands::sweep::options(&a.capacity_args, a.quick, &a.out, a.quick)?;
            }
            commands::horizon::suite_options(a, &cli.global)?;
        }
        Command::Horizon(a) => {
            commands::horizon::options(a, &cfg, &cli.global)?;
        }
        _ => {}
    }
    let local_start =
        matches!(&cli.command, Command::Local(a) if matches!(a.action, cli::LocalAction::Start));
    cli.global.check_local(local_start)?;
    if needs_servers && !cli.global.local {
        // An unreadable CA or key, or a verify mode without a CA, before anything runs.
        queue::pg::tls::connector(&cfg.postgres)?;
        queue::valkey::conn::Client::open(&cfg.valkey)?;
    }
    if cli.global.local && matches!(cli.command, Command::Local(_)) {
        return Err(usage(
            "--local does not apply to `local`: `qbench local start` starts servers by itself",
        ));
    }
    let mut ctx = Ctx {
        cfg,
        source,
        global: cli.global.clone(),
        shutdown,
        local: None,
        servers: None,
    };
    if cli.global.local && needs_servers {
        local::preflight(&cli.global.local_options())?;
        if !cli.global.quiet {
            eprintln!("qbench: starting local PostgreSQL and Valkey …");
        }
        // Not raced against Ctrl-C: dropping a half-done start would leave its data
        // directory behind. It takes about a second; then the servers are stopped.
        let started = LocalServers::start(&ctx.cfg, false, &cli.global.local_options()).await;
        if ctx.shutdown.is_triggered() {
            if let Ok(s) = started {
                s.stop().await;
            }
            return Err(error::Interrupted.into());
        }
        let servers = started?;
        servers.apply_to(&mut ctx.cfg);
        ctx.servers = Some(servers);
        ctx.refresh_local();
        let result = dispatch(cli.command, &mut ctx).await;
        if let Some(servers) = ctx.servers.take() {
            servers.stop().await;
        }
        return result;
    }
    dispatch(cli.command, &mut ctx).await
}

async fn dispatch(command: Command, ctx: &mut Ctx) -> Result<()> {
    match command {
        Command::SetupSchema(args) => commands::setup_schema::run(ctx, &args).await,
        Command::Config => commands::show_config::run(ctx),
        Command::Local(args) => commands::local_servers::run(ctx, &args).await,
        Command::Produce(args) => commands::produce::run(ctx, &args).await,
        Command::Work(args) => commands::work::run(ctx, &args).await,
        Command::RunSuite(args) => commands::run_suite::run(ctx, &args).await,
        Command::CrashTest(args) => commands::crash_test::run(ctx, &args).await,
        Command::Sweep(args) => commands::sweep::run(ctx, &args).await,
        Command::Horizon(args) => commands::horizon::run(ctx, &args).await,
        Command::Analyze(args) => commands::analyze::run(&args),
        Command::Graph(args) => commands::graph::run(&args),
        Command::Report(args) => commands::report::run(&args),
        Command::Completions(args) => commands::shell_docs::completions(&args),
        Command::Man(args) => commands::shell_docs::man(&args),
    }
}
