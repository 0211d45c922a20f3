//! The console report: the seed's table per scenario, then red flags and the findings.

use std::fmt::Write;

use super::{scenario_order, Analysis};
use crate::text::{num, wrap};

const RULE: &str =
    "────────────────────────────────────────────────────────────────────────────────";
const BANNER: &str =
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";
const DOUBLE: &str =
    "================================================================================";

/// Why a row is not compared with the others, after its line in the table.
fn mark(r: &crate::format::summary::Row) -> String {
    if !r.complete {
        "  (incomplete)".into()
    } else if r.lost.unwrap_or(0) > 0 {
        format!("  (LOST {})", r.lost.unwrap_or(0))
    } else if r.audit == "inconclusive" {
        "  (audit inconclusive)".into()
    } else if r.duplicated.unwrap_or(0) > 0 || r.left_in_queue.unwrap_or(0) > 0 {
        "  (not exactly once)".into()
    } else if r.over_capacity() {
        "  (over capacity)".into()
    } else if r.state == "stalled" {
        "  (stalled)".into()
    } else {
        String::new()
    }
}

pub fn render(a: &Analysis) -> String {
    let mut o = super::verdict::console::render(&a.verdict);
    let _ = writeln!(o, "\n{DOUBLE}\nBENCHMARK RESULTS SUMMARY\n{DOUBLE}");
    if let Some(r) = a.tests.iter().find(|r| r.offered_rate.is_some()) {
        let _ = writeln!(
            o,
            "Offered load {} jobs/s for {} s; {} workers × {} ms (capacity {} jobs/s).",
            num(r.offered_rate, 0),
            num(r.duration_s, 0),
            r.workers.map_or("-".into(), |w| w.to_string()),
            num(r.processing_ms, 0),
            num(r.capacity_jobs_s, 0)
        );
    }
    // One table per scenario and durability tier: rows of different tiers never share
    // a table, so they are never read as one ranking.
    let mut tables: Vec<(&str, &str)> = a
        .tests
        .iter()
        .map(|r| (r.scenario.as_str(), r.durability_tier.as_str()))
        .collect();
    tables.sort_by_key(|(s, t)| (scenario_order(s), crate::format::durability::strictness(t)));
    tables.dedup();
    let several_tiers = tables.iter().any(|(_, t)| *t != tables[0].1);
    for (sc, tier) in tables {
        let title = if sc.is_empty() { "OTHER" } else { sc };
        let tier_note = match (several_tiers, tier) {
            (false, _) => String::new(),
            (true, "") => " — durability not recorded".into(),
            (true, t) => format!(" — durability {t}"),
        };
        let _ = writeln!(o, "\nSCENARIO: {}{tier_note}\n{RULE}", title.to_uppercase());
        let _ = writeln!(
            o,
            "{:<15} {:<20} {:<15} {:<10} {:<10} {:<10} {:<6}",
            "Backend", "Queue Type", "Throughput", "p50 (ms)", "p95 (ms)", "p99 (ms)", "CPU %"
        );
        let _ = writeln!(o, "{RULE}");
        for r in a
            .tests
            .iter()
            .filter(|r| r.scenario == sc && r.durability_tier == tier)
        {
            let _ = writeln!(
                o,
                "{:<15} {:<20} {:<15} {:<10} {:<10} {:<10} {:<6}{}",
                r.backend,
                r.design(),
                r.throughput_jobs_s
                    .map_or("-".into(), |t| format!("{t:.0} j/s")),
                num(r.p50_ms, 2),
                num(r.p95_ms, 2),
                num(r.p99_ms, 2),
                num(r.cpu_pct, 1),
                mark(r)
            );
        }
    }
    let _ = write!(o, "{}", repeats_table(a));
    let _ = write!(o, "{}", comparisons_table(a));
    let _ = write!(o, "{}", super::capacity::table(&a.capacity));
    let _ = write!(o, "{}", super::horizon::table(&a.horizon));
    let flagged: Vec<_> = a.tests.iter().filter(|r| !r.red_flags.is_empty()).collect();
    if !flagged.is_empty() {
        let _ = writeln!(o, "\nRED FLAGS\n{RULE}");
        for r in flagged {
            let _ = write!(
                o,
                "{}",
                wrap(&format!("{}: {}", r.test, r.red_flags), 78, "  ")
            );
        }
    }
    if !a.warnings.is_empty() {
        let _ = writeln!(o, "\nCOMPARABILITY\n{RULE}");
        for w in &a.warnings {
            // The mismatched-tier banner stands out: the pair it names is not like for like.
            if w.starts_with("MISMATCHED") {
                let _ = writeln!(o, "{BANNER}");
                let _ = write!(o, "{}", wrap(w, 76, "!! "));
                let _ = writeln!(o, "{BANNER}");
            } else {
                let _ = write!(o, "{}", wrap(w, 78, "  "));
            }
        }
    }
    if !a.crash_trials.is_empty() {
        let _ = write!(o, "\n{}", crash_table(&a.crash_trials));
    }
    let _ = writeln!(o, "\nFINDINGS\n{RULE}");
    for f in &a.findings {
        let _ = writeln!(o, "{}", f.question);
        let _ = write!(o, "{}", wrap(&f.answer, 76, "   "));
    }
    let _ = writeln!(o, "\nCaveats:");
    for c in &a.caveats {
        let _ = write!(o, "{}", wrap(&format!("- {c}"), 78, "  "));
    }
    o
}

