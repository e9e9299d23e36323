//! Synthetic devices: a distribution of latency lookup tables fitted to real devices, from
//! which training draws a fresh device at every episode.
//!
//! **Fit.** Every benchmark device column ([`crate::latency::registry`]) gets a per-op and a
//! per-(edge, op) LUT by least squares ([`lut`]). The distribution is fitted on the TRAIN
//! devices only: per entry (base and each op cost), the empirical mean and standard
//! deviation over devices.
//!
//! **Scale.** Devices span 0.5 ms to 250 ms, so LUTs are fitted in a scale-free form: each
//! device's LUT is divided by its own all-`nor_conv_3x3` latency (`hi`), so the heaviest
//! reference cell costs 1 on every device. The controller only ever sees
//! `l = (lat - lat(lo)) / (lat(hi) - lat(lo))`, which is invariant to the device's scale, so
//! nothing is lost; fitted in ms instead, the Gaussians would be dominated by the slowest
//! phones and most samples would be truncated (preset [`SynthPreset::PaperMs`], kept to
//! measure that: see the coverage report).
//!
//! **Presets** ([`SynthPreset`]): the paper's plain per-op Gaussian LUT, per-(edge, op)
//! Gaussians, the same with per-cell multiplicative noise (log-normal, sigma = the mean
//! median residual spread of real training devices around their own per-edge LUT: the interactions an
//! additive LUT cannot express), and devices sampled around a random real training device.
//! Costs are drawn from the positive-truncated normal ([`stats::Gaussian`]).
//!
//! The file's types are [`simnas_formats::distribution`]'s (re-exported here); the fit,
//! reading with the host's size cap and sampling are this module's extension traits
//! ([`DeviceDistributionExt`], [`LutGaussiansExt`], [`stats::GaussianExt`],
//! [`runtime::RuntimeFitExt`]).

pub mod coverage;
pub mod lut;
pub mod runtime;
pub mod stats;

use crate::data::NatsMap;
use crate::latency::registry::{BenchDevice, Split, DEVICES};
use crate::latency::{InvalidPolicy, LatencyError, LatencyTable};
use lut::{fit, Lut, LutKind};
use rand::Rng;
use runtime::RuntimeFitExt;
use simnas_shared::{ArchCode, NUM_ARCHS, NUM_EDGES, NUM_OPS};
use stats::{standard_normal, Gaussian, GaussianExt};
use std::path::Path;

/// The distribution file's types ([`simnas_formats::distribution`]), with their version.
pub use simnas_formats::distribution::{
    DeviceDistribution, DeviceRecord, DistributionError, LutGaussians, Quality, FORMAT_VERSION,
};

/// Spread of the per-entry jitter of [`SynthPreset::Around`] (log-normal sigma).
pub const AROUND_JITTER: f64 = 0.25;

/// How synthetic devices are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SynthPreset {
    /// The paper: one Gaussian per op (and the base) over hi-normalised training LUTs.
    #[default]
    Paper,
    /// The paper's per-op Gaussians fitted on LUTs in ms (for comparison only).
    PaperMs,
    /// One Gaussian per (edge, op), hi-normalised.
    Edge,
    /// Per-(edge, op) Gaussians and per-cell log-normal noise.
    EdgeNoise,
    /// A random training device's per-edge LUT, each entry jittered, plus per-cell noise.
    Around,
    /// A random training device's *runtime* ([`runtime`]): its executed-network LUT with
    /// negative entries kept (`none` not free), its dead-edge cost (pruned or run), its
    /// noise spread, outlier cells and millisecond quantum, each jittered.
    Runtime,
}

impl SynthPreset {
    /// Every preset, in declaration order (the coverage report's columns).
    pub const ALL: [SynthPreset; 6] = [
        SynthPreset::Paper,
        SynthPreset::PaperMs,
        SynthPreset::Edge,
        SynthPreset::EdgeNoise,
        SynthPreset::Around,
        SynthPreset::Runtime,
    ];
}

