//! What `analyze` writes: `summary.csv` (one row per test, the contract `graph` reads) and
//! `summary.json` (the rows with the findings and caveats).

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::UsageError;

pub const SUMMARY_FORMAT: &str = "qbench.summary";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub test: String,
    pub backend: String,
    pub queue: String,
    /// The design options that make this a variant of the queue's design (`delete`),
    /// empty at its defaults: the design is then named `pgmq+delete`.
    #[serde(default)]
    pub design_variant: String,
    /// The wakeup of the library the design models as it ships (`notify`), from the
    /// workers' manifest; empty when none (and in files written before it was recorded).
    #[serde(default)]
    pub library_wakeup: String,
    /// cold, warm, load, or empty for tests outside run-suite.
    pub scenario: String,
    /// False: interrupted or failed; never mixed into the findings.
    pub complete: bool,
    /// A `--quick` run.
    pub smoke: bool,
    /// Processes whose files make up this test (producer, workers).
    pub processes: usize,
    pub offered_rate: Option<f64>,
    /// `--rate max`: closed loop, queueing behind the server is not in the latencies.
    pub closed_loop: bool,
    /// Nominal: workers × 1000 / processing_ms.
    pub capacity_jobs_s: Option<f64>,
    /// Measured: workers / mean service time.
    pub capacity_measured_jobs_s: Option<f64>,
    /// The design's protocol bound on its workers' rate, summed over work processes.
    pub protocol_bound_jobs_s: Option<f64>,
    pub workers: Option<u32>,
    pub processing_ms: Option<f64>,
    pub duration_s: Option<f64>,
    pub produced: Option<u64>,
    pub completed: Option<u64>,
    pub throughput_jobs_s: Option<f64>,
    /// The test judged on its production window: `sustained` (completions kept up),
    /// `stalled` (a backlog built and drained, or was draining at the end: its latency is
    /// the stall's), `over_capacity` (completions fell behind for good: ranked by completed
    /// throughput); empty for closed-loop, incomplete and horizon tests.
    #[serde(default)]
    pub state: String,
    /// Why, in words.
    #[serde(default)]
    pub state_reason: String,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub p25_ms: Option<f64>,
    pub p75_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub queue_wait_p50_ms: Option<f64>,
    pub queue_wait_p99_ms: Option<f64>,
    /// How idle workers learned of new jobs: poll, notify (PostgreSQL) or block (Valkey).
    pub wakeup: String,
    /// Queue wait of jobs picked up by a worker that was idle when they arrived.
    pub pickup_p50_ms: Option<f64>,
    pub pickup_p99_ms: Option<f64>,
    /// Claims that found nothing, per second of the test (polls, or timed-out blocks).
    pub empty_claims_per_s: Option<f64>,
    /// NOTIFYs the producers sent (one per batch that added jobs), notify mode only.
    pub notifications_sent: Option<u64>,
    /// The producer's enqueue call (a NOTIFY's commit cost shows here), p99.
    pub enqueue_p99_ms: Option<f64>,
    /// exact, deferred, inconclusive or none; `audit_note` says why when not exact.
    pub audit: String,
    pub audit_note: String,
    pub lost: Option<u64>,
    /// The first lost sequence numbers, space-separated.
    pub lost_seqs: String,
    pub duplicated: Option<u64>,
    pub left_in_queue: Option<u64>,
    /// Jobs left in the queue, recorded at their age as censored samples.
    pub censored: Option<u64>,
    pub censored_p99_ms: Option<f64>,
    pub late_completions: Option<u64>,
    pub foreign: Option<u64>,
    /// `tag:n` counts of latencies above an hour (clamped) and below zero (clock skew).
    pub clamped: String,
    pub negative: String,
    /// How far apart two processes' clocks are at least, ms: the difference of their
    /// offsets to the server beyond what the readings' round trips leave uncertain.
    pub clock_spread_ms: Option<f64>,
    /// `--start-at` runs: the latest any process began after the start time, ms.
    #[serde(default)]
    pub started_late_max_ms: Option<f64>,
    /// Averages over the measured window (first claim to last completion).
    pub cpu_pct: Option<f64>,
    pub cpu_cores: Option<f64>,
    pub server_cpu_pct: Option<f64>,
    pub server_cores: Option<f64>,
    /// The server's busiest thread: the highest 3-second average, in cores.
    pub server_busiest_thread_cores: Option<f64>,
    pub qbench_cpu_pct: Option<f64>,
    pub qbench_cores: Option<f64>,
    pub server_mem_peak_mb: Option<u64>,
    /// `pss`, or `rss` when PSS could not be read (then shared memory counts per process).
    pub server_mem_source: String,
    pub pgbench_tps: Option<f64>,
    /// pgbench alone, before the test's warmup, for the production window.
    pub pgbench_alone_tps: Option<f64>,
    pub pgbench_tps_change_pct: Option<f64>,
    pub host: String,
    pub red_flags: String,
    /// The server's durability settings as its manifest recorded them; empty if unknown.
    pub server_durability: String,
    pub durability_tier: String,
    /// The manifest's `server_tls` (`off` when it recorded none, as before TLS support).
    #[serde(default)]
    pub server_tls: String,
    /// A queue spread over a Valkey Cluster: how many primaries served its streams.
    #[serde(default)]
    pub shards: Option<u32>,
    /// The busiest primary's commands processed during the test over the mean per
    /// primary (1.0: even), measured on the servers.
    #[serde(default)]
    pub shard_skew: Option<f64>,
    /// Completed jobs per primary, `host:port=n` separated by spaces.
    #[serde(default)]
    pub shard_completed: String,
    /// The variant's label (`run-suite --label`); empty when none.
    #[serde(default)]
    pub label: String,
    /// Which run of `run-suite --repeat` this is (1-based); empty for a single run.
    #[serde(default)]
    pub repeat: Option<u32>,
    /// The test's name without its `.rK` suffix: the runs pooled across repeats.
    #[serde(default)]
    pub group: String,
    /// How many of the group's runs the intervals below pool (runs that lost, duplicated,
    /// left or saturated are left out, and said so).
    #[serde(default)]
    pub n_runs: Option<usize>,
    /// Server CPU per completed job, µs (server cores × 10⁶ / throughput).
    #[serde(default)]
    pub server_cpu_us_per_job: Option<f64>,
    #[serde(default)]
    pub throughput_ci_low: Option<f64>,
    #[serde(default)]
    pub throughput_ci_high: Option<f64>,
    #[serde(default)]
    pub p50_ci_low: Option<f64>,
    #[serde(default)]
    pub p50_ci_high: Option<f64>,
    #[serde(default)]
    pub p99_ci_low: Option<f64>,
    #[serde(default)]
    pub p99_ci_high: Option<f64>,
    #[serde(default)]
    pub p999_ci_low: Option<f64>,
    #[serde(default)]
    pub p999_ci_high: Option<f64>,
    #[serde(default)]
    pub server_cpu_us_per_job_ci_low: Option<f64>,
    #[serde(default)]
    pub server_cpu_us_per_job_ci_high: Option<f64>,
    /// The figures on which this run lies far from its group's median (MAD rule):
    /// flagged, never dropped.
    #[serde(default)]
    pub outlier: String,
    /// The maximum sustainable throughput within `mst_slo_p99_ms` of this test's own
    /// workload (design and its options, tier, wakeup, workers, processing time, payload
    /// and batch all the same), from a sweep in the same folders
    /// (`sweep/DESIGN_sweep.json`); empty when no sweep of this workload ran or it found
    /// no passing rate. A design's ceiling (a sweep with 0 ms of work) never fills it.
    #[serde(default)]
    pub mst_jobs_s: Option<f64>,
    #[serde(default)]
    pub mst_slo_p99_ms: Option<f64>,
    /// A second run at the MST passed too (false: the machine's noise is larger than
    /// the sweep's precision, read the MST as approximate).
    #[serde(default)]
    pub mst_confirmed: Option<bool>,
    /// The criterion the first failing rate failed: audit, producer, throughput, depth
    /// or p99.
    #[serde(default)]
    pub mst_limited_by: String,
    /// The end-to-end p99 of the seconds outside latency spikes (seconds whose p99 is
    /// over `spike_factor` × the median second's), the number of spikes and the share of
    /// the test's seconds they cover; `spikes.csv` lists each with its cause.
    #[serde(default)]
    pub p99_outside_spikes_ms: Option<f64>,
    #[serde(default)]
    pub spikes: Option<u64>,
    #[serde(default)]
    pub spike_time_share: Option<f64>,
    /// The factor K those spikes were found with (`analyze --spike-factor`): graph
    /// shades the same ones.
    #[serde(default)]
    pub spike_factor: Option<f64>,
    /// The results folder this row was read from (where `graph --timelines` reads the
    /// test's per-second files).
    #[serde(default)]
    pub results_dir: String,
    /// What a capacity figure must belong to, to describe this test. Not written:
    /// summary.csv has its parts (workers, processing_ms, wakeup, durability_tier) and
    /// the manifest the rest.
    #[serde(skip)]
    pub workload: Option<super::workload::Workload>,
}

