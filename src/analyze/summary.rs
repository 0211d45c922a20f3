//! One test's row of `summary.csv`, computed from its processes' files.

use super::load::{Folder, TestGroup};
use crate::format::metrics::Summary;
use crate::format::summary::Row;
use crate::stats::{Metric, Percentiles};

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Computes a test's row. Percentiles come from the merged histograms.
pub fn row(g: &TestGroup, folder: &Folder) -> Row {
    let parts = &g.parts;
    let first = &parts[0].manifest;
    let e2e = Percentiles::of(g.latency.get(Metric::E2e));
    let qw = Percentiles::of(g.latency.get(Metric::QueueWait));
    let sum = |f: &dyn Fn(&Summary) -> Option<u64>| {
        let vals: Vec<u64> = parts.iter().filter_map(|p| f(&p.summary)).collect();
        (!vals.is_empty()).then(|| vals.iter().sum())
    };
    let completed = sum(&|s| s.completed);
    // Lost: the exact audit of a suite; across processes the queue's count as the last
    // worker to finish saw it.
    let lost = parts
        .iter()
        .filter(|p| p.summary.lost.is_some())
        .max_by(|a, b| {
            a.summary
                .window_end_epoch_s
                .unwrap_or(0.0)
                .total_cmp(&b.summary.window_end_epoch_s.unwrap_or(0.0))
        })
        .and_then(|p| p.summary.lost);
    let left = parts.iter().filter_map(|p| p.summary.left_in_queue).max();
    let start = parts
        .iter()
        .filter_map(|p| p.summary.window_start_epoch_s)
        .reduce(f64::min);
    let end = parts
        .iter()
        .filter_map(|p| p.summary.window_end_epoch_s)
        .reduce(f64::max);
    // Throughput over the union of the workers' windows: completed / (last completion −
    // first claim), the same definition a single process reports.
    let throughput = match (completed, start, end) {
        (Some(c), Some(a), Some(b)) if b > a => Some(c as f64 / (b - a)),
        _ => parts
            .iter()
            .filter_map(|p| p.summary.throughput_jobs_s)
            .reduce(|a, b| a + b),
    };
    let sys: Vec<&crate::format::system::Row> = parts
        .iter()
        .filter_map(|p| p.system.as_ref())
        .flatten()
        .collect();
    // Machine and server CPU are the same measurement in every process's file: average
    // them; each process's own CPU adds up.
    let cpu = mean(sys.iter().map(|r| r.cpu_pct));
    let server_cpu = mean(sys.iter().filter_map(|r| r.server_cpu_pct));
    let qbench_cpu = parts
        .iter()
        .filter_map(|p| mean(p.system.as_ref()?.iter().map(|r| r.qbench_cpu_pct)))
        .reduce(|a, b| a + b);
    let mem_peak = sys.iter().filter_map(|r| r.server_mem_mb).max();
    let pgbench_tps = parts
        .iter()
        .find_map(|p| p.manifest.extra.get("pgbench")?["stats"]["tps_mean"].as_f64());
    let baseline_tps = folder.baseline.as_ref().and_then(|b| b.pgbench.tps_mean);
    let change = match (pgbench_tps, baseline_tps) {
        (Some(t), Some(b)) if b > 0.0 => Some(round((t - b) / b * 100.0, 1)),
        _ => None,
    };
    let producer = parts.iter().find(|p| p.summary.produced.is_some());
    let knobs = &producer.map_or(first, |p| &p.manifest).knobs;
    let workers = parts.iter().find(|p| p.summary.completed.is_some());
    Row {
        test: g.test.clone(),
        backend: first.backend.clone(),
        queue: first.queue.clone(),
        scenario: first.scenario.clone().unwrap_or_default(),
        complete: parts.iter().all(|p| p.manifest.complete),
        smoke: parts.iter().any(|p| p.manifest.smoke),
        processes: parts.len(),
        offered_rate: knobs.offered_rate_jobs_s,
        capacity_jobs_s: workers.and_then(|w| w.manifest.knobs.capacity_jobs_s),
        workers: workers.and_then(|w| w.manifest.knobs.workers),
        processing_ms: workers.and_then(|w| w.manifest.knobs.processing_ms),
        duration_s: knobs.production_duration_s,
        produced: sum(&|s| s.produced),
        completed,
        throughput_jobs_s: throughput.map(|t| round(t, 1)),
        p50_ms: e2e.map(|p| p.p50),
        p95_ms: e2e.map(|p| p.p95),
        p99_ms: e2e.map(|p| p.p99),
        p999_ms: e2e.map(|p| p.p999),
        max_ms: e2e.map(|p| p.max),
        mean_ms: e2e.map(|p| round(p.mean, 3)),
        min_ms: e2e.map(|p| p.min),
        p25_ms: e2e.map(|p| p.p25),
        p75_ms: e2e.map(|p| p.p75),
        p90_ms: e2e.map(|p| p.p90),
        queue_wait_p99_ms: qw.map(|p| p.p99),
        lost,
        duplicated: sum(&|s| s.duplicated),
        left_in_queue: left,
        cpu_pct: cpu.map(|c| round(c, 1)),
        server_cpu_pct: server_cpu.map(|c| round(c, 1)),
        qbench_cpu_pct: qbench_cpu.map(|c| round(c, 1)),
        server_mem_peak_mb: mem_peak,
        pgbench_tps: pgbench_tps.map(|t| round(t, 1)),
        pgbench_baseline_tps: baseline_tps.map(|t| round(t, 1)),
        pgbench_tps_change_pct: change,
        host: first.host.hostname.clone(),
        red_flags: String::new(),
        server_durability: first.server_durability.clone().unwrap_or_default(),
    }
}
