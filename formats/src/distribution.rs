//! The fitted synthetic-device distribution (`artifacts/devices/distribution.json`, written
//! by `simnas devices fit`): per-entry Gaussians over the training devices' latency lookup
//! tables, every device's fit, and the training devices' runtimes.
//!
//! The types and the computations that need nothing but the search space live here; the
//! fit itself and the sampling (which need the benchmark tables and a random source) are
//! the host's (`host_trainer::synth`).

use serde::{Deserialize, Serialize};
use simnas_shared::{Arch, ArchCode, Op, NUM_EDGES, NUM_OPS};

/// Version of the distribution file format.
pub const FORMAT_VERSION: u32 = 2;

/// Which side of the split a device is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Fitted on.
    Train,
    /// Never fitted or tuned on; reported only.
    Validation,
}

/// A latency lookup table: `latency(h) = base + sum_e t[e][op_e]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lut {
    /// Cost of the macro network around the cells.
    pub base: f64,
    /// `t[edge][op]`, `t[e][none] = 0`.
    pub t: [[f64; NUM_OPS]; NUM_EDGES],
}

impl Lut {
    /// Predicted latency of `arch`.
    /// (edge-runtime's formula, the one a board's prior uses.)
    pub fn latency(&self, arch: Arch) -> f64 {
        self.search_lut().latency(arch)
    }

    /// The same table as edge-runtime's search LUT.
    pub fn search_lut(&self) -> edge_runtime::search::Lut {
        edge_runtime::search::Lut { base: self.base, t: self.t }
    }

    /// Predicted latency of every cell, indexed by [`ArchCode`].
    pub fn table(&self) -> Vec<f64> {
        ArchCode::all().map(|c| self.latency(Arch::from_code(c))).collect()
    }

    /// The same LUT with every entry divided by `s`.
    pub fn scaled(&self, s: f64) -> Lut {
        let mut t = self.t;
        t.iter_mut().flatten().for_each(|v| *v /= s);
        Lut { base: self.base / s, t }
    }

    /// The LUT's latency of the all-`nor_conv_3x3` cell (the heaviest reference cell).
    pub fn hi(&self) -> f64 {
        self.latency(Arch::uniform(Op::NorConv3x3))
    }

    /// Per-op costs averaged over edges (the per-op view of a per-edge LUT).
    pub fn per_op(&self) -> [f64; NUM_OPS] {
        let mut m = [0.0; NUM_OPS];
        for (o, slot) in m.iter_mut().enumerate() {
            *slot = self.t.iter().map(|row| row[o]).sum::<f64>() / NUM_EDGES as f64;
        }
        m
    }
}

/// A normal `N(mean, std^2)` truncated to `(0, inf)`.
///
/// Sampled exactly (by the host): plain rejection while the mean is at most two standard
/// deviations below zero (acceptance >= 2.3%), else Robert's (1995) exponential-proposal
/// rejection for the far tail. Never truncates at the mean: samples fall on both sides of it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gaussian {
    /// Mean of the untruncated normal.
    pub mean: f64,
    /// Standard deviation of the untruncated normal.
    pub std: f64,
}

impl Gaussian {
    /// Empirical mean and (population) standard deviation of `xs`.
    pub fn fit(xs: &[f64]) -> Gaussian {
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        Gaussian { mean, std: var.sqrt() }
    }
}

/// Gaussians over the entries of a LUT.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LutGaussians {
    /// The base.
    pub base: Gaussian,
    /// `t[edge][op]` (`none` entries are `N(0, 0)` and never sampled).
    pub t: [[Gaussian; NUM_OPS]; NUM_EDGES],
}

impl LutGaussians {
    /// Per-coefficient Gaussians over `luts`.
    pub fn fit(luts: &[Lut]) -> LutGaussians {
        let base = Gaussian::fit(&luts.iter().map(|l| l.base).collect::<Vec<_>>());
        let mut t = [[Gaussian { mean: 0.0, std: 0.0 }; NUM_OPS]; NUM_EDGES];
        for (e, row) in t.iter_mut().enumerate() {
            for (o, g) in row.iter_mut().enumerate().skip(1) {
                *g = Gaussian::fit(&luts.iter().map(|l| l.t[e][o]).collect::<Vec<_>>());
            }
        }
        LutGaussians { base, t }
    }

