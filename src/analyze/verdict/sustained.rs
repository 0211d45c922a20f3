//! What this machine sustained, for the designs whose tests were over capacity: their
//! completed rate (and their MST or burn-down where a sweep of the same workload ran),
//! and the `--rate` every design would sustain. Said at the top when the offered rate
//! was beyond it, not in the caveats.

use crate::format::capacity::DesignCapacity;
use crate::format::summary::Row;
use crate::text::thousands;

/// The lines, and the warning for the top of the verdict (if any test was over capacity).
/// One line per variant and scenario: its completed rate (the median of its over-capacity
/// runs) against what it was offered, and its MST or burn-down of the same workload.
pub fn of(rows: &[Row], caps: &[DesignCapacity]) -> (Vec<String>, Option<String>) {
    let over: Vec<&Row> = rows
        .iter()
        .filter(|r| r.complete && r.over_capacity())
        .collect();
    if over.is_empty() {
        return (vec![], None);
    }
    let mut groups: Vec<(String, String)> = over
        .iter()
        .map(|r| (r.variant(), r.scenario.clone()))
        .collect();
    groups.sort();
    groups.dedup();
    let mut lines = vec![];
    let mut lowest = f64::MAX;
    for (v, sc) in &groups {
        let these: Vec<&&Row> = over
            .iter()
            .filter(|r| &r.variant() == v && &r.scenario == sc)
            .collect();
        let done: Vec<f64> = these.iter().filter_map(|r| r.throughput_jobs_s).collect();
        let rate = crate::stats::confidence::median(&done).unwrap_or(0.0);
        lowest = lowest.min(rate);
        let offered = these.iter().find_map(|r| r.offered_rate).unwrap_or(0.0);
        lines.push(format!(
            "{v} ({sc}): completed {} jobs/s of the {} offered{}",
            thousands(rate),
            thousands(offered),
            capacity_of(these[0], caps)
        ));
    }
    let names: Vec<String> = groups.iter().map(|(v, sc)| format!("{v} ({sc})")).collect();
    // A fifth under the slowest completed rate leaves room for its stalls.
    let fit = ((lowest * 0.8) / 10.0).floor() * 10.0;
    let top = format!(
        "The offered rate is beyond what this machine sustained for {}: those tests were over capacity, so they rank by completed throughput and their latency measures the backlog. To compare latencies, offer less: --rate {} is a fifth under the slowest completed rate.",
        names.join(", "),
        thousands(fit.max(1.0))
    );
    (lines, Some(top))
}

/// "; its sweep of this workload found …; its burn-down drained …", where they exist.
fn capacity_of(r: &Row, caps: &[DesignCapacity]) -> String {
    let mut out = String::new();
    if let Some(m) = r.mst_jobs_s {
        out.push_str(&format!(
            "; its sweep of this workload found {} jobs/s within p99 ≤ {} ms",
            thousands(m),
            r.mst_slo_p99_ms.map_or("?".into(), |s| format!("{s:.0}"))
        ));
    }
    let bd = caps
        .iter()
        .filter(|c| crate::analyze::capacity::matches(c, r))
        .find_map(|c| c.burndown_jobs_s.zip(c.burndown_workers));
    if let Some((jobs_s, workers)) = bd {
        out.push_str(&format!(
            "; its burn-down (closed loop) drained {} jobs/s with {workers} workers",
            thousands(jobs_s)
        ));
    }
    out
}
