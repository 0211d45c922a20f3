//! `sweep/DESIGN_sweep.json` (the MST search: every step's verdict and the result),
//! `sweep/DESIGN_burndown.json` (a pre-filled queue drained, closed loop) and
//! `sweep/DESIGN_scaling.json` (burn-down per worker count, with the USL fit).

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::files::write_atomic;

pub const SWEEP_FORMAT: &str = "qbench.sweep";
pub const BURNDOWN_FORMAT: &str = "qbench.burndown";
pub const SCALING_FORMAT: &str = "qbench.scaling";
pub const CAPACITY_CSV: &str = "capacity.csv";
pub const SCALING_CSV: &str = "scaling.csv";

/// The criteria a step must meet, in the order a failure is blamed on.
pub const CRITERIA: [&str; 5] = ["audit", "producer", "throughput", "depth", "p99"];

/// What every step of a sweep was held to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goal {
    pub slo_p99_ms: f64,
    /// Completions per second over the window, as a fraction of the offered rate.
    pub min_achieved: f64,
    /// The producer's schedule-lag p99 bound, ms.
    pub max_lag_p99_ms: f64,
    /// The depth may grow by at most this fraction of the offered rate per second …
    pub max_depth_slope_of_rate: f64,
    /// … and its mean must stay within offered × SLO + jobs in hand (Little's law: a
    /// deeper mean queue is a mean wait above the SLO).
    pub depth_bound_rule: String,
}

/// One step: offered rate for settle + window seconds, judged over the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub rate_jobs_s: f64,
    /// The step's test files, relative to the sweep file's folder.
    pub files: String,
    pub window_s: f64,
    pub produced_jobs_s: f64,
    pub achieved_jobs_s: f64,
    /// End-to-end latency of the jobs completed after the settle period (the drain
    /// included), with any censored jobs, ms.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    pub samples: u64,
    pub schedule_lag_p99_ms: Option<f64>,
    /// Least-squares slope of the depth over the window, jobs/s, with its standard error.
    pub depth_slope_jobs_s: f64,
    pub depth_slope_se: f64,
    pub depth_max: u64,
    /// The mean depth over the window, held to `depth_bound`.
    pub depth_mean: f64,
    pub depth_bound: f64,
    /// How idle workers learned of new jobs: `poll`, `notify` or `block`.
    pub wakeup: String,
    pub lost: Option<u64>,
    pub duplicated: Option<u64>,
    pub censored: u64,
    pub errors: u64,
    pub pass: bool,
    /// The criteria it failed ([`CRITERIA`] order), and why in words.
    pub failed: Vec<String>,
    pub reason: Option<String>,
}

/// How the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The bracket narrowed to the precision: MST found.
    Found,
    /// The first step failed: no MST (never reported as 0).
    FirstStepFailed,
    /// Every step passed up to the ceiling: MST is a lower bound.
    NoFailure,
    /// The bound on steps ended it (a tiny factor, or verdicts too noisy to converge).
    StepLimit,
    /// Ctrl-C or an error ended it: the steps so far are kept.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub outcome: Outcome,
    /// The highest passing rate (the maximum sustainable throughput at the SLO).
    pub mst_jobs_s: Option<f64>,
    /// What that step completed per second (the MST is the rate offered).
    pub mst_achieved_jobs_s: Option<f64>,
    /// Whether a second run at the MST passed too; false means this machine's noise is
    /// larger than the precision, and the MST is approximate.
    pub confirmed: Option<bool>,
    pub first_fail_jobs_s: Option<f64>,
    /// The criterion the first failing rate failed first ([`CRITERIA`]).
    pub limited_by: Option<String>,
    /// The result in one sentence.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    pub format: String,
    pub version: u32,
    pub queue: String,
    pub backend: String,
    pub tier: String,
    pub server_durability: String,
    pub host: String,
    pub smoke: bool,
    pub started_at: String,
    pub ended_at: String,
    pub workers: u32,
    pub processing_ms: f64,
    /// How the PostgreSQL designs' idle workers woke (`poll` or `notify`); `block` for Valkey.
    pub wakeup: String,
    /// workers × 1000 / processing_ms when the work is simulated: a rate the workers
    /// themselves cap, whatever the queue could take.
    pub worker_bound_jobs_s: Option<f64>,
    /// What bounds the rate, in words (the queue, or the workers).
    pub bottleneck: String,
    pub start_jobs_s: f64,
    pub factor: f64,
    pub precision: f64,
    pub floor_jobs_s: f64,
    pub ceiling_jobs_s: f64,
    pub settle_s: f64,
    pub step_s: f64,
    pub goal: Goal,
    pub steps: Vec<Step>,
    pub result: SweepResult,
    /// What the MST belongs to; null in files written before qbench recorded it (such
    /// a sweep annotates no test and sets no rate).
    #[serde(default)]
    pub workload: Option<super::workload::Workload>,
}

/// A pre-filled queue drained by `workers`: closed loop, as River's and Oban's
/// published figures are measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Burndown {
    pub format: String,
    pub version: u32,
    pub queue: String,
    pub backend: String,
    pub tier: String,
    pub host: String,
    pub started_at: String,
    pub closed_loop: bool,
    pub workers: u32,
    pub processing_ms: f64,
    pub prefilled: u64,
    pub completed: u64,
    pub left_in_queue: u64,
    pub duplicated: u64,
    /// First claim → last completion.
    pub seconds: f64,
    pub jobs_s: f64,
    /// The test's files, relative to this file's folder.
    pub files: String,
    /// `exact` (every job completed once, none left), or what was wrong.
    pub audit: String,
}

