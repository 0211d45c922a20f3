//! The seed's rows as its charts draw them: one durability tier, repeated runs pooled
//! into medians with their intervals, and what is missing said on every chart.

use crate::error::UsageError;
use crate::format::summary::Row;

/// The rows a chart draws, and what is missing from them.
pub struct Data {
    /// One row per test; repeated runs pooled into their medians (intervals kept).
    pub rows: Vec<Row>,
    /// Every run, for the per-run spread.
    pub runs: Vec<Row>,
    pub impls: Vec<String>,
    pub scenarios: Vec<String>,
    /// Said on the charts and on the console: backends, scenarios or tests not drawn.
    pub missing: Vec<String>,
    pub smoke: bool,
}

pub const SCENARIOS: [&str; 3] = ["cold", "warm", "load"];

impl Data {
    /// The rows of one durability tier (`tier`, or the strictest both backends ran in,
    /// else the strictest): designs of different tiers are never drawn as one ranking.
    /// `None` when no complete cold, warm or load test is among them.
    pub fn from_rows(all: Vec<Row>, tier: Option<&str>) -> Result<Option<Data>, UsageError> {
        let mut missing = vec![];
        let all = one_tier(all, tier, &mut missing)?;
        let incomplete: Vec<String> = all
            .iter()
            .filter(|r| !r.complete)
            .map(|r| r.test.clone())
            .collect();
        if !incomplete.is_empty() {
            missing.push(format!(
                "incomplete tests left out: {}",
                incomplete.join(", ")
            ));
        }
        let runs: Vec<Row> = all
            .into_iter()
            .filter(|r| r.complete && SCENARIOS.contains(&r.scenario.as_str()))
            .collect();
        let rows = crate::format::summary::pooled(&runs);
        if rows.is_empty() {
            return Ok(None);
        }
        // In summary.csv's order (analyze sorts the designs).
        let mut impls: Vec<String> = vec![];
        for r in &rows {
            if !impls.contains(&r.variant()) {
                impls.push(r.variant());
            }
        }
        let scenarios: Vec<String> = SCENARIOS
            .iter()
            .filter(|s| rows.iter().any(|r| r.scenario == **s))
            .map(|s| s.to_string())
            .collect();
        if !rows.iter().any(|r| r.backend == "valkey") {
            missing.push("no Valkey results".into());
        }
        if !rows.iter().any(|r| r.backend == "postgresql") {
            missing.push("no PostgreSQL results".into());
        }
        let absent: Vec<&str> = SCENARIOS
            .iter()
            .copied()
            .filter(|s| !scenarios.iter().any(|x| x == s))
            .collect();
        if !absent.is_empty() {
            missing.push(format!("no {} scenario", absent.join("/")));
        }
        let smoke = rows.iter().any(|r| r.smoke);
        Ok(Some(Data {
            rows,
            runs,
            impls,
            scenarios,
            missing,
            smoke,
        }))
    }

    /// The Valkey design's row in a scenario.
    pub fn valkey(&self, scenario: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.backend == "valkey" && r.scenario == scenario)
    }

    /// The 95 % interval of `get`'s median over a variant's clean runs in a scenario
    /// (none with a single run): the error bar.
    pub fn interval(
        &self,
        imp: &str,
        scenario: &str,
        get: fn(&Row) -> Option<f64>,
    ) -> Option<(f64, f64)> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter(|r| r.variant() == imp && r.scenario == scenario && r.comparable())
            .filter_map(get)
            .collect();
        let e = crate::stats::confidence::estimate(&v)?;
        Some((e.low?, e.high?))
    }

    /// Whether any test ran more than once: the charts then show medians and intervals.
    pub fn repeated(&self) -> bool {
        self.runs.len() > self.rows.len()
    }

    pub fn get(&self, imp: &str, scenario: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.variant() == imp && r.scenario == scenario)
    }

    /// "offered 1000 jobs/s to 20 workers × 10 ms (capacity 2000 jobs/s)".
    pub fn load_text(&self) -> String {
        let r = self.rows.iter().find(|r| r.offered_rate.is_some());
        let Some(r) = r else {
            return "offered load unknown".into();
        };
        let mut s = format!("offered {:.0} jobs/s", r.offered_rate.unwrap_or(0.0));
        if let (Some(w), Some(p), Some(c)) = (r.workers, r.processing_ms, r.capacity_jobs_s) {
            s.push_str(&format!(
                " to {w} workers × {p:.0} ms (capacity {c:.0} jobs/s)"
            ));
        }
        s
    }

    /// The line under every title: smoke runs and what is missing.
    pub fn note(&self) -> String {
        let mut parts = vec![];
        if self.smoke {
            parts.push("smoke run (--quick): not for conclusions".to_string());
        }
        if self.repeated() {
            parts.push(
                "medians across repeated runs; error bars: 95 % bootstrap interval".to_string(),
            );
        }
        parts.extend(self.missing.iter().cloned());
        parts.join(" · ")
    }
}

/// Keeps one durability tier per backend and says what was left out: the tier asked
/// for, else the strictest both backends ran in, else each backend's strictest (the
/// seed's mix: PostgreSQL strict, Valkey volatile), marked as not like for like.
fn one_tier(
    all: Vec<Row>,
    want: Option<&str>,
    missing: &mut Vec<String>,
) -> Result<Vec<Row>, UsageError> {
    use crate::format::durability::strictness;
    let tiers_of = |backend: Option<&str>| {
        let mut t: Vec<String> = all
            .iter()
            .filter(|r| backend.is_none_or(|b| r.backend == b))
            .map(|r| r.durability_tier.clone())
            .collect();
        t.sort_by_key(|x| (strictness(x), x.clone()));
        t.dedup();
        t
    };
    let (every, pg, vk) = (
        tiers_of(None),
        tiers_of(Some("postgresql")),
        tiers_of(Some("valkey")),
    );
    let chosen = |side: &[String]| -> Option<String> {
        if let Some(t) = want {
            return side.iter().find(|x| *x == t).cloned();
        }
        let shared = pg.iter().find(|t| vk.contains(t));
        shared.or(side.first()).cloned()
    };
    if let Some(t) = want.filter(|t| !every.iter().any(|x| x == t)) {
        return Err(UsageError::new(format!(
            "--tier {t}: summary.csv has rows of {} only",
            every.join(", ")
        )));
    }
    let (pg_t, vk_t) = (chosen(&pg), chosen(&vk));
    let left: Vec<String> = every
        .iter()
        .filter(|t| Some(*t) != pg_t.as_ref() && Some(*t) != vk_t.as_ref())
        .cloned()
        .collect();
    if !left.is_empty() {
        missing.push(format!(
            "durability {} left out (graph --tier draws another)",
            left.join("/")
        ));
    }
    if let (Some(p), Some(v)) = (&pg_t, &vk_t) {
        if p != v {
            missing.push(format!("NOT LIKE FOR LIKE: PostgreSQL {p}, Valkey {v}"));
        }
    }
    Ok(all
        .into_iter()
        .filter(|r| {
            let t = if r.backend == "valkey" { &vk_t } else { &pg_t };
            t.as_deref() == Some(r.durability_tier.as_str())
        })
        .collect())
}
