//! `run-suite`: the seed's matrix of designs × scenarios (cold, warm, load), one test at a
//! time, each test's files written as it ends. A re-run skips finished tests.

pub mod crash;
mod measured;
pub mod pgbench;
pub mod plan;
pub mod scenarios;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::error::Interrupted;
use crate::format::files::ensure_writable;
use crate::format::read::read_manifest;
use crate::queue::{self, Backend, QueueKind};
use crate::session::Session;
use crate::text::ms;
use crate::workload::{self};
pub use plan::{backend_dir, plan, test_name, Planned, Scenario};

/// True when the folder already holds this test, finished, from a run of the same kind.
pub fn is_complete(dir: &Path, name: &str, smoke: bool) -> bool {
    read_manifest(&dir.join(format!("{name}_manifest.json")))
        .is_ok_and(|m| m.complete && m.smoke == smoke)
}

/// How one test ended.
#[derive(Debug)]
pub enum Outcome {
    Skipped,
    Ran(Box<workload::Report>),
    Failed(String),
}

pub struct SuiteOptions {
    /// The config every test starts from (each sets its own wakeup).
    pub cfg: crate::config::Config,
    pub backends: Vec<Backend>,
    pub tests: Vec<Planned>,
    pub out: PathBuf,
    pub quick: bool,
    pub force: bool,
    /// The horizon scenario's schedule and holder, when the plan has horizon tests.
    pub horizon: Option<crate::horizon::HorizonOptions>,
}