/// Sampling [`LutGaussians`] (the fit and the mean LUT are the type's own).
pub trait LutGaussiansExt {
    /// A LUT with every entry drawn from its positive-truncated Gaussian.
    fn sample(&self, rng: &mut impl Rng) -> Lut;
}

impl LutGaussiansExt for LutGaussians {
    fn sample(&self, rng: &mut impl Rng) -> Lut {
        let mut t = [[0.0; NUM_OPS]; NUM_EDGES];
        for (e, row) in t.iter_mut().enumerate() {
            for (o, v) in row.iter_mut().enumerate().skip(1) {
                *v = self.t[e][o].sample_positive(rng);
            }
        }
        Lut { base: self.base.sample_positive(rng), t }
    }
}

/// Errors fitting or reading the distribution.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A benchmark table could not be read.
    #[error(transparent)]
    Latency(#[from] LatencyError),
    /// The distribution file could not be read or written.
    #[error("{path}: {msg}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        msg: String,
    },
    /// A distribution file of another format version.
    #[error("{path} has format version {got}; this build reads version {FORMAT_VERSION}")]
    Version {
        /// The file.
        path: String,
        /// Its version.
        got: u32,
    },
}

/// Load every registry device's table from `dir` (non-positive values skipped, see
/// [`InvalidPolicy::Skip`]).
pub fn load_devices(dir: &Path, map: &NatsMap) -> Result<Vec<(&'static BenchDevice, LatencyTable)>, SynthError> {
    DEVICES
        .iter()
        .map(|d| Ok((d, LatencyTable::load(&d.path(dir), d.column, Some(map), InvalidPolicy::Skip)?)))
        .collect()
}

