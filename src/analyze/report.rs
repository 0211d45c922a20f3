//! The console report: the seed's table per scenario, then red flags and the findings.

use std::fmt::Write;

use super::{scenario_order, Analysis};
use crate::text::num;

const RULE: &str =
    "────────────────────────────────────────────────────────────────────────────────";
const DOUBLE: &str =
    "================================================================================";

/// Wraps text to `width` columns with an indent.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

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
    } else if !r.saturated.is_empty() {
        "  (saturated)".into()
    } else {
        String::new()
    }
}

pub fn render(a: &Analysis) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{DOUBLE}\nBENCHMARK RESULTS SUMMARY\n{DOUBLE}");
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
    let mut scenarios: Vec<&str> = a.tests.iter().map(|r| r.scenario.as_str()).collect();
    scenarios.sort_by_key(|s| scenario_order(s));
    scenarios.dedup();
    for sc in scenarios {
        let title = if sc.is_empty() { "OTHER" } else { sc };
        let _ = writeln!(o, "\nSCENARIO: {}\n{RULE}", title.to_uppercase());
        let _ = writeln!(
            o,
            "{:<15} {:<20} {:<15} {:<10} {:<10} {:<10} {:<6}",
            "Backend", "Queue Type", "Throughput", "p50 (ms)", "p95 (ms)", "p99 (ms)", "CPU %"
        );
        let _ = writeln!(o, "{RULE}");
        for r in a.tests.iter().filter(|r| r.scenario == sc) {
            let _ = writeln!(
                o,
                "{:<15} {:<20} {:<15} {:<10} {:<10} {:<10} {:<6}{}",
                r.backend,
                r.queue,
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
            let _ = write!(o, "{}", wrap(w, 78, "  "));
        }
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
