//! Every pair of variants in a scenario and tier, compared on the figures that can tell
//! them apart: end-to-end p99 and p50 between rows that kept up (or stalled), completed
//! throughput when a row was over capacity (at a fixed offered rate throughput is equal
//! by construction otherwise), and server CPU per job. Every comparison of the analysis
//! is one family for the Benjamini–Hochberg correction; a difference is a finding only when it survives
//! it and is larger than the practical threshold. The best design is picked after
//! testing, never before.

use std::collections::BTreeMap;

use crate::format::summary::{Comparison, Row};
use crate::format::verdict::{CLEAR, LIKELY, NOT_MEASURED, WITHIN_NOISE};
use crate::stats::confidence;
use crate::stats::noise::{self, ALPHA};

type Getter = fn(&Row) -> Option<f64>;

/// A figure a comparison can be on, and whether more of it is better.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub name: &'static str,
    pub get: Getter,
    pub higher_is_better: bool,
}

pub const P99: Figure = Figure {
    name: "p99",
    get: |r| r.p99_ms,
    higher_is_better: false,
};
pub const P50: Figure = Figure {
    name: "p50",
    get: |r| r.p50_ms,
    higher_is_better: false,
};
pub const THROUGHPUT: Figure = Figure {
    name: "throughput",
    get: |r| r.throughput_jobs_s,
    higher_is_better: true,
};
pub const CPU: Figure = Figure {
    name: "server CPU per job",
    get: |r| r.server_cpu_us_per_job,
    higher_is_better: false,
};

/// Offered rate, workers, processing time and length: what two designs must share.
type Settings = (Option<f64>, Option<u32>, Option<f64>, Option<f64>);

/// One variant's runs in one scenario and tier: all of them, and those whose figures
/// describe the design (`comparable`).
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub scenario: String,
    pub tier: String,
    pub variant: String,
    pub backend: String,
    /// How idle workers learned of jobs: poll, notify or block.
    pub wakeup: String,
    pub runs: Vec<&'a Row>,
    pub clean: Vec<&'a Row>,
}

impl Entry<'_> {
    /// Over capacity in at least half of its clean runs: ranked by throughput (one
    /// run's bad moment does not flip a variant that kept up four times in five).
    pub fn over_capacity(&self) -> bool {
        let over = self.clean.iter().filter(|r| r.over_capacity()).count();
        over > 0 && 2 * over >= self.clean.len()
    }

    /// What the variant ran: its offered rate, workers, processing time and length.
    fn settings(&self) -> Option<Settings> {
        let r = self.clean.first()?;
        Some((r.offered_rate, r.workers, r.processing_ms, r.duration_s))
    }

    pub fn values(&self, f: Figure) -> Vec<f64> {
        self.clean.iter().filter_map(|r| (f.get)(r)).collect()
    }

    /// The figure the variant ranks by.
    pub fn ranks_by(&self) -> Figure {
        if self.over_capacity() {
            THROUGHPUT
        } else {
            P99
        }
    }
}

/// The variants of each scenario and tier (horizon tests run each design at its own
/// rate: they are not compared here).
pub fn entries(rows: &[Row]) -> Vec<Entry<'_>> {
    let mut by: BTreeMap<(usize, String, String), Entry> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.scenario != "horizon") {
        let key = (
            super::super::scenario_order(&r.scenario),
            r.durability_tier.clone(),
            r.variant(),
        );
        let e = by.entry(key).or_insert_with(|| Entry {
            scenario: r.scenario.clone(),
            tier: r.durability_tier.clone(),
            variant: r.variant(),
            backend: r.backend.clone(),
            wakeup: r.wakeup.clone(),
            runs: vec![],
            clean: vec![],
        });
        e.runs.push(r);
        e.clean.push(r);
    }
    // A run that lost, duplicated or left jobs keeps its whole variant out, as it would
    // a single run: its other runs describe a queue that does not work.
    let mut out: Vec<Entry> = by.into_values().collect();
    for e in &mut out {
        if e.runs.iter().any(|r| !r.comparable()) {
            e.clean.clear();
        }
    }
    out
}

/// The figures a pair is compared on.
fn figures(a: &Entry, b: &Entry) -> Vec<Figure> {
    if a.over_capacity() || b.over_capacity() {
        vec![THROUGHPUT, CPU]
    } else {
        vec![P99, P50, CPU]
    }
}

