//! The horizon scenario's files: `TEST_horizon.csv` (one row per second: the oldest
//! snapshot's age, the design's tuples and sizes, vacuum, claim latency, the claim's
//! buffers, wait events), `TEST_horizon_relations.csv` (per table and index, per second),
//! the `horizon` object in the manifest, and analyze's `horizon.csv`.

use std::fmt;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub const HORIZON_CSV: &str = "horizon.csv";
pub const RELATIONS_CSV: &str = "horizon_relations.csv";
/// analyze's table of horizon results, one row per horizon test.
pub const HORIZON_SUMMARY_CSV: &str = "horizon.csv";
/// analyze's per-second series of every horizon test, which graph draws.
pub const TIMELINE_CSV: &str = "horizon_timeline.csv";

/// What holds the horizon back during the hold phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// `BEGIN; SELECT txid_current();` then idle in transaction.
    Xid,
    /// A REPEATABLE READ transaction that read one row and keeps its snapshot.
    Snapshot,
    /// K overlapping long SELECTs over the queue table, staggered (PlanetScale's shape).
    Analytics,
    /// Nothing is held: the same schedule as a control.
    None,
}

impl Holder {
    pub fn name(self) -> &'static str {
        match self {
            Holder::Xid => "xid",
            Holder::Snapshot => "snapshot",
            Holder::Analytics => "analytics",
            Holder::None => "none",
        }
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the holder is run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HolderSpec {
    pub kind: Holder,
    /// Analytics: how many queries overlap, and how long each runs.
    pub queries: u32,
    pub query_s: f64,
}

/// The three phases, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Phases {
    pub baseline_s: f64,
    pub hold_s: f64,
    pub recovery_s: f64,
}

impl Phases {
    pub fn total_s(&self) -> f64 {
        self.baseline_s + self.hold_s + self.recovery_s
    }

    pub fn hold_end_s(&self) -> f64 {
        self.baseline_s + self.hold_s
    }

    /// The phase a second of the test belongs to (the drain after the producer stops).
    pub fn at(&self, t_s: f64) -> &'static str {
        if t_s <= self.baseline_s {
            "baseline"
        } else if t_s <= self.hold_end_s() {
            "hold"
        } else if t_s <= self.total_s() {
            "recovery"
        } else {
            "drain"
        }
    }
}

/// One second of `TEST_horizon.csv`. Server columns a backend does not have are empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HorizonRow {
    pub t_s: f64,
    pub phase: String,
    /// `idle`, `holding`, `released` or `killed`.
    pub holder: String,
    /// Age in transactions of the oldest snapshot or transaction id in this database.
    pub xmin_age: Option<i64>,
    /// Summed over the design's tables (partitions included).
    pub live_tuples: Option<i64>,
    pub dead_tuples: Option<i64>,
    pub table_bytes: Option<i64>,
    pub index_bytes: Option<i64>,
    /// Autovacuum runs finished on the design's tables since the test began.
    pub autovacuum_total: Option<i64>,
    /// Vacuums running on them now (`pg_stat_progress_vacuum`) and their phases.
    pub vacuums_running: Option<i64>,
    pub vacuum_phase: Option<String>,
    /// Jobs completed this second; its claim round trips (tag `claim`) and end-to-end p99.
    pub completed: u64,
    pub claim_p50_ms: Option<f64>,
    pub claim_p99_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
    pub depth: Option<u64>,
    /// Every 10 s: `EXPLAIN (ANALYZE, BUFFERS)` of one claim in a rolled-back
    /// transaction: buffers touched (hit + read) and its execution time.
    pub claim_buffers: Option<i64>,
    pub claim_explain_ms: Option<f64>,
    /// Why the explained claim gave no figures (`timed out`, an error).
    #[serde(default)]
    pub claim_explain_error: Option<String>,
    /// Wait events of qbench's active sessions, `type:event=count` separated by spaces.
    pub wait_events: Option<String>,
    /// Valkey's used_memory.
    pub memory_bytes: Option<i64>,
}

/// One relation at one second, in `TEST_horizon_relations.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationRow {
    pub t_s: f64,
    pub relation: String,
    /// `table` or `index`.
    pub kind: String,
    pub live_tuples: Option<i64>,
    pub dead_tuples: Option<i64>,
    pub bytes: i64,
}

/// What a server reads for one second of the horizon scenario.
#[derive(Debug, Clone, Default)]
pub struct ServerSample {
    pub xmin_age: Option<i64>,
    pub relations: Vec<RelationRow>,
    pub autovacuums: Option<i64>,
    pub vacuums_running: Option<i64>,
    pub vacuum_phase: Option<String>,
    pub wait_events: Option<String>,
    pub memory_bytes: Option<i64>,
}

/// One claim, explained: buffers touched and execution time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClaimCost {
    pub buffers: i64,
    pub ms: f64,
}

/// The holder's fate, as the manifest records it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HolderRecord {
    /// What was held, in words (the statement, or "idle connection").
    pub held: String,
    pub hold_started_s: Option<f64>,
    pub released_s: Option<f64>,
    /// The server ended the holder before the release (a timeout): when, and its words.
    pub killed_s: Option<f64>,
    pub killed_by: Option<String>,
    /// The holder could not start at all: nothing was held (`held` says why).
    #[serde(default)]
    pub never_held: bool,
}