fn estimate(tests: &[&Planned], cfg: &crate::config::Config, opts: &SuiteOptions) -> Duration {
    let b = &cfg.benchmark;
    let secs: f64 = tests
        .iter()
        .map(|t| b.production_duration + 2.0 + t.scenario.scenario().extra_s(b, opts))
        .sum();
    Duration::from_secs_f64(secs)
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Runs the suite; returns each test's outcome. Stops at Ctrl-C with `Interrupted`.
pub async fn run(s: &Session, opts: &SuiteOptions) -> Result<Vec<(Planned, Outcome)>> {
    let cfg = &opts.cfg;
    // Every check that can refuse the run comes before anything is created.
    let needs_pgbench = opts
        .tests
        .iter()
        .any(|t| t.scenario.scenario().needs_pgbench());
    let found = needs_pgbench
        .then(|| pgbench::Pgbench::find(cfg))
        .transpose()?;
    for b in &opts.backends {
        ensure_writable(&backend_dir(&opts.out, *b), "--out")?;
    }
    let tiers = check_tiers(s, opts).await?;
    let pgbench = if let Some(p) = found {
        if p.ensure_initialized().await? {
            s.note(&format!(
                "qbench: initialised pgbench tables at scale {}",
                cfg.pgbench.scale
            ));
        }
        Some(p)
    } else {
        None
    };
    let mut capacity = workload::announce(
        cfg.benchmark
            .rate_jobs_s()
            .and_then(|r| cfg.benchmark.capacity_warning(r)),
    );
    capacity.extend(tiers);

    let n = opts.tests.len();
    let mut outcomes = vec![];
    for (i, t) in opts.tests.iter().enumerate() {
        if !opts.force && is_complete(&t.dir, &t.name, opts.quick) {
            s.note(&format!(
                "qbench: [{}/{n}] {}: already complete, skipped (--force re-runs it)",
                i + 1,
                t.name
            ));
            outcomes.push((t.clone(), Outcome::Skipped));
            continue;
        }
        let left: Vec<&Planned> = opts.tests[i..]
            .iter()
            .filter(|t| opts.force || !is_complete(&t.dir, &t.name, opts.quick))
            .collect();
        s.note(&format!(
            "qbench: [{}/{n}] {} ({}): about {} left in the suite",
            i + 1,
            t.name,
            t.kind,
            fmt_duration(estimate(&left, cfg, opts))
        ));
        let label = format!("[{}/{n}] {}", i + 1, t.name);
        let result = run_one(s, t, &label, pgbench.as_ref(), opts, &capacity).await;
        match result {
            Ok(report) => {
                print_result(&t.name, &report);
                let interrupted = report.interrupted;
                outcomes.push((t.clone(), Outcome::Ran(Box::new(report))));
                if interrupted {
                    return Err(Interrupted.into());
                }
            }
            Err(e) if crate::error::exit_code(&e) == crate::error::EXIT_INTERRUPTED => {
                return Err(e)
            }
            Err(e) if crate::error::exit_code(&e) == crate::error::EXIT_USAGE => return Err(e),
            Err(e) => {
                let msg = format!("{e:#}");
                println!("{}: FAILED: {msg}", t.name);
                outcomes.push((t.clone(), Outcome::Failed(msg)));
            }
        }
        if s.shutdown.is_triggered() {
            return Err(Interrupted.into());
        }
    }
    Ok(outcomes)
}

/// Every design's server in the tier asked for, checked before anything runs (after an
/// idempotent setup, which gives PostgreSQL's tables their persistence). Returns the
/// mismatches accepted with `--accept-durability-mismatch`, as warnings.
async fn check_tiers(s: &Session, opts: &SuiteOptions) -> Result<Vec<String>> {
    let mut seen: Vec<QueueKind> = vec![];
    let mut warnings = vec![];
    for t in &opts.tests {
        if seen.contains(&t.kind) {
            continue;
        }
        seen.push(t.kind);
        let (kind, cfg) = (t.kind, t.config(&opts.cfg));
        let queue = queue::open(kind, &cfg).await?;
        // As each test's own setup will (a changed partition count is recreated).
        queue.setup(true).await?;
        let accept = s.choices.accept_durability_mismatch;
        if let Some(w) = workload::tier::check(&queue, cfg.benchmark.durability, accept).await? {
            let w = format!("{kind}: {w}");
            if !warnings.contains(&w) {
                eprintln!("qbench: warning: {w}");
                warnings.push(w);
            }
        }
    }
    Ok(warnings)
}

fn print_result(name: &str, r: &workload::Report) {
    let s = &r.summary;
    let e2e = s.e2e_ms;
    println!(
        "{name}: {} produced, {} completed, lost {}, duplicated {}; {:.1} jobs/s; e2e p50 {} p95 {} p99 {} ms{}",
        s.produced.unwrap_or(0),
        s.completed.unwrap_or(0),
        s.lost.unwrap_or(0),
        s.duplicated.unwrap_or(0),
        s.throughput_jobs_s.unwrap_or(0.0),
        ms(e2e.map(|p| p.p50)),
        ms(e2e.map(|p| p.p95)),
        ms(e2e.map(|p| p.p99)),
        if r.interrupted { " (INTERRUPTED: partial)" } else { "" }
    );
}

/// One test of the suite: prepared as its scenario says, on an empty queue.
async fn run_one(
    s: &Session,
    t: &Planned,
    label: &str,
    pgbench: Option<&pgbench::Pgbench>,
    opts: &SuiteOptions,
    capacity: &[String],
) -> Result<workload::Report> {
    let mut extra = serde_json::Map::new();
    // Which run of the matrix this is; analyze groups repeats and labels by these.
    extra.insert("repeat".into(), json!(t.repeat));
    if let Some(l) = &t.label {
        extra.insert("label".into(), json!(l));
    }
    let cfg = t.config(&opts.cfg);
    let scenario = t.scenario.scenario();
    if let Some((key, value)) = scenario.before(s, t, &cfg).await? {
        extra.insert(key, value);
    }
    // Every test starts from an empty queue on fresh connections.
    let queue = queue::open(t.kind, &cfg).await?;
    queue.setup(true).await?;
    scenario
        .run(scenarios::Test {
            session: s,
            planned: t,
            opts,
            cfg,
            queue,
            label: label.to_string(),
            pgbench,
            warnings: capacity.to_vec(),
            extra,
        })
        .await
}
