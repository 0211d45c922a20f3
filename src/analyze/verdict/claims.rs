//! The headline's claims for one scenario: PostgreSQL or Valkey (the best-ranked variant
//! of each, picked after every pair was tested), and which design within each backend
//! (the first against the second). Each claim carries its effect, interval, confidence
//! word, and what would settle it; a claim that cannot be made says why and what to do.

use super::pairs::{self, Entry, P99, THROUGHPUT};
use crate::format::summary::Comparison;
use crate::format::verdict::{Claim, Ranked, CLEAR, LIKELY, NOT_MEASURED, WITHIN_NOISE};

fn title(backend: &str) -> &str {
    match backend {
        "postgresql" => "PostgreSQL",
        "valkey" => "Valkey",
        b => b,
    }
}

fn value(r: &Ranked) -> String {
    match (r.by.as_str(), r.value) {
        ("throughput", Some(v)) => format!("{} jobs/s completed", crate::text::thousands(v)),
        (_, Some(v)) => format!("p99 {}", crate::text::ms_prose(Some(v))),
        _ => "-".into(),
    }
}

/// Why a backend's side of a scenario has nothing ranked, and what to do.
fn missing(backend: &str, scenario: &str, ranking: &[Ranked]) -> String {
    let out: Vec<String> = ranking
        .iter()
        .filter(|r| r.backend == backend && r.rank.is_none())
        .map(|r| format!("{} was left out: {}", r.variant, r.left_out))
        .collect();
    if out.is_empty() {
        format!(
            "no {} test ran in the {scenario} scenario: run-suite --backend all (or --queues naming one) runs it",
            title(backend)
        )
    } else {
        out.join("; ")
    }
}

/// `better` against `other`: the ranked rows and their comparison on the ranking figure.
pub fn versus(
    question: String,
    better: &Ranked,
    other: &Ranked,
    comparisons: &[Comparison],
    entries: &[&Entry],
) -> Claim {
    let e = |v: &str| entries.iter().find(|e| e.variant == v);
    let (eb, eo) = (e(&better.variant), e(&other.variant));
    let n = |x: Option<&&Entry>| x.map_or(0, |x| x.clean.len());
    let mut c = Claim {
        question,
        figure: better.by.clone(),
        better: better.variant.clone(),
        other: other.variant.clone(),
        n_better: n(eb),
        n_other: n(eo),
        ..Claim::default()
    };
    if better.by != other.by {
        // One kept up, the other did not: its latency measured the backlog.
        // Clear only when every run says so, on both sides, with runs to say it.
        let all_over = eo.is_some_and(|x| x.clean.iter().all(|r| r.over_capacity()));
        let never = eb.is_some_and(|x| !x.clean.iter().any(|r| r.over_capacity()));
        let runs = c.n_better.min(c.n_other) >= 2;
        c.figure = THROUGHPUT.name.into();
        c.confidence = if all_over && never && runs {
            CLEAR
        } else {
            LIKELY
        }
        .into();
        c.answer = format!(
            "{} stayed within capacity ({}, {}); {} was over capacity ({})",
            better.variant,
            better.state.replace('_', " "),
            value(better),
            other.variant,
            value(other)
        );
        c.settle =
            "a rate both sustain compares their latencies: see what this machine sustained".into();
        return c;
    }
    let figure = if better.by == P99.name {
        "p99"
    } else {
        "throughput"
    };
    let Some((cmp, ratio, ci)) = pairs::find(comparisons, figure, &better.variant, &other.variant)
    else {
        c.confidence = NOT_MEASURED.into();
        c.answer = format!(
            "{} and {} have no {figure} to compare",
            better.variant, other.variant
        );
        c.settle = format!("re-run them: one has no {figure} recorded (see its red flags)");
        return c;
    };
    // Throughput: how many times more the better one completed.
    let (ratio, ci) = if figure == "throughput" {
        (1.0 / ratio, ci.map(|(l, h)| (1.0 / h, 1.0 / l)))
    } else {
        (ratio, ci)
    };
    c.ratio = Some(ratio);
    (c.ci_low, c.ci_high) = (ci.map(|x| x.0), ci.map(|x| x.1));
    c.p_adjusted = cmp.p_adjusted;
    c.confidence = cmp.confidence.clone();
    let interval = ci.map_or(String::new(), |(l, h)| format!(", 95 % CI ×{l:.2}–×{h:.2}"));
    let lead = match figure {
        "p99" => format!(
            "{}'s {} against {}'s {}",
            better.variant,
            value(better),
            other.variant,
            value(other)
        ),
        _ => format!(
            "{} {} against {}'s {}",
            better.variant,
            value(better),
            other.variant,
            value(other)
        ),
    };
    c.answer = format!("{lead} (×{ratio:.2}{interval})");
    c.settle = settle(&c, cmp);
    c
}

