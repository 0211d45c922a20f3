//! The Universal Scalability Law (Gunther): X(N) = λN / (1 + σ(N − 1) + κN(N − 1)),
//! fitted by least squares on throughput. σ is contention (the serial part), κ
//! coherency (the crosstalk that makes throughput fall past a peak).
//!
//! For fixed σ and κ the model is linear in λ, so λ has a closed form; σ and κ (both
//! ≥ 0) are searched on a log grid, then on finer grids around the best, minimising the
//! squared error on X itself.

use serde::{Deserialize, Serialize};

/// The Universal Scalability Law fitted to throughput per worker count:
/// X(N) = λN / (1 + σ(N − 1) + κN(N − 1)).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct UslFit {
    pub lambda: f64,
    pub sigma: f64,
    pub kappa: f64,
    /// Where throughput peaks, √((1 − σ)/κ); `null` when κ is 0 or σ ≥ 1 (no peak).
    pub peak_workers: Option<f64>,
    pub peak_jobs_s: Option<f64>,
    /// Coefficient of determination over the measured points.
    pub r2: f64,
    /// The peak lies beyond the largest worker count measured: a projection.
    #[serde(default)]
    pub peak_extrapolated: bool,
}

impl UslFit {
    /// The fitted throughput at `n` workers.
    pub fn at(&self, n: f64) -> f64 {
        self.lambda * n / (1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0))
    }
}

/// Fewer distinct worker counts than this are not fitted: three parameters on three
/// points fit anything, and say nothing.
pub const MIN_POINTS: usize = 4;

fn shape(sigma: f64, kappa: f64, n: f64) -> f64 {
    n / (1.0 + sigma * (n - 1.0) + kappa * n * (n - 1.0))
}

/// The best λ for σ, κ, and the squared error it leaves.
fn at(points: &[(f64, f64)], sigma: f64, kappa: f64) -> (f64, f64) {
    let g: Vec<f64> = points.iter().map(|p| shape(sigma, kappa, p.0)).collect();
    let gg: f64 = g.iter().map(|v| v * v).sum();
    let gx: f64 = g.iter().zip(points).map(|(v, p)| v * p.1).sum();
    let lambda = if gg > 0.0 { gx / gg } else { 0.0 };
    let e = g
        .iter()
        .zip(points)
        .map(|(v, p)| (p.1 - lambda * v).powi(2))
        .sum();
    (lambda, e)
}

/// 0, then `n` points log-spaced from 10^lo to 10^hi.
fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    std::iter::once(0.0)
        .chain((0..n).map(|i| 10f64.powf(lo + (hi - lo) * i as f64 / (n - 1) as f64)))
        .collect()
}

/// Fits the law to (workers, jobs/s) points. `None` with fewer than [`MIN_POINTS`]
/// distinct worker counts or a throughput that is not positive.
pub fn fit(points: &[(f64, f64)]) -> Option<UslFit> {
    let mut counts: Vec<u64> = points.iter().map(|p| p.0 as u64).collect();
    counts.sort_unstable();
    counts.dedup();
    if counts.len() < MIN_POINTS || points.iter().any(|p| !(p.1 > 0.0 && p.0 >= 1.0)) {
        return None;
    }
    let mut best = (f64::INFINITY, 0.0, 0.0);
    let consider = |best: &mut (f64, f64, f64), sigma: f64, kappa: f64| {
        let (_, e) = at(points, sigma, kappa);
        if e < best.0 {
            *best = (e, sigma, kappa);
        }
    };
    for &sg in &grid(-5.0, 0.0, 120) {
        for &kp in &grid(-8.0, 0.0, 160) {
            consider(&mut best, sg, kp);
        }
    }
    // Refine around the best, three times, each a tenth as wide.
    let mut width = 0.5;
    for _ in 0..3 {
        let (_, s0, k0) = best;
        for i in 0..=40 {
            for j in 0..=40 {
                let f = |v: f64, k: i32| (v * (1.0 + width * f64::from(k - 20) / 20.0)).max(0.0);
                let sg = if s0 > 0.0 {
                    f(s0, i)
                } else {
                    1e-6 * f64::from(i)
                };
                let kp = if k0 > 0.0 {
                    f(k0, j)
                } else {
                    1e-9 * f64::from(j)
                };
                consider(&mut best, sg, kp);
            }
        }
        width /= 10.0;
    }
    let (e, sigma, kappa) = best;
    let (lambda, _) = at(points, sigma, kappa);
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let total: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let peak_workers = (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt());
    let largest = points.iter().map(|p| p.0).fold(0.0, f64::max);
    Some(UslFit {
        lambda,
        sigma,
        kappa,
        peak_workers,
        peak_jobs_s: peak_workers.map(|n| lambda * shape(sigma, kappa, n)),
        r2: if total > 0.0 { 1.0 - e / total } else { 1.0 },
        peak_extrapolated: peak_workers.is_some_and(|n| n > largest),
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
            .map(|&n| (n, l * shape(s, k, n)))
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
        assert!(!f.peak_extrapolated);
    }

    #[test]
    fn a_high_point_does_not_drag_lambda_above_the_data() {
        // X(2)/2 above X(1): noise. A least-squares fit on X stays near the points.
        let pts = [
            (1.0, 100.0),
            (2.0, 230.0),
            (4.0, 380.0),
            (8.0, 600.0),
            (16.0, 700.0),
        ];
        let f = fit(&pts).expect("fits");
        // λ is not forced up to the noisy X(2)/2 = 115, and the curve stays on the data.
        assert!(f.lambda < 115.0 && f.r2 > 0.99, "{f:?}");
        for (n, x) in pts {
            let got = f.lambda * shape(f.sigma, f.kappa, n);
            assert!((got - x).abs() / x < 0.15, "{n}: {got} against {x}: {f:?}");
        }
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
        assert!(fit(&[(1.0, 10.0), (2.0, 19.0), (4.0, 35.0)]).is_none());
        assert!(fit(&[(1.0, 10.0), (2.0, 0.0), (4.0, 30.0), (8.0, 50.0)]).is_none());
    }
}