/// The crash trials, a line per design and tier: crashes, acknowledged jobs lost (and
/// most in one crash), how far back the loss reached, restart, redeliveries and
/// duplicates, and trials that could not be audited exactly.
pub fn crash_table(files: &[crate::format::crash::CrashFile]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "CRASH TRIALS (every server process SIGKILLed, restarted, audited by seq)\n{RULE}"
    );
    let _ = writeln!(
        o,
        "{:<17} {:<9} {:>7} {:>6} {:>9} {:>10} {:>10} {:>11} {:>5} {:>12}",
        "Queue",
        "Tier",
        "Crashes",
        "Lost",
        "Max/crash",
        "Window ms",
        "Restart ms",
        "Redelivered",
        "Dup",
        "Inconclusive"
    );
    for f in files {
        let _ = writeln!(
            o,
            "{:<17} {:<9} {:>7} {:>6} {:>9} {:>10} {:>10} {:>11} {:>5} {:>12}",
            f.queue,
            f.tier,
            f.trials.len(),
            f.lost_total(),
            f.max_lost(),
            num(f.mean(|t| t.loss_window_ms), 0),
            num(f.mean(|t| Some(t.restart_ms)), 0),
            f.trials.iter().map(|t| t.redelivered).sum::<u64>(),
            f.trials.iter().map(|t| t.duplicated).sum::<u64>(),
            f.inconclusive()
        );
    }
    if let Some(f) = files.first() {
        let _ = write!(o, "{}", wrap(&format!("Crash: {}.", f.crash), 78, "  "));
    }
    o
}

/// Medians across repeats with their 95 % intervals, n per group and outlier runs.
/// Empty when every group is a single run.
pub fn repeats_table(a: &Analysis) -> String {
    use crate::analyze::repeats::FIGURES;
    use crate::stats::confidence::median;
    let mut o = String::new();
    if !a
        .tests
        .iter()
        .any(|r| r.repeat.is_some() || !r.label.is_empty())
    {
        return o;
    }
    let _ = writeln!(
        o,
        "\nACROSS REPEATS (median of the clean runs [95 % bootstrap interval; with 5 runs or fewer\nthat is the runs' range, which covers the median 94 % of the time at 5, 75 % at 3])\n{RULE}"
    );
    let mut groups: Vec<&str> = a.tests.iter().map(|r| r.group.as_str()).collect();
    groups.dedup();
    for g in groups {
        let runs: Vec<_> = a.tests.iter().filter(|r| r.group == g).collect();
        let clean: Vec<_> = runs.iter().filter(|r| r.comparable()).collect();
        let cell = |k: usize, lo: Option<f64>, hi: Option<f64>| {
            let v: Vec<f64> = clean.iter().filter_map(|r| FIGURES[k].1(r)).collect();
            match (median(&v), lo, hi) {
                (Some(m), Some(l), Some(h)) => format!("{m:.2} [{l:.2}–{h:.2}]"),
                (Some(m), _, _) => format!("{m:.2} [no interval]"),
                _ => "-".into(),
            }
        };
        let r = runs[0];
        let _ = writeln!(
            o,
            "{g}: n = {} of {}\n  throughput {} j/s; p50 {} ms; p99 {} ms; p99.9 {} ms; server {} µs/job",
            clean.len(),
            runs.len(),
            cell(0, r.throughput_ci_low, r.throughput_ci_high),
            cell(1, r.p50_ci_low, r.p50_ci_high),
            cell(2, r.p99_ci_low, r.p99_ci_high),
            cell(3, r.p999_ci_low, r.p999_ci_high),
            cell(4, r.server_cpu_us_per_job_ci_low, r.server_cpu_us_per_job_ci_high),
        );
        for x in runs.iter().filter(|x| !x.comparable()) {
            let why = if x.red_flags.is_empty() {
                "not clean"
            } else {
                &x.red_flags
            };
            let _ = write!(
                o,
                "{}",
                wrap(&format!("left out {}: {why}", x.test), 76, "    ")
            );
        }
        for x in runs.iter().filter(|x| !x.outlier.is_empty()) {
            let _ = writeln!(
                o,
                "    outlier run {} on {} (flagged, kept)",
                x.test, x.outlier
            );
        }
    }
    o
}

/// Every comparison the verdict rests on, one line each: none is dropped.
pub fn comparisons_table(a: &Analysis) -> String {
    let mut o = String::new();
    if a.comparisons.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "\nCOMPARISONS (ratio of medians, 95 % bootstrap interval, Welch's t-test on the runs'\nlogarithms, Benjamini–Hochberg-adjusted across all {})\n{RULE}",
        a.comparisons.len()
    );
    for c in &a.comparisons {
        let tier = if c.tier.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.tier)
        };
        let _ = write!(
            o,
            "{}",
            wrap(&format!("{}{tier}: {}", c.scenario, c.verdict), 78, "  ")
        );
    }
    o
}
