//! Every command-line flag of qbench, in one place.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{BenchmarkLayer, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "qbench",
    version = crate::build::VERSION,
    about = "Should our job queue be a PostgreSQL table or a Valkey Stream? Measure it.",
    long_about = "qbench benchmarks three PostgreSQL queue designs (skip_locked, delete_returning, \
partitioned) against Valkey Streams: throughput, tail latency, CPU and memory, cold, warm and \
under pgbench contention.\n\nConfig layers, lowest first: defaults, the TOML file (--config or \
./qbench.toml), the environment (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, \
QBENCH_VALKEY_URL), then flags."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// TOML config file [default: ./qbench.toml if it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// PostgreSQL as postgres://user:password@host:port/database
    #[arg(long, global = true, value_name = "URL")]
    pub pg_url: Option<String>,
    /// Valkey as redis://[:password@]host:port
    #[arg(long, global = true, value_name = "URL")]
    pub valkey_url: Option<String>,
    /// Start a throwaway PostgreSQL and Valkey for this command, and stop them after
    #[arg(long, global = true)]
    pub local: bool,
    /// With --local (or `local start`): both servers take only TLS from the network (Valkey
    /// behind stunnel4), with a throwaway CA; qbench connects with verify-full
    #[arg(long, global = true)]
    pub tls: bool,
    /// With --local (or `local start`): Valkey as a cluster of N primaries on this machine,
    /// the queue spread over N streams, one per primary
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub valkey_cluster: Option<u16>,
    /// No progress lines on stderr
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Run even when a given server is not in the --durability tier asked for (the
    /// tier it ran in is recorded, and analyze keeps tiers apart)
    #[arg(long, global = true)]
    pub accept_durability_mismatch: bool,
    /// Every `[benchmark]` key, as a flag (`--rate`, `--workers`, …).
    #[command(flatten)]
    pub benchmark: BenchmarkLayer,
}

impl GlobalArgs {
    /// `--tls` and `--valkey-cluster` start servers, so they need `--local` (or
    /// `local start`: `local_start`), and not every pair of them can be started.
    pub fn check_local(&self, local_start: bool) -> Result<(), crate::error::UsageError> {
        let local = self.local || local_start;
        if self.valkey_cluster.is_some() && !local {
            return Err(crate::error::UsageError::new(
                "--valkey-cluster starts a throwaway cluster, so it needs --local (or `qbench \
                 local start`); for your own cluster set valkey.cluster = true or a \
                 redis+cluster:// URL",
            ));
        }
        self.local_options().check()?;
        if self.tls && !local {
            return Err(crate::error::UsageError::new(
                "--tls starts throwaway TLS servers, so it needs --local (or `qbench local \
                 start`); for your own servers set postgres.sslmode and a rediss:// valkey.url",
            ));
        }
        Ok(())
    }

    /// What `--local` is to start beyond the plain pair.
    pub fn local_options(&self) -> crate::local::Options {
        crate::local::Options {
            tls: self.tls,
            valkey_cluster: self.valkey_cluster.unwrap_or(0),
            statements: false,
        }
    }

