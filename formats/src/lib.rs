//! The artifact file formats: serde types with a format version, in one place the host
//! (which writes and reads them) and the firmware's build script (which embeds them) both
//! depend on.
//!
//! * [`PriorFile`]: the calibrated controller's prior (`artifacts/controller/prior.json`,
//!   written by `simnas prior`), with the leave-one-family-out selection that chose it.
//! * [`distribution`]: the fitted synthetic-device distribution
//!   (`artifacts/devices/distribution.json`, written by `simnas devices fit`).
//! * [`score_table`]: the score table's JSON sidecar (`artifacts/scores/*_scores.json`,
//!   written by `simnas score --all`).
//! * [`search`]: the record of a search (`simnas search --json`), of one device or a pool.

#![warn(missing_docs)]

pub mod distribution;
pub mod score_table;
pub mod search;

pub use distribution::{DeviceDistribution, DistributionError};
pub use score_table::{Sidecar, SidecarError};

use edge_runtime::calib::{Prior, RangeRule, COEFS};

/// Prior file format version.
pub const FORMAT_VERSION: u32 = 1;

/// One grid point of `select`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct GridPoint {
    /// Noise level tried.
    pub noise: f64,
    /// Range factor tried.
    pub range_factor: f64,
    /// Range rule tried.
    #[serde(with = "rule_name")]
    pub range_rule: RangeRule,
    /// Dead-edge probe tried.
    pub dead_edge_probe: bool,
    /// Mean over the training devices of `F(pick) / F(oracle)` at the selection budget probes.
    pub mean: f64,
    /// The worst training device.
    pub worst: f64,
}

/// The constrained objective on one setting of the dead-edge probe: mean over training
/// devices and limits (their 10th, 25th and 50th latency percentiles) of
/// `TF(pick) / TF(best feasible cell)` (0 without a feasible pick).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ConstrainedPoint {
    /// Dead-edge probe tried.
    pub dead_edge_probe: bool,
    /// The mean TF ratio.
    pub mean: f64,
    /// Fraction of feasible picks.
    pub feasible: f64,
}

/// One row of `by_budget`: a strategy at one budget over the training devices, each
/// searched with what the devices of *other* families give it (w = 0.5).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct BudgetRow {
    /// The strategy's CLI name.
    pub strategy: String,
    /// Probes.
    pub budget: usize,
    /// Mean over the training devices of `F(pick) / F(oracle)`.
    pub mean: f64,
    /// The worst training device.
    pub worst: f64,
    /// Its name.
    pub worst_device: String,
}

/// One point of `select_explore`.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct ExplorePoint {
    /// Optimism tried.
    pub explore: f64,
    /// Mean over the training devices of `F(pick) / F(oracle)`.
    pub mean: f64,
    /// The worst training device.
    pub worst: f64,
}

/// The prior file: the fitted prior, where it came from, and the selection grid.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PriorFile {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The command that produced it.
    pub command: String,
    /// Feature order of `mean` and `cov`.
    pub features: Vec<String>,
    /// Prior mean.
    pub mean: Vec<f64>,
    /// Prior covariance.
    pub cov: Vec<Vec<f64>>,
    /// Probe noise (units of the reference range).
    pub noise: f64,
    /// Range factor.
    pub range_factor: f64,
    /// Range rule: `reference` or `model`.
    #[serde(with = "rule_name")]
    pub range_rule: RangeRule,
    /// Measure the dead-edge cell after the references.
    pub dead_edge_probe: bool,
    /// The same, for the constrained objective.
    pub constrained_dead_edge_probe: bool,
    /// Training devices fitted on.
    pub devices: Vec<String>,
    /// The selection grid (leave-one-family-out on the training devices).
    pub grid: Vec<GridPoint>,
    /// The constrained objective's selection.
    pub constrained_grid: Vec<ConstrainedPoint>,
    /// Optimism of the weighted search.
    pub explore: f64,
    /// Its selection.
    pub explore_grid: Vec<ExplorePoint>,
    /// The chosen setting against the LUT baselines at several budgets (`by_budget`).
    #[serde(default)]
    pub by_budget: Vec<BudgetRow>,
}

/// Names of [`PriorFile::features`].
pub const FEATURE_NAMES: [&str; COEFS] = [
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
    "live_skip_connect",
    "live_nor_conv_1x1",
    "live_nor_conv_3x3",
    "live_avg_pool_3x3",
];

