//! Crash trials: jobs flow at a steady rate, the queue's server is SIGKILLed (every
//! process of it, no clean shutdown) and restarted on the same data, the workers drain,
//! and the exact audit names every acknowledged job that did not survive. What a tier
//! promises is then measured, not quoted — for a crash of the server's processes: the
//! operating system keeps what it was handed, so a power cut can lose more (the file
//! and the findings say so).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::error::{usage, Interrupted};
use crate::format::crash::{file_name, CrashFile, Trial, CRASH_FORMAT, PROCESS_CRASH};
use crate::format::manifest::Role;
use crate::format::FORMAT_VERSION;
use crate::local::{Crashed, LocalServers};
use crate::queue::{self, QueueKind};
use crate::shutdown::Shutdown;
use crate::workload::producer::ProducePlan;
use crate::workload::worker::WorkPlan;
use crate::workload::{self, Env, Identity, Plan, Report, Spec, StopRule};

/// Offered rate when the config gives none; production per trial; the crash point.
const RATE: f64 = 500.0;
const PRODUCE_S: f64 = 4.0;
const CRASH_AFTER_S: f64 = 1.5;

/// The config of a trial at `rate`: workers a little slower than it (10 ms each, 80 %
/// of the rate: 4 workers at 500 jobs/s), so the queue holds a backlog when the server
/// dies, as a queue under real load does; every recovery timeout short (a lease, River's
/// rescue), so jobs the crash left held come back in seconds.
fn trial_config(cfg: &Config, rate: f64) -> Config {
    let mut c = cfg.clone();
    let b = &mut c.benchmark;
    b.recover_after(2.0);
    b.job_processing_time_ms = 10.0;
    b.num_workers = ((rate * 0.8 / 100.0).round() as u32).clamp(1, 4096).into();
    b.dequeue_batch = 1;
    b.drain_timeout_s = 60.0;
    c
}

/// A design to crash, with the config it runs in and where its file goes.
pub struct Target {
    pub kind: QueueKind,
    pub cfg: Config,
    pub dir: PathBuf,
}

/// Crashes each target's server `trials` times on the `--local` servers, one design
/// after another. Every design is opened first, so a setting one of them refuses stops
/// the run before any server is killed. Returns every design's file (each is written
/// after every trial).
pub async fn run_all(
    s: &crate::session::Session,
    targets: Vec<Target>,
    trials: u32,
) -> Result<Vec<CrashFile>> {
    let accept = s.choices.accept_durability_mismatch;
    s.with_servers(async |servers| {
        for t in &targets {
            let q = queue::open(t.kind, &t.cfg).await?;
            // A crash's loss is told by the queue's own record of what was completed.
            if !q.records_completions() {
                return Err(usage(format!(
                    "{} as configured keeps no record of completed jobs, so a crash's losses cannot be told from completions: crash-test it with its default options",
                    t.kind
                )));
            }
        }
        let mut files = vec![];
        for t in &targets {
            files.push(run(servers, t, trials, accept, &s.shutdown).await?);
        }
        anyhow::Ok(files)
    })
    .await
    .unwrap_or_else(|| Err(usage("crash trials need --local")))
}

/// The strict tier promises no acknowledged job is lost: what broke that promise, or
/// left it unproven (an audit that was not exact), if anything did.
pub fn strict_broken(files: &[CrashFile]) -> Option<String> {
    let strict = crate::format::durability::Tier::Strict.name();
    let broken: Vec<String> = files
        .iter()
        .filter(|f| f.tier == strict)
        .filter_map(|f| {
            let unproven = f.inconclusive();
            match (f.lost_total(), unproven) {
                (0, 0) => None,
                (0, n) => Some(format!(
                    "{}: {n} strict crash trial(s) were not an exactly audited crash, so the tier is unproven",
                    f.queue
                )),
                (lost, _) => Some(format!(
                    "{} lost {lost} acknowledged job(s) in strict crash trials",
                    f.queue
                )),
            }
        })
        .collect();
    (!broken.is_empty()).then(|| broken.join("; "))
}

/// Runs `trials` crash trials of one design on `servers` and writes
/// `DIR/DESIGN_TIER_crash.json` after each, named by the tier the server was read to
/// be in (a server outside the tier asked for is refused unless `accept`).
async fn run(
    servers: &mut LocalServers,
    target: &Target,
    trials: u32,
    accept: bool,
    shutdown: &Shutdown,
) -> Result<CrashFile> {
    let (kind, cfg) = (target.kind, &target.cfg);
    // The offered rate if the user set one (file or --rate), else RATE.
    let rate = match cfg.benchmark_set.contains("production_rate") {
        true => cfg.benchmark.rate_jobs_s().unwrap_or(RATE),
        false => RATE,
    };
    let mut cfg = trial_config(cfg, rate);
    let mut queue = queue::open(kind, &cfg).await?;
    // A protocol that bounds its workers' rate (River: one fetch per cooldown) gets
    // workers enough for its bound to be the trial's 80 % of the rate: else the drain of
    // the backlog would outlast its timeout.
    if let Some(per_worker) = queue.throughput_bound(1) {
        let want = (rate * 0.8 / per_worker).ceil().clamp(1.0, 4096.0) as u32;
        if want > cfg.benchmark.num_workers.get() {
            cfg.benchmark.num_workers = want.into();
            queue = queue::open(kind, &cfg).await?;
        }
    }
    queue.setup(true).await?;
    if let Some(w) = workload::tier::check(&queue, cfg.benchmark.durability, accept).await? {
        eprintln!("qbench: warning: {kind}: {w}");
    }
    let settings = queue
        .server()
        .info()
        .await?
        .durability
        .context("the server's durability settings cannot be read, so its crash trials would be labelled by a guess")?;
    let tier = settings.tier();
    std::fs::create_dir_all(&target.dir)
        .with_context(|| format!("creating {}", target.dir.display()))?;
    let path = target.dir.join(file_name(kind.name(), tier.name()));
    let mut file = CrashFile {
        format: CRASH_FORMAT.into(),
        version: FORMAT_VERSION,
        queue: kind.name().into(),
        backend: kind.backend().name().into(),
        tier: tier.name().into(),
        server_durability: settings.to_string(),
        crash: PROCESS_CRASH.into(),
        offered_rate_jobs_s: rate,
        produce_s: PRODUCE_S,
        crash_after_s: CRASH_AFTER_S,
        trials: vec![],
    };
    for i in 1..=trials {
        let t = trial(servers, &cfg, kind, rate, i, shutdown).await?;
        eprintln!(
            "qbench: crash {kind} {} trial {i}/{trials}: {} acknowledged, {} lost, {} redelivered, {} duplicated, audit {}; server back in {:.0} ms",
            tier.name(),
            t.produced,
            t.lost,
            t.redelivered,
            t.duplicated,
            t.audit,
            t.restart_ms
        );
        file.trials.push(t);
        file.write(&path)?;
    }
    Ok(file)
}

