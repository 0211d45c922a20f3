//! Statistics across repeated runs: the run is the unit that varies (Kalibera and Jones),
//! so every figure here takes one value per run. Medians with percentile-bootstrap
//! intervals (10,000 resamples from a fixed seed, so `analyze` is deterministic), the
//! ratio of two medians with its interval, Welch's t-test, and hyperfine's MAD outliers.

use serde::{Deserialize, Serialize};

pub const RESAMPLES: usize = 10_000;
pub const SEED: u64 = 0x5eed_0f9b_e1c4;
/// A change smaller than this is "no significant difference" whatever the interval says.
pub const NOISE: f64 = 0.02;
/// hyperfine's threshold on |x − median| / MAD (10 × the 1.4826 that makes MAD a σ).
pub const OUTLIER_Z: f64 = 14.826;

/// SplitMix64: a tiny generator is enough to pick resample indices, and a fixed seed
/// makes every interval reproducible.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

pub fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

/// The p-quantile of sorted values, interpolated (the bootstrap's percentile bounds).
fn quantile(sorted: &[f64], p: f64) -> f64 {
    let x = p * (sorted.len() - 1) as f64;
    let (i, f) = (x.floor() as usize, x.fract());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + f * (next - sorted[i]),
        None => sorted[i],
    }
}

fn resampled_median(v: &[f64], rng: &mut SplitMix, buf: &mut Vec<f64>) -> f64 {
    buf.clear();
    buf.extend((0..v.len()).map(|_| v[rng.below(v.len())]));
    median(buf).unwrap_or(f64::NAN)
}

/// A figure's median over runs, with its 95 % interval; `None` bounds with one run.
/// With 5 runs or fewer the bootstrap's 2.5 and 97.5 % points fall on the smallest and
/// largest run, so the interval is their range and covers the median less often than
/// 95 % (1 − 2^(1−n): 94 % at 5, 88 % at 4, 75 % at 3); the docs and console say so.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub n: usize,
    pub median: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

pub fn estimate(v: &[f64]) -> Option<Estimate> {
    let m = median(v)?;
    if v.len() < 2 {
        return Some(Estimate {
            n: v.len(),
            median: m,
            low: None,
            high: None,
        });
    }
    let mut rng = SplitMix(SEED);
    let mut buf = Vec::with_capacity(v.len());
    let mut meds: Vec<f64> = (0..RESAMPLES)
        .map(|_| resampled_median(v, &mut rng, &mut buf))
        .collect();
    meds.sort_by(f64::total_cmp);
    Some(Estimate {
        n: v.len(),
        median: m,
        low: Some(quantile(&meds, 0.025)),
        high: Some(quantile(&meds, 0.975)),
    })
}

/// `a`'s median over `b`'s, with a 95 % interval from resampling each side on its own
/// (the runs of two designs are independent), and Welch's p on the run-level values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub ratio: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub welch_p: Option<f64>,
}

impl Ratio {
    /// A difference is claimed only when the interval excludes 1, Welch's test agrees at
    /// 5 %, and the change is at least the noise threshold: three ways to say "not noise".
    pub fn significant(&self) -> Option<bool> {
        let (low, high, p) = (self.low?, self.high?, self.welch_p?);
        Some((low > 1.0 || high < 1.0) && p < 0.05 && (self.ratio - 1.0).abs() >= NOISE)
    }
}

pub fn ratio(a: &[f64], b: &[f64]) -> Option<Ratio> {
    let (ma, mb) = (median(a)?, median(b)?);
    if mb == 0.0 {
        return None;
    }
    let mut r = Ratio {
        ratio: ma / mb,
        low: None,
        high: None,
        welch_p: welch_p(a, b),
    };
    if a.len() < 2 || b.len() < 2 {
        return Some(r);
    }
    let mut rng = SplitMix(SEED);
    let mut buf = Vec::with_capacity(a.len().max(b.len()));
    let mut ratios: Vec<f64> = (0..RESAMPLES)
        .map(|_| resampled_median(a, &mut rng, &mut buf) / resampled_median(b, &mut rng, &mut buf))
        .filter(|x| x.is_finite())
        .collect();
    ratios.sort_by(f64::total_cmp);
    if !ratios.is_empty() {
        r.low = Some(quantile(&ratios, 0.025));
        r.high = Some(quantile(&ratios, 0.975));
    }
    Some(r)
}

fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (
        m,
        v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
    )
}