/// Why a prior file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriorFileError {
    /// Written by another version of the format.
    #[error("format version {found} (this build reads version {FORMAT_VERSION}); refit it with `simnas prior`")]
    Version {
        /// The file's version.
        found: u32,
    },
    /// Fitted on other latency features.
    #[error("features {found:?}, expected {FEATURE_NAMES:?}")]
    Features {
        /// The file's feature names.
        found: Vec<String>,
    },
    /// The mean or covariance has the wrong shape.
    #[error("mean and cov must be {COEFS} and {COEFS}x{COEFS}")]
    Shape,
    /// The numbers are not a usable prior.
    #[error("{0}")]
    Invalid(edge_runtime::calib::CalibError),
}

impl PriorFile {
    /// The file of `prior`.
    pub fn new(
        prior: &Prior,
        command: String,
        devices: Vec<String>,
        grid: Vec<GridPoint>,
        constrained_grid: Vec<ConstrainedPoint>,
        explore_grid: Vec<ExplorePoint>,
        by_budget: Vec<BudgetRow>,
    ) -> PriorFile {
        PriorFile {
            format_version: FORMAT_VERSION,
            command,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            mean: prior.mean.to_vec(),
            cov: prior.cov.iter().map(|r| r.to_vec()).collect(),
            noise: prior.noise,
            range_factor: prior.range_factor,
            range_rule: prior.range_rule,
            dead_edge_probe: prior.dead_edge_probe,
            constrained_dead_edge_probe: prior.constrained_dead_edge_probe,
            devices,
            grid,
            constrained_grid,
            explore: prior.explore,
            explore_grid,
            by_budget,
        }
    }

    /// The prior, validated.
    pub fn prior(&self) -> Result<Prior, PriorFileError> {
        if self.format_version != FORMAT_VERSION {
            return Err(PriorFileError::Version { found: self.format_version });
        }
        if self.features != FEATURE_NAMES {
            return Err(PriorFileError::Features { found: self.features.clone() });
        }
        if self.mean.len() != COEFS || self.cov.len() != COEFS || self.cov.iter().any(|r| r.len() != COEFS) {
            return Err(PriorFileError::Shape);
        }
        let mut p = Prior {
            mean: [0.0; COEFS],
            cov: [[0.0; COEFS]; COEFS],
            noise: self.noise,
            range_factor: 0.0,
            range_rule: self.range_rule,
            dead_edge_probe: self.dead_edge_probe,
            constrained_dead_edge_probe: self.constrained_dead_edge_probe,
            explore: self.explore,
        };
        p.mean.copy_from_slice(&self.mean);
        for (i, r) in self.cov.iter().enumerate() {
            p.cov[i].copy_from_slice(r);
        }
        p.range_factor = self.range_factor;
        p.validate().map_err(PriorFileError::Invalid)?;
        Ok(p)
    }
}

/// `RangeRule` as `"reference"` / `"model"` in JSON.
mod rule_name {
    use edge_runtime::calib::RangeRule;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(r: &RangeRule, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match r {
            RangeRule::Reference => "reference",
            RangeRule::Model => "model",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RangeRule, D::Error> {
        match String::deserialize(d)?.as_str() {
            "reference" => Ok(RangeRule::Reference),
            "model" => Ok(RangeRule::Model),
            other => {
                Err(serde::de::Error::custom(format!("range_rule {other:?}: expected \"reference\" or \"model\"")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> PriorFile {
        let prior = Prior::isotropic([0.0, 0.05, 0.2, 0.03, 0.0, 0.0, 0.0, 0.0], 0.01);
        PriorFile::new(&prior, "simnas prior".into(), vec!["a".into()], vec![], vec![], vec![], vec![])
    }

    #[test]
    fn a_prior_file_reads_back_as_its_prior() {
        let f = file();
        let text = serde_json::to_string(&f).unwrap();
        let back: PriorFile = serde_json::from_str(&text).unwrap();
        assert_eq!(back.prior().unwrap(), f.prior().unwrap());
        assert!(text.contains("\"range_rule\":\"reference\""), "{text}");
    }

    #[test]
    fn other_versions_features_and_shapes_are_refused() {
        let mut f = file();
        f.format_version = 2;
        assert!(matches!(f.prior(), Err(PriorFileError::Version { found: 2 })));
        let mut f = file();
        f.features.pop();
        assert!(matches!(f.prior(), Err(PriorFileError::Features { .. })));
        let mut f = file();
        f.cov[3].pop();
        assert!(matches!(f.prior(), Err(PriorFileError::Shape)));
        let mut f = file();
        f.noise = -1.0;
        assert!(matches!(f.prior(), Err(PriorFileError::Invalid(_))));
        let text = serde_json::to_string(&file()).unwrap().replace("\"reference\"", "\"sideways\"");
        assert!(serde_json::from_str::<PriorFile>(&text).unwrap_err().to_string().contains("sideways"));
    }
}
