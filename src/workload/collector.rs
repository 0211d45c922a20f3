//! The per-second collector: drains the recorders into one interval each second, writes
//! it to the test's files, and owns those files and the samplers beside them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use anyhow::Result;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::load::Counts;
use super::spec::{Env, Identity};
use crate::format::audit::AuditFile;
use crate::format::files::OutputDir;
use crate::format::hlog::HlogWriter;
use crate::format::manifest::Role;
use crate::format::metrics::{IntervalLatency, IntervalLine, Summary};
use crate::format::FORMAT_VERSION;
use crate::samplers::system::SystemSampler;
use crate::stats::{HistSet, Metric, Percentiles, Recorders};

/// The files of a test that writes results, and the samplers that write beside it.
struct Sink {
    out: OutputDir,
    metrics: BufWriter<File>,
    hlog: HlogWriter<BufWriter<File>>,
    system: SystemSampler,
    server_stats: JoinHandle<Result<BufWriter<File>>>,
    stats_stop: CancellationToken,
}

pub struct Collector {
    started: Instant,
    last: Instant,
    interval: HistSet,
    /// Everything recorded so far, merged.
    pub totals: HistSet,
    metrics: &'static [Metric],
    last_counts: Counts,
    sink: Option<Sink>,
}

/// What a finished collector leaves: the files it wrote and where the manifest goes.
pub struct Closed {
    pub files: Vec<String>,
    pub manifest: Option<PathBuf>,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Collector {
    /// Opens the result files (if the test writes any) and starts the samplers.
    pub fn open(
        id: &Identity,
        env: &mut Env,
        started: Instant,
        started_at: SystemTime,
    ) -> Result<Collector> {
        let metrics: &'static [Metric] = match id.role {
            Role::Suite => &Metric::ALL,
            Role::Produce => &Metric::PRODUCER,
            Role::Work => &Metric::WORKER,
        };
        let sink = match env.output.take() {
            Some(out) => Some(open_sink(out, id, env, started, started_at)?),
            None => None,
        };
        Ok(Collector {
            started,
            last: started,
            interval: HistSet::default(),
            totals: HistSet::default(),
            metrics,
            last_counts: Counts::default(),
            sink,
        })
    }

    /// Drains the recorders into one interval, writes it, and returns its line.
    pub fn collect(
        &mut self,
        recorders: &Recorders,
        now_counts: Counts,
        depth: Option<u64>,
    ) -> Result<IntervalLine> {
        let now = Instant::now();
        recorders.drain_into(&mut self.interval);
        let brief = |m: Metric| {
            Percentiles::of(self.interval.get(m)).map(|p| IntervalLatency {
                p50: p.p50,
                p95: p.p95,
                p99: p.p99,
                max: p.max,
            })
        };
        let (e2e_ms, queue_wait_ms) = (brief(Metric::E2e), brief(Metric::QueueWait));
        let line = IntervalLine {
            v: FORMAT_VERSION,
            kind: "interval".into(),
            t_s: round3((now - self.started).as_secs_f64()),
            interval_s: round3((now - self.last).as_secs_f64()),
            produced: now_counts.produced - self.last_counts.produced,
            completed: now_counts.completed - self.last_counts.completed,
            produced_total: now_counts.produced,
            completed_total: now_counts.completed,
            depth,
            e2e_ms,
            queue_wait_ms,
            claim_ms: brief(Metric::Claim),
            errors: now_counts.errors,
        };
        if let Some(sink) = self.sink.as_mut() {
            for &m in self.metrics {
                sink.hlog.write(
                    m,
                    self.interval.get(m),
                    self.last - self.started,
                    now - self.last,
                )?;
            }
            sink.hlog.flush()?;
            serde_json::to_writer(&mut sink.metrics, &line)?;
            sink.metrics.write_all(b"\n")?;
            sink.metrics.flush()?;
        }
        self.totals.add(&self.interval);
        self.interval.reset();
        self.last = now;
        self.last_counts = now_counts;
        Ok(line)
    }

    /// Writes the summary line and the audit file, stops the samplers and renames every
    /// file into place. Sampler failures become warnings.
    pub async fn close(
        self,
        summary: &Summary,
        audit: &AuditFile,
        warnings: &mut Vec<String>,
    ) -> Result<Closed> {
        let Some(mut sink) = self.sink else {
            return Ok(Closed {
                files: vec![],
                manifest: None,
            });
        };
        serde_json::to_writer(&mut sink.metrics, summary)?;
        sink.metrics.write_all(b"\n")?;
        sink.metrics.flush()?;
        sink.hlog.flush()?;
        let mut a = sink.out.create("audit.json")?;
        serde_json::to_writer(&mut a, audit)?;
        a.flush()?;
        sink.stats_stop.cancel();
        match sink.server_stats.await {
            Ok(Ok(mut w)) => w.flush()?,
            Ok(Err(e)) => warnings.push(format!("server statistics stopped early: {e:#}")),
            Err(e) => warnings.push(format!("server statistics sampler failed: {e}")),
        }
        let system = tokio::task::spawn_blocking(move || sink.system.stop()).await;
        if let Ok(Err(e)) | Err(e) = system.map_err(anyhow::Error::from) {
            warnings.push(format!("system sampler: {e:#}"));
        }
        let mut files = sink.out.finish()?;
        let manifest = sink.out.path("manifest.json");
        if let Some(n) = manifest.file_name() {
            files.push(n.to_string_lossy().into_owned());
        }
        Ok(Closed {
            files,
            manifest: Some(manifest),
        })
    }
}

fn open_sink(
    out: OutputDir,
    id: &Identity,
    env: &Env,
    started: Instant,
    started_at: SystemTime,
) -> Result<Sink> {
    let metrics = out.create("metrics.jsonl")?;
    let about = format!(
        "qbench {} test={} queue={} role={:?}",
        env!("CARGO_PKG_VERSION"),
        id.test,
        env.queue.kind(),
        id.role
    );
    let hlog = HlogWriter::new(out.create("latency.hlog")?, started_at, &about)?;
    let system = SystemSampler::start(out.create("system.csv")?, started, env.server.clone())?;
    let stats_stop = CancellationToken::new();
    let sampler = env.queue.server().stats();
    let file = out.create(sampler.file())?;
    let server_stats = sampler.start(file, started, stats_stop.clone());
    Ok(Sink {
        out,
        metrics,
        hlog,
        system,
        server_stats,
        stats_stop,
    })
}