pub use crate::stats::usl::UslFit;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingPoint {
    pub workers: u32,
    pub jobs_s: f64,
    pub files: String,
    pub audit: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalingFile {
    pub format: String,
    pub version: u32,
    pub queue: String,
    pub backend: String,
    pub tier: String,
    pub host: String,
    pub closed_loop: bool,
    pub processing_ms: f64,
    pub prefilled: u64,
    pub points: Vec<ScalingPoint>,
    /// `null` with fewer than three worker counts, or when the fit failed.
    pub usl: Option<UslFit>,
}

pub fn sweep_file(queue: &str) -> String {
    format!("{queue}_sweep.json")
}

pub fn burndown_file(queue: &str) -> String {
    format!("{queue}_burndown.json")
}

pub fn scaling_file(queue: &str) -> String {
    format!("{queue}_scaling.json")
}

/// Writes any of the three atomically (a reader never sees half a file).
pub fn write<T: Serialize>(value: &T, path: &Path) -> Result<()> {
    write_atomic(
        path,
        format!("{}\n", serde_json::to_string_pretty(value)?).as_bytes(),
    )
}

pub fn read_sweep(path: &Path) -> Result<SweepFile> {
    super::read::read_versioned(path, SWEEP_FORMAT)
}

pub fn read_burndown(path: &Path) -> Result<Burndown> {
    super::read::read_versioned(path, BURNDOWN_FORMAT)
}

pub fn read_scaling(path: &Path) -> Result<ScalingFile> {
    super::read::read_versioned(path, SCALING_FORMAT)
}

/// `analysis/capacity.csv`: one row per sweep step, with its design's result repeated
/// on each (so a chart or a spreadsheet needs no join).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub queue: String,
    pub backend: String,
    pub tier: String,
    pub smoke: bool,
    pub wakeup: String,
    /// The sweep this step belongs to (its start time): charts draw each sweep apart.
    pub sweep: String,
    pub workers: u32,
    pub processing_ms: f64,
    pub slo_p99_ms: f64,
    pub rate_jobs_s: f64,
    pub pass: bool,
    /// The criteria it failed, `;`-separated ([`CRITERIA`]).
    pub failed: String,
    pub achieved_jobs_s: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    /// This step's rate is the design's MST.
    pub is_mst: bool,
    pub outcome: String,
    pub mst_jobs_s: Option<f64>,
    pub confirmed: Option<bool>,
    pub first_fail_jobs_s: Option<f64>,
    pub limited_by: String,
    pub worker_bound_jobs_s: Option<f64>,
    /// The design's burn-down (closed loop) in the same folder, if one ran.
    pub burndown_jobs_s: Option<f64>,
    pub burndown_workers: Option<u32>,
}

/// `analysis/scaling.csv`: burn-down throughput per worker count, with the fit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalingRow {
    pub queue: String,
    pub backend: String,
    pub tier: String,
    pub workers: u32,
    pub jobs_s: f64,
    pub audit: String,
    /// The USL's X(workers) for this count; the fit's parameters are repeated.
    pub fit_jobs_s: Option<f64>,
    pub lambda: Option<f64>,
    pub sigma: Option<f64>,
    pub kappa: Option<f64>,
    pub peak_workers: Option<f64>,
    pub peak_jobs_s: Option<f64>,
    /// The peak lies beyond the largest worker count measured: a projection, not a
    /// measurement.
    #[serde(default)]
    pub peak_extrapolated: Option<bool>,
    pub r2: Option<f64>,
}

impl Outcome {
    /// The name the JSON files use.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Found => "found",
            Outcome::FirstStepFailed => "first_step_failed",
            Outcome::NoFailure => "no_failure",
            Outcome::StepLimit => "step_limit",
            Outcome::Incomplete => "incomplete",
        }
    }
}

/// One design's capacity in one tier, as summary.json and the findings give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesignCapacity {
    pub queue: String,
    pub backend: String,
    pub tier: String,
    pub smoke: bool,
    pub wakeup: String,
    pub slo_p99_ms: f64,
    pub outcome: Outcome,
    pub mst_jobs_s: Option<f64>,
    pub confirmed: Option<bool>,
    pub first_fail_jobs_s: Option<f64>,
    pub limited_by: Option<String>,
    pub steps: usize,
    pub workers: u32,
    pub processing_ms: f64,
    pub worker_bound_jobs_s: Option<f64>,
    pub bottleneck: String,
    pub note: String,
    pub burndown_jobs_s: Option<f64>,
    pub burndown_workers: Option<u32>,
    pub usl: Option<UslFit>,
    /// What the MST belongs to (null from a sweep file that did not record it).
    #[serde(default)]
    pub workload: Option<super::workload::Workload>,
}

impl DesignCapacity {
    /// A sweep with no simulated work: the design's ceiling, never a workload's MST.
    pub fn is_design_ceiling(&self) -> bool {
        self.processing_ms == 0.0
    }
}
