//! One test's row of `summary.csv`, computed from its processes' files: latencies from
//! the merged histograms, the audit by identity, CPU over the measured window, and
//! its state (sustained, stalled, over capacity).

use super::load::{Part, TestGroup};
use crate::format::audit::AuditKind;
use crate::format::metrics::Summary;
use crate::format::summary::Row;
use crate::format::system;
use crate::stats::{Metric, Percentiles};

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

fn epoch_s(rfc3339: &str) -> Option<f64> {
    humantime::parse_rfc3339(rfc3339)
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs_f64())
}

/// The measured window over all parts: first claim to last completion, epoch seconds.
fn window(parts: &[Part]) -> Option<(f64, f64)> {
    let start = parts
        .iter()
        .filter_map(|p| p.summary.window_start_epoch_s)
        .reduce(f64::min)?;
    let end = parts
        .iter()
        .filter_map(|p| p.summary.window_end_epoch_s)
        .reduce(f64::max)?;
    (end > start).then_some((start, end))
}

/// Each part's system rows inside the measured window (all of them if it is unknown).
fn measured_rows(parts: &[Part]) -> Vec<Vec<&system::Row>> {
    let w = window(parts);
    parts
        .iter()
        .filter_map(|p| {
            let rows = p.system.as_ref()?;
            let t0 = epoch_s(&p.manifest.started_at);
            Some(
                rows.iter()
                    .filter(|r| match (w, t0) {
                        (Some((a, b)), Some(t0)) => (a..=b + 1.0).contains(&(t0 + r.t_s)),
                        _ => true,
                    })
                    .collect(),
            )
        })
        .collect()
}

/// The highest average over any 3 consecutive seconds.
fn peak3(v: &[f64]) -> Option<f64> {
    if v.len() < 3 {
        return v.iter().copied().reduce(f64::max);
    }
    v.windows(3)
        .map(|w| w.iter().sum::<f64>() / 3.0)
        .reduce(f64::max)
}

/// CPU and memory over the measured window. Machine and server figures are the same
/// measurement in every process's file: averaged; each process's own CPU adds up.
fn cpu(parts: &[Part], row: &mut Row) {
    let per_part = measured_rows(parts);
    let all: Vec<&system::Row> = per_part.iter().flatten().copied().collect();
    let avg = |f: &dyn Fn(&system::Row) -> Option<f64>, d| {
        mean(all.iter().filter_map(|r| f(r))).map(|v| round(v, d))
    };
    row.cpu_pct = avg(&|r| Some(r.cpu_pct), 1);
    row.cpu_cores = avg(&|r| Some(r.cpu_cores), 2);
    row.server_cpu_pct = avg(&|r| r.server_cpu_pct, 1);
    row.server_cores = avg(&|r| r.server_cores, 2);
    let own = |f: fn(&system::Row) -> f64, d| {
        per_part
            .iter()
            .filter_map(|rows| mean(rows.iter().map(|r| f(r))))
            .reduce(|a, b| a + b)
            .map(|v| round(v, d))
    };
    row.qbench_cpu_pct = own(|r| r.qbench_cpu_pct, 1);
    row.qbench_cores = own(|r| r.qbench_cores, 2);
    // Every process that sampled the server saw the same threads: the highest reading.
    row.server_busiest_thread_cores = per_part
        .iter()
        .filter_map(|rows| {
            let busiest: Vec<f64> = rows
                .iter()
                .filter_map(|r| r.server_busiest_thread_cores)
                .collect();
            peak3(&busiest)
        })
        .reduce(f64::max)
        .map(|v| round(v, 2));
    row.server_mem_peak_mb = all.iter().filter_map(|r| r.server_mem_mb).max();
    row.server_mem_source = if all
        .iter()
        .any(|r| r.server_mem_source.as_deref() == Some("rss"))
    {
        "rss".into()
    } else if all.iter().any(|r| r.server_mem_source.is_some()) {
        "pss".into()
    } else {
        String::new()
    };
}

