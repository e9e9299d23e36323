//! The fast scoring path: NASWOT and LogSynflow on this crate's own CPU kernels, equal to
//! the candle references up to floating-point rounding (tested), fast enough to score the
//! whole space on two cores within the hour.
//!
//! * [`naswot`]: batched `f32` forward with batch-statistics BN and bit-packed ReLU codes;
//! * [`synflow`]: batch-1 `f64` forward and backward of the linearised network;
//! * [`meco`]: MeCo, the NASWOT forward on one image, read at every cell output;
//! * [`kernels`], [`kernels64`]: the kernels, each tested against a naive loop or finite
//!   differences; `simd` holds the CPU-specific code (the crate's only `unsafe`);
//! * [`weights`]: the scored network's weights, read from the candle model.

pub mod kernels;
pub mod kernels64;
pub mod meco;
pub mod naswot;
mod simd;
pub mod synflow;
pub mod weights;
pub mod winograd;

pub use meco::FastMeco;
pub use naswot::{FastNaswot, Workspace};
pub use synflow::{FastSynflow, SynflowWorkspace};
pub use weights::NetWeights;

use super::skip::skip_score;
use super::{Metrics, Result, ScoreSettings};
use candle_core::DType;
use simnas_shared::Arch;

/// Every metric on the fast path.
#[derive(Debug)]
pub struct Scorer {
    naswot: FastNaswot,
    synflow: FastSynflow,
    meco: FastMeco,
}

/// Per-thread buffers of a [`Scorer`].
#[derive(Debug)]
pub struct ScorerWorkspace {
    naswot: Workspace,
    synflow: SynflowWorkspace,
    meco: Workspace,
}

impl Scorer {
    /// Initialise every network of `settings` (a fraction of a second).
    pub fn new(settings: ScoreSettings) -> Result<Scorer> {
        settings.validate()?;
        let weights = (0..settings.inits)
            .map(|i| NetWeights::<f32>::from_seed(&settings, i, DType::F32))
            .collect::<Result<Vec<_>>>()?;
        Ok(Scorer {
            meco: FastMeco::new(settings, weights.clone())?,
            naswot: FastNaswot::new(settings, weights)?,
            synflow: FastSynflow::new(settings)?,
        })
    }

    /// The settings.
    pub fn settings(&self) -> &ScoreSettings {
        self.naswot.settings()
    }

    /// Buffers for one thread (about 36 MB for CIFAR-10 at batch 64).
    pub fn workspace(&self) -> ScorerWorkspace {
        ScorerWorkspace {
            naswot: self.naswot.workspace(),
            synflow: self.synflow.workspace(),
            meco: self.meco.workspace(),
        }
    }

    /// The metrics of `arch`.
    pub fn score(&self, arch: &Arch, ws: &mut ScorerWorkspace) -> Result<Metrics> {
        Ok(Metrics {
            naswot: self.naswot.score(arch, &mut ws.naswot)?,
            logsynflow: self.synflow.score(arch, &mut ws.synflow)?,
            skip: skip_score(arch),
            meco: self.meco.score(arch, &mut ws.meco)?,
        })
    }

    /// MeCo only.
    pub fn meco(&self, arch: &Arch, ws: &mut ScorerWorkspace) -> Result<f64> {
        self.meco.score(arch, &mut ws.meco)
    }

    /// NASWOT only.
    pub fn naswot(&self, arch: &Arch, ws: &mut ScorerWorkspace) -> Result<Option<f64>> {
        self.naswot.score(arch, &mut ws.naswot)
    }

    /// LogSynflow only.
    pub fn logsynflow(&self, arch: &Arch, ws: &mut ScorerWorkspace) -> Result<f64> {
        self.synflow.score(arch, &mut ws.synflow)
    }
}

#[cfg(test)]
mod tests;
