//! The `runtime` preset: synthetic devices that cover the runtimes the training tables show.
//!
//! Each training device is described by a [`RuntimeFit`] (fitted on its table alone):
//! * a per-(edge, op) LUT over its *executed networks* (cells without dead edges), divided
//!   by its all-`nor_conv_3x3` latency, with negative entries kept: an op cheaper than
//!   `none` (a runtime where a `none` edge materialises a zero tensor and a skip does not) is
//!   a negative cost relative to `none`;
//! * the fraction of a dead edge's cost the runtime pays ([`RuntimeFit::dead_cost`]): 0 for a
//!   runtime that prunes work that cannot reach the output, 1 for one that runs everything;
//! * the spread of its executed networks around the LUT (robust log-residual sd: the op
//!   interactions an additive table cannot express), the fraction of *outlier* cells far
//!   outside that spread and their log-ratios;
//! * its latency quantum (1 ms when every value is a whole number of milliseconds, as on
//!   phones timed with a millisecond clock) and its scale `hi_ms`.
//!
//! A draw ([`RuntimeGenerator::sample`]) takes one training runtime at random, jitters every
//! LUT entry and the fixed cost, keeps its dead-edge behaviour, draws per-cell noise at a
//! jittered spread, makes a fraction of cells outliers (magnitudes drawn from that runtime's
//! own outliers), and rounds to its quantum at a jittered scale.

use super::lut::{fit, LutKind};
use super::stats::standard_normal;
use super::{median, SyntheticDevice};
use crate::latency::LatencyTable;
use rand::Rng;
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// A cell is an outlier when its log-ratio to the LUT is beyond this many robust sd (and
/// beyond [`OUTLIER_MIN_LOG`]).
pub const OUTLIER_Z: f64 = 4.0;
/// Smallest log-ratio counted as an outlier (10%), so an almost exact table has none.
pub const OUTLIER_MIN_LOG: f64 = 0.1;
/// Log-ratios kept per device (evenly spaced order statistics of its outliers).
pub const OUTLIERS_KEPT: usize = 32;
/// Log-normal jitter of each LUT entry and of the fixed cost of a draw.
pub const LUT_JITTER: f64 = 0.25;
/// Log-normal jitter of a draw's noise spread, outlier fraction and scale.
pub const SPREAD_JITTER: f64 = 0.5;

/// One training device's runtime (see the module docs; the distribution file's type).
pub use simnas_formats::distribution::RuntimeFit;

/// Fitting a [`RuntimeFit`] on a measured table.
pub trait RuntimeFitExt: Sized {
    /// Fit `table`; `None` when it has too few executed networks or a non-positive scale.
    /// Outliers are cells beyond [`OUTLIER_Z`] robust sd (and [`OUTLIER_MIN_LOG`]); at most
    /// [`OUTLIERS_KEPT`] of their log-ratios are kept.
    fn fit(name: &str, family: &str, table: &LatencyTable) -> Option<Self>;
}

