//! The Universal Scalability Law (Gunther): X(N) = λN / (1 + σ(N − 1) + κN(N − 1)),
//! fitted by least squares on throughput. σ is contention (the serial part), κ
//! coherency (the crosstalk that makes throughput fall past a peak).
//!
//! For a fixed λ the model is linear in σ and κ (λN/X − 1 = σ(N − 1) + κN(N − 1)), so
//! λ is searched on a grid, then refined, with σ and κ solved exactly at each λ
//! (both kept ≥ 0) and the fit judged by its squared error on X itself.

use crate::format::capacity::UslFit;

fn model(lambda: f64, sigma: f64, kappa: f64, n: f64) -> f64 {
    lambda * n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// σ, κ ≥ 0 minimising Σ(y − σa − κb)², for a = N − 1, b = N(N − 1).
fn coefficients(points: &[(f64, f64)], lambda: f64) -> (f64, f64) {
    let rows: Vec<(f64, f64, f64)> = points
        .iter()
        .map(|&(n, x)| (n - 1.0, n * (n - 1.0), lambda * n / x - 1.0))
        .collect();
    let s = |f: &dyn Fn(&(f64, f64, f64)) -> f64| rows.iter().map(f).sum::<f64>();
    let (aa, bb, ab) = (s(&|r| r.0 * r.0), s(&|r| r.1 * r.1), s(&|r| r.0 * r.1));
    let (ay, by) = (s(&|r| r.0 * r.2), s(&|r| r.1 * r.2));
    let one = |num: f64, den: f64| if den > 0.0 { (num / den).max(0.0) } else { 0.0 };
    let det = aa * bb - ab * ab;
    if det.abs() > 1e-12 {
        let sigma = (ay * bb - by * ab) / det;
        let kappa = (by * aa - ay * ab) / det;
        if sigma >= 0.0 && kappa >= 0.0 {
            return (sigma, kappa);
        }
    }
    // A constrained optimum lies on an edge: one coefficient at 0.
    let (s_only, k_only) = (one(ay, aa), one(by, bb));
    let sse = |sg: f64, kp: f64| {
        rows.iter()
            .map(|r| (r.2 - sg * r.0 - kp * r.1).powi(2))
            .sum::<f64>()
    };
    if sse(s_only, 0.0) <= sse(0.0, k_only) {
        (s_only, 0.0)
    } else {
        (0.0, k_only)
    }
}

fn sse(points: &[(f64, f64)], lambda: f64) -> (f64, f64, f64) {
    let (sigma, kappa) = coefficients(points, lambda);
    let e = points
        .iter()
        .map(|&(n, x)| (x - model(lambda, sigma, kappa, n)).powi(2))
        .sum();
    (e, sigma, kappa)
}

/// Fits the law to (workers, jobs/s) points. `None` with fewer than three distinct
/// worker counts or a throughput that is not positive.
pub fn fit(points: &[(f64, f64)]) -> Option<UslFit> {
    let mut counts: Vec<u64> = points.iter().map(|p| p.0 as u64).collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.len() < 3 || points.iter().any(|p| !(p.1 > 0.0 && p.0 >= 1.0)) {
        return None;
    }
    // X/N ≤ λ at every point (the denominator is ≥ 1), so λ starts at their largest.
    let lo = points.iter().map(|p| p.1 / p.0).fold(0.0, f64::max);
    let (mut a, mut b) = (lo, lo * 4.0);
    let mut best = (f64::INFINITY, lo);
    for _ in 0..4 {
        for i in 0..=200 {
            let l = a + (b - a) * f64::from(i) / 200.0;
            let (e, _, _) = sse(points, l);
            if e < best.0 {
                best = (e, l);
            }
        }
        let step = (b - a) / 200.0;
        a = (best.1 - step).max(lo);
        b = best.1 + step;
    }
    let lambda = best.1;
    let (e, sigma, kappa) = sse(points, lambda);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let total: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let peak_workers = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        peak_workers,
        peak_jobs_s: peak_workers.map(|n| model(lambda, sigma, kappa, n)),
        r2: if total > 0.0 { 1.0 - e / total } else { 1.0 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_known_coefficients() {
        let (l, s, k) = (1_000.0, 0.05, 0.002);
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
            .iter()
            .map(|&n| (n, model(l, s, k, n)))
            .collect();
        let f = fit(&pts).expect("fits");
        assert!((f.lambda - l).abs() / l < 0.01, "{f:?}");
        assert!((f.sigma - s).abs() < 0.005, "{f:?}");
        assert!((f.kappa - k).abs() < 0.0005, "{f:?}");
        let peak = ((1.0 - s) / k).sqrt();
        assert!(
            (f.peak_workers.expect("peak") - peak).abs() / peak < 0.05,
            "{f:?}"
        );
        assert!(f.r2 > 0.999);
    }

    #[test]
    fn linear_scaling_has_no_peak() {
        let pts: Vec<(f64, f64)> = [1.0, 2.0, 4.0, 8.0]
            .iter()
            .map(|&n| (n, 100.0 * n))
            .collect();
        let f = fit(&pts).expect("fits");
        assert!(f.sigma < 1e-3 && f.kappa < 1e-6, "{f:?}");
        assert!(
            f.peak_workers.is_none() || f.peak_workers.expect("p") > 100.0,
            "{f:?}"
        );
    }

    #[test]
    fn too_few_points_are_not_fitted() {
        assert!(fit(&[(1.0, 10.0), (2.0, 19.0)]).is_none());
        assert!(fit(&[(1.0, 10.0), (2.0, 0.0), (4.0, 30.0)]).is_none());
    }
}
