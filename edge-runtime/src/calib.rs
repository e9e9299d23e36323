//! The calibrated controller's latency model: a per-op lookup table with a meta-learned
//! Gaussian prior, updated by each probe (Bayesian linear regression), without an allocator.
//!
//! **Features** ([`features`]). A cell's latency is modelled as
//! `lat(h) = base + sum_op t_op * n_op(h) + sum_op u_op * m_op(h)` over the four non-`none`
//! ops, where `n_op` counts the edges holding `op` and `m_op` counts only the *live* ones
//! ([`Arch::live_edges`]: reachable from the input and reaching the output). Runtimes that run
//! every edge put their cost in `t`; runtimes that skip dead edges (as a deployment
//! runtime does, this crate's [`crate::Plan`] included) put it in `u`. The prior learns
//! which mixture real devices show.
//!
//! **Units.** Everything is normalised by the device's reference range
//! `scale = lat(all-conv3x3) - lat(all-skip)`, so one prior serves devices from 0.1 ms to
//! 100 ms: the prior is over `t / scale` and `u / scale` ([`Prior::mean`], [`Prior::cov`]);
//! `base` has a flat prior (it absorbs the network outside the cell).
//!
//! **Update** ([`Prior::posterior`]). With probes `(h_i, y_i / scale)` and noise standard
//! deviation [`Prior::noise`] (the model's misfit, in the same units), the posterior mean of
//! the coefficients is the solution of `(X^T X / s^2 + P) theta = X^T y / s^2 + P mu`, with
//! `P` the prior precision (`Cov^-1` on the op coefficients, ~0 on `base`). Without probes it
//! is the prior mean: the zero-shot ranking.
//!
//! The controller's search loop over this model is [`crate::search::calibrated`].

use simnas_shared::{Arch, Op};

/// Op coefficients: 4 ops counted on all edges, 4 on live edges.
pub const COEFS: usize = 8;
/// Features per cell: a constant, then the [`COEFS`] op counts.
pub const FEATURES: usize = COEFS + 1;

/// `[1, n_skip, n_conv1x1, n_conv3x3, n_pool, m_skip, m_conv1x1, m_conv3x3, m_pool]`.
pub fn features(a: &Arch) -> [f64; FEATURES] {
    let live = a.live_edges();
    let mut f = [0.0; FEATURES];
    f[0] = 1.0;
    for (e, &op) in a.ops.iter().enumerate() {
        if op != Op::None {
            let k = op as usize; // 1..=4
            f[k] += 1.0;
            if live[e] {
                f[4 + k] += 1.0;
            }
        }
    }
    f
}

/// `theta . features(a)`.
pub fn predict(theta: &[f64; FEATURES], a: &Arch) -> f64 {
    features(a).iter().zip(theta).map(|(f, t)| f * t).sum()
}

/// The meta-learned prior over a device's normalised op costs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prior {
    /// Prior mean of the op coefficients (units of the reference range).
    pub mean: [f64; COEFS],
    /// Prior covariance of the op coefficients (symmetric positive definite).
    pub cov: [[f64; COEFS]; COEFS],
    /// Standard deviation of a probe around the model (units of the reference range).
    pub noise: f64,
    /// The device's whole latency range is estimated as this factor times the range the
    /// [`Prior::range_rule`] measures.
    pub range_factor: f64,
    /// What the range factor multiplies.
    pub range_rule: RangeRule,
    /// After the references, measure [`DEAD_EDGE_CELL`]: whether the device pays for edges
    /// whose work cannot reach the output.
    pub dead_edge_probe: bool,
    /// The same, for the constrained objective.
    pub constrained_dead_edge_probe: bool,
    /// Optimism of the weighted search: a cell is ranked as if its latency were
    /// `explore` posterior standard deviations below the predicted one (0: the mean).
    pub explore: f64,
}

/// Three `nor_conv_3x3` edges into nodes that never reach the output, and one skip from the
/// input to the output: as fast as a skip-only cell on a runtime that prunes dead edges,
/// as slow as three convolutions on one that runs everything.
pub const DEAD_EDGE_CELL: Arch =
    Arch { ops: [Op::NorConv3x3, Op::NorConv3x3, Op::NorConv3x3, Op::SkipConnect, Op::None, Op::None] };

/// How the search estimates the device's whole latency range (which normalises latency in
/// the weighted objective).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeRule {
    /// The reference range `lat(all-conv3x3) - lat(all-skip)`, measured.
    Reference,
    /// The calibrated model's range: its slowest minus its fastest predicted cell.
    Model,
}

