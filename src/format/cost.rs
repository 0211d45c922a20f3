//! `cost.csv` (`qbench cost`): what one design's protocol costs its server per job, read
//! from the server's own counters before and after a fixed run.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The server's counters a protocol moves. `None`: the server cannot say (the reason
/// is in `missing`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counters {
    /// Statements (PostgreSQL, top level: as clients sent them) or commands (Valkey).
    pub statements: Option<u64>,
    /// Statements run inside functions (PostgreSQL, `pg_stat_statements.track = all`).
    pub nested_statements: Option<u64>,
    pub transactions: Option<u64>,
    /// WAL (PostgreSQL) or append-only file (Valkey) bytes written.
    pub log_bytes: Option<u64>,
    /// Row versions made dead by UPDATE and DELETE on the design's tables.
    pub dead_tuples: Option<u64>,
    /// UPDATEs on the design's tables, and the HOT ones among them (no new index
    /// entries).
    pub updates: Option<u64>,
    pub hot_updates: Option<u64>,
    /// Shared buffers hit or read by the statements.
    pub buffers: Option<u64>,
    /// Client sessions open on the server when read (PostgreSQL backend pids): a
    /// reading after a run waits until the run's own have ended (and flushed their
    /// statistics).
    pub sessions: Vec<i64>,
    /// Why a counter is `None`, in words.
    pub missing: Vec<String>,
}

impl Counters {
    /// What moved since `before`; a counter that went backwards (a reset, an AOF
    /// rewrite) is unknown, never negative.
    pub fn since(&self, before: &Counters) -> Counters {
        let d = |a: Option<u64>, b: Option<u64>| a?.checked_sub(b?);
        let mut missing = self.missing.clone();
        for m in &before.missing {
            if !missing.contains(m) {
                missing.push(m.clone());
            }
        }
        Counters {
            statements: d(self.statements, before.statements),
            nested_statements: d(self.nested_statements, before.nested_statements),
            transactions: d(self.transactions, before.transactions),
            log_bytes: d(self.log_bytes, before.log_bytes),
            dead_tuples: d(self.dead_tuples, before.dead_tuples),
            updates: d(self.updates, before.updates),
            hot_updates: d(self.hot_updates, before.hot_updates),
            buffers: d(self.buffers, before.buffers),
            sessions: vec![],
            missing,
        }
    }
}

/// One row of cost.csv: one design's counters over a run, per job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    /// The design as tables name it (`pgmq+delete`).
    pub design: String,
    pub backend: String,
    pub durability_tier: String,
    /// Jobs enqueued one per call, then claimed `dequeue_batch` at a time and completed.
    pub jobs: u64,
    pub dequeue_batch: u32,
    pub statements_per_job: Option<f64>,
    pub nested_statements_per_job: Option<f64>,
    pub transactions_per_job: Option<f64>,
    pub log_bytes_per_job: Option<f64>,
    pub dead_tuples_per_job: Option<f64>,
    /// HOT updates / updates.
    pub hot_share: Option<f64>,
    pub buffers_per_job: Option<f64>,
    /// What was not measured and why.
    pub note: String,
}

impl CostRow {
    pub fn new(design: String, backend: &str, tier: &str, jobs: u64, batch: u32) -> CostRow {
        CostRow {
            design,
            backend: backend.into(),
            durability_tier: tier.into(),
            jobs,
            dequeue_batch: batch,
            ..CostRow::default()
        }
    }

    /// Fills the per-job figures from what moved over the run.
    pub fn with(mut self, moved: &Counters) -> CostRow {
        let n = self.jobs.max(1) as f64;
        let per = |c: Option<u64>| c.map(|v| (v as f64 / n * 1000.0).round() / 1000.0);
        self.statements_per_job = per(moved.statements);
        self.nested_statements_per_job = per(moved.nested_statements);
        self.transactions_per_job = per(moved.transactions);
        self.log_bytes_per_job = per(moved.log_bytes).map(f64::round);
        self.dead_tuples_per_job = per(moved.dead_tuples);
        self.hot_share = match (moved.hot_updates, moved.updates) {
            (Some(h), Some(d)) if d > 0 => Some((h as f64 / d as f64 * 1000.0).round() / 1000.0),
            _ => None,
        };
        self.buffers_per_job = per(moved.buffers);
        self.note = moved.missing.join("; ");
        self
    }
}

/// Writes cost.csv whole, or not at all.
pub fn write(path: &Path, rows: &[CostRow]) -> Result<()> {
    let mut w = csv::Writer::from_writer(vec![]);
    for r in rows {
        w.serialize(r)?;
    }
    super::files::write_atomic(path, &w.into_inner()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known truth: 1,000 jobs that moved 3,000 statements and 2,000 dead tuples (1,000
    /// UPDATEs, 250 of them HOT, and 1,000 DELETEs) are 3 statements, 2 dead tuples and
    /// a HOT share of 0.25 per job; a
    /// counter that went backwards is unknown, and a reason is kept once.
    #[test]
    fn per_job_figures_are_what_moved_over_the_jobs() {
        let before = Counters {
            statements: Some(100),
            dead_tuples: Some(10),
            updates: Some(0),
            hot_updates: Some(0),
            log_bytes: Some(5_000),
            missing: vec!["no AOF".into()],
            ..Counters::default()
        };
        let after = Counters {
            statements: Some(3_100),
            dead_tuples: Some(2_010),
            updates: Some(1_000),
            hot_updates: Some(250),
            log_bytes: Some(4_000),
            missing: vec!["no AOF".into()],
            ..Counters::default()
        };
        let row = CostRow::new("pgmq".into(), "postgresql", "strict", 1_000, 1)
            .with(&after.since(&before));
        assert_eq!(row.statements_per_job, Some(3.0));
        assert_eq!(row.dead_tuples_per_job, Some(2.0));
        assert_eq!(row.hot_share, Some(0.25));
        assert_eq!(row.log_bytes_per_job, None, "went backwards: unknown");
        assert_eq!(row.transactions_per_job, None);
        assert_eq!(row.note, "no AOF");
    }
}