/// One trial: produce for PRODUCE_S at `rate` with workers draining, crash the server
/// once the producer has been acknowledged CRASH_AFTER_S worth of jobs, then drain and
/// audit.
async fn trial(
    servers: &mut LocalServers,
    cfg: &Config,
    kind: QueueKind,
    rate: f64,
    n: u32,
    shutdown: &Shutdown,
) -> Result<Trial> {
    let queue = queue::open(kind, cfg).await?;
    queue.setup(true).await?;
    let b = &cfg.benchmark;
    let acked = Arc::new(AtomicU64::new(0));
    let spec = Spec {
        id: Identity::new(format!("{}_crash_{n}", kind.name()), Role::Suite),
        plan: Plan {
            produce: Some(ProducePlan::paced(
                Some(rate),
                Duration::from_secs_f64(PRODUCE_S),
                b,
            )),
            work: Some(WorkPlan::from_config(b)),
            stop: StopRule::Drain {
                timeout: Duration::from_secs_f64(b.drain_timeout_s),
            },
        },
        env: Env {
            acked: Some(acked.clone()),
            ..Env::new(queue.clone(), cfg.clone(), shutdown.clone())
        },
    };
    // The workload and the crash run side by side in this task; the crash waits on the
    // producer's own count, so the queue is not queried while it is measured.
    let crash = async {
        wait_for_acks(&acked, (rate * CRASH_AFTER_S) as u64, shutdown).await?;
        let killed_us = crate::clock::Clock::get().now_us();
        let restart = servers.crash(kind.backend()).await?;
        anyhow::Ok((killed_us, restart))
    };
    let (report, crashed) = tokio::join!(workload::run(spec), crash);
    let (report, (killed_us, crashed)) = (report?, crashed?);
    if report.interrupted {
        return Err(Interrupted.into());
    }
    Ok(account(n, &report, killed_us, &crashed))
}

/// What the audit found after one crash.
fn account(n: u32, report: &Report, killed_us: i64, crashed: &Crashed) -> Trial {
    let s = &report.summary;
    // How far back the loss reached: the kill against when the oldest lost job was due.
    let oldest_lost = report.schedule.as_ref().and_then(|sched| {
        report
            .lost
            .iter()
            .filter_map(|seq| sched.intended_us(seq))
            .min()
    });
    // qbench's clients were back once the last outage window after the kill closed.
    let clients_back_ms = s
        .outages
        .iter()
        .filter_map(|o| o.end_epoch_s)
        .map(|end| (end * 1e6 - killed_us as f64) / 1e3)
        .filter(|ms| *ms >= 0.0)
        .reduce(f64::max);
    let left = s.left_in_queue.unwrap_or(0);
    // An audit that is not exact, or jobs still queued when the drain bound ended,
    // leave the trial unproven: never "0 lost".
    let audit = match &s.audit_note {
        Some(note) => format!("{}: {note}", audit_name(s.audit)),
        None if left > 0 => {
            format!("inconclusive: {left} job(s) still queued when the drain bound ended")
        }
        None => audit_name(s.audit),
    };
    Trial {
        trial: n,
        produced: s.produced.unwrap_or(0),
        completed: s.completed.unwrap_or(0),
        lost: s.lost.unwrap_or(0),
        lost_seqs: report.lost.to_text(),
        loss_window_ms: oldest_lost.map(|t| ((killed_us - t) as f64 / 1e3).max(0.0)),
        restart_ms: crashed.restart.as_secs_f64() * 1e3,
        unclean: crashed.unclean,
        clients_back_ms,
        left,
        redelivered: s.redelivered.unwrap_or(0),
        duplicated: s.duplicated.unwrap_or(0),
        uncertain: s.uncertain.unwrap_or(0),
        audit,
    }
}

/// Waits until the producer has been acknowledged `n` jobs, watching for Ctrl-C.
async fn wait_for_acks(acked: &AtomicU64, n: u64, shutdown: &Shutdown) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Acquire) < n {
        if shutdown.is_triggered() {
            return Err(Interrupted.into());
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "the server acknowledged fewer than {n} jobs within 60 s, so the crash trial cannot start; check the server log, or give a lower --rate"
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn audit_name(kind: crate::format::audit::AuditKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