/// Every comparison of the analysis, adjusted together and judged, each with its 95 %
/// bootstrap interval. `thresholds` gives each figure's practical threshold (|ln ratio|).
pub fn all(entries: &[Entry], thresholds: &dyn Fn(&str) -> f64) -> Vec<Comparison> {
    let mut out = decide(entries, thresholds);
    for c in out.iter_mut().filter(|c| c.confidence != NOT_MEASURED) {
        if let Some(r) = confidence::ratio(&c.a_values, &c.b_values) {
            (c.ci_low, c.ci_high) = (r.low, r.high);
        }
        // The test and the interval must agree before a difference is clear: an interval
        // of the medians that holds 1 leaves it likely.
        let holds_one = matches!((c.ci_low, c.ci_high), (Some(l), Some(h)) if l <= 1.0 && h >= 1.0);
        if c.confidence == CLEAR && holds_one {
            c.confidence = LIKELY.into();
            c.significant = Some(false);
        }
        c.verdict = sentence(c);
    }
    out
}

/// The comparisons and their verdicts, without the intervals (which only describe a
/// verdict, never make it): what the simulations of the statistics run thousands of
/// times.
pub fn decide(entries: &[Entry], thresholds: &dyn Fn(&str) -> f64) -> Vec<Comparison> {
    let mut out = vec![];
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[i + 1..] {
            if (&a.scenario, &a.tier) != (&b.scenario, &b.tier) {
                continue;
            }
            let kind = if design_of(&a.variant) == design_of(&b.variant) {
                "label"
            } else {
                "designs"
            };
            for f in figures(a, b) {
                let mut c = compare(kind, f, a, b);
                // Two designs must have run the same load; labels of one design may not
                // (an A/B check changes something on purpose).
                if let (Some(c), "designs") = (c.as_mut(), kind) {
                    if a.settings() != b.settings() {
                        c.welch_p = None;
                        c.significant = None;
                        c.confidence = NOT_MEASURED.into();
                        c.verdict = format!(
                            "{} vs {}: not like for like (offered rate, workers, processing time or length differ): run them with the same settings",
                            c.a, c.b
                        );
                    }
                }
                out.extend(c);
            }
        }
    }
    let adjusted = noise::bh(&out.iter().map(|c| c.welch_p).collect::<Vec<_>>());
    for (c, p) in out.iter_mut().zip(adjusted) {
        c.p_adjusted = p;
        c.threshold = thresholds(&c.figure);
        if c.confidence != NOT_MEASURED {
            judge(c);
        }
    }
    out
}

/// The design of a variant: `skip_locked [A1]` is skip_locked's.
fn design_of(variant: &str) -> &str {
    variant.split(" [").next().unwrap_or(variant)
}

fn compare(kind: &str, f: Figure, a: &Entry, b: &Entry) -> Option<Comparison> {
    let (va, vb) = (a.values(f), b.values(f));
    let (ma, mb) = (confidence::median(&va)?, confidence::median(&vb)?);
    if mb <= 0.0 {
        return None;
    }
    // On the logarithms: a ratio is the unit here, and run-level spread is multiplicative.
    let logs =
        |v: &[f64]| -> Option<Vec<f64>> { v.iter().map(|x| (*x > 0.0).then(|| x.ln())).collect() };
    let welch = logs(&va)
        .zip(logs(&vb))
        .and_then(|(la, lb)| confidence::welch_p(&la, &lb));
    Some(Comparison {
        kind: kind.into(),
        scenario: a.scenario.clone(),
        tier: a.tier.clone(),
        figure: f.name.into(),
        a: a.variant.clone(),
        b: b.variant.clone(),
        n_a: va.len(),
        n_b: vb.len(),
        a_values: va,
        b_values: vb,
        ratio: ma / mb,
        ci_low: None,
        ci_high: None,
        welch_p: welch,
        p_adjusted: None,
        threshold: 0.0,
        significant: None,
        confidence: String::new(),
        verdict: String::new(),
    })
}

/// The confidence word and the sentence: clear (significant after the correction and
/// beyond the threshold), likely (beyond the threshold, not significant or a single
/// run), within noise (within the threshold, whatever the p-value).
fn judge(c: &mut Comparison) {
    let beyond = c.ratio.ln().abs() > c.threshold;
    let significant = c.p_adjusted.map(|p| p < ALPHA);
    c.significant = significant.map(|s| s && beyond);
    c.confidence = match (c.n_a.min(c.n_b), beyond, significant) {
        (0, _, _) => NOT_MEASURED,
        (_, false, _) => WITHIN_NOISE,
        (_, true, Some(true)) => CLEAR,
        _ => LIKELY,
    }
    .into();
    c.verdict = sentence(c);
}

