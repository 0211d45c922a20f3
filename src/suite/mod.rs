//! `run-suite`: the seed's matrix of designs × scenarios (cold, warm, load), one test at a
//! time, each test's files written as it ends. A re-run skips finished tests.

pub mod cold;
pub mod pgbench;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::clock::rfc3339;
use crate::commands::test_setup::{capacity_warnings, ms, server_procs};
use crate::error::{Interrupted, UsageError};
use crate::output::manifest::{Host, Manifest, Role, FORMAT_VERSION};
use crate::output::{ensure_writable, progress, write_atomic, OutputDir};
use crate::queue::{self, Backend, QueueKind};
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Sidecar, Spec, StopRule};
use crate::Ctx;

pub const BASELINE: &str = "pgbench_baseline";
pub const BASELINE_FORMAT: &str = "qbench.pgbench_baseline";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    Cold,
    Warm,
    Load,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [Scenario::Cold, Scenario::Warm, Scenario::Load];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cold => "cold",
            Scenario::Warm => "warm",
            Scenario::Load => "load",
        }
    }

    pub fn parse_list(s: &str) -> Result<Vec<Scenario>, UsageError> {
        let mut out = vec![];
        for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let sc = Scenario::ALL
                .into_iter()
                .find(|x| x.name() == p)
                .ok_or_else(|| {
                    UsageError::new(format!(
                        "unknown scenario {p:?}: choose from cold, warm, load"
                    ))
                })?;
            if !out.contains(&sc) {
                out.push(sc);
            }
        }
        if out.is_empty() {
            return Err(UsageError::new("--scenarios names no scenario"));
        }
        out.sort();
        Ok(out)
    }
}

/// Where each backend's results go, as the seed names them.
pub fn backend_dir(out: &Path, b: Backend) -> PathBuf {
    out.join(match b {
        Backend::Postgresql => "vm1_pg",
        Backend::Valkey => "vm2_valkey",
    })
}

/// The seed's test names: `skip_locked_cold` … `partitioned_load`, `valkey_cold` ….
pub fn test_name(kind: QueueKind, sc: Scenario) -> String {
    let design = match kind {
        QueueKind::ValkeyStreams => "valkey",
        k => k.name(),
    };
    format!("{design}_{}", sc.name())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub name: String,
    pub kind: QueueKind,
    pub scenario: Scenario,
    pub dir: PathBuf,
}

/// The tests of a suite, in the seed's order.
pub fn plan(
    backends: &[Backend],
    queues: Option<&str>,
    scenarios: &[Scenario],
    out: &Path,
) -> Result<Vec<Planned>, UsageError> {
    let wanted: Vec<QueueKind> = match queues {
        Some(list) => QueueKind::parse_list(list)?,
        None => QueueKind::ALL
            .into_iter()
            .filter(|k| backends.contains(&k.backend()))
            .collect(),
    };
    if let Some(k) = wanted.iter().find(|k| !backends.contains(&k.backend())) {
        return Err(UsageError::new(format!(
            "--queues names {k}, which is not part of --backend {}",
            backends
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(",")
        )));
    }
    let mut tests = vec![];
    for kind in QueueKind::ALL.into_iter().filter(|k| wanted.contains(k)) {
        for &sc in scenarios {
            tests.push(Planned {
                name: test_name(kind, sc),
                kind,
                scenario: sc,
                dir: backend_dir(out, kind.backend()),
            });
        }
    }
    Ok(tests)
}

/// True when the folder already holds this test, finished, from a run of the same kind.
pub fn is_complete(dir: &Path, name: &str, smoke: bool) -> bool {
    std::fs::read_to_string(dir.join(format!("{name}_manifest.json")))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|m| m["complete"] == true && m["smoke"] == smoke)
}

/// How one test ended.
#[derive(Debug)]
pub enum Outcome {
    Skipped,
    Ran(Box<workload::Report>),
    Failed(String),
}

pub struct SuiteOptions {
    pub backends: Vec<Backend>,
    pub tests: Vec<Planned>,
    pub out: PathBuf,
    pub quick: bool,
    pub force: bool,
}