    /// The flags' layer of the config; a `--pg-url` is read here, as libpq reads it.
    pub fn overrides(&self) -> Result<Overrides, crate::error::UsageError> {
        Ok(Overrides {
            pg_url: self
                .pg_url
                .as_deref()
                .map(crate::queue::pg::url::parse)
                .transpose()?,
            valkey_url: self.valkey_url.clone(),
            benchmark: self.benchmark.clone(),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the queue tables, stream and group (idempotent; --reset empties them)
    SetupSchema(SetupSchemaArgs),
    /// Print the effective config as TOML, passwords masked
    Config,
    /// Start or stop throwaway servers that outlive one command
    Local(LocalArgs),
    /// Offer jobs to a queue, open loop, at --rate for --duration (or --count jobs)
    Produce(ProduceArgs),
    /// Run workers against a queue: claim, simulate --processing-ms of work, complete
    Work(WorkArgs),
    /// Run the seed's matrix: designs × cold, warm and load scenarios, one test at a time
    RunSuite(RunSuiteArgs),
    /// Find each design's highest rate within a p99 goal (MST@SLO), open loop, then
    /// burn down a pre-filled queue; with a --workers list, burn-down per worker count
    /// and the Universal Scalability Law fitted to it
    Sweep(SweepArgs),
    /// Hold a transaction open beside a steady load (baseline, hold, recovery) and measure
    /// what the held-back xmin horizon costs: dead tuples, claim latency, recovery
    Horizon(HorizonCmdArgs),
    /// Crash the servers while jobs flow (SIGKILL, restart) and count the acknowledged jobs lost; needs --local
    CrashTest(CrashTestArgs),
    /// What each design's protocol costs the server per job, read from its counters:
    /// statements, transactions, WAL bytes, dead tuples, buffers (--local loads
    /// pg_stat_statements for it)
    Cost(CostArgs),
    /// Analyze result folders: tables per scenario, findings, summary.csv and summary.json
    Analyze(AnalyzeArgs),
    /// Draw the six charts (PNG at 300 DPI and SVG) from analyze's summary.csv
    Graph(GraphArgs),
    /// Write report.html: findings, tables, charts and caveats in one self-contained page
    Report(ReportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions(CompletionsArgs),
    /// Print qbench's man page, or write one page per command into --out DIR
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// e.g. `qbench completions bash > /etc/bash_completion.d/qbench`
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write qbench.1 and qbench-COMMAND.1 here instead of the top page to stdout
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// run-suite's results folder: reads DIR/analysis/summary.json and DIR/graphs/*.svg
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub dir: PathBuf,
    /// Where the page goes [default: DIR/report.html]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// analyze's summary.csv
    #[arg(
        long,
        value_name = "FILE",
        default_value = "results/analysis/summary.csv"
    )]
    pub input: PathBuf,
    /// Where the charts go
    #[arg(long, value_name = "DIR", default_value = "results/graphs")]
    pub output: PathBuf,
    /// The durability tier to draw when summary.csv holds several (default: the
    /// strictest that both backends ran in)
    #[arg(long, value_name = "TIER")]
    pub tier: Option<String>,
    /// Also draw TEST_timeline for every test: its seconds and the server's events,
    /// from the per-second files in the folder each summary.csv row names, with the
    /// spikes analyze found (its --spike-factor, recorded in the row)
    #[arg(long)]
    pub timelines: bool,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// PostgreSQL results (run-suite's DIR/vm1_pg)
    #[arg(long, value_name = "DIR")]
    pub pg_results: Option<PathBuf>,
    /// Valkey results (run-suite's DIR/vm2_valkey)
    #[arg(long, value_name = "DIR")]
    pub valkey_results: Option<PathBuf>,
    /// A results folder, with the folders commands write below it (vm1_pg/, vm2_valkey/,
    /// crash/): run-suite's, sweep's, horizon's or a produce/work --out (repeatable)
    #[arg(long, value_name = "DIR")]
    pub results: Vec<PathBuf>,
    /// Where summary.csv and summary.json go
    #[arg(long, value_name = "DIR", default_value = "results/analysis")]
    pub output: PathBuf,
    /// A latency spike is a second whose end-to-end p99 is over K × the test's median
    /// per-second p99 (spikes.csv, the findings)
    #[arg(long, value_name = "K", default_value_t = crate::timeline::spikes::FACTOR)]
    pub spike_factor: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendArg {
    /// skip_locked, delete_returning and partitioned, into DIR/vm1_pg
    Pg,
    /// valkey_streams, into DIR/vm2_valkey
    Valkey,
    /// both
    All,
}

#[derive(Debug, Args)]
pub struct RunSuiteArgs {
    #[arg(long, value_enum)]
    pub backend: BackendArg,
    /// These designs (comma-separated) instead of the seed's four (a design added to the
    /// registry later runs only where it is named)
    #[arg(long, value_name = "LIST")]
    pub queues: Option<String>,
    /// Scenarios to run (comma-separated): cold, warm, load, and horizon (a held
    /// transaction; PostgreSQL designs, with Valkey as the control)
    #[arg(long, value_name = "LIST", default_value = "cold,warm,load")]
    pub scenarios: String,
    /// Results folder
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Short smoke run (5 s tests, 3 s warmup): checks the tool, not for conclusions
    #[arg(long)]
    pub quick: bool,
    /// Re-run tests that are already complete
    #[arg(long)]
    pub force: bool,
    /// After each design's tests, crash its server N times (SIGKILL, restart) and count
    /// the acknowledged jobs lost: the report's durability is then measured; needs --local
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub crash_trials: u32,
    /// Run the whole matrix N times, interleaved (every design of repeat 1, then of
    /// repeat 2, the design order rotated each time); tests are named TEST.rK. analyze
    /// then gives medians with 95 % intervals. 5 is recommended; 1 gives no interval
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// After the matrix, sweep each design for its MST@SLO and burn down a pre-filled
    /// queue (DIR/<backend>/sweep/); analyze and graph add capacity tables and charts
    #[arg(long)]
    pub capacity: bool,
    #[command(flatten)]
    pub capacity_args: CapacityArgs,
    #[command(flatten)]
    pub horizon: HorizonArgs,
    /// A name for this variant (letters, digits, - and _), recorded in every manifest:
    /// analyze compares the same design across labels (an A/B or A/A check)
    #[arg(long, value_name = "NAME")]
    pub label: Option<String>,
    #[command(flatten)]
    pub end: EndArgs,
}

/// A positive number (a flag's value).
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

fn factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (1.05..=10.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a factor from 1.05 to 10")),
    }
}

fn percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v < 100.0 => Ok(v),
        _ => Err(format!("{s:?} is not a percentage above 0 and below 100")),
    }
}

