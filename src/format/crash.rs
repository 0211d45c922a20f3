//! `DESIGN_TIER_crash.json`: crash trials of one design in one durability tier — the
//! server SIGKILLed while jobs flow, restarted, drained, and audited by identity.

use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::files::write_atomic;

pub const CRASH_FORMAT: &str = "qbench.crash";

/// What kind of crash the trials were, in the words every report repeats.
pub const PROCESS_CRASH: &str = "process: every server process SIGKILLed, the operating system kept running (what the server had written but not fsynced survived; a power cut can lose more)";

/// One crash: what the exact audit found after the restart and the drain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    pub trial: u32,
    /// Jobs the server acknowledged to the producer.
    pub produced: u64,
    pub completed: u64,
    /// Acknowledged, then gone after the crash.
    pub lost: u64,
    /// Every lost seq, as runs: `["1041-1187", "1190"]`.
    pub lost_seqs: Vec<String>,
    /// The kill against when the oldest lost job was due, ms: how far back in time the
    /// crash reached into acknowledged work. `null` when nothing was lost.
    pub loss_window_ms: Option<f64>,
    /// SIGKILL → the restarted server answering (PostgreSQL a connection, Valkey a
    /// PING after loading its data), polled every 10 ms.
    pub restart_ms: f64,
    /// The server was left as a crash leaves it: PostgreSQL's control file said "in
    /// production" after the kill; Valkey's log showed no clean shutdown.
    pub unclean: bool,
    /// SIGKILL → the end of qbench's last outage window: when its producer, workers and
    /// reaper were all working again (includes their reconnect backoff, 50 ms doubling
    /// to 2 s).
    pub clients_back_ms: Option<f64>,
    /// Jobs still queued when the drain bound ended (then the trial is inconclusive).
    pub left: u64,
    /// Deliveries of jobs delivered before (leases the crash left behind).
    pub redelivered: u64,
    /// Jobs completed more than once (a completion the crash took back).
    pub duplicated: u64,
    /// Jobs sent but never acknowledged (the crash cut the answer off): never lost.
    pub uncertain: u64,
    /// `exact`, or why not.
    pub audit: String,
}

/// Every trial of one design in one tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrashFile {
    pub format: String,
    pub version: u32,
    pub queue: String,
    pub backend: String,
    /// The tier the server's settings amount to, read before the first crash.
    pub tier: String,
    pub server_durability: String,
    /// What was crashed ([`PROCESS_CRASH`]).
    pub crash: String,
    pub offered_rate_jobs_s: f64,
    /// Seconds of production per trial, and how many seconds' worth of acknowledged
    /// jobs the producer had when the server was killed.
    pub produce_s: f64,
    pub crash_after_s: f64,
    pub trials: Vec<Trial>,
}

impl CrashFile {
    pub fn lost_total(&self) -> u64 {
        self.trials.iter().map(|t| t.lost).sum()
    }

    pub fn max_lost(&self) -> u64 {
        self.trials.iter().map(|t| t.lost).max().unwrap_or(0)
    }

    /// Trials that prove nothing either way: the audit was not exact, or the server
    /// was not left as a crash leaves it.
    pub fn inconclusive(&self) -> usize {
        self.trials
            .iter()
            .filter(|t| t.audit != "exact" || !t.unclean)
            .count()
    }

    /// The mean of a figure over the trials that have it.
    pub fn mean(&self, f: fn(&Trial) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.trials.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        write_atomic(
            path,
            format!("{}\n", serde_json::to_string_pretty(self)?).as_bytes(),
        )
    }
}

/// The file name of a design's trials in a tier.
pub fn file_name(queue: &str, tier: &str) -> String {
    format!("{queue}_{tier}_crash.json")
}

pub fn read_crash(path: &Path) -> Result<CrashFile> {
    super::read::read_versioned(path, CRASH_FORMAT)
}