/// What would settle a claim that is not clear.
fn settle(c: &Claim, cmp: &Comparison) -> String {
    let n = c.n_better.min(c.n_other);
    match c.confidence.as_str() {
        CLEAR => String::new(),
        LIKELY if n < 2 => "repeats: run-suite --repeat 5 gives each figure an interval and a test".into(),
        LIKELY => format!(
            "more repeats: {n} a side left the difference short of significance after the correction for every comparison"
        ),
        WITHIN_NOISE if n < 2 => format!(
            "repeats: one run a side cannot tell a difference this small (inside this machine's run-to-run noise, ×{:.2}) from none; run-suite --repeat 5",
            cmp.threshold.exp()
        ),
        WITHIN_NOISE => format!(
            "nothing more at this rate: the difference is inside this machine's run-to-run noise (×{:.2}); a capacity sweep (run-suite --capacity) separates designs that keep up alike",
            cmp.threshold.exp()
        ),
        _ => cmp.verdict.clone(),
    }
}

/// "PostgreSQL or Valkey?" in one scenario.
pub fn backends(
    scenario: &str,
    ranking: &[Ranked],
    comparisons: &[Comparison],
    entries: &[&Entry],
) -> Claim {
    let question = format!("{scenario}: PostgreSQL or Valkey?");
    let best = |b: &str| ranking.iter().find(|r| r.backend == b && r.rank.is_some());
    match (best("postgresql"), best("valkey")) {
        (Some(p), Some(v)) => {
            let (better, other) = if p.rank < v.rank { (p, v) } else { (v, p) };
            let mut c = versus(question, better, other, comparisons, entries);
            c.answer = format!("{}: {}", title(&better.backend), c.answer);
            let polled = entries
                .iter()
                .any(|e| e.variant == p.variant && e.wakeup == "poll");
            if polled && c.figure == "p99" {
                let note = "PostgreSQL polled while Valkey's read blocks, so part of PostgreSQL's latency is its poll interval";
                c.answer.push_str(&format!(" ({note})"));
                let fix =
                    "run --wakeup poll,notify to compare a woken PostgreSQL worker with Valkey's";
                c.settle = if c.settle.is_empty() {
                    fix.into()
                } else {
                    format!("{}; {fix}", c.settle)
                };
            }
            c
        }
        (p, v) => {
            let mut why = vec![];
            if p.is_none() {
                why.push(missing("postgresql", scenario, ranking));
            }
            if v.is_none() {
                why.push(missing("valkey", scenario, ranking));
            }
            Claim {
                question,
                confidence: NOT_MEASURED.into(),
                answer: format!("cannot answer: {}", why.join("; ")),
                settle: why.join("; "),
                ..Claim::default()
            }
        }
    }
}

/// "Which design within this backend?" in one scenario: its first against its second.
pub fn within(
    backend: &str,
    scenario: &str,
    ranking: &[Ranked],
    comparisons: &[Comparison],
    entries: &[&Entry],
) -> Option<Claim> {
    let mine: Vec<&Ranked> = ranking.iter().filter(|r| r.backend == backend).collect();
    if mine.len() < 2 {
        return None;
    }
    let question = format!("{scenario}: which {} design?", title(backend));
    let ranked: Vec<&&Ranked> = mine.iter().filter(|r| r.rank.is_some()).collect();
    match ranked.as_slice() {
        [first, second, ..] => Some(versus(question, first, second, comparisons, entries)),
        _ => Some(Claim {
            question,
            confidence: NOT_MEASURED.into(),
            answer: format!(
                "cannot answer: fewer than two {} designs ranked ({})",
                title(backend),
                missing(backend, scenario, ranking)
            ),
            settle: missing(backend, scenario, ranking),
            ..Claim::default()
        }),
    }
}