    /// The mean LUT (the zero-shot prior of the training devices).
    pub fn mean(&self) -> Lut {
        let mut t = [[0.0; NUM_OPS]; NUM_EDGES];
        for (e, row) in t.iter_mut().enumerate() {
            for (o, v) in row.iter_mut().enumerate() {
                *v = self.t[e][o].mean;
            }
        }
        Lut { base: self.base.mean, t }
    }
}

/// A fitted device, as recorded in the distribution file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Registry name.
    pub name: String,
    /// Hardware family.
    pub family: String,
    /// Train or validation.
    pub split: Split,
    /// Measured cells used in the fit.
    pub cells: usize,
    /// Non-positive entries skipped.
    pub skipped: usize,
    /// Per-op fit quality.
    pub per_op: Quality,
    /// Per-(edge, op) fit quality.
    pub per_edge_op: Quality,
    /// Log-residual spread around the per-edge LUT (std of `ln(real / lut)`).
    pub log_residual_std: f64,
    /// All-`nor_conv_3x3` latency of the per-edge LUT, ms (the normaliser).
    pub hi_ms: f64,
    /// Per-edge LUT divided by `hi_ms` (train devices only: the host's `around` preset
    /// draws around them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lut_norm: Option<Lut>,
}

/// R² and rank correlation of a LUT against the measurements.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Quality {
    /// Coefficient of determination.
    pub r2: f64,
    /// Spearman's rho.
    pub spearman: f64,
}

/// One training device's runtime (the host's `runtime` preset draws around these). Units:
/// the device's own LUT all-`nor_conv_3x3` latency (`hi_ms`), except the quantum and the
/// scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RuntimeFit {
    /// Registry name.
    pub name: String,
    /// Hardware family.
    pub family: String,
    /// Per-(edge, op) LUT of the executed networks, divided by `hi_ms`.
    pub lut: Lut,
    /// Fraction of a dead edge's LUT cost the runtime pays (least squares over the cells
    /// with dead edges, clamped to [0, 1.5]; 0 when the table has none).
    pub dead_cost: f64,
    /// Robust standard deviation of `ln(measured / LUT)` over the executed networks
    /// (1.4826 x the median absolute deviation).
    pub sigma: f64,
    /// Fraction of executed networks that are outliers (log-ratio to the LUT beyond a
    /// number of robust sd).
    pub outlier_fraction: f64,
    /// Their log-ratios to the LUT (a bounded number, evenly spaced in order).
    pub outliers: Vec<f64>,
    /// Latency quantum in ms (0: none found).
    pub quantum_ms: f64,
    /// The LUT's all-`nor_conv_3x3` latency, ms.
    pub hi_ms: f64,
}

/// The fitted synthetic-device distribution (the `artifacts/devices/distribution.json` file).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeviceDistribution {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The command that wrote the file.
    pub command: String,
    /// How LUTs were made scale-free before fitting.
    pub normalisation: String,
    /// Train device names.
    pub train: Vec<String>,
    /// Validation device names (never fitted on).
    pub validation: Vec<String>,
    /// Per-op Gaussians (every edge equal), hi-normalised.
    pub per_op: LutGaussians,
    /// Per-op Gaussians in ms.
    pub per_op_ms: LutGaussians,
    /// Per-(edge, op) Gaussians, hi-normalised.
    pub per_edge_op: LutGaussians,
    /// Per-cell log-normal noise sigma: median over train devices of their log-residual std
    /// (the median, so one badly additive device does not set the noise for all).
    pub noise_sigma: f64,
    /// Every device's fit.
    pub devices: Vec<DeviceRecord>,
    /// The training devices' runtimes.
    pub runtimes: Vec<RuntimeFit>,
}

/// Why a distribution file cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DistributionError {
    /// Not JSON, or not a distribution.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Written by another version of the format (0: the file has none).
    #[error("format version {found}; this build reads version {FORMAT_VERSION}")]
    Version {
        /// The file's version.
        found: u32,
    },
}