impl Row {
    /// The design and, for a labelled run (`run-suite --label`), its label: what charts
    /// draw as one series.
    pub fn variant(&self) -> String {
        if self.label.is_empty() {
            self.design()
        } else {
            format!("{} [{}]", self.design(), self.label)
        }
    }

    /// The design as findings and tables name it: the queue, with its variant
    /// (`+delete`) and `+notify` when its idle workers were woken by NOTIFY.
    pub fn design(&self) -> String {
        let mut name = self.queue.clone();
        if !self.design_variant.is_empty() {
            name = format!("{name}+{}", self.design_variant);
        }
        if self.wakeup == "notify" {
            name.push_str("+notify");
        }
        name
    }

    /// Whether the row's figures describe its design: complete, every job accounted for
    /// exactly once by an exact audit, no other run's jobs in its latencies, drained.
    /// Stalled and over-capacity rows are comparable: they rank, by latency and by
    /// throughput ([`Row::ranks_by_latency`]).
    pub fn comparable(&self) -> bool {
        self.complete
            && self.audit == "exact"
            && self.foreign.unwrap_or(0) == 0
            && self.lost.unwrap_or(0) == 0
            && self.duplicated.unwrap_or(0) == 0
            && self.left_in_queue.unwrap_or(0) == 0
    }
}

