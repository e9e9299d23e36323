//! Small statistics used by the device fit: least squares, R² and the positive-truncated
//! normal (rank statistics are [`crate::stats`]).
//!
//! Everything is plain `f64` over slices, checked against hand-computed values in tests.

use rand::Rng;

/// Solve `A x = b` for a symmetric positive (semi-)definite `A` (n x n, row-major) by
/// Gaussian elimination with partial pivoting. A tiny ridge (1e-12 x the largest diagonal
/// entry) keeps rank-deficient systems (an op no measured cell uses) solvable; such
/// coefficients come out 0.
pub fn solve_spd(a: &[f64], b: &[f64]) -> Vec<f64> {
    let n = b.len();
    let diag_max = (0..n).map(|i| a[i * n + i].abs()).fold(0.0, f64::max).max(1e-300);
    let mut m: Vec<f64> = a.to_vec();
    for i in 0..n {
        m[i * n + i] += 1e-12 * diag_max;
    }
    let mut x = b.to_vec();
    for col in 0..n {
        let piv = (col..n).max_by(|&i, &j| m[i * n + col].abs().total_cmp(&m[j * n + col].abs())).unwrap_or(col);
        if piv != col {
            for k in 0..n {
                m.swap(col * n + k, piv * n + k);
            }
            x.swap(col, piv);
        }
        let p = m[col * n + col];
        if p.abs() < 1e-300 {
            continue;
        }
        for r in col + 1..n {
            let f = m[r * n + col] / p;
            if f != 0.0 {
                for k in col..n {
                    m[r * n + k] -= f * m[col * n + k];
                }
                x[r] -= f * x[col];
            }
        }
    }
    for col in (0..n).rev() {
        let p = m[col * n + col];
        let s: f64 = (col + 1..n).map(|k| m[col * n + k] * x[k]).sum();
        x[col] = if p.abs() < 1e-300 { 0.0 } else { (x[col] - s) / p };
    }
    x
}

/// Coefficient of determination of `pred` against `y`.
pub fn r_squared(y: &[f64], pred: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len().max(1) as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(v, p)| (v - p).powi(2)).sum();
    if ss_tot == 0.0 {
        return 0.0;
    }
    1.0 - ss_res / ss_tot
}

/// A normal `N(mean, std^2)` truncated to `(0, inf)` (the distribution file's type);
/// sampled by [`GaussianExt::sample_positive`].
pub use simnas_formats::distribution::Gaussian;

/// Sampling a [`Gaussian`] (the fit, [`Gaussian::fit`], is the type's own).
pub trait GaussianExt {
    /// One sample from the positive-truncated normal. A zero std returns the mean (or the
    /// smallest positive double if the mean is not positive).
    ///
    /// Exact: plain rejection while the mean is at most two standard deviations below
    /// zero (acceptance >= 2.3%), else Robert's (1995) exponential-proposal rejection for
    /// the far tail. Never truncates at the mean: samples fall on both sides of it.
    fn sample_positive(&self, rng: &mut impl Rng) -> f64;
}

impl GaussianExt for Gaussian {
    fn sample_positive(&self, rng: &mut impl Rng) -> f64 {
        if self.std <= 0.0 || !self.std.is_finite() {
            return self.mean.max(f64::MIN_POSITIVE);
        }
        let a = -self.mean / self.std; // standardised lower bound
        let z = if a < 2.0 {
            loop {
                let z = standard_normal(rng);
                if z > a {
                    break z;
                }
            }
        } else {
            let alpha = (a + (a * a + 4.0).sqrt()) / 2.0;
            loop {
                let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
                let z = a - u.ln() / alpha;
                let accept = (-(z - alpha).powi(2) / 2.0).exp();
                if rng.random::<f64>() <= accept {
                    break z;
                }
            }
        };
        (self.mean + self.std * z).max(f64::MIN_POSITIVE)
    }
}

/// A standard normal draw.
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    rng.sample::<f64, _>(rand_distr::StandardNormal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn least_squares_recovers_a_line() {
        // y = 2 + 3x at x = 0..4: normal equations [[5,10],[10,30]] x = [40, 110].
        let x = solve_spd(&[5.0, 10.0, 10.0, 30.0], &[40.0, 110.0]);
        assert!((x[0] - 2.0).abs() < 1e-9 && (x[1] - 3.0).abs() < 1e-9, "{x:?}");
        // A column of zeros (unused op) gives a zero coefficient, not NaN.
        let x = solve_spd(&[5.0, 0.0, 0.0, 0.0], &[10.0, 0.0]);
        assert!((x[0] - 2.0).abs() < 1e-9 && x[1] == 0.0, "{x:?}");
    }

    #[test]
    fn r_squared_by_hand() {
        assert!((r_squared(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
        // ss_res = 2, ss_tot = 2: R² = 0.
        assert!(r_squared(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0]).abs() < 1e-12);
    }

    /// Mean of N(mu, s^2) truncated to x > 0: mu + s * phi(a) / (1 - Phi(a)), a = -mu/s.
    fn truncated_mean(mu: f64, s: f64, upper_tail: f64) -> f64 {
        let a = -mu / s;
        let phi = (-a * a / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
        mu + s * phi / upper_tail
    }

    #[test]
    fn truncated_samples_straddle_the_mean_and_match_the_analytic_mean() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        // mu = 1, s = 1: a = -1, 1 - Phi(-1) = 0.841345 (table value).
        let g = Gaussian { mean: 1.0, std: 1.0 };
        let xs: Vec<f64> = (0..40_000).map(|_| g.sample_positive(&mut rng)).collect();
        assert!(xs.iter().all(|&x| x > 0.0));
        let below = xs.iter().filter(|&&x| x < 1.0).count() as f64 / xs.len() as f64;
        // P(0 < X < 1) / P(X > 0) = (0.5 - 0.158655) / 0.841345 = 0.405713.
        assert!((below - 0.4057).abs() < 0.01, "{below}");
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let want = truncated_mean(1.0, 1.0, 0.841345); // 1.287600
        assert!((mean - want).abs() < 0.01, "{mean} vs {want}");
        // Far tail (mu = -3, s = 1): the exponential proposal. 1 - Phi(3) = 0.0013499.
        let g = Gaussian { mean: -3.0, std: 1.0 };
        let xs: Vec<f64> = (0..20_000).map(|_| g.sample_positive(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let want = truncated_mean(-3.0, 1.0, 0.0013499); // 0.283156
        assert!(xs.iter().all(|&x| x > 0.0));
        assert!((mean - want).abs() < 0.01, "{mean} vs {want}");
    }
}