struct PgbenchSidecar(pgbench::Running);

#[async_trait::async_trait]
impl Sidecar for PgbenchSidecar {
    async fn stop(self: Box<Self>) -> (String, serde_json::Value) {
        let started = self.0.started;
        let stats = self.0.stop().await;
        // pgbench.csv counts seconds from pgbench's own start, just before the test's.
        (
            "pgbench".into(),
            json!({
                "stats": stats,
                "started_at": rfc3339(crate::clock::Clock::get().system_time(started)),
                "ran_s": started.elapsed().as_secs_f64(),
            }),
        )
    }
}

fn estimate(tests: &[&Planned], cfg: &crate::config::Config) -> Duration {
    let b = &cfg.benchmark;
    let secs: f64 = tests
        .iter()
        .map(|t| {
            b.production_duration
                + 2.0
                + match t.scenario {
                    Scenario::Cold => 2.0,
                    Scenario::Warm => b.warmup_duration + 1.0,
                    Scenario::Load => 1.5,
                }
        })
        .sum();
    Duration::from_secs_f64(secs)
}

fn fmt_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Runs the suite; returns each test's outcome. Stops at Ctrl-C with `Interrupted`.
pub async fn run(ctx: &mut Ctx, opts: &SuiteOptions) -> Result<Vec<(Planned, Outcome)>> {
    // Every check that can refuse the run comes before anything is created.
    let needs_pgbench = opts.tests.iter().any(|t| t.scenario == Scenario::Load);
    let found = needs_pgbench
        .then(|| pgbench::Pgbench::find(&ctx.cfg))
        .transpose()?;
    for b in &opts.backends {
        ensure_writable(&backend_dir(&opts.out, *b), "--out")?;
    }
    let pgbench = if let Some(p) = found {
        if p.ensure_initialized().await? && !ctx.global.quiet {
            eprintln!(
                "qbench: initialised pgbench tables at scale {}",
                ctx.cfg.pgbench.scale
            );
        }
        Some(p)
    } else {
        None
    };
    let rate = ctx.cfg.benchmark.production_rate;
    let capacity = capacity_warnings(&ctx.cfg, Some(rate));

    if let Some(p) = &pgbench {
        let dirs: Vec<PathBuf> = opts
            .backends
            .iter()
            .filter(|b| {
                opts.tests
                    .iter()
                    .any(|t| t.kind.backend() == **b && t.scenario == Scenario::Load)
            })
            .map(|b| backend_dir(&opts.out, *b))
            .collect();
        baseline(ctx, p, &dirs, opts).await?;
    }

    let n = opts.tests.len();
    let mut outcomes = vec![];
    for (i, t) in opts.tests.iter().enumerate() {
        if !opts.force && is_complete(&t.dir, &t.name, opts.quick) {
            println!(
                "[{}/{n}] {}: already complete, skipped (--force re-runs it)",
                i + 1,
                t.name
            );
            outcomes.push((t.clone(), Outcome::Skipped));
            continue;
        }
        let left: Vec<&Planned> = opts.tests[i..]
            .iter()
            .filter(|t| opts.force || !is_complete(&t.dir, &t.name, opts.quick))
            .collect();
        if !ctx.global.quiet {
            eprintln!(
                "qbench: [{}/{n}] {} ({}): about {} left in the suite",
                i + 1,
                t.name,
                t.kind,
                fmt_duration(estimate(&left, &ctx.cfg))
            );
        }
        let label = format!("[{}/{n}] {}", i + 1, t.name);
        let result = run_one(ctx, t, &label, pgbench.as_ref(), opts, &capacity).await;
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
        if ctx.shutdown.is_triggered() {
            return Err(Interrupted.into());
        }
    }
    Ok(outcomes)
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

fn plans(cfg: &crate::config::Config, rate: f64, duration: f64) -> (ProducePlan, WorkPlan) {
    let b = &cfg.benchmark;
    (
        ProducePlan {
            rate: Some(rate),
            count: None,
            duration: Some(Duration::from_secs_f64(duration)),
            connections: b.producer_connections as usize,
            max_batch: 500,
        },
        WorkPlan {
            workers: b.num_workers as usize,
            processing: Duration::from_secs_f64(b.job_processing_time_ms / 1000.0),
            poll_interval: Duration::from_secs_f64(b.poll_interval_ms / 1000.0),
        },
    )
}

async fn run_one(
    ctx: &mut Ctx,
    t: &Planned,
    label: &str,
    pgbench: Option<&pgbench::Pgbench>,
    opts: &SuiteOptions,
    capacity: &[String],
) -> Result<workload::Report> {
    let mut extra = serde_json::Map::new();
    if t.scenario == Scenario::Cold {
        extra.insert("cold_start".into(), cold::prepare(ctx, t.kind).await?);
    }
    // Every test starts from an empty queue on fresh connections.
    let queue = queue::open(t.kind, &ctx.cfg).await?;
    queue.setup(true).await?;
    let b = ctx.cfg.benchmark.clone();
    let drain = StopRule::Drain {
        timeout: Duration::from_secs_f64(b.drain_timeout_s),
    };
    let spec = |name: String, produce, work, stop, output, label: String, extra, sidecar| Spec {
        test: name,
        instance: None,
        role: Role::Suite,
        scenario: Some(t.scenario.name().into()),
        smoke: opts.quick,
        queue: queue.clone(),
        cfg: ctx.cfg.clone(),
        produce: Some(produce),
        work: Some(work),
        stop,
        output,
        progress: progress::Mode::detect(ctx.global.quiet),
        label,
        local: ctx.local.clone(),
        server: server_procs(t.kind, &ctx.cfg, ctx.local.as_ref()),
        warnings: capacity.to_vec(),
        extra,
        sidecar,
        shutdown: ctx.shutdown.clone(),
    };

    if t.scenario == Scenario::Warm && b.warmup_duration > 0.0 {
        let (p, w) = plans(&ctx.cfg, b.warmup_rate, b.warmup_duration);
        let warm = workload::run(spec(
            format!("{}_warmup", t.name),
            p,
            w,
            drain.clone(),
            None,
            format!("{label} warmup"),
            Default::default(),
            None,
        ))
        .await?;
        if warm.interrupted {
            return Err(Interrupted.into());
        }
        let s = &warm.summary;
        // The warmup's measurements are thrown away; the queue stays warm (not reset).
        extra.insert(
            "warmup".into(),
            json!({
                "rate_jobs_s": b.warmup_rate,
                "duration_s": b.warmup_duration,
                "produced": s.produced,
                "completed": s.completed,
                "left_in_queue": s.left_in_queue,
                "lost": s.lost,
            }),
        );
    }

    let out = OutputDir::prepare(&t.dir, &t.name, true)?;
    let sidecar: Option<Box<dyn Sidecar>> = match (t.scenario, pgbench) {
        (Scenario::Load, Some(p)) => {
            let csv = out.create("pgbench.csv")?;
            Some(Box::new(PgbenchSidecar(p.start(csv).await?)))
        }
        _ => None,
    };
    let (p, w) = plans(&ctx.cfg, b.production_rate, b.production_duration);
    workload::run(spec(
        t.name.clone(),
        p,
        w,
        drain,
        Some(out),
        label.to_string(),
        extra,
        sidecar,
    ))
    .await
}

/// What `pgbench_baseline_manifest.json` holds: pgbench alone, for the same window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BaselineManifest {
    pub format: String,
    pub version: u32,
    pub test: String,
    pub complete: bool,
    pub smoke: bool,
    pub started_at: String,
    pub ended_at: String,
    pub window_s: f64,
    pub pgbench: pgbench::Stats,
    pub qbench_version: String,
    pub host: Host,
    pub config: crate::config::Config,
}