impl Row {
    /// Over capacity: its latency measures the backlog and the test's length, so it ranks
    /// by completed throughput, below every row that kept up or stalled.
    pub fn over_capacity(&self) -> bool {
        self.state == "over_capacity"
    }

    /// Ranked by its real latency: comparable, and not over capacity (a stall's tail is
    /// the finding, never a reason to drop the row).
    pub fn ranks_by_latency(&self) -> bool {
        self.comparable() && !self.over_capacity()
    }
}

/// The worse of two states: over capacity, then stalled, then sustained.
pub fn worse_state<'a>(a: &'a str, b: &'a str) -> &'a str {
    let rank = |s: &str| match s {
        "over_capacity" => 3,
        "stalled" => 2,
        "sustained" => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// One figure of variant `a` against variant `b` in one scenario and tier, across their
/// runs: the ratio of their medians, its 95 % bootstrap interval, Welch's p on the runs'
/// logarithms, that p adjusted for every comparison of the analysis (Benjamini–Hochberg), and the
/// verdict: a finding only when significant after the adjustment and larger than the
/// practical threshold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Comparison {
    /// "designs" (two variants of one scenario) or "label" (one design across labels).
    pub kind: String,
    pub scenario: String,
    pub tier: String,
    pub figure: String,
    pub a: String,
    pub b: String,
    pub n_a: usize,
    pub n_b: usize,
    pub a_values: Vec<f64>,
    pub b_values: Vec<f64>,
    pub ratio: f64,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub welch_p: Option<f64>,
    /// Welch's p adjusted for every comparison of the analysis (Benjamini–Hochberg).
    #[serde(default)]
    pub p_adjusted: Option<f64>,
    /// The practical threshold the ratio was held to, as |ln ratio|, and its source.
    #[serde(default)]
    pub threshold: f64,
    /// Significant after the adjustment and beyond the threshold; `None` with one run a
    /// side (no interval, no p-value).
    pub significant: Option<bool>,
    /// `clear`, `likely`, `within noise` or `not measured`.
    #[serde(default)]
    pub confidence: String,
    pub verdict: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    pub question: String,
    pub answer: String,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Analysis {
    pub format: String,
    pub version: u32,
    pub generated_at: String,
    pub inputs: Vec<std::path::PathBuf>,
    /// Comparability and other whole-analysis warnings.
    pub warnings: Vec<String>,
    pub caveats: Vec<String>,
    pub findings: Vec<Finding>,
    pub tests: Vec<Row>,
    /// Crash trials found in the folders: each tier's losses, measured.
    #[serde(default)]
    pub crash_trials: Vec<super::crash::CrashFile>,
    /// Figures compared across repeated runs (empty comparisons say "single run").
    #[serde(default)]
    pub comparisons: Vec<Comparison>,
    /// The headline answer, said before every table.
    #[serde(default)]
    pub verdict: super::verdict::Verdict,
    /// Each design's capacity (sweeps, burn-downs, worker scaling) found in the folders.
    #[serde(default)]
    pub capacity: Vec<super::capacity::DesignCapacity>,
    /// Every sweep step (`capacity.csv`) and every scaling point (`scaling.csv`).
    #[serde(default)]
    pub capacity_steps: Vec<super::capacity::StepRow>,
    #[serde(default)]
    pub scaling: Vec<super::capacity::ScalingRow>,
    /// Each horizon test's result (`horizon.csv`).
    #[serde(default)]
    pub horizon: Vec<super::horizon::HorizonResult>,
    /// Their per-second series (`horizon_timeline.csv` only: too long for the JSON).
    #[serde(skip)]
    pub horizon_timeline: Vec<super::horizon::TimelineRow>,
    /// Every latency spike with its cause (`spikes.csv` too).
    #[serde(default)]
    pub spikes: Vec<super::timeline::SpikeRow>,
    /// Every test's events (`events.csv` only: too long for the JSON).
    #[serde(skip)]
    pub events: Vec<super::timeline::EventRow>,
}

/// Row indices by `Row::group`: the runs of one test across repeats.
pub fn groups(rows: &[Row]) -> std::collections::BTreeMap<(String, String), Vec<usize>> {
    let mut g: std::collections::BTreeMap<(String, String), Vec<usize>> =
        std::collections::BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        g.entry(group_key(r)).or_default().push(i);
    }
    g
}

/// A run's group: its test without `.rK` (the test itself in files from before repeats),
/// within its durability tier, so tiers analyzed side by side never pool.
pub fn group_key(r: &Row) -> (String, String) {
    let g = if r.group.is_empty() {
        &r.test
    } else {
        &r.group
    };
    (g.clone(), r.durability_tier.clone())
}

type Field = (fn(&Row) -> Option<f64>, fn(&mut Row, Option<f64>));

/// The figures a pooled row carries as medians over the group's clean runs.
const MEDIANS: [Field; 14] = [
    (|r| r.p50_ms, |r, v| r.p50_ms = v),
    (|r| r.p95_ms, |r, v| r.p95_ms = v),
    (|r| r.p99_ms, |r, v| r.p99_ms = v),
    (|r| r.p999_ms, |r, v| r.p999_ms = v),
    (|r| r.max_ms, |r, v| r.max_ms = v),
    (|r| r.queue_wait_p99_ms, |r, v| r.queue_wait_p99_ms = v),
    (|r| r.cpu_pct, |r, v| r.cpu_pct = v),
    (|r| r.cpu_cores, |r, v| r.cpu_cores = v),
    (|r| r.server_cores, |r, v| r.server_cores = v),
    (
        |r| r.server_busiest_thread_cores,
        |r, v| r.server_busiest_thread_cores = v,
    ),
    (
        |r| r.server_cpu_us_per_job,
        |r, v| r.server_cpu_us_per_job = v,
    ),
    (|r| r.pgbench_tps, |r, v| r.pgbench_tps = v),
    (|r| r.pgbench_alone_tps, |r, v| r.pgbench_alone_tps = v),
    (
        |r| r.pgbench_tps_change_pct,
        |r, v| r.pgbench_tps_change_pct = v,
    ),
];

/// One row per group of repeats, for findings, charts and the report. Latency and
/// resource figures are medians over the group's clean (`comparable`) runs; throughput,
/// produced and completed over every run whose audit is exact. The group's state is
/// over capacity when at least half its runs were, else its worst other run's, the runs
/// that were not sustained named. A run that lost, duplicated, left jobs or saw foreign
/// ones keeps the whole group out of the comparisons, as it would keep a single run out,
/// with its flags named.
pub fn pooled(rows: &[Row]) -> Vec<Row> {
    let mut out = vec![];
    // In the rows' own order (analyze sorts them), each group where its first run is.
    let mut all: Vec<Vec<usize>> = groups(rows).into_values().collect();
    all.sort_by_key(|idx| idx[0]);
    for idx in all {
        let runs: Vec<&Row> = idx.iter().map(|&i| &rows[i]).collect();
        if runs.len() == 1 {
            out.push(runs[0].clone());
            continue;
        }
        let mut m = runs[0].clone();
        m.test = group_key(&m).0;
        m.repeat = None;
        let median = |set: &[&Row], f: fn(&Row) -> Option<f64>| {
            crate::stats::confidence::median(&set.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
        };
        let clean: Vec<&Row> = runs.iter().copied().filter(|r| r.comparable()).collect();
        for (get, set) in MEDIANS {
            set(&mut m, median(&clean, get));
        }
        let exact: Vec<&Row> = runs
            .iter()
            .copied()
            .filter(|r| r.complete && r.audit == "exact")
            .collect();
        m.throughput_jobs_s = median(&exact, |r| r.throughput_jobs_s);
        m.produced = median(&exact, |r| r.produced.map(|x| x as f64)).map(|x| x.round() as u64);
        m.completed = median(&exact, |r| r.completed.map(|x| x as f64)).map(|x| x.round() as u64);
        // As the verdict judges a variant: over capacity when at least half its runs
        // were (one run's bad moment does not flip it), else stalled if any run stalled;
        // the runs that were not sustained are named either way.
        let over = runs.iter().filter(|r| r.over_capacity()).count();
        m.state = if over > 0 && 2 * over >= runs.len() {
            "over_capacity".into()
        } else {
            runs.iter()
                .map(|r| r.state.as_str())
                .filter(|s| *s != "over_capacity")
                .fold("", worse_state)
                .to_string()
        };
        let odd: Vec<String> = runs
            .iter()
            .filter(|r| r.state != "sustained" && !r.state.is_empty())
            .map(|r| format!("{}: {} ({})", r.test, r.state, r.state_reason))
            .collect();
        if !odd.is_empty() {
            m.state_reason = format!("{} of {} runs: {}", odd.len(), runs.len(), odd.join("; "));
        }
        if let Some(bad) = runs.iter().find(|r| !r.comparable()) {
            m.complete = runs.iter().all(|r| r.complete);
            m.audit = bad.audit.clone();
            let sum = |f: fn(&Row) -> Option<u64>| Some(runs.iter().filter_map(|r| f(r)).sum());
            m.lost = sum(|r| r.lost);
            m.duplicated = sum(|r| r.duplicated);
            m.left_in_queue = sum(|r| r.left_in_queue);
            m.foreign = sum(|r| r.foreign);
            m.red_flags = format!("{}: {}", bad.test, bad.red_flags);
        }
        out.push(m);
    }
    out
}

/// The PostgreSQL design with the lowest p99 among `rows` (one scenario's).
pub fn best_pg<'a>(rows: impl IntoIterator<Item = &'a Row>) -> Option<&'a Row> {
    rows.into_iter()
        .filter(|r| r.backend == "postgresql" && r.p99_ms.is_some() && r.ranks_by_latency())
        .min_by(|a, b| {
            a.p99_ms
                .unwrap_or(f64::MAX)
                .total_cmp(&b.p99_ms.unwrap_or(f64::MAX))
        })
}

