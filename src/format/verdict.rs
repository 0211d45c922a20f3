//! summary.json's `verdict`: the headline answer, before every table. For each scenario
//! (in each durability tier): PostgreSQL or Valkey, and which design within each
//! backend, each claim with its effect, interval and a plain confidence word; every row
//! ranked (by end-to-end p99, or by completed throughput when over capacity) or named
//! with why it was left out; what this machine sustained; and the seed's expectations,
//! checked.

use serde::{Deserialize, Serialize};

/// How sure a claim is.
pub const CLEAR: &str = "clear";
pub const LIKELY: &str = "likely";
pub const WITHIN_NOISE: &str = "within noise";
pub const NOT_MEASURED: &str = "not measured";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Said before the answers: an offered rate beyond what this machine sustained,
    /// mismatched durability, smoke runs.
    pub first: Vec<String>,
    pub scenarios: Vec<ScenarioVerdict>,
    /// How a difference was judged: the correction for the number of comparisons and
    /// the practical thresholds, with where they came from.
    pub method: String,
    /// What this machine sustained for each design, where a test was over capacity.
    pub sustained: Vec<String>,
    /// The seed README's expected patterns, each confirmed, refuted or not measurable.
    pub expectations: Vec<Expectation>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioVerdict {
    pub scenario: String,
    pub tier: String,
    /// "PostgreSQL or Valkey?"
    pub backends: Claim,
    /// "Which design within PostgreSQL?" (and within Valkey when it has several).
    pub within: Vec<Claim>,
    pub ranking: Vec<Ranked>,
}

/// One answer: who is ahead on which figure, by how much, how sure, and what would
/// settle it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub question: String,
    pub answer: String,
    /// `clear`, `likely`, `within noise` or `not measured`.
    pub confidence: String,
    /// The figure compared: `p99` (end-to-end, ms) or `throughput` (completed jobs/s).
    pub figure: String,
    /// The better design (variant) and the one it is compared with.
    pub better: String,
    pub other: String,
    /// The other's figure over the better one's (p99: how many times slower; throughput:
    /// how many times more), with its 95 % interval across repeats.
    pub ratio: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// The comparison's p-value after the correction for every comparison made.
    pub p_adjusted: Option<f64>,
    pub n_better: usize,
    pub n_other: usize,
    /// What would settle it, empty when it is clear.
    pub settle: String,
}

/// A row of a scenario's ranking, or one left out of it with the reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// 1-based; `None` when left out.
    pub rank: Option<usize>,
    pub variant: String,
    pub backend: String,
    /// `sustained`, `stalled`, `over_capacity` (empty when not judged).
    pub state: String,
    /// `p99` or `throughput`.
    pub by: String,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub runs: usize,
    /// Why it is not ranked (lost jobs, an inconclusive audit, incomplete…).
    pub left_out: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    /// The seed's words.
    pub expected: String,
    /// `confirmed`, `refuted` or `not measurable here`.
    pub verdict: String,
    /// The measured figure and its interval, or why it cannot be measured.
    pub measured: String,
}
