//! When a difference between two designs is a finding: it must be larger than this
//! machine's run-to-run noise (the practical threshold) and survive the correction for
//! the number of comparisons made (Benjamini–Hochberg: among the differences called
//! findings, at most 5 % are expected to be false; when no design differs at all, the
//! chance of any false finding is at most 5 %).

/// The practical threshold of a figure: the 95 % upper bound of |ln(AA2 / AA1)| between
/// two runs of identical settings interleaved in time (A/A), measured by `bench/aa.sh` on
/// the development machine (2 cores, Debian 12, `--local` servers in the strict tier,
/// warm, 1,000 jobs/s for 10 s after 5 s of warmup, 20 workers × 10 ms; skip_locked and
/// valkey_streams, 10 rounds each, the 20 pairs pooled: the 95th percentile of 20 is the
/// second largest). BENCHMARKS.md ("A/A: the practical threshold") has the table. Below
/// capacity throughput equals the offered rate (A/A: ×1.001), so throughput is compared
/// only over capacity, where its noise is a capacity's: the spread of three skip_locked
/// MSTs on fresh servers (4,392–4,867 jobs/s, BENCHMARKS.md "Capacity"). A difference
/// smaller than this is "within noise" whatever its p-value. An analysis that holds its
/// own A/A pair may widen it, never narrow it.
pub const AA_THRESHOLDS: [(&str, f64); 5] = [
    ("throughput", 0.103),
    ("p50", 0.145),
    ("p99", 0.293),
    ("p99.9", 0.725),
    ("server CPU per job", 0.313),
];

/// The threshold of `figure` (as |ln ratio|); an unknown figure gets the largest.
pub fn threshold(figure: &str) -> f64 {
    AA_THRESHOLDS
        .iter()
        .find(|(f, _)| *f == figure)
        .map_or(0.725, |(_, t)| *t)
}

/// The false-discovery rate the correction keeps: at most 5 % of the findings of one
/// analysis expected false (and, when nothing differs, at most a 5 % chance of any).
/// Holm's family-wise control was tried first: across the 54 comparisons of a seed
/// suite it needs p < 0.05 / 54 of the strongest difference, which a 20 % difference
/// at five repeats and a 5 % CV reaches only 60 % of the time.
pub const ALPHA: f64 = 0.05;

/// Benjamini–Hochberg's step-up adjustment: the k-th smallest of m p-values becomes
/// min over j ≥ k of p(j) · m / j, capped at 1; `None` stays `None` (a comparison
/// without a p-value, a single run, is not counted in the family).
pub fn bh(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
    idx.sort_by(|&a, &b| p[a].unwrap_or(1.0).total_cmp(&p[b].unwrap_or(1.0)));
    let m = idx.len();
    let mut out = vec![None; p.len()];
    let mut running = 1.0f64;
    for (k, &i) in idx.iter().enumerate().rev() {
        let adj = (p[i].unwrap_or(1.0) * m as f64 / (k + 1) as f64).min(1.0);
        running = running.min(adj);
        out[i] = Some(running);
    }
    out
}

/// The 95 % upper bound of |ln ratio| over paired runs of identical settings (an A/A
/// pair): the 95th percentile, or the largest when there are fewer than 20 pairs.
pub fn aa_bound(log_ratios: &[f64]) -> Option<f64> {
    if log_ratios.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = log_ratios.iter().map(|x| x.abs()).collect();
    v.sort_by(f64::total_cmp);
    let k = if v.len() < 20 {
        v.len() - 1
    } else {
        ((v.len() as f64) * 0.95).ceil() as usize - 1
    };
    Some(v[k])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bh_adjusts_step_up_and_keeps_order() {
        let close = |a: Option<f64>, b: f64| (a.unwrap_or(-1.0) - b).abs() < 1e-12;
        // Sorted 0.01, 0.03, 0.04 against m = 3: 0.03, 0.045, 0.04 → monotone from the
        // top: 0.04, 0.04, 0.03.
        let adj = bh(&[Some(0.01), Some(0.04), None, Some(0.03)]);
        assert!(close(adj[0], 0.03), "{adj:?}");
        assert!(close(adj[3], 0.04), "{adj:?}");
        assert!(close(adj[1], 0.04), "{adj:?}");
        assert_eq!(adj[2], None);
        assert_eq!(bh(&[Some(0.9), Some(0.8)]), vec![Some(0.9), Some(0.9)]);
        // Same as Bonferroni for the smallest of many nulls.
        let adj = bh(&[Some(0.001), Some(0.5), Some(0.6), Some(0.7)]);
        assert!(close(adj[0], 0.004), "{adj:?}");
    }

    #[test]
    fn the_aa_bound_is_the_largest_of_few_and_the_95th_percentile_of_many() {
        assert_eq!(aa_bound(&[0.01, -0.05, 0.02]), Some(0.05));
        let many: Vec<f64> = (1..=100).map(|i| f64::from(i) / 1000.0).collect();
        assert_eq!(aa_bound(&many), Some(0.095));
        assert_eq!(aa_bound(&[]), None);
    }
}