/// Reads `summary.csv`; a malformed file is one line naming it (and the line).
pub fn read_csv(path: &Path) -> Result<Vec<Row>> {
    let bad =
        |what: String| anyhow::Error::new(UsageError::new(format!("{}: {what}", path.display())));
    let mut r = csv::Reader::from_path(path).map_err(|e| {
        bad(format!(
            "cannot read ({e}); run `qbench analyze` first, it writes summary.csv"
        ))
    })?;
    let mut rows = vec![];
    for rec in r.deserialize::<Row>() {
        rows.push(rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            bad(format!(
                "line {line}: not a qbench summary row ({e}); regenerate it with `qbench analyze`"
            ))
        })?);
    }
    if rows.is_empty() {
        return Err(bad("has no test rows".into()));
    }
    Ok(rows)
}

/// Reads `summary.json`; anything unreadable is one line naming the file.
pub fn read_json(path: &Path) -> Result<Analysis> {
    let bad =
        |what: String| anyhow::Error::new(UsageError::new(format!("{}: {what}", path.display())));
    let bytes = std::fs::read(path).map_err(|e| {
        bad(format!(
            "cannot read ({e}); run `qbench analyze` first, it writes summary.json"
        ))
    })?;
    let a: Analysis = serde_json::from_slice(&bytes).map_err(|e| {
        bad(format!(
            "not a qbench summary ({e}); regenerate it with `qbench analyze`"
        ))
    })?;
    if a.format != SUMMARY_FORMAT {
        return Err(bad(format!(
            "format {:?}, not {SUMMARY_FORMAT:?}",
            a.format
        )));
    }
    Ok(a)
}

