//! `run-suite`: the seed's matrix of designs × scenarios (cold, warm, load), one test at a
//! time, each test's files written as it ends. A re-run skips finished tests.

mod baseline;
pub mod cold;
pub mod crash;
pub mod pgbench;
pub mod plan;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use serde_json::json;

use crate::clock::rfc3339;
use crate::config::Benchmark;
use crate::error::Interrupted;
use crate::format::files::{ensure_writable, OutputDir};
use crate::format::manifest::Role;
use crate::format::read::read_manifest;
use crate::queue::{self, Backend, QueueKind};
use crate::session::Session;
use crate::text::ms;
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Env, Identity, Plan, Sidecar, Spec, StopRule};
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

/// pgbench beside the queue; its figure is the production window's, the same length
/// as pgbench alone ran (the drain after is not the load it is compared under).
struct PgbenchSidecar {
    running: pgbench::Running,
    window_s: f64,
}

#[async_trait::async_trait]
impl Sidecar for PgbenchSidecar {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value) {
        let started = self.running.started;
        let stats = self.running.stop_within(self.window_s).await;
        // pgbench.csv counts seconds from pgbench's own start, just before the test's.
        (
            "pgbench".into(),
            json!({
                "stats": stats,
                "started_at": rfc3339(crate::clock::Clock::get().system_time(started)),
                "ran_s": started.elapsed().as_secs_f64(),
                "window_s": self.window_s,
            }),
        )
    }
}