/// How a capacity measurement searches and judges (`sweep`, `run-suite --capacity`).
#[derive(Debug, Clone, Args)]
pub struct CapacityArgs {
    /// The latency goal: a step passes only if its end-to-end p99 is at most this
    #[arg(long, value_name = "MS", default_value = "100", value_parser = positive)]
    pub slo_p99_ms: f64,
    /// Bisect until the first failing rate is within this many percent of the last passing one
    #[arg(long, value_name = "PCT", default_value = "3", value_parser = percent)]
    pub precision: f64,
    /// The ramp multiplies the rate by this until a step fails
    #[arg(long, value_name = "X", default_value = "1.5", value_parser = factor)]
    pub step_factor: f64,
    /// The first step's rate, jobs/s
    #[arg(long, value_name = "R", default_value = "500", value_parser = positive)]
    pub start_rate: f64,
    /// No step above this rate: the search ends there if nothing failed
    #[arg(long, value_name = "R", default_value = "1000000", value_parser = positive)]
    pub max_rate: f64,
    /// Seconds each step is judged over, after the settle period (at least 10)
    /// [default: 60; --quick 10]
    #[arg(long, value_name = "S", value_parser = positive)]
    pub step_duration: Option<f64>,
    /// Seconds each step runs first, thrown away [default: 10; --quick 5]
    #[arg(long, value_name = "S")]
    pub settle: Option<f64>,
    /// The producer's schedule-lag p99 above which a step is blamed on the client
    /// [default: half the SLO]
    #[arg(long, value_name = "MS", value_parser = positive)]
    pub max_lag_ms: Option<f64>,
    /// Jobs each burn-down pre-fills and drains (0: no burn-down) [default: about 60 s
    /// at the rate the sweep measured (--quick: 10 s), at least 1,000 jobs]
    #[arg(long, value_name = "N")]
    pub burndown: Option<u64>,
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// A design (skip_locked, delete_returning, partitioned, valkey_streams, pgmq), a comma
    /// list, `libraries` (the designs that model a library), or all
    #[arg(long, default_value = "all", value_name = "QUEUE")]
    pub queue: String,
    /// Short steps (10 s after a 5 s settle): checks the tool, not for conclusions
    #[arg(long)]
    pub quick: bool,
    /// Results folder: files go to DIR/sweep/
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: std::path::PathBuf,
    #[command(flatten)]
    pub capacity: CapacityArgs,
    #[command(flatten)]
    pub end: EndArgs,
}