/// Welch's two-sided p on the means; `None` below two runs a side.
pub fn welch_p(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (sa, sb) = (va / a.len() as f64, vb / b.len() as f64);
    if sa + sb == 0.0 {
        // No spread at all: the means either differ exactly or they do not.
        return Some(if ma == mb { 1.0 } else { 0.0 });
    }
    let t = (ma - mb) / (sa + sb).sqrt();
    let df = (sa + sb).powi(2)
        / (sa.powi(2) / (a.len() as f64 - 1.0) + sb.powi(2) / (b.len() as f64 - 1.0));
    Some(incomplete_beta(df / 2.0, 0.5, df / (df + t * t)))
}

/// Marks runs far from the median: |x − median| / MAD above hyperfine's threshold.
/// Flagged, never dropped. Below 5 runs the MAD rests on one or two deviations and
/// flags ordinary spread, so nothing is judged.
pub fn outliers(v: &[f64]) -> Vec<bool> {
    let (Some(m), true) = (median(v), v.len() >= 5) else {
        return vec![false; v.len()];
    };
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    let mad = median(&dev).unwrap_or(0.0);
    v.iter()
        .map(|x| {
            let d = (x - m).abs();
            // MAD 0 (half the runs tie, as rounded throughput at a fixed rate does): no
            // scale to judge by, so nothing is flagged.
            mad > 0.0 && d / mad > OUTLIER_Z
        })
        .collect()
}

fn ln_gamma(x: f64) -> f64 {
    // Lanczos (g = 7, n = 9), accurate to ~1e-15 for x > 0.
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let t = x + 7.5;
    let s: f64 = C[0]
        + C[1..]
            .iter()
            .enumerate()
            .map(|(i, c)| c / (x + i as f64 + 1.0))
            .sum::<f64>();
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + s.ln()
}

/// The regularised incomplete beta I_x(a, b), by Lentz's continued fraction.
fn incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front =
        (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(b, a, 1.0 - x);
    }
    let tiny = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    d = 1.0 / if d.abs() < tiny { tiny } else { d };
    let mut f = d;
    for m in 1..300 {
        let m = m as f64;
        for num in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + num * d;
            d = 1.0 / if d.abs() < tiny { tiny } else { d };
            c = 1.0 + num / c;
            if c.abs() < tiny {
                c = tiny;
            }
            f *= c * d;
        }
        if (c * d - 1.0).abs() < 1e-14 {
            break;
        }
    }
    front * f / a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_known_values() {
        // scipy.stats.ttest_ind(a, b, equal_var=False): t = -3.0937, p = 0.012089 (df 9.48)
        let a = [19.1, 20.3, 18.7, 21.0, 19.8, 20.5];
        let b = [21.2, 22.9, 20.8, 23.1, 21.7, 20.4];
        let p = welch_p(&a, &b).expect("p");
        assert!((p - 0.012089).abs() < 1e-5, "{p}");
        // Student's t with 1 df at t = 1 is a Cauchy: two-sided p = 0.5.
        assert!((incomplete_beta(0.5, 0.5, 0.5) - 0.5).abs() < 1e-12);
        assert_eq!(welch_p(&[1.0, 1.0], &[1.0, 1.0]), Some(1.0));
        assert_eq!(welch_p(&[1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn intervals_cover_the_median_and_are_reproducible() {
        let v = [10.0, 10.4, 9.8, 10.1, 10.3];
        let e = estimate(&v).expect("e");
        assert_eq!(e.median, 10.1);
        let (lo, hi) = (e.low.expect("lo"), e.high.expect("hi"));
        assert!(lo <= 10.1 && hi >= 10.1 && lo >= 9.8 && hi <= 10.4, "{e:?}");
        assert_eq!(estimate(&v), Some(e), "a fixed seed: the same interval");
        let one = estimate(&[3.0]).expect("one");
        assert_eq!((one.low, one.high), (None, None));
    }

    #[test]
    fn a_real_difference_is_significant_and_the_same_values_are_not() {
        let a = [10.0, 10.2, 9.9, 10.1, 10.05];
        let b = [12.0, 12.3, 11.8, 12.1, 12.2];
        let r = ratio(&b, &a).expect("r");
        assert!((r.ratio - 12.1 / 10.05).abs() < 1e-9);
        assert_eq!(r.significant(), Some(true), "{r:?}");
        let same = ratio(&a, &[10.1, 9.95, 10.0, 10.2, 10.05]).expect("same");
        assert_eq!(same.significant(), Some(false), "{same:?}");
        assert_eq!(ratio(&[1.0], &[2.0]).expect("single").significant(), None);
    }

    #[test]
    fn outliers_are_flagged_by_mad() {
        assert_eq!(
            outliers(&[10.0, 10.1, 9.9, 10.0, 30.0]),
            [false, false, false, false, true]
        );
        assert_eq!(outliers(&[10.0, 10.1, 9.9]), [false; 3]);
        assert_eq!(outliers(&[1.0, 5.0]), [false; 2], "too few to say");
    }
}