fn estimate(tests: &[&Planned], cfg: &crate::config::Config, opts: &SuiteOptions) -> Duration {
    let b = &cfg.benchmark;
    let horizon_s = opts.horizon.as_ref().map_or(0.0, |h| h.phases.total_s());
    let secs: f64 = tests
        .iter()
        .map(|t| {
            b.production_duration
                + 2.0
                + match t.scenario {
                    Scenario::Horizon => horizon_s - b.production_duration,
                    Scenario::Cold => 2.0,
                    Scenario::Warm => b.warmup_duration + 1.0,
                    // The warmup, then pgbench alone for the test's length.
                    Scenario::Load => b.warmup_duration + b.production_duration + 2.5,
                }
        })
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
    let needs_pgbench = opts.tests.iter().any(|t| t.scenario == Scenario::Load);
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

/// The suite's plan at `rate` for `duration` seconds, draining after.
fn plan_at(cfg: &crate::config::Config, rate: f64, duration: f64) -> Plan {
    let b = &cfg.benchmark;
    Plan {
        produce: Some(ProducePlan::paced(
            Some(rate),
            Duration::from_secs_f64(duration),
            b,
        )),
        work: Some(WorkPlan::from_config(b)),
        stop: StopRule::Drain {
            timeout: Duration::from_secs_f64(b.drain_timeout_s),
        },
    }
}

/// Runs the warmup; returns what the manifest records of it and a warning if it left
/// jobs behind. Acknowledged jobs it lost are lost by the design: the test fails.
async fn warmup(spec: Spec, b: &Benchmark) -> Result<(serde_json::Value, Option<String>)> {
    let warm = workload::run(spec).await?;
    if warm.interrupted {
        return Err(Interrupted.into());
    }
    let s = &warm.summary;
    if let Some(lost) = s.lost.filter(|l| *l > 0) {
        return Err(crate::error::AuditFailed(format!(
            "the warmup lost {lost} acknowledged job(s) (first seqs {:?})",
            s.lost_seqs
        ))
        .into());
    }
    let warning = s.left_in_queue.filter(|l| *l > 0).map(|left| {
        let w = format!(
            "the warmup left {left} job(s) in the queue: the measured test completes them too, so its row is flagged and not compared (lower benchmark.warmup_rate)"
        );
        eprintln!("qbench: warning: {w}");
        w
    });
    let value = json!({
        "rate_jobs_s": b.warmup_rate,
        "duration_s": b.warmup_duration,
        "produced": s.produced,
        "completed": s.completed,
        "left_in_queue": s.left_in_queue,
        "lost": s.lost,
    });
    Ok((value, warning))
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
    // Every test starts from an empty queue on fresh connections.
    let cfg = t.config(&opts.cfg);
    if t.scenario == Scenario::Cold {
        extra.insert("cold_start".into(), cold::prepare(s, t.kind, &cfg).await?);
    }
    let queue = queue::open(t.kind, &cfg).await?;
    queue.setup(true).await?;
    let b = cfg.benchmark.clone();
    let id = |name: String, label: String| Identity {
        scenario: Some(t.scenario.name().into()),
        smoke: opts.quick,
        label,
        ..Identity::new(name, Role::Suite)
    };
    let env = || Env {
        warnings: capacity.to_vec(),
        ..s.env(queue.clone(), &cfg)
    };

    if t.scenario == Scenario::Horizon {
        let env = Env { extra, ..env() };
        return horizon_test(id(t.name.clone(), label.to_string()), env, t, opts).await;
    }
    // pgbench alone first, on the reset queue: the warmup's own aftermath (autovacuum of
    // the queue's tables) belongs to what the queue costs, so it falls beside.
    let out = OutputDir::prepare(&t.dir, &t.name, true)?;
    let load = match (t.scenario, pgbench) {
        (Scenario::Load, Some(p)) => {
            let window = Duration::from_secs_f64(b.production_duration);
            let alone = out.create("pgbench_alone.csv")?;
            match baseline::alone(s, p, alone, window, &t.name).await? {
                Some(v) => extra.insert("pgbench_alone".into(), v),
                None => {
                    out.discard();
                    return Err(Interrupted.into());
                }
            };
            Some(p)
        }
        _ => None,
    };
    let mut warnings = capacity.to_vec();
    // Warm and load both start warm: the load test is compared with warm, so both get
    // the same warmup (its measurements are thrown away; the queue is not reset after).
    if matches!(t.scenario, Scenario::Warm | Scenario::Load) && b.warmup_duration > 0.0 {
        let spec = Spec {
            id: id(format!("{}_warmup", t.name), format!("{label} warmup")),
            plan: plan_at(&cfg, b.warmup_rate, b.warmup_duration),
            env: env(),
        };
        let (value, warning) = warmup(spec, &b).await?;
        extra.insert("warmup".into(), value);
        warnings.extend(warning);
    }
    let sidecar: Option<Box<dyn Sidecar>> = match load {
        Some(p) => {
            let csv = out.create("pgbench.csv")?;
            Some(Box::new(PgbenchSidecar {
                running: p.start(csv).await?,
                window_s: b.production_duration,
            }))
        }
        None => None,
    };
    let Some(rate) = b.rate_jobs_s() else {
        return Err(crate::error::usage(
            "run-suite offers a fixed rate: set benchmark.production_rate to a number of jobs/s, not max",
        ));
    };
    workload::run(Spec {
        id: id(t.name.clone(), label.to_string()),
        plan: plan_at(&cfg, rate, b.production_duration),
        env: Env {
            output: Some(out),
            extra,
            sidecar,
            warnings,
            ..env()
        },
    })
    .await
}

/// One horizon test: its rate (the sweep's MST halved, if one is found), the holder and
/// sampler beside it, its files in the test's folder.
async fn horizon_test(
    id: Identity,
    mut env: Env,
    t: &Planned,
    opts: &SuiteOptions,
) -> Result<workload::Report> {
    let Some(h) = opts.horizon.as_ref() else {
        return Err(anyhow::anyhow!(
            "{}: the horizon scenario needs its schedule (a bug: the plan named it without one)",
            t.name
        ));
    };
    let cfg = env.cfg.clone();
    let dirs = crate::horizon::sweep_dirs(&opts.out, &t.dir);
    let rate = crate::horizon::rate(t.kind, &cfg, h.rate, &dirs)?;
    env.warnings
        .extend(workload::announce(cfg.benchmark.capacity_warning(rate.0)));
    let out = OutputDir::prepare(&t.dir, &t.name, true)?;
    let p = match crate::horizon::prepare(&env.queue, &cfg, &out, h, rate).await {
        Ok(p) => p,
        Err(e) => {
            out.discard();
            return Err(e);
        }
    };
    env.output = Some(out);
    env.sidecar = Some(p.sidecar);
    env.ticks = Some(p.ticks);
    workload::run(Spec {
        id,
        plan: p.plan,
        env,
    })
    .await
}
