//! What this machine sustained, for the designs whose tests were over capacity: their
//! completed rate (and their MST or burn-down where a sweep of the same workload ran),
//! and the `--rate` every design would sustain. Said at the top when the offered rate
//! was beyond it, not in the caveats.

use crate::format::capacity::DesignCapacity;
use crate::format::summary::Row;
use crate::text::thousands;

/// The lines, and the warning for the top of the verdict (if any test was over capacity).
pub fn of(rows: &[Row], caps: &[DesignCapacity]) -> (Vec<String>, Option<String>) {
    let over: Vec<&Row> = rows
        .iter()
        .filter(|r| r.comparable() && r.over_capacity())
        .collect();
    if over.is_empty() {
        return (vec![], None);
    }
    let mut designs: Vec<(String, f64, String)> = vec![];
    for r in &over {
        let v = r.variant();
        if designs.iter().any(|d| d.0 == v) {
            continue;
        }
        let done: Vec<f64> = over
            .iter()
            .filter(|x| x.variant() == v)
            .filter_map(|x| x.throughput_jobs_s)
            .collect();
        let rate = crate::stats::confidence::median(&done).unwrap_or(0.0);
        let mut how = format!("completed {} jobs/s", thousands(rate));
        if let Some(m) = r.mst_jobs_s {
            how.push_str(&format!(
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
            how.push_str(&format!(
                "; its burn-down (closed loop) drained {} jobs/s with {workers} workers",
                thousands(jobs_s)
            ));
        }
        designs.push((v, rate, how));
    }
    let lowest = designs.iter().map(|d| d.1).fold(f64::MAX, f64::min);
    // A fifth under the slowest design's completed rate leaves room for its stalls.
    let fit = ((lowest * 0.8) / 10.0).floor() * 10.0;
    let offered = over.iter().find_map(|r| r.offered_rate).unwrap_or(0.0);
    let lines: Vec<String> = designs
        .iter()
        .map(|(v, _, how)| format!("{v}: {how} while {} were offered", thousands(offered)))
        .collect();
    let names: Vec<&str> = designs.iter().map(|d| d.0.as_str()).collect();
    let top = format!(
        "The offered {} jobs/s is beyond what this machine sustained for {}: those tests were over capacity, so they rank by completed throughput and their latency measures the backlog. To compare latencies, run at a rate every design sustains: --rate {}.",
        thousands(offered),
        names.join(", "),
        thousands(fit.max(1.0))
    );
    (lines, Some(top))
}
