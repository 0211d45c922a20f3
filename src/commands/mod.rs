//! One file per subcommand. Each checks its own arguments against the config before any
//! server starts (`check`), then runs on the [`Session`] (`run`). Commands that write
//! results end the same way ([`ending`]): analyze, graph and report.html.

pub mod analyze;
pub mod cost;
pub mod crash_test;
pub mod ending;
pub mod graph;
pub mod horizon;
pub mod local_servers;
pub mod options;
pub mod produce;
pub mod report;
pub mod run_suite;
pub mod setup_schema;
pub mod shell_docs;
pub mod show_config;
pub mod sweep;
pub mod test_setup;
pub mod work;

use anyhow::Result;

use crate::cli::{Command, GlobalArgs};
use crate::config::{Config, Rate};
use crate::error::usage;
use crate::session::Session;

/// A command whose arguments passed every check that needs no server.
pub enum Job {
    SetupSchema(crate::cli::SetupSchemaArgs),
    Config,
    Local(crate::cli::LocalArgs, crate::local::Options),
    Produce(crate::cli::ProduceArgs),
    Work(crate::cli::WorkArgs),
    RunSuite(Box<run_suite::Plan>),
    Sweep(Box<sweep::Plan>),
    Horizon(Box<horizon::Plan>),
    CrashTest(crate::cli::CrashTestArgs),
    Cost(crate::cli::CostArgs),
    Analyze(crate::cli::AnalyzeArgs),
    Graph(crate::cli::GraphArgs),
    Report(crate::cli::ReportArgs),
    /// Generated from the flags alone (completions, man pages): done before the config.
    Done,
}

/// Checks `command`'s arguments and the global flags it takes; returns the job to run.
pub fn check(command: Command, cfg: &Config, global: &GlobalArgs) -> Result<Job> {
    let local_start =
        matches!(&command, Command::Local(a) if matches!(a.action, crate::cli::LocalAction::Start));
    global.check_local(local_start)?;
    Ok(match command {
        Command::SetupSchema(a) => Job::SetupSchema(servers(a, cfg, global)?),
        Command::Config => Job::Config,
        Command::Local(a) => local_servers::check(a, global)?,
        Command::Produce(a) => Job::Produce(produce::check(a, cfg, global)?),
        Command::Work(a) => Job::Work(servers(a, cfg, global)?),
        Command::RunSuite(a) => Job::RunSuite(Box::new(run_suite::check(a, cfg, global)?)),
        Command::Sweep(a) => Job::Sweep(Box::new(sweep::check(a, cfg, global)?)),
        Command::Horizon(a) => Job::Horizon(Box::new(horizon::check(a, cfg, global)?)),
        Command::CrashTest(a) => Job::CrashTest(crash_test::check(a, cfg, global)?),
        Command::Cost(a) => Job::Cost(cost::check(a, cfg, global)?),
        Command::Analyze(a) => Job::Analyze(a),
        Command::Graph(a) => Job::Graph(a),
        Command::Report(a) => Job::Report(a),
        Command::Completions(_) | Command::Man(_) => Job::Done,
    })
}

/// Completions and man pages come from the flags alone: no config, no server. `None`
/// for every other command.
pub fn generated(command: &Command) -> Option<Result<()>> {
    match command {
        Command::Completions(a) => Some(shell_docs::completions(a)),
        Command::Man(a) => Some(shell_docs::man(a)),
        _ => None,
    }
}

impl Job {
    /// Whether the job talks to the queue servers (so `--local` starts them).
    pub fn needs_servers(&self) -> bool {
        matches!(
            self,
            Job::SetupSchema(_)
                | Job::Produce(_)
                | Job::Work(_)
                | Job::RunSuite(_)
                | Job::Sweep(_)
                | Job::Horizon(_)
                | Job::CrashTest(_)
                | Job::Cost(_)
        )
    }

    /// What `--local` starts for this job: `cost` counts statements, so its
    /// PostgreSQL loads pg_stat_statements.
    pub fn local_options(&self, mut options: crate::local::Options) -> crate::local::Options {
        options.statements = matches!(self, Job::Cost(_));
        options
    }

    pub async fn run(self, s: &Session) -> Result<()> {
        match self {
            Job::SetupSchema(a) => setup_schema::run(s, &a).await,
            Job::Config => show_config::run(s),
            Job::Local(a, options) => local_servers::run(s, &a, &options).await,
            Job::Produce(a) => produce::run(s, &a).await,
            Job::Work(a) => work::run(s, &a).await,
            Job::RunSuite(p) => run_suite::run(s, *p).await,
            Job::Sweep(p) => sweep::run(s, *p).await,
            Job::Horizon(p) => horizon::run(s, *p).await,
            Job::CrashTest(a) => crash_test::run(s, &a).await,
            Job::Cost(a) => cost::run(s, &a).await,
            Job::Analyze(a) => analyze::run(&a),
            Job::Graph(a) => graph::run(&a),
            Job::Report(a) => report::run(&a),
            Job::Done => Ok(()),
        }
    }
}

/// The checks every command that runs one test against the servers shares: one worker
/// count (a list is a sweep's), a fixed rate (`max` is produce's), and, for servers
/// qbench does not start, TLS files and modes that can be read before anything runs.
fn servers<T>(args: T, cfg: &Config, global: &GlobalArgs) -> Result<T> {
    cfg.benchmark.num_workers.single()?;
    fixed_rate(cfg)?;
    reachable(cfg, global)?;
    Ok(args)
}

/// `--rate max` is `produce`'s alone: every other command offers a rate or none.
fn fixed_rate(cfg: &Config) -> Result<()> {
    if cfg.benchmark.production_rate == Rate::Max {
        return Err(usage(
            "--rate max (benchmark.production_rate = \"max\") applies to `produce` only",
        ));
    }
    Ok(())
}

/// An unreadable CA or key, or a verify mode without a CA, refused before anything runs
/// (`--local` servers get settings of qbench's own).
fn reachable(cfg: &Config, global: &GlobalArgs) -> Result<()> {
    if !global.local {
        crate::queue::pg::tls::connector(&cfg.postgres)?;
        crate::queue::valkey::conn::Client::open(&cfg.valkey)?;
    }
    Ok(())
}

/// Crash trials SIGKILL servers: only `--local` ones, and not a cluster.
fn crashes_allowed(global: &GlobalArgs) -> Result<()> {
    if global.valkey_cluster.is_some() {
        return Err(usage(
            "crash trials of a --valkey-cluster are not supported: run them against one \
             Valkey (leave --valkey-cluster out)",
        ));
    }
    if !global.local {
        return Err(usage(
            "crash trials SIGKILL the servers: run them with --local, which starts throwaway ones (qbench never kills a server it did not start)",
        ));
    }
    Ok(())
}