/// Predicted `(min, max)` over the whole space for coefficients `theta`.
pub fn predicted_range(theta: &[f64; FEATURES]) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for c in 0..simnas_shared::NUM_ARCHS as u16 {
        if let Some(code) = simnas_shared::ArchCode::new(c) {
            let p = predict(theta, &Arch::from_code(code));
            lo = lo.min(p);
            hi = hi.max(p);
        }
    }
    (lo, hi)
}

/// Why a prior or an update was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalibError {
    /// A non-finite number, a non-positive noise or range factor.
    NotFinite,
    /// The covariance (or the posterior system) is not positive definite.
    NotPositiveDefinite,
}

impl core::fmt::Display for CalibError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CalibError::NotFinite => f.write_str("prior has a non-finite value or a non-positive noise/range factor"),
            CalibError::NotPositiveDefinite => f.write_str("prior covariance is not positive definite"),
        }
    }
}

/// Precision of the flat prior on `base` (relative to the unit reference range).
const BASE_PRECISION: f64 = 1e-9;

impl Prior {
    /// A prior with independent coefficients of equal `variance` around `mean`, noise 0.05,
    /// the measured reference range (factor 1), no dead-edge probe and no optimism.
    pub fn isotropic(mean: [f64; COEFS], variance: f64) -> Prior {
        let mut cov = [[0.0; COEFS]; COEFS];
        for (i, row) in cov.iter_mut().enumerate() {
            row[i] = variance;
        }
        Prior {
            mean,
            cov,
            noise: 0.05,
            range_factor: 1.0,
            range_rule: RangeRule::Reference,
            dead_edge_probe: false,
            constrained_dead_edge_probe: false,
            explore: 0.0,
        }
    }

    /// Check every number, and that the covariance is positive definite.
    pub fn validate(&self) -> Result<(), CalibError> {
        let finite = self.mean.iter().chain(self.cov.iter().flatten()).all(|v| v.is_finite());
        if !(finite && self.noise.is_finite() && self.noise > 0.0) {
            return Err(CalibError::NotFinite);
        }
        if !(self.range_factor.is_finite() && self.range_factor > 0.0) {
            return Err(CalibError::NotFinite);
        }
        let mut c = self.cov;
        cholesky(&mut c).ok_or(CalibError::NotPositiveDefinite)?;
        Ok(())
    }

    /// Posterior mean of `[base, coefficients]` in normalised units, given probes
    /// `(cell, latency / scale)`. The prior mean (with `base = 0`) when `probes` is empty.
    pub fn posterior<I: IntoIterator<Item = (Arch, f64)>>(&self, probes: I) -> Result<[f64; FEATURES], CalibError> {
        self.posterior_full(probes).map(|p| p.theta)
    }

    /// The posterior: its mean and the Cholesky factor of its precision, for predictive
    /// variances ([`Posterior::variance`]).
    pub fn posterior_full<I: IntoIterator<Item = (Arch, f64)>>(&self, probes: I) -> Result<Posterior, CalibError> {
        self.posterior_with(&self.precision()?, probes)
    }

    /// The prior precision of the coefficients and precision times mean (computed once per
    /// search: a board pays for the inversion once).
    pub fn precision(&self) -> Result<Precision, CalibError> {
        let mut p = self.cov;
        let l = cholesky(&mut p).ok_or(CalibError::NotPositiveDefinite)?;
        let mut prec = [[0.0; COEFS]; COEFS];
        for j in 0..COEFS {
            let mut e = [0.0; COEFS];
            e[j] = 1.0;
            let col = cholesky_solve(&l, &e);
            for i in 0..COEFS {
                prec[i][j] = col[i];
            }
        }
        let mut pmu = [0.0; COEFS];
        for i in 0..COEFS {
            for j in 0..COEFS {
                pmu[i] += prec[i][j] * self.mean[j];
            }
        }
        Ok(Precision { prec, pmu })
    }

    /// [`Prior::posterior_full`] with the precision of [`Prior::precision`]; `probes` are
    /// `(cell, latency)` in the units wanted.
    pub fn posterior_with<I: IntoIterator<Item = (Arch, f64)>>(
        &self,
        p: &Precision,
        probes: I,
    ) -> Result<Posterior, CalibError> {
        let mut sums = Sums::new();
        for (arch, y) in probes {
            sums.add(&arch, y);
        }
        self.posterior_from_sums(p, &sums, 0.0, 1.0)
    }
}

/// Running sums of the probes' normal equations, in raw units: `sum x x^T`, `sum x ms` and
/// `sum x` over probes `(x = features(cell), ms)`. A search adds each probe once; the
/// posterior in any units `y = (ms - lo) / (hi - lo)` follows without revisiting them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sums {
    xx: [[f64; FEATURES]; FEATURES],
    xr: [f64; FEATURES],
    x: [f64; FEATURES],
}

