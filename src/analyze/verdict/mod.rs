//! The verdict: the answer a performance engineer would sign, said before every table.
//! Every pair of variants of a scenario is compared (`pairs`), all comparisons of the
//! analysis corrected together; each scenario's variants are ranked (`rank`); the
//! headline's claims are read off both (`claims`); what the machine sustained is said
//! first when tests were over capacity (`sustained`); and the seed's expected patterns
//! are checked (`expectations`).

mod claims;
pub mod console;
pub mod expectations;
pub mod pairs;
mod rank;
#[cfg(test)]
mod simulation;
mod sustained;

use crate::format::capacity::DesignCapacity;
use crate::format::summary::{Comparison, Row};
use crate::format::verdict::{ScenarioVerdict, Verdict};
use crate::stats::noise;

/// The verdict and every comparison it rests on.
pub fn build(
    rows: &[Row],
    capacity: &[DesignCapacity],
    banners: &[String],
) -> (Verdict, Vec<Comparison>) {
    let entries = pairs::entries(rows);
    let (own, source) = own_thresholds(&entries);
    // An analysis's own A/A pair can only widen the threshold: from a handful of pairs
    // its largest spread usually falls short of the true 95th percentile.
    let threshold = |figure: &str| {
        let measured = noise::threshold(figure);
        own.iter()
            .find(|(f, _)| *f == figure)
            .map_or(measured, |(_, t)| t.max(measured))
    };
    let comparisons = pairs::all(&entries, &threshold);
    let mut keys: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e.scenario.clone(), e.tier.clone()))
        .collect();
    keys.dedup();
    let scenarios = keys
        .iter()
        .map(|(sc, tier)| scenario(sc, tier, &entries, &comparisons))
        .collect();
    let (sustained, top) = sustained::of(rows, capacity);
    let mut first: Vec<String> = top.into_iter().collect();
    first.extend(banners.iter().cloned());
    if rows.iter().any(|r| r.smoke) {
        first.push(
            "Smoke runs (--quick: seconds per test): they check the tool; decide nothing on them."
                .into(),
        );
    }
    let expectations = expectations_per_tier(&entries, &comparisons, capacity);
    let verdict = Verdict {
        first,
        scenarios,
        method: method(&comparisons, &source, &threshold),
        sustained,
        expectations,
    };
    (verdict, comparisons)
}

fn scenario(
    sc: &str,
    tier: &str,
    entries: &[pairs::Entry],
    comparisons: &[Comparison],
) -> ScenarioVerdict {
    let mine: Vec<&pairs::Entry> = entries
        .iter()
        .filter(|e| e.scenario == sc && e.tier == tier)
        .collect();
    let cmps: Vec<Comparison> = comparisons
        .iter()
        .filter(|c| c.scenario == sc && c.tier == tier)
        .cloned()
        .collect();
    let ranking = rank::rank(&mine);
    let name = if sc.is_empty() { "tests" } else { sc };
    let within = ["postgresql", "valkey"]
        .iter()
        .filter_map(|b| claims::within(b, name, &ranking, &cmps, &mine))
        .collect();
    ScenarioVerdict {
        scenario: sc.to_string(),
        tier: tier.to_string(),
        backends: claims::backends(name, &ranking, &cmps, &mine),
        within,
        ranking,
    }
}

/// The seed's expectations in each durability tier measured (named when there are
/// several: a ratio across tiers would compare durability, not designs).
fn expectations_per_tier(
    entries: &[pairs::Entry],
    comparisons: &[Comparison],
    capacity: &[DesignCapacity],
) -> Vec<crate::format::verdict::Expectation> {
    let mut tiers: Vec<&str> = entries.iter().map(|e| e.tier.as_str()).collect();
    tiers.sort_unstable();
    tiers.dedup();
    let several = tiers.len() > 1;
    let mut out = vec![];
    for tier in tiers {
        let facts = expectations::Facts {
            entries,
            comparisons,
            capacity,
            tier,
        };
        for mut e in expectations::check(&facts) {
            if several {
                e.expected = format!("[{tier}] {}", e.expected);
            }
            out.push(e);
        }
    }
    out
}