/// Writes `summary.csv` and `summary.json` into `dir` (each whole or not at all).
pub fn write(a: &Analysis, dir: &Path) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    super::files::ensure_writable(dir, "--output")?;
    let mut csv = csv::Writer::from_writer(vec![]);
    for r in &a.tests {
        csv.serialize(r)?;
    }
    let csv_path = dir.join("summary.csv");
    let json_path = dir.join("summary.json");
    let bytes = csv
        .into_inner()
        .map_err(|e| anyhow::anyhow!("building summary.csv: {e}"))?;
    super::files::write_atomic(&csv_path, &bytes)?;
    write_rows(&dir.join(super::capacity::CAPACITY_CSV), &a.capacity_steps)?;
    write_rows(&dir.join(super::capacity::SCALING_CSV), &a.scaling)?;
    write_rows(&dir.join(super::horizon::HORIZON_SUMMARY_CSV), &a.horizon)?;
    write_rows(&dir.join(super::horizon::TIMELINE_CSV), &a.horizon_timeline)?;
    write_rows(&dir.join(super::timeline::SPIKES_CSV), &a.spikes)?;
    write_rows(&dir.join(super::timeline::EVENTS_CSV), &a.events)?;
    super::files::write_atomic(&json_path, &serde_json::to_vec_pretty(a)?)?;
    Ok((csv_path, json_path))
}