impl Default for Sums {
    fn default() -> Self {
        Sums::new()
    }
}

impl Sums {
    /// No probes.
    pub const fn new() -> Sums {
        Sums { xx: [[0.0; FEATURES]; FEATURES], xr: [0.0; FEATURES], x: [0.0; FEATURES] }
    }

    /// Add a probe of `a` measured at `ms`.
    pub fn add(&mut self, a: &Arch, ms: f64) {
        let f = features(a);
        for i in 0..FEATURES {
            self.x[i] += f[i];
            self.xr[i] += f[i] * ms;
            for j in 0..FEATURES {
                self.xx[i][j] += f[i] * f[j];
            }
        }
    }
}

impl Prior {
    /// The posterior from running [`Sums`], the probes' latencies read in the units
    /// `y = (ms - lo) / (hi - lo)` (`lo = 0, hi = 1` keeps them raw). The same system as
    /// [`Prior::posterior_with`], assembled in constant time.
    pub fn posterior_from_sums(&self, p: &Precision, sums: &Sums, lo: f64, hi: f64) -> Result<Posterior, CalibError> {
        let mut a = [[0.0; FEATURES]; FEATURES];
        let mut b = [0.0; FEATURES];
        a[0][0] = BASE_PRECISION;
        for i in 0..COEFS {
            for j in 0..COEFS {
                a[i + 1][j + 1] = p.prec[i][j];
            }
            b[i + 1] = p.pmu[i];
        }
        let w = 1.0 / (self.noise * self.noise);
        let scale = 1.0 / (hi - lo);
        for i in 0..FEATURES {
            b[i] += w * (sums.xr[i] - lo * sums.x[i]) * scale;
            for j in 0..FEATURES {
                a[i][j] += w * sums.xx[i][j];
            }
        }
        let l = cholesky(&mut a).ok_or(CalibError::NotPositiveDefinite)?;
        let theta = cholesky_solve(&l, &b);
        if theta.iter().all(|v| v.is_finite()) {
            Ok(Posterior { theta, l })
        } else {
            Err(CalibError::NotFinite)
        }
    }
}

/// The prior's precision matrix and precision times mean.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Precision {
    /// `Cov^-1`.
    pub prec: [[f64; COEFS]; COEFS],
    /// `Cov^-1 mean`.
    pub pmu: [f64; COEFS],
}

/// A posterior over `[base, coefficients]` (normalised units).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Posterior {
    /// The posterior mean.
    pub theta: [f64; FEATURES],
    /// Cholesky factor of the posterior precision.
    pub l: [[f64; FEATURES]; FEATURES],
}

impl Posterior {
    /// Posterior variance of the model's latency of `a` (normalised units squared, noise
    /// excluded): `x^T A^-1 x = |L^-1 x|^2`.
    pub fn variance(&self, a: &Arch) -> f64 {
        let x = features(a);
        let mut z = [0.0; FEATURES];
        let mut sum = 0.0;
        for i in 0..FEATURES {
            let mut s = x[i];
            for k in 0..i {
                s -= self.l[i][k] * z[k];
            }
            z[i] = s / self.l[i][i];
            sum += z[i] * z[i];
        }
        sum
    }
}

/// In-place Cholesky factor (lower triangle) of a symmetric positive definite matrix;
/// `None` if it is not.
pub fn cholesky<const N: usize>(m: &mut [[f64; N]; N]) -> Option<[[f64; N]; N]> {
    let mut l = [[0.0; N]; N];
    for i in 0..N {
        for j in 0..=i {
            let mut s = m[i][j];
            for k in 0..j {
                s -= l[i][k] * l[j][k];
            }
            if i == j {
                if s.is_nan() || s <= 0.0 || s.is_infinite() {
                    return None;
                }
                l[i][i] = sqrt(s);
            } else {
                l[i][j] = s / l[j][j];
            }
        }
    }
    *m = l;
    Some(l)
}

/// Square root of a positive finite `x` without std: Newton's iteration from the
/// bit-level halving of the exponent (six steps reach f64 rounding from its few-percent
/// start).
pub(crate) fn sqrt(x: f64) -> f64 {
    let mut y = f64::from_bits((x.to_bits() >> 1) + 0x1ff8_0000_0000_0000);
    for _ in 0..6 {
        y = 0.5 * (y + x / y);
    }
    y
}

