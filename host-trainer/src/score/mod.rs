//! Training-free architecture scores (FreeREA): NASWOT, LogSynflow and SkipScore, the
//! whole-space score table, its quantised form for the board, and the correlation report.
//!
//! Every metric is computed on the NB201 macro network of [`crate::nb201`] (faithful,
//! unpruned) at initialisation; nothing is trained and no accuracy is ever read.
//!
//! * [`naswot`]: NASWOT (Mellor et al. 2021). A batch of `B` synthetic inputs goes forward
//!   with batch-statistics BN; every ReLU's binary pattern (`output > 0`) is collected, and
//!   the kernel `K = C C^T + (1 - C)(1 - C)^T` over the batch (i.e. `K_ij` = number of units
//!   where inputs `i` and `j` agree) gives `log|det K|`. Mean over `inits` Kaiming
//!   initialisations. The candle implementation there is the reference.
//! * [`logsynflow`]: LogSynflow (Cavagnero et al. 2023, after SynFlow). BN disabled,
//!   parameters replaced by their absolute values, an all-ones input of batch 1 in `f64`,
//!   `R = sum(logits)`, backward; score `sum |theta * ln(dR/dtheta + 1)|` over conv and linear
//!   weights. Mean over the same initialisations. Candle reference there too.
//! * [`skip`]: SkipScore, the mean number of nodes each `skip_connect` jumps over.
//! * [`fast`]: the same NASWOT and LogSynflow computed on this crate's own batched CPU
//!   kernels (what scores the whole space); tested equal to the references.
//! * [`table`]: the score table (CSV + sidecar JSON), resumable writing, [`ScoreTable`] and
//!   `TF(h)`; [`quant`]: the `u16` table the board embeds.
//! * [`report`]: rank correlations with benchmark accuracies, markdown and a scatter plot.
//!
//! ## Inputs and initialisations (the whole method is fixed by [`ScoreSettings`])
//! The NASWOT batch is synthetic and data-agnostic: `B x 3 x R x R` values, each an
//! independent standard normal `N(0, 1)` (Box-Muller on a SplitMix64 stream seeded by
//! [`ScoreSettings::input_seed`]), the same batch for every cell. Initialisation `i` is
//! Kaiming-normal with `mode = fan_out` (as FreeREA's reference code; [`Fan::Out`]) seeded
//! by [`ScoreSettings::init_seed`]`(i)`, BN `gamma = 1, beta = 0`; NASWOT and LogSynflow use
//! the same initialisations (LogSynflow on their absolute values, in `f64`).
//!
//! ## Degenerate cells
//! A cell whose output is disconnected from its input (every path crosses a `none`, 341
//! cells) computes a constant function; its kernel is degenerate and NASWOT is undefined.
//! These cells (and any kernel singular to working precision) get `naswot = None` here; the
//! table stores the floor, the minimum NASWOT over all other cells of the space (recorded
//! in the sidecar), so every stored value is finite.

use crate::nb201::{Fan, Nb201Error};
use edge_runtime::rng::SplitMix64;
use edge_runtime::NetConfig;
pub use table::{ScoreRow, ScoreTable, TableError};

pub mod fast;
pub mod linalg;
pub mod logsynflow;
pub mod naswot;
pub mod quant;
pub mod report;
pub mod skip;
pub mod stats;
pub mod table;

/// Kaiming mode of every scoring initialisation.
pub const INIT_FAN: Fan = Fan::Out;

/// Default seed of the shipped table.
pub const DEFAULT_SEED: u64 = 0;
/// NASWOT batch size (FreeREA, NASWOT: 64).
pub const DEFAULT_BATCH: usize = 64;
/// Initialisations averaged per metric (FreeREA: 3).
pub const DEFAULT_INITS: usize = 3;

/// What can go wrong computing scores.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    /// The candle model failed.
    #[error(transparent)]
    Model(#[from] Nb201Error),
    /// A candle tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Settings that cannot score anything.
    #[error("invalid scoring settings: {0}")]
    Settings(String),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, ScoreError>;

/// Everything that fixes a score: network, seed, batch size and number of initialisations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScoreSettings {
    /// The macro network (CIFAR-10: C=16, N=5, 32x32, 10 classes).
    pub net: NetConfig,
    /// Master seed; the input batch and each initialisation get their own stream.
    pub seed: u64,
    /// NASWOT batch size `B` (>= 2).
    pub batch: usize,
    /// Initialisations averaged (>= 1).
    pub inits: usize,
}

impl Default for ScoreSettings {
    fn default() -> Self {
        ScoreSettings { net: NetConfig::CIFAR10, seed: DEFAULT_SEED, batch: DEFAULT_BATCH, inits: DEFAULT_INITS }
    }
}

impl ScoreSettings {
    /// Check the settings can produce a score.
    pub fn validate(&self) -> Result<()> {
        self.net.validate().map_err(|e| ScoreError::Settings(e.to_string()))?;
        if !(2..=1024).contains(&self.batch) {
            return Err(ScoreError::Settings(format!("batch {} outside 2..=1024", self.batch)));
        }
        if !(1..=64).contains(&self.inits) {
            return Err(ScoreError::Settings(format!("inits {} outside 1..=64", self.inits)));
        }
        Ok(())
    }

    /// Seed of the synthetic input batch.
    pub fn input_seed(&self) -> u64 {
        derive_seed(self.seed, 0)
    }

    /// Seed of initialisation `i`.
    pub fn init_seed(&self, i: usize) -> u64 {
        derive_seed(self.seed, 1 + i as u64)
    }

    /// The synthetic NASWOT batch, NCHW `[batch, 3, R, R]` flattened: i.i.d. `N(0, 1)`.
    pub fn input_batch(&self) -> Vec<f32> {
        let n = self.batch * edge_runtime::layout::IN_CHANNELS * self.net.resolution * self.net.resolution;
        let mut rng = SplitMix64::new(self.input_seed());
        (0..n).map(|_| standard_normal(&mut rng) as f32).collect()
    }
}

/// Independent stream `stream` of `seed`.
fn derive_seed(seed: u64, stream: u64) -> u64 {
    SplitMix64::new(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)).next_u64()
}

/// A standard normal from two uniforms (Box-Muller, cosine branch).
fn standard_normal(rng: &mut SplitMix64) -> f64 {
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64; // (0, 1]
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The three metrics of one cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metrics {
    /// Mean `log|det K|`; `None` for a degenerate (disconnected) cell, see the module docs.
    pub naswot: Option<f64>,
    /// Mean LogSynflow.
    pub logsynflow: f64,
    /// SkipScore.
    pub skip: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_batch_is_seeded_standard_normal() {
        let s = ScoreSettings::default();
        let x = s.input_batch();
        assert_eq!(x.len(), 64 * 3 * 32 * 32);
        assert_eq!(x, s.input_batch());
        let other = ScoreSettings { seed: 1, ..s }.input_batch();
        assert_ne!(x, other);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        // 196,608 draws: the sample mean is within ~4.5 sigma (0.01) of 0, the variance of 1.
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
        // Streams differ between the input and the initialisations.
        assert_ne!(s.input_seed(), s.init_seed(0));
        assert_ne!(s.init_seed(0), s.init_seed(1));
    }

    #[test]
    fn settings_are_validated() {
        let s = ScoreSettings::default();
        assert!(s.validate().is_ok());
        assert!(ScoreSettings { batch: 1, ..s }.validate().is_err());
        assert!(ScoreSettings { inits: 0, ..s }.validate().is_err());
        assert!(ScoreSettings { net: NetConfig { resolution: 30, ..s.net }, ..s }.validate().is_err());
    }
}