impl RuntimeFitExt for RuntimeFit {
    fn fit(name: &str, family: &str, table: &LatencyTable) -> Option<RuntimeFit> {
        let executed: Vec<Option<f64>> =
            ArchCode::all().map(|c| if Arch::from_code(c).is_executed() { table.get_code(c) } else { None }).collect();
        let exec_table = LatencyTable::from_codes(format!("{name} (executed networks)"), executed)?;
        if exec_table.measured() < 100 {
            return None;
        }
        let ms = fit(&exec_table, LutKind::PerEdgeOp).lut;
        let hi_ms = ms.hi();
        if !(hi_ms.is_finite() && hi_ms > 0.0) {
            return None;
        }
        let lut = ms.scaled(hi_ms);
        // Dead edges: measured minus the executed network's LUT latency, against what the
        // dead edges would add if they ran.
        let (mut xy, mut xx) = (0.0, 0.0);
        for c in ArchCode::all() {
            let a = Arch::from_code(c);
            if a.is_executed() || !a.is_connected() {
                continue;
            }
            let Some(y) = table.get_code(c) else { continue };
            let x = ms.latency(a) - ms.latency(a.executed());
            xy += x * (y - ms.latency(a.executed()));
            xx += x * x;
        }
        let dead_cost = if xx > 0.0 { (xy / xx).clamp(0.0, 1.5) } else { 0.0 };
        let mut logs: Vec<f64> = ArchCode::all()
            .filter_map(|c| {
                let y = exec_table.get_code(c)?;
                let p = ms.latency(Arch::from_code(c));
                (y > 0.0 && p > 0.0).then(|| (y / p).ln())
            })
            .collect();
        let centre = median(&mut logs.clone());
        let mut dev: Vec<f64> = logs.iter().map(|l| (l - centre).abs()).collect();
        let sigma = 1.4826 * median(&mut dev);
        let cut = (OUTLIER_Z * sigma).max(OUTLIER_MIN_LOG);
        logs.retain(|l| (l - centre).abs() > cut);
        logs.sort_by(f64::total_cmp);
        let n_exec = exec_table.measured().max(1);
        let outlier_fraction = logs.len() as f64 / n_exec as f64;
        let outliers = spaced(&logs, OUTLIERS_KEPT);
        Some(RuntimeFit {
            name: name.into(),
            family: family.into(),
            lut,
            dead_cost,
            sigma,
            outlier_fraction,
            outliers,
            quantum_ms: quantum(table),
            hi_ms,
        })
    }
}

/// At most `k` evenly spaced order statistics of sorted `xs` (all of them when fewer).
fn spaced(xs: &[f64], k: usize) -> Vec<f64> {
    if xs.len() <= k {
        return xs.to_vec();
    }
    (0..k).map(|i| xs[i * (xs.len() - 1) / (k - 1)]).collect()
}

/// 1.0 when every measured value is a whole number of milliseconds, else 0.
fn quantum(table: &LatencyTable) -> f64 {
    let mut n = 0;
    let whole = table.values().iter().flatten().all(|&v| {
        n += 1;
        (v - v.round()).abs() < 1e-9
    });
    if whole && n > 0 {
        1.0
    } else {
        0.0
    }
}

/// Draws devices around a set of training runtimes.
#[derive(Clone, Debug)]
pub struct RuntimeGenerator<'a> {
    fits: &'a [RuntimeFit],
}

impl<'a> RuntimeGenerator<'a> {
    /// A generator over `fits` (`None` when empty).
    pub fn new(fits: &'a [RuntimeFit]) -> Option<RuntimeGenerator<'a>> {
        if fits.is_empty() {
            return None;
        }
        Some(RuntimeGenerator { fits })
    }

    /// One device: latency of every cell (indexed by [`ArchCode`]) in units of its own
    /// all-`nor_conv_3x3` LUT latency.
    pub fn sample(&self, rng: &mut impl Rng) -> SyntheticDevice {
        let f = &self.fits[rng.random_range(0..self.fits.len())];
        let jitter = |rng: &mut _, s: f64| (s * standard_normal(rng)).exp();
        let mut lut = f.lut.clone();
        lut.base *= jitter(rng, LUT_JITTER);
        for v in lut.t.iter_mut().flat_map(|r| r[1..].iter_mut()) {
            *v *= jitter(rng, LUT_JITTER);
        }
        let sigma = f.sigma * jitter(rng, SPREAD_JITTER);
        let outlier_p = (f.outlier_fraction * jitter(rng, SPREAD_JITTER)).min(0.5);
        let scale_ms = f.hi_ms * jitter(rng, SPREAD_JITTER);
        let mut latency = Vec::with_capacity(NUM_ARCHS);
        for c in ArchCode::all() {
            let a = Arch::from_code(c);
            let run = lut.latency(a.executed());
            let dead = lut.latency(a) - lut.latency(a.executed());
            let mut v = (run + f.dead_cost * dead).max(1e-6) * (sigma * standard_normal(rng)).exp();
            if !f.outliers.is_empty() && rng.random::<f64>() < outlier_p {
                v *= f.outliers[rng.random_range(0..f.outliers.len())].exp();
            }
            if f.quantum_ms > 0.0 {
                let q = f.quantum_ms / scale_ms;
                v = (v / q).round().max(1.0) * q;
            }
            latency.push(v);
        }
        SyntheticDevice { lut, latency }
    }
}