/// Solve `L L^T x = b` for a Cholesky factor `L`.
pub fn cholesky_solve<const N: usize>(l: &[[f64; N]; N], b: &[f64; N]) -> [f64; N] {
    let mut y = [0.0; N];
    for i in 0..N {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i][k] * y[k];
        }
        y[i] = s / l[i][i];
    }
    let mut x = [0.0; N];
    for i in (0..N).rev() {
        let mut s = y[i];
        for k in i + 1..N {
            s -= l[k][i] * x[k];
        }
        x[i] = s / l[i][i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arch(s: &str) -> Arch {
        s.parse().unwrap()
    }

    #[test]
    fn live_edges_follow_the_graph() {
        // Only 0->3 is connected: every other non-none edge is dead.
        let a = arch("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|");
        assert_eq!(a.live_edges(), [false, false, false, true, false, false]);
        let f = features(&a);
        assert_eq!(f, [1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        let all = Arch::uniform(Op::NorConv3x3);
        assert_eq!(features(&all), [1.0, 0.0, 0.0, 6.0, 0.0, 0.0, 0.0, 6.0, 0.0]);
    }

    fn prior() -> Prior {
        Prior { range_factor: 1.3, ..Prior::isotropic([0.02, 0.05, 0.15, 0.03, 0.0, 0.0, 0.0, 0.0], 0.01) }
    }

    #[test]
    fn the_dead_edge_cell_is_what_it_says() {
        assert_eq!(DEAD_EDGE_CELL.live_edges(), [false, false, false, true, false, false]);
        assert_eq!(features(&DEAD_EDGE_CELL), [1.0, 1.0, 0.0, 3.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn no_probes_gives_the_prior_mean() {
        let t = prior().posterior(core::iter::empty()).unwrap();
        assert!(t[0].abs() < 1e-12);
        for i in 0..COEFS {
            assert!((t[i + 1] - prior().mean[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn many_exact_probes_recover_the_true_model() {
        let truth = [0.7, 0.01, 0.2, 0.4, 0.05, 0.03, 0.0, 0.1, 0.0];
        let mut p = prior();
        p.noise = 1e-4;
        let probes = (0..15625u16).step_by(97).map(|c| {
            let a = Arch::from_code(simnas_shared::ArchCode::new(c).unwrap());
            (a, predict(&truth, &a))
        });
        let t = p.posterior(probes).unwrap();
        for i in 0..FEATURES {
            assert!((t[i] - truth[i]).abs() < 1e-3, "{i}: {} vs {}", t[i], truth[i]);
        }
    }

    #[test]
    fn sqrt_matches_std() {
        for x in [1e-12, 0.003, 0.5, 1.0, 2.0, 7.5, 1234.5, 9.9e9] {
            let r = sqrt(x);
            assert!((r - x.sqrt()).abs() <= 4.0 * f64::EPSILON * x.sqrt(), "{x}: {r}");
        }
    }

    #[test]
    fn variance_shrinks_where_probed() {
        let p = prior();
        let a = Arch::uniform(Op::NorConv3x3);
        let none = p.posterior_full(core::iter::empty()).unwrap();
        let some = p.posterior_full([(a, 1.0), (Arch::uniform(Op::SkipConnect), 0.0)]).unwrap();
        assert!(some.variance(&a) < 0.1 * none.variance(&a), "{} vs {}", some.variance(&a), none.variance(&a));
        assert!(some.variance(&a) > 0.0);
    }

    #[test]
    fn sums_give_the_posterior_of_the_probes() {
        let p = prior();
        let prec = p.precision().unwrap();
        let probes: [(Arch, f64); 4] = [
            (Arch::uniform(Op::SkipConnect), 3.0),
            (Arch::uniform(Op::NorConv3x3), 9.0),
            (arch("|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"), 4.5),
            (arch("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|none~2|"), 6.0),
        ];
        let mut sums = Sums::new();
        for (a, ms) in probes {
            sums.add(&a, ms);
        }
        let (lo, hi) = (3.0, 9.0);
        let direct = p.posterior_with(&prec, probes.iter().map(|&(a, ms)| (a, (ms - lo) / (hi - lo)))).unwrap();
        let summed = p.posterior_from_sums(&prec, &sums, lo, hi).unwrap();
        for i in 0..FEATURES {
            assert!((direct.theta[i] - summed.theta[i]).abs() < 1e-9, "{i}");
        }
    }

    #[test]
    fn bad_priors_are_refused() {
        let mut p = prior();
        p.cov[0][0] = -1.0;
        assert_eq!(p.validate(), Err(CalibError::NotPositiveDefinite));
        let mut p = prior();
        p.noise = 0.0;
        assert_eq!(p.validate(), Err(CalibError::NotFinite));
        let mut p = prior();
        p.mean[3] = f64::NAN;
        assert_eq!(p.validate(), Err(CalibError::NotFinite));
        assert!(prior().validate().is_ok());
    }
}
