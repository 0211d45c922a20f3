//! The verdict as the console prints it, before every table: what to know first, each
//! scenario's answers and ranking (every row ranked or named with why it was left out),
//! what this machine sustained, the seed's expectations checked, and how a difference
//! was judged.

use std::fmt::Write;

use crate::format::verdict::{Claim, Ranked, ScenarioVerdict, Verdict, CLEAR};
use crate::text::{ms_prose, thousands, wrap};

const DOUBLE: &str =
    "================================================================================";
const RULE: &str =
    "────────────────────────────────────────────────────────────────────────────────";

pub fn render(v: &Verdict) -> String {
    let mut o = String::new();
    if v.scenarios.is_empty() && v.first.is_empty() {
        return o;
    }
    let _ = writeln!(o, "{DOUBLE}\nVERDICT\n{DOUBLE}");
    for f in &v.first {
        let _ = write!(o, "{}", wrap(f, 76, "!! "));
    }
    let several_tiers = v.scenarios.iter().any(|s| s.tier != v.scenarios[0].tier);
    for s in &v.scenarios {
        scenario(s, several_tiers, &mut o);
    }
    if !v.sustained.is_empty() {
        let _ = writeln!(o, "\nWhat this machine sustained");
        for s in &v.sustained {
            let _ = write!(o, "{}", wrap(&format!("- {s}"), 78, "  "));
        }
    }
    if !v.expectations.is_empty() {
        let _ = writeln!(o, "\nThe seed's expected patterns");
        for e in &v.expectations {
            let line = format!(
                "- {}: {} — {}",
                e.verdict.to_uppercase(),
                e.expected,
                e.measured
            );
            let _ = write!(o, "{}", wrap(&line, 78, "  "));
        }
    }
    let _ = writeln!(o, "\nHow a difference was judged");
    let _ = write!(o, "{}", wrap(&v.method, 78, "  "));
    o
}

fn scenario(s: &ScenarioVerdict, several_tiers: bool, o: &mut String) {
    let name = if s.scenario.is_empty() {
        "tests"
    } else {
        &s.scenario
    };
    let tier = match (several_tiers, s.tier.as_str()) {
        (false, _) | (true, "") => String::new(),
        (true, t) => format!(" — durability {t}"),
    };
    let _ = writeln!(o, "\n{}{tier}\n{RULE}", name.to_uppercase());
    claim(&s.backends, o);
    for c in &s.within {
        claim(c, o);
    }
    let _ = writeln!(o, "  Ranking:");
    for r in &s.ranking {
        let _ = write!(o, "{}", wrap(&ranked(r), 74, "    "));
    }
}

fn claim(c: &Claim, o: &mut String) {
    let word = if c.confidence == CLEAR {
        c.confidence.to_uppercase()
    } else {
        c.confidence.clone()
    };
    let _ = write!(
        o,
        "{}",
        wrap(&format!("{} [{word}] {}", c.question, c.answer), 78, "  ")
    );
    if !c.settle.is_empty() {
        let _ = write!(
            o,
            "{}",
            wrap(&format!("to settle: {}", c.settle), 74, "    ")
        );
    }
}

/// A ranking line: `1. valkey_streams  p99 3.1 ms [2.9–3.3], 5 runs`.
pub fn ranked(r: &Ranked) -> String {
    let Some(rank) = r.rank else {
        return format!("–  {}: left out — {}", r.variant, r.left_out);
    };
    let value = |v: f64| match r.by.as_str() {
        "throughput" => format!("{} jobs/s", thousands(v)),
        _ => ms_prose(Some(v)),
    };
    let figure = match r.by.as_str() {
        "throughput" => "completed",
        _ => "p99",
    };
    let interval = match (r.ci_low, r.ci_high) {
        (Some(l), Some(h)) => format!(" [{}–{}]", value(l), value(h)),
        _ => String::new(),
    };
    let state = match r.state.as_str() {
        "" | crate::analyze::state::SUSTAINED => String::new(),
        s => format!(", {}", s.replace('_', " ")),
    };
    let runs = if r.runs == 1 {
        "1 run".into()
    } else {
        format!("{} runs", r.runs)
    };
    format!(
        "{rank}. {}: {figure} {}{interval}, {runs}{state}",
        r.variant,
        r.value.map_or("-".into(), value)
    )
}