/// The manifest's `horizon` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonRecord {
    pub holder: HolderSpec,
    pub phases: Phases,
    pub rate_jobs_s: f64,
    /// Where the rate came from: `--rate`, half the MST of a named sweep file, or the default.
    pub rate_source: String,
    pub slo_p99_ms: f64,
    /// The server's vacuum settings as the test ran (autovacuum at its defaults on --local).
    pub settings: std::collections::BTreeMap<String, String>,
    pub outcome: HolderRecord,
    /// The per-second sampler stopped early: its rows end there.
    #[serde(default)]
    pub sampler_error: Option<String>,
}

/// analyze's result of one horizon test (a row of `horizon.csv`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HorizonResult {
    pub test: String,
    pub queue: String,
    pub backend: String,
    pub holder: String,
    pub smoke: bool,
    pub rate_jobs_s: f64,
    pub baseline_s: f64,
    pub hold_s: f64,
    pub recovery_s: f64,
    /// How long the horizon was held: to the release, or to the server ending the
    /// holder; empty when the holder never started (nothing was held).
    pub held_s: Option<f64>,
    /// Claim p99 over the baseline (after its first 10 s when it is longer than 20 s)
    /// and over the hold's last third (where the pile is largest).
    pub baseline_claim_p99_ms: Option<f64>,
    pub hold_claim_p99_ms: Option<f64>,
    pub claim_p99_ratio: Option<f64>,
    pub baseline_e2e_p99_ms: Option<f64>,
    pub hold_e2e_p99_ms: Option<f64>,
    pub e2e_p99_ratio: Option<f64>,
    /// The end-to-end goal, and when (seconds after the hold began) 3 seconds in a row
    /// first broke it (a second with jobs waiting and none completed counts as broken),
    /// and in which phase; empty if never during the hold and recovery.
    pub slo_p99_ms: f64,
    pub breach_after_s: Option<f64>,
    pub breach_phase: Option<String>,
    /// The baseline broke the goal already: a breach is not the hold's doing.
    pub breached_in_baseline: bool,
    /// Least-squares fit of per-second claim p99 against dead tuples during the hold.
    pub claim_ms_per_10k_dead: Option<f64>,
    pub fit_r2: Option<f64>,
    /// The direct mechanism: buffers one explained claim touched against dead tuples.
    pub buffers_per_10k_dead: Option<f64>,
    pub buffers_fit_r2: Option<f64>,
    pub dead_at_hold_start: Option<i64>,
    pub peak_dead_tuples: Option<i64>,
    /// Whether dead tuples rose through the hold: the means of ten equal slices of it
    /// never fall, and the last is above the first.
    pub dead_monotonic: Option<bool>,
    /// The design's indexes at the hold's start and end (they grow with live rows too:
    /// skip_locked keeps completed rows, delete_returning archives them).
    pub index_bytes_hold_start: Option<i64>,
    pub index_bytes_hold_end: Option<i64>,
    pub peak_xmin_age: Option<i64>,
    /// Seconds after the release until a 10 s window's claim p99 was within 10 % of the
    /// baseline's; empty when it never was within the recovery phase.
    pub recovery_s_measured: Option<f64>,
    pub recovered: Option<bool>,
    /// The hold made claims slower than the recovery rule allows (p99 above 1.1× the
    /// baseline's); without that there is nothing to recover from.
    pub degraded: bool,
    /// The hold built a backlog (the depth above twice the baseline's largest and above
    /// a second of arrivals), and when, after the release, the depth was back to the
    /// baseline's largest (or the test drained to empty).
    pub backlog_built: bool,
    pub backlog_cleared_s: Option<f64>,
    /// The share of the baseline's own 10 s windows that meet the recovery rule: how
    /// much of it is this machine's noise (1.0: none).
    pub baseline_windows_within: Option<f64>,
    pub holder_killed_s: Option<f64>,
    pub holder_killed_by: Option<String>,
    pub lost: Option<u64>,
    pub note: String,
}

/// One second of one horizon test in analyze's `horizon_timeline.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineRow {
    pub test: String,
    pub queue: String,
    pub holder: String,
    pub smoke: bool,
    pub t_s: f64,
    pub claim_p99_ms: Option<f64>,
    pub e2e_p99_ms: Option<f64>,
    pub dead_tuples: Option<i64>,
    /// The hold window on the test's clock (repeated on every row of the test).
    pub hold_started_s: f64,
    pub released_s: f64,
}

/// Reads `TEST_horizon.csv`; a missing or damaged file is named in one line.
pub fn read_rows(path: &Path) -> Result<Vec<HorizonRow>> {
    super::read::read_csv(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_name_each_second() {
        let p = Phases {
            baseline_s: 10.0,
            hold_s: 20.0,
            recovery_s: 5.0,
        };
        assert_eq!(p.at(3.0), "baseline");
        assert_eq!(p.at(10.5), "hold");
        assert_eq!(p.at(31.0), "recovery");
        assert_eq!(p.at(36.0), "drain");
        assert_eq!(p.total_s(), 35.0);
    }
}