#[derive(Debug, Args)]
pub struct CrashTestArgs {
    /// A design (skip_locked, delete_returning, partitioned, valkey_streams, pgmq), a comma
    /// list, `libraries` (the designs that model a library), or all
    #[arg(long, default_value = "all", value_name = "QUEUE")]
    pub queue: String,
    /// Crashes per design
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub trials: u32,
    /// Where DESIGN_TIER_crash.json go
    #[arg(long, value_name = "DIR", default_value = "results/crash")]
    pub out: PathBuf,
    #[command(flatten)]
    pub end: EndArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CostArgs {
    /// A design, a comma list, `libraries`, or all
    #[arg(long, default_value = "all", value_name = "QUEUE")]
    pub queue: String,
    /// Jobs per design: enqueued one per call, then claimed and completed by one worker
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub jobs: u64,
    /// Where cost.csv goes
    #[arg(long, value_name = "DIR", default_value = "results/cost")]
    pub out: PathBuf,
    /// Also measure a real library: qbench runs `CMD setup`, then `CMD run N` between
    /// two readings of the counters (bench/libraries/ has the drivers)
    #[arg(long, value_name = "CMD", requires_all = ["driver_name", "driver_tables"])]
    pub driver: Option<String>,
    /// The driver's row name in the table (`graphile-worker 0.17.3`)
    #[arg(long, value_name = "NAME", requires = "driver")]
    pub driver_name: Option<String>,
    /// A regular expression naming the library's tables, for dead tuples and HOT updates
    #[arg(long, value_name = "REGEX", requires = "driver")]
    pub driver_tables: Option<String>,
}

/// How a command that writes results ends.
#[derive(Debug, Clone, Default, Args)]
pub struct EndArgs {
    /// Do not analyze, graph and write report.html when the command ends (`analyze`,
    /// `graph` and `report` do it later)
    #[arg(long)]
    pub no_report: bool,
}

/// Where a test's result files go.
#[derive(Debug, Clone, Args)]
pub struct OutArgs {
    /// Write the test's result files into this folder
    #[arg(long, value_name = "DIR", requires = "name")]
    pub out: Option<PathBuf>,
    /// Test name: files are DIR/TEST_metrics.jsonl, TEST_latency.hlog, …
    #[arg(long, value_name = "TEST", requires = "out")]
    pub name: Option<String>,
    /// Another process's files for the same test: DIR/TEST.INSTANCE_*
    #[arg(long, value_name = "INSTANCE", requires = "out")]
    pub instance: Option<String>,
    /// Replace existing results of this test
    #[arg(long)]
    pub force: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// Begin the load at this UTC time (RFC 3339, e.g. 2026-12-01T17:30:00Z), after every
    /// connection is open: processes on several hosts start together
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<String>,
    /// The coordinated run this process belongs to; analyze refuses to merge one test's
    /// files from different runs
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub end: EndArgs,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// skip_locked, delete_returning, partitioned or valkey_streams
    #[arg(long, value_name = "QUEUE")]
    pub queue: String,
    /// Produce exactly N jobs instead of for --duration seconds (not both; checked in
    /// `run`, as clap cannot see a global flag from a subcommand's definition)
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Debug, Args)]
pub struct WorkArgs {
    /// skip_locked, delete_returning, partitioned or valkey_streams
    #[arg(long, value_name = "QUEUE")]
    pub queue: String,
    /// Stop once the queue has been empty for S seconds (time before the first job does not count)
    #[arg(long, value_name = "S")]
    pub until_idle: Option<f64>,
    /// Empty the queue, pre-fill N jobs, drain them, and report jobs/s (closed loop, as
    /// published burn-down figures are measured)
    #[arg(long, value_name = "N", conflicts_with = "until_idle", num_args = 0..=1, default_missing_value = "100000")]
    pub burndown: Option<u64>,
    #[command(flatten)]
    pub out: OutArgs,
}