/// Fitting, reading and sampling a [`DeviceDistribution`] (the host's side of the file).
pub trait DeviceDistributionExt: Sized {
    /// Fit LUTs for every device and the Gaussians over the training devices.
    fn fit(tables: &[(&'static BenchDevice, LatencyTable)], command: String) -> Self;

    /// Read a distribution file.
    fn load(path: &Path) -> Result<Self, SynthError>;

    /// The committed distribution (`artifacts/devices/distribution.json`), built in.
    fn embedded() -> Self;

    /// Draw one synthetic device.
    fn sample(&self, preset: SynthPreset, rng: &mut impl Rng) -> SyntheticDevice;
}

impl DeviceDistributionExt for DeviceDistribution {
    fn fit(tables: &[(&'static BenchDevice, LatencyTable)], command: String) -> DeviceDistribution {
        let mut records = Vec::new();
        let (mut op_norm, mut op_ms, mut edge_norm, mut sigmas) = (vec![], vec![], vec![], vec![]);
        let mut runtimes = vec![];
        for (dev, table) in tables {
            let op = fit(table, LutKind::PerOp);
            let edge = fit(table, LutKind::PerEdgeOp);
            let resid: Vec<f64> = ArchCode::all()
                .filter_map(|c| {
                    let real = table.get_code(c)?;
                    let pred = edge.lut.latency(simnas_shared::Arch::from_code(c));
                    (pred > 0.0).then(|| (real / pred).ln())
                })
                .collect();
            let log_residual_std = Gaussian::fit(&resid).std;
            let hi_ms = edge.lut.hi();
            let lut_norm = edge.lut.scaled(hi_ms);
            if dev.split == Split::Train {
                op_norm.push(op.lut.scaled(op.lut.hi()));
                op_ms.push(op.lut.clone());
                edge_norm.push(lut_norm.clone());
                sigmas.push(log_residual_std);
                runtimes.extend(runtime::RuntimeFit::fit(dev.name, dev.family, table));
            }
            records.push(DeviceRecord {
                name: dev.name.into(),
                family: dev.family.into(),
                split: dev.split,
                cells: table.measured(),
                skipped: table.skipped(),
                per_op: Quality { r2: op.r2, spearman: op.spearman },
                per_edge_op: Quality { r2: edge.r2, spearman: edge.spearman },
                log_residual_std,
                hi_ms,
                lut_norm: (dev.split == Split::Train).then_some(lut_norm),
            });
        }
        let names = |s: Split| records.iter().filter(|r| r.split == s).map(|r| r.name.clone()).collect();
        DeviceDistribution {
            format_version: FORMAT_VERSION,
            command,
            normalisation: "each device's LUT divided by its own all-nor_conv_3x3 latency (hi)".into(),
            train: names(Split::Train),
            validation: names(Split::Validation),
            per_op: LutGaussians::fit(&op_norm),
            per_op_ms: LutGaussians::fit(&op_ms),
            per_edge_op: LutGaussians::fit(&edge_norm),
            noise_sigma: median(&mut sigmas),
            devices: records,
            runtimes,
        }
    }

    fn load(path: &Path) -> Result<DeviceDistribution, SynthError> {
        let p = path.display().to_string();
        let bytes = crate::data::read_capped(path, crate::data::MAX_READ_BYTES)
            .map_err(|e| SynthError::File { path: p.clone(), msg: e.to_string() })?;
        DeviceDistribution::from_slice(&bytes).map_err(|e| match e {
            DistributionError::Version { found } => SynthError::Version { path: p, got: found },
            e => SynthError::File { path: p, msg: e.to_string() },
        })
    }

    fn embedded() -> DeviceDistribution {
        DeviceDistribution::from_json(include_str!("../../../artifacts/devices/distribution.json"))
            .expect("the committed distribution parses (checked by a test)")
    }

    fn sample(&self, preset: SynthPreset, rng: &mut impl Rng) -> SyntheticDevice {
        let (lut, sigma) = match preset {
            SynthPreset::Paper => (self.per_op.sample(rng), 0.0),
            SynthPreset::PaperMs => (self.per_op_ms.sample(rng), 0.0),
            SynthPreset::Edge => (self.per_edge_op.sample(rng), 0.0),
            SynthPreset::EdgeNoise => (self.per_edge_op.sample(rng), self.noise_sigma),
            SynthPreset::Around => {
                let luts = self.train_luts();
                let mut lut = luts[rng.random_range(0..luts.len())].clone();
                lut.base *= (AROUND_JITTER * standard_normal(rng)).exp();
                for v in lut.t.iter_mut().flat_map(|r| r[1..].iter_mut()) {
                    *v = v.max(0.0) * (AROUND_JITTER * standard_normal(rng)).exp();
                }
                (lut, self.noise_sigma)
            }
            SynthPreset::Runtime => match runtime::RuntimeGenerator::new(&self.runtimes) {
                Some(g) => return g.sample(rng),
                None => (self.per_edge_op.sample(rng), self.noise_sigma),
            },
        };
        SyntheticDevice::new(lut, sigma, rng)
    }
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => 0.0,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// A drawn device: its LUT and its latency for every cell (LUT times per-cell noise).
#[derive(Clone, Debug)]
pub struct SyntheticDevice {
    /// The drawn LUT.
    pub lut: Lut,
    /// Latency of every cell, indexed by [`ArchCode`].
    pub latency: Vec<f64>,
}

impl SyntheticDevice {
    /// Materialise `lut` with per-cell log-normal noise of spread `sigma`.
    pub fn new(lut: Lut, sigma: f64, rng: &mut impl Rng) -> SyntheticDevice {
        let mut latency = lut.table();
        if sigma > 0.0 {
            for v in &mut latency {
                *v *= (sigma * standard_normal(rng)).exp();
            }
        }
        debug_assert_eq!(latency.len(), NUM_ARCHS);
        SyntheticDevice { lut, latency }
    }
}

#[cfg(test)]
mod tests;