/// Runs pgbench alone once per suite, for the measured window of one test.
async fn baseline(
    ctx: &Ctx,
    p: &pgbench::Pgbench,
    dirs: &[PathBuf],
    opts: &SuiteOptions,
) -> Result<()> {
    let Some(first) = dirs.first() else {
        return Ok(());
    };
    if !opts.force && dirs.iter().all(|d| is_complete(d, BASELINE, opts.quick)) {
        println!("{BASELINE}: already complete, skipped");
        return Ok(());
    }
    let window = Duration::from_secs_f64(ctx.cfg.benchmark.production_duration);
    if !ctx.global.quiet {
        eprintln!(
            "qbench: {BASELINE}: pgbench alone ({} clients) for {}",
            ctx.cfg.pgbench.clients,
            fmt_duration(window)
        );
    }
    let out = OutputDir::prepare(first, BASELINE, true)?;
    let started_at = SystemTime::now();
    let running = p.start(out.create("pgbench.csv")?).await?;
    let began = Instant::now();
    let interrupted = tokio::select! {
        _ = tokio::time::sleep(window) => false,
        _ = ctx.shutdown.cancelled() => true,
    };
    let stats = running.stop().await;
    let files = out.finish()?;
    let manifest = BaselineManifest {
        format: BASELINE_FORMAT.into(),
        version: FORMAT_VERSION,
        test: BASELINE.into(),
        complete: !interrupted,
        smoke: opts.quick,
        started_at: rfc3339(started_at),
        ended_at: rfc3339(SystemTime::now()),
        window_s: began.elapsed().as_secs_f64(),
        pgbench: stats.clone(),
        qbench_version: env!("CARGO_PKG_VERSION").into(),
        host: tokio::task::spawn_blocking(Host::this).await?,
        config: ctx.cfg.masked(),
    };
    let bytes = serde_json::to_vec_pretty(&manifest)?;
    for d in dirs {
        if d != first {
            for f in &files {
                std::fs::copy(first.join(f), d.join(f))?;
            }
        }
        write_atomic(&d.join(format!("{BASELINE}_manifest.json")), &bytes)?;
    }
    println!(
        "{BASELINE}: pgbench alone: {} tps, latency {} ms",
        stats.tps_mean.map_or("-".into(), |t| format!("{t:.1}")),
        ms(stats.latency_ms_mean)
    );
    if interrupted {
        return Err(Interrupted.into());
    }
    Ok(())
}