#[derive(Debug, Args)]
pub struct SetupSchemaArgs {
    /// A design (skip_locked, delete_returning, partitioned, valkey_streams, pgmq), a comma
    /// list, `libraries` (the designs that model a library), or all
    #[arg(long, default_value = "all", value_name = "QUEUE")]
    pub queue: String,
    /// Empty the queues as well
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    #[command(subcommand)]
    pub action: LocalAction,
}

#[derive(Debug, Subcommand)]
pub enum LocalAction {
    /// Start PostgreSQL and Valkey in the background and print `export` lines for them
    Start,
    /// Stop the servers `local start` started and remove their files
    Stop,
}

/// Help and version print as clap does; a bad flag gets one line and exit code 2, like
/// every other bad input (clap's own message spans a usage block).
pub fn flag_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(if e.use_stderr() {
            crate::error::EXIT_USAGE
        } else {
            0
        });
    }
    // The first paragraph is the message; the rest is a tip and the usage.
    let text = e.render().to_string();
    let message: Vec<&str> = text
        .lines()
        .map(str::trim)
        .take_while(|l| !l.is_empty())
        .collect();
    // A URL the user mistyped may carry a password: mask it like every other output.
    let message = crate::mask::mask_urls_in(&message.join(" "));
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = <Cli as clap::CommandFactory>::command();
    let help = command
        .get_subcommands()
        .map(clap::Command::get_name)
        .find(|name| args.iter().any(|a| a == name))
        .map_or("qbench --help".to_string(), |name| {
            format!("qbench {name} --help")
        });
    eprintln!("qbench: error: {message}; see `{help}`");
    ExitCode::from(crate::error::EXIT_USAGE)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_consistent() {
        // clap checks names, conflicts and requirements here, not at compile time.
        <super::Cli as clap::CommandFactory>::command().debug_assert();
    }
}

/// The horizon scenario's schedule and holder (`horizon`, `run-suite --scenarios horizon`).
#[derive(Debug, Clone, Args)]
pub struct HorizonArgs {
    /// What holds the xmin horizon back during the hold: an idle transaction with an
    /// xid, a REPEATABLE READ snapshot, overlapping analytics queries, or nothing
    #[arg(long, value_enum, default_value = "xid")]
    pub holder: crate::format::horizon::Holder,
    /// Seconds of steady load before the hold [default: 60; --quick 15]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub baseline: Option<f64>,
    /// Seconds the holder is held [default: 600; --quick 30]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub hold: Option<f64>,
    /// Seconds of load after the release [default: 300; --quick 30]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub recovery: Option<f64>,
    /// --holder analytics: how many long queries overlap
    #[arg(long, value_name = "K", default_value_t = 3)]
    pub analytics_queries: u32,
    /// --holder analytics: seconds each query runs [default: 120; --quick 10]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub analytics_seconds: Option<f64>,
}

#[derive(Debug, Args)]
pub struct HorizonCmdArgs {
    /// A design (skip_locked, delete_returning, partitioned, pgmq; valkey_streams is the
    /// control), a comma list, `libraries`, or all
    #[arg(long, value_name = "QUEUE")]
    pub queue: String,
    /// A short schedule (15 s, 30 s held, 30 s after): checks the tool, not for conclusions
    #[arg(long)]
    pub quick: bool,
    /// Results folder: files go to DIR/vm1_pg or DIR/vm2_valkey, as run-suite's
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Re-run a test that is already complete
    #[arg(long)]
    pub force: bool,
    /// The end-to-end p99 goal the time to breach is measured against
    #[arg(long, value_name = "MS", default_value = "100", value_parser = positive)]
    pub slo_p99_ms: f64,
    #[command(flatten)]
    pub horizon: HorizonArgs,
    #[command(flatten)]
    pub end: EndArgs,
}