impl DeviceDistribution {
    /// Parse a distribution file's text, checking its format version before anything else.
    pub fn from_json(text: &str) -> Result<DeviceDistribution, DistributionError> {
        Self::from_json_value(serde_json::from_str(text)?)
    }

    /// The same from bytes (UTF-8 JSON).
    pub fn from_slice(bytes: &[u8]) -> Result<DeviceDistribution, DistributionError> {
        Self::from_json_value(serde_json::from_slice(bytes)?)
    }

    fn from_json_value(v: serde_json::Value) -> Result<DeviceDistribution, DistributionError> {
        let found = v.get("format_version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if found != u64::from(FORMAT_VERSION) {
            return Err(DistributionError::Version { found: u32::try_from(found).unwrap_or(u32::MAX) });
        }
        Ok(serde_json::from_value(v)?)
    }

    /// Training devices' normalised per-edge LUTs.
    pub fn train_luts(&self) -> Vec<&Lut> {
        self.devices.iter().filter(|d| d.split == Split::Train).filter_map(|d| d.lut_norm.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lut(base: f64) -> Lut {
        Lut { base, t: [[0.0, 0.1, 0.5, 1.0, 0.3]; NUM_EDGES] }
    }

    fn dist() -> DeviceDistribution {
        let g = LutGaussians::fit(&[lut(1.0), lut(3.0)]);
        DeviceDistribution {
            format_version: FORMAT_VERSION,
            command: "simnas devices fit".into(),
            normalisation: "none".into(),
            train: vec!["a".into()],
            validation: vec![],
            per_op: g.clone(),
            per_op_ms: g.clone(),
            per_edge_op: g,
            noise_sigma: 0.1,
            devices: vec![DeviceRecord {
                name: "a".into(),
                family: "f".into(),
                split: Split::Train,
                cells: 10,
                skipped: 0,
                per_op: Quality { r2: 1.0, spearman: 1.0 },
                per_edge_op: Quality { r2: 1.0, spearman: 1.0 },
                log_residual_std: 0.0,
                hi_ms: 7.0,
                lut_norm: Some(lut(1.0)),
            }],
            runtimes: vec![],
        }
    }

    #[test]
    fn a_lut_predicts_base_plus_edge_costs() {
        let l = lut(2.0);
        assert_eq!(l.hi(), 2.0 + 6.0 * 1.0);
        assert_eq!(l.latency(Arch::uniform(Op::None)), 2.0);
        assert_eq!(l.scaled(2.0).hi(), 4.0);
        for (got, want) in l.per_op().iter().zip([0.0, 0.1, 0.5, 1.0, 0.3]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(l.table().len(), simnas_shared::NUM_ARCHS);
    }

    #[test]
    fn gaussians_fit_and_their_mean_lut() {
        let g = LutGaussians::fit(&[lut(1.0), lut(3.0)]);
        assert_eq!(g.base, Gaussian { mean: 2.0, std: 1.0 });
        assert_eq!(g.t[4][3], Gaussian { mean: 1.0, std: 0.0 });
        assert_eq!(g.mean(), lut(2.0));
    }

    #[test]
    fn a_distribution_reads_back_and_other_versions_are_refused() {
        let text = serde_json::to_string(&dist()).unwrap();
        let back = DeviceDistribution::from_json(&text).unwrap();
        assert_eq!(back.train_luts(), vec![&lut(1.0)]);
        assert!(text.contains("\"split\":\"train\""), "{text}");
        let old = text.replace("\"format_version\":2", "\"format_version\":1");
        assert!(matches!(DeviceDistribution::from_json(&old), Err(DistributionError::Version { found: 1 })));
        assert!(matches!(
            DeviceDistribution::from_slice(b"{\"format_version\": 99}"),
            Err(DistributionError::Version { found: 99 })
        ));
        assert!(matches!(DeviceDistribution::from_json("{}"), Err(DistributionError::Version { found: 0 })));
        assert!(matches!(DeviceDistribution::from_json("not json"), Err(DistributionError::Json(_))));
        let truncated = text.replace("\"noise_sigma\":0.1,", "");
        assert!(matches!(DeviceDistribution::from_json(&truncated), Err(DistributionError::Json(_))));
    }
}