/// Reads a test's manifest (for callers that summarise a finished suite).
pub fn read_manifest(dir: &Path, name: &str) -> Option<Manifest> {
    let text = std::fs::read_to_string(dir.join(format!("{name}_manifest.json"))).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_the_seeds_matrix() {
        let out = Path::new("results");
        let all = plan(
            &[Backend::Postgresql, Backend::Valkey],
            None,
            &Scenario::ALL,
            out,
        )
        .expect("plan");
        let names: Vec<&str> = all.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 12);
        assert_eq!(
            &names[..3],
            ["skip_locked_cold", "skip_locked_warm", "skip_locked_load"]
        );
        assert_eq!(&names[9..], ["valkey_cold", "valkey_warm", "valkey_load"]);
        assert_eq!(all[0].dir, Path::new("results/vm1_pg"));
        assert_eq!(all[11].dir, Path::new("results/vm2_valkey"));
        let pg = plan(&[Backend::Postgresql], None, &Scenario::ALL, out).expect("pg");
        assert_eq!(pg.len(), 9);
        let v = plan(&[Backend::Valkey], None, &[Scenario::Load], out).expect("valkey");
        assert_eq!(v[0].name, "valkey_load");
    }

    #[test]
    fn refuses_queues_outside_the_backend_and_unknown_scenarios() {
        let out = Path::new("r");
        assert!(plan(
            &[Backend::Postgresql],
            Some("valkey_streams"),
            &Scenario::ALL,
            out
        )
        .is_err());
        assert!(Scenario::parse_list("cold,hot").is_err());
        assert_eq!(
            Scenario::parse_list("load,cold").expect("ok"),
            vec![Scenario::Cold, Scenario::Load]
        );
    }
}