/// The comparison in one line.
fn sentence(c: &Comparison) -> String {
    let interval = match (c.ci_low, c.ci_high) {
        (Some(l), Some(h)) => format!(", 95 % CI {l:.2}–{h:.2}"),
        _ => String::new(),
    };
    let p = match (c.welch_p, c.p_adjusted) {
        (Some(w), Some(a)) => format!(", Welch p {w:.3}, BH-adjusted {a:.3}"),
        _ => ", single run: no interval".into(),
    };
    format!(
        "{} vs {} {}: {:.2}×{interval}{p}; {} (threshold ×{:.2})",
        c.a,
        c.b,
        c.figure,
        c.ratio,
        c.confidence,
        c.threshold.exp()
    )
}

/// A comparison found, the ratio `y / x` and its interval.
pub type Found<'a> = (&'a Comparison, f64, Option<(f64, f64)>);

/// The comparison of `x` and `y` on `figure`, whichever way round it was made; with the
/// ratio as `y` over `x`.
pub fn find<'a>(all: &'a [Comparison], figure: &str, x: &str, y: &str) -> Option<Found<'a>> {
    all.iter().find_map(|c| {
        if c.figure != figure {
            return None;
        }
        if c.a == y && c.b == x {
            Some((c, c.ratio, c.ci_low.zip(c.ci_high)))
        } else if c.a == x && c.b == y {
            let inv = c.ci_low.zip(c.ci_high).map(|(l, h)| (1.0 / h, 1.0 / l));
            Some((c, 1.0 / c.ratio, inv))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `variant` in the warm scenario with these p99s (one per run).
    pub fn runs(queue: &str, backend: &str, p99s: &[f64]) -> Vec<Row> {
        p99s.iter()
            .enumerate()
            .map(|(i, &p)| Row {
                test: format!("{queue}_warm.r{}", i + 1),
                group: format!("{queue}_warm"),
                repeat: Some(i as u32 + 1),
                queue: queue.into(),
                backend: backend.into(),
                scenario: "warm".into(),
                durability_tier: "strict".into(),
                complete: true,
                audit: "exact".into(),
                lost: Some(0),
                duplicated: Some(0),
                left_in_queue: Some(0),
                foreign: Some(0),
                state: "sustained".into(),
                p99_ms: Some(p),
                p50_ms: Some(p / 2.0),
                throughput_jobs_s: Some(1000.0),
                ..Row::default()
            })
            .collect()
    }

    #[test]
    fn every_pair_is_compared_and_adjusted_together() {
        let mut rows = runs("skip_locked", "postgresql", &[20.0, 21.0, 19.0, 20.5, 20.2]);
        rows.extend(runs(
            "partitioned",
            "postgresql",
            &[30.0, 31.0, 29.0, 30.5, 30.2],
        ));
        rows.extend(runs(
            "valkey_streams",
            "valkey",
            &[10.0, 10.5, 9.8, 10.1, 10.3],
        ));
        let e = entries(&rows);
        let c = all(&e, &|_| 0.1);
        // Three pairs × (p99, p50, CPU); CPU is unmeasured here, so no comparison.
        assert_eq!(c.iter().filter(|c| c.figure == "p99").count(), 3);
        assert!(c.iter().all(|c| c.p_adjusted.is_some()));
        let (pg, ratio, _) = find(&c, "p99", "valkey_streams", "skip_locked").expect("pair");
        assert!((ratio - 2.0).abs() < 0.1, "{ratio}");
        assert_eq!(pg.confidence, CLEAR, "{}", pg.verdict);
    }

    #[test]
    fn within_the_threshold_is_noise_whatever_the_p_value() {
        let mut rows = runs(
            "skip_locked",
            "postgresql",
            &[20.0, 20.01, 20.02, 20.0, 20.01],
        );
        rows.extend(runs(
            "partitioned",
            "postgresql",
            &[21.0, 21.01, 21.02, 21.0, 21.01],
        ));
        let c = all(&entries(&rows), &|_| 0.1);
        let p99 = c.iter().find(|c| c.figure == "p99").expect("p99");
        assert!(p99.p_adjusted.is_some_and(|p| p < 0.05), "{p99:?}");
        assert_eq!(p99.confidence, WITHIN_NOISE, "5 % under a 10 % threshold");
    }

    #[test]
    fn a_single_run_beyond_the_threshold_is_likely() {
        let mut rows = runs("skip_locked", "postgresql", &[20.0]);
        rows.extend(runs("partitioned", "postgresql", &[40.0]));
        let c = all(&entries(&rows), &|_| 0.1);
        let p99 = c.iter().find(|c| c.figure == "p99").expect("p99");
        assert_eq!(p99.confidence, LIKELY);
        assert_eq!(p99.significant, None);
    }
}