/// The audit by identity over every part.
fn audit(g: &TestGroup, row: &mut Row) {
    let j = &g.audit;
    let workers = g.parts.iter().any(|p| p.audit.completed.is_some());
    row.audit = serde_json::to_value(j.kind)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    row.audit_note = j.note.clone().unwrap_or_default();
    row.lost = (j.kind == AuditKind::Exact).then_some(j.lost.len());
    row.lost_seqs = j
        .lost
        .first(10)
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    row.duplicated = workers.then_some(j.duplicated.len() as u64);
    row.left_in_queue = workers.then_some(j.left);
    row.late_completions = workers.then_some(j.late);
    row.foreign = workers.then_some(j.foreign);
    let censored = Percentiles::of(g.latency.get(Metric::E2eCensored));
    row.censored = workers.then(|| censored.map_or(0, |c| c.count));
    row.censored_p99_ms = censored.map(|c| c.p99);
    let tags = |f: fn(&Summary) -> &std::collections::BTreeMap<String, u64>| {
        let mut all = std::collections::BTreeMap::<String, u64>::new();
        for p in &g.parts {
            for (t, n) in f(&p.summary) {
                *all.entry(t.clone()).or_default() += n;
            }
        }
        all.iter()
            .map(|(t, n)| format!("{t}:{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    row.clamped = tags(|s| &s.clamped);
    row.negative = tags(|s| &s.negative);
    row.started_late_max_ms = g
        .parts
        .iter()
        .filter_map(|p| p.manifest.started_late_ms)
        .reduce(f64::max)
        .map(|ms| round(ms, 1));
    // How far apart two processes' clocks are at least: the difference of their offsets
    // to the server, less what their readings' round trips leave uncertain.
    let clocks: Vec<_> = g.parts.iter().filter_map(|p| p.manifest.clock).collect();
    row.clock_spread_ms = (clocks.len() > 1).then(|| {
        let mut spread = 0.0f64;
        for (i, a) in clocks.iter().enumerate() {
            for b in &clocks[i + 1..] {
                let apart = (a.offset_ms - b.offset_ms).abs() - (a.rtt_ms + b.rtt_ms) / 2.0;
                spread = spread.max(apart);
            }
        }
        round(spread, 3)
    });
}

/// Computes a test's row. Percentiles come from the merged histograms.
/// A folder as summary.csv names it: absolute, so graph finds it from anywhere.
pub fn results_dir(folder: &std::path::Path) -> String {
    std::fs::canonicalize(folder)
        .unwrap_or_else(|_| folder.to_path_buf())
        .display()
        .to_string()
}

/// Throughput over the union of the workers' windows: completed / (last completion −
/// first claim), the same definition a single process reports.
fn throughput(parts: &[Part], completed: Option<u64>) -> Option<f64> {
    match (completed, window(parts)) {
        (Some(c), Some((a, b))) => Some(c as f64 / (b - a)),
        _ => parts
            .iter()
            .filter_map(|p| p.summary.throughput_jobs_s)
            .reduce(|a, b| a + b),
    }
}

/// Every work process's protocol bound summed, or none: a partial sum would understate it.
fn protocol_bound(parts: &[Part]) -> Option<f64> {
    parts
        .iter()
        .filter(|p| p.summary.completed.is_some())
        .map(|p| p.summary.protocol_bound_jobs_s)
        .sum::<Option<f64>>()
        .map(|c| round(c, 1))
}

pub fn row(g: &TestGroup) -> Row {
    let parts = &g.parts;
    let first = &parts[0].manifest;
    let e2e = Percentiles::of(g.latency.get(Metric::E2e));
    let qw = Percentiles::of(g.latency.get(Metric::QueueWait));
    let sum = |f: &dyn Fn(&Summary) -> Option<u64>| {
        let vals: Vec<u64> = parts.iter().filter_map(|p| f(&p.summary)).collect();
        (!vals.is_empty()).then(|| vals.iter().sum())
    };
    let completed = sum(&|s| s.completed);
    let throughput = throughput(parts, completed);
    let extra = |key: &str| {
        parts
            .iter()
            .find_map(|p| p.manifest.extra.get(key)?["stats"]["tps_mean"].as_f64())
    };
    let (pgbench_tps, alone_tps) = (extra("pgbench"), extra("pgbench_alone"));
    let producer = parts.iter().find(|p| p.summary.produced.is_some());
    let knobs = &producer.map_or(first, |p| &p.manifest).knobs;
    let workers = parts.iter().find(|p| p.summary.completed.is_some());
    // Several producer (or worker) processes of one test, maybe on several hosts: the
    // offered load and the capacity are their sums, not the first one's.
    let over = |is: fn(&Part) -> bool, of: fn(&crate::format::manifest::Knobs) -> Option<f64>| {
        parts
            .iter()
            .filter(|p| is(p))
            .map(|p| of(&p.manifest.knobs))
            .sum::<Option<f64>>()
    };
    let producing: fn(&Part) -> bool = |p| p.summary.produced.is_some();
    let working: fn(&Part) -> bool = |p| p.summary.completed.is_some();
    let mut row = Row {
        test: g.test.clone(),
        backend: first.backend.clone(),
        queue: first.queue.clone(),
        design_variant: design_variant(g),
        library_wakeup: workers
            .map(|p| p.manifest.knobs.library_wakeup.clone())
            .unwrap_or_default(),
        scenario: first.scenario.clone().unwrap_or_default(),
        complete: parts.iter().all(|p| p.manifest.complete),
        smoke: parts.iter().any(|p| p.manifest.smoke),
        processes: parts.len(),
        offered_rate: producer.and(over(producing, |k| k.offered_rate_jobs_s)),
        closed_loop: parts.iter().any(|p| p.summary.closed_loop),
        capacity_jobs_s: workers.and(over(working, |k| k.capacity_jobs_s)),
        capacity_measured_jobs_s: sum_f(parts, |s| s.capacity_measured_jobs_s).map(|c| round(c, 1)),
        protocol_bound_jobs_s: protocol_bound(parts),
        workers: workers.and(
            parts
                .iter()
                .filter(|p| working(p))
                .map(|p| p.manifest.knobs.workers)
                .sum::<Option<u32>>(),
        ),
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
        pgbench_tps: pgbench_tps.map(|t| round(t, 1)),
        pgbench_alone_tps: alone_tps.map(|t| round(t, 1)),
        pgbench_tps_change_pct: match (pgbench_tps, alone_tps) {
            (Some(t), Some(b)) if b > 0.0 => Some(round((t - b) / b * 100.0, 1)),
            _ => None,
        },
        host: first.host.hostname.clone(),
        results_dir: results_dir(&g.folder),
        server_durability: first.server_durability.clone().unwrap_or_default(),
        durability_tier: first
            .durability_tier
            .map(|t| t.name().to_string())
            .unwrap_or_default(),
        server_tls: first.server_tls.clone().unwrap_or_else(|| "off".into()),
        ..Row::default()
    };
    audit(g, &mut row);
    super::shards::fill(g, &mut row);
    cpu(parts, &mut row);
    wakeup(g, &mut row);
    (row.state, row.state_reason) = super::state::judge(g, &row);
    repeat(g, &mut row);
    row.workload = workload(g, &row);
    row
}

/// The design options that make the test a variant, from its workers' manifest.
fn design_variant(g: &TestGroup) -> String {
    g.parts
        .iter()
        .find(|p| p.summary.completed.is_some())
        .map(|p| p.manifest.knobs.design_variant.clone())
        .unwrap_or_default()
}

/// The test's workload, from its workers' manifest (none for a producer alone).
fn workload(g: &TestGroup, row: &Row) -> Option<crate::format::workload::Workload> {
    let k = &g
        .parts
        .iter()
        .find(|p| p.summary.completed.is_some())?
        .manifest
        .knobs;
    Some(crate::format::workload::Workload {
        queue: row.queue.clone(),
        options: k.design_options.clone(),
        tier: row.durability_tier.clone(),
        wakeup: row.wakeup.clone(),
        poll_interval_ms: Some(k.poll_interval_ms),
        workers: row.workers,
        processing_ms: row.processing_ms,
        job_size_bytes: Some(k.job_size_bytes),
        dequeue_batch: Some(k.dequeue_batch),
    })
}

/// Which variant and repeat the test is, as run-suite recorded them in the manifest.
fn repeat(g: &TestGroup, row: &mut Row) {
    let extra = &g.parts[0].manifest.extra;
    row.label = extra
        .get("label")
        .and_then(|l| l.as_str())
        .unwrap_or_default()
        .to_string();
    let rep = extra.get("repeat");
    let of = rep.and_then(|r| r["of"].as_u64()).unwrap_or(1);
    row.repeat = rep
        .and_then(|r| r["index"].as_u64())
        .filter(|_| of > 1)
        .and_then(|i| u32::try_from(i).ok());
    row.group = match row.repeat {
        Some(k) => g
            .test
            .strip_suffix(&format!(".r{k}"))
            .unwrap_or(&g.test)
            .to_string(),
        None => g.test.clone(),
    };
    row.server_cpu_us_per_job = match (row.server_cores, row.throughput_jobs_s) {
        (Some(c), Some(t)) if t > 0.0 => Some(round(c * 1e6 / t, 1)),
        _ => None,
    };
}

/// How idle workers woke, and what it took: pickup latency, empty claims, NOTIFYs.
fn wakeup(g: &TestGroup, row: &mut Row) {
    let parts = &g.parts;
    let qw = Percentiles::of(g.latency.get(Metric::QueueWait));
    row.queue_wait_p50_ms = qw.map(|p| p.p50);
    let pickup = Percentiles::of(g.latency.get(Metric::Pickup));
    row.pickup_p50_ms = pickup.map(|p| p.p50);
    row.pickup_p99_ms = pickup.map(|p| p.p99);
    let workers = parts.iter().filter(|p| p.summary.completed.is_some());
    row.wakeup = workers
        .clone()
        .find_map(|p| p.summary.wakeup.as_ref().map(|w| w.mode.clone()))
        .unwrap_or_default();
    let empty: Vec<f64> = workers
        .filter_map(|p| Some(p.summary.empty_claims? as f64 / p.summary.duration_s.max(1e-3)))
        .collect();
    row.empty_claims_per_s = (!empty.is_empty()).then(|| round(empty.iter().sum(), 1));
    row.enqueue_p99_ms = Percentiles::of(g.latency.get(Metric::Enqueue)).map(|p| p.p99);
    row.notifications_sent = parts
        .iter()
        .filter_map(|p| p.summary.wakeup.as_ref()?.notifications_sent)
        .reduce(|a, b| a + b);
}

/// The sum over parts of a per-process figure (workers' capacities add up).
fn sum_f(parts: &[Part], f: fn(&Summary) -> Option<f64>) -> Option<f64> {
    parts
        .iter()
        .filter_map(|p| f(&p.summary))
        .reduce(|a, b| a + b)
}