/// Writes a CSV of `rows`, or removes a stale one when there are none (graph draws the
/// capacity charts from whatever it finds beside summary.csv).
fn write_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    if rows.is_empty() {
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    let mut w = csv::Writer::from_writer(vec![]);
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("building {}: {e}", path.display()))?;
    super::files::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::Row;

    /// A variant and a wakeup each name the design: `pgmq+delete+notify`; a label
    /// follows in brackets; at the defaults the queue alone.
    #[test]
    fn a_variant_is_named_in_the_design() {
        let mut r = Row {
            queue: "pgmq".into(),
            wakeup: "poll".into(),
            ..Row::default()
        };
        assert_eq!(r.design(), "pgmq");
        r.design_variant = "delete".into();
        assert_eq!(r.design(), "pgmq+delete");
        r.wakeup = "notify".into();
        r.label = "b".into();
        assert_eq!(r.variant(), "pgmq+delete+notify [b]");
    }

    /// Only an exact audit with every job once, none of another run's, ranks.
    #[test]
    fn only_exact_clean_rows_compare() {
        let good = Row {
            complete: true,
            audit: "exact".into(),
            lost: Some(0),
            duplicated: Some(0),
            left_in_queue: Some(0),
            foreign: Some(0),
            ..Row::default()
        };
        assert!(good.comparable());
        for bad in [
            Row {
                audit: "deferred".into(),
                ..good.clone()
            },
            Row {
                audit: "none".into(),
                ..good.clone()
            },
            Row {
                foreign: Some(3),
                ..good.clone()
            },
            Row {
                left_in_queue: Some(1),
                ..good.clone()
            },
        ] {
            assert!(!bad.comparable(), "{bad:?}");
        }
        // A stall is the finding: it ranks by latency. Over capacity ranks by throughput.
        let stalled = Row {
            state: "stalled".into(),
            ..good.clone()
        };
        assert!(stalled.comparable() && stalled.ranks_by_latency());
        let over = Row {
            state: "over_capacity".into(),
            ..good.clone()
        };
        assert!(over.comparable() && !over.ranks_by_latency());
    }
}
