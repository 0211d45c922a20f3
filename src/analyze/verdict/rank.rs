//! A scenario's ranking: the variants that kept up or stalled by their end-to-end p99
//! (a stall's tail is the finding: it ranks, last if it is the slowest), then those over
//! capacity by completed throughput; every variant left out is named with why.

use super::pairs::{Entry, P99, THROUGHPUT};
use crate::format::summary::worse_state;
use crate::format::verdict::Ranked;
use crate::stats::confidence;

/// Why a variant cannot be ranked, if it cannot: the first run that keeps it out, named
/// when it is one of several.
fn left_out(e: &Entry) -> Option<String> {
    if !e.clean.is_empty() {
        return (e.values(e.ranks_by()).is_empty())
            .then(|| format!("its {} was not measured", e.ranks_by().name));
    }
    let r = e.runs.iter().find(|r| !r.comparable()).or(e.runs.first())?;
    let which = if e.runs.len() > 1 {
        format!("{}: ", r.test)
    } else {
        String::new()
    };
    Some(which + &why(r))
}

fn why(r: &crate::format::summary::Row) -> String {
    if !r.complete {
        "incomplete (interrupted or failed): re-run it".into()
    } else if r.lost.unwrap_or(0) > 0 {
        format!(
            "lost {} job(s): its figures do not describe a working queue",
            r.lost.unwrap_or(0)
        )
    } else if r.audit == "inconclusive" {
        format!("its audit was inconclusive ({})", r.audit_note)
    } else if r.duplicated.unwrap_or(0) > 0 {
        "completed jobs more than once".into()
    } else if r.left_in_queue.unwrap_or(0) > 0 {
        format!(
            "{} job(s) were still queued when the drain bound ran out: raise benchmark.drain_timeout_s",
            r.left_in_queue.unwrap_or(0)
        )
    } else if r.foreign.unwrap_or(0) > 0 {
        "another run's jobs were in its queue: reset it (setup-schema --reset)".into()
    } else {
        format!(
            "its audit was {:?}: run producer and workers together",
            r.audit
        )
    }
}

/// The ranking of one scenario's entries.
pub fn rank(entries: &[&Entry]) -> Vec<Ranked> {
    let mut ranked: Vec<Ranked> = entries
        .iter()
        .map(|e| {
            let state = e
                .clean
                .iter()
                .chain(e.runs.iter())
                .fold("", |w, r| worse_state(w, &r.state))
                .to_string();
            let by = e.ranks_by();
            let est = confidence::estimate(&e.values(by));
            Ranked {
                rank: None,
                variant: e.variant.clone(),
                backend: e.backend.clone(),
                state,
                by: by.name.into(),
                value: est.map(|x| x.median),
                ci_low: est.and_then(|x| x.low),
                ci_high: est.and_then(|x| x.high),
                runs: e.clean.len(),
                left_out: left_out(e).unwrap_or_default(),
            }
        })
        .collect();
    // Latency first (lower is better), then throughput (higher), then the left out.
    ranked.sort_by(|a, b| order(a).total_cmp(&order(b)));
    let mut n = 0;
    for r in &mut ranked {
        if r.left_out.is_empty() {
            n += 1;
            r.rank = Some(n);
        }
    }
    ranked
}

/// A sort key: latency-ranked rows by p99, over-capacity rows after them by throughput,
/// rows that cannot rank last.
fn order(r: &Ranked) -> f64 {
    match (r.left_out.is_empty(), r.value) {
        (true, Some(v)) if r.by == P99.name => v,
        (true, Some(v)) if r.by == THROUGHPUT.name => 1e15 - v,
        _ => f64::MAX,
    }
}