/// How differences were judged, in one paragraph.
fn method(comparisons: &[Comparison], source: &str, threshold: &dyn Fn(&str) -> f64) -> String {
    let tested = comparisons
        .iter()
        .filter(|c| c.p_adjusted.is_some())
        .count();
    let t = |f: &str| format!("×{:.2}", threshold(f).exp());
    let family = if tested == 0 {
        "no comparison could be tested: every variant ran once (run-suite --repeat 5 gives each a test)".to_string()
    } else {
        format!("Welch's test on the runs' logarithms is significant after the Benjamini–Hochberg correction across all {tested} tested comparisons of this analysis (at most 5 % of the clear findings expected false; when nothing differs, at most a 5 % chance of any)")
    };
    format!(
        "A difference is a finding (clear) only when {family}, and the ratio is beyond the practical threshold: p99 {}, p50 {}, throughput {}, server CPU per job {} ({source}). Beyond the threshold but not significant, or from a single run: likely. Within it: within noise, whatever the p-value. Throughput is compared only where a test was over capacity: below it, every design completes what is offered.",
        t("p99"),
        t("p50"),
        t("throughput"),
        t("server CPU per job")
    )
}

/// The thresholds an A/A pair in the results gives (two labels of one design named as
/// an A/A check, `--label AA1` and `--label AA2`, run with the same settings), and where
/// the thresholds came from. Only labels named so count: an A/B check whose change does
/// not show in the settings must never set its own noise.
fn own_thresholds(entries: &[pairs::Entry]) -> (Vec<(&'static str, f64)>, String) {
    let figures = [pairs::P99, pairs::P50, pairs::THROUGHPUT, pairs::CPU];
    let mut logs: Vec<(&'static str, Vec<f64>)> =
        figures.iter().map(|f| (f.name, vec![])).collect();
    let mut pairs_seen = vec![];
    for (i, a) in entries.iter().enumerate() {
        for b in &entries[i + 1..] {
            if !same_settings(a, b) {
                continue;
            }
            pairs_seen.push(format!("{} / {}", a.variant, b.variant));
            for (f, out) in figures.iter().zip(logs.iter_mut()) {
                for ra in &a.clean {
                    let Some(rb) = b.clean.iter().find(|rb| rb.repeat == ra.repeat) else {
                        continue;
                    };
                    if let (Some(x), Some(y)) = ((f.get)(ra), (f.get)(rb)) {
                        if x > 0.0 && y > 0.0 {
                            out.1.push((y / x).ln());
                        }
                    }
                }
            }
        }
    }
    let own: Vec<(&'static str, f64)> = logs
        .into_iter()
        .filter_map(|(f, v)| Some((f, noise::aa_bound(&v)?)))
        .collect();
    if own.is_empty() {
        (
            own,
            "the A/A spread measured by bench/aa.sh, BENCHMARKS.md".into(),
        )
    } else {
        (
            own,
            format!(
                "the larger of bench/aa.sh's A/A spread (BENCHMARKS.md) and this analysis's own A/A pair: {}",
                pairs_seen.join(", ")
            ),
        )
    }
}

/// Two labels of one design named as an A/A check, with identical settings.
fn same_settings(a: &pairs::Entry, b: &pairs::Entry) -> bool {
    let design = |v: &str| v.split(" [").next().unwrap_or(v).to_string();
    let (Some(ra), Some(rb)) = (a.clean.first(), b.clean.first()) else {
        return false;
    };
    a.variant != b.variant
        && design(&a.variant) == design(&b.variant)
        && (&a.scenario, &a.tier) == (&b.scenario, &b.tier)
        && is_aa(&ra.label)
        && is_aa(&rb.label)
        && (
            ra.offered_rate,
            ra.workers,
            ra.processing_ms,
            ra.duration_s,
            &ra.wakeup,
        ) == (
            rb.offered_rate,
            rb.workers,
            rb.processing_ms,
            rb.duration_s,
            &rb.wakeup,
        )
        && a.clean.len() >= 2
        && b.clean.len() >= 2
}

/// A label that declares an A/A check: `AA` followed by a digit or a separator (`AA1`,
/// `aa-2`), not a word that starts so (`aardvark`).
pub fn is_aa(label: &str) -> bool {
    let mut c = label.chars();
    matches!(
        (c.next(), c.next(), c.next()),
        (Some('a' | 'A'), Some('a' | 'A'), Some(x)) if x.is_ascii_digit() || "-_.".contains(x)
    )
}
