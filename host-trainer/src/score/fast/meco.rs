//! MeCo on the fast forward pass: the NASWOT forward ([`super::naswot`]) run on one image,
//! reading each cell output as it is computed ([`FastNaswot::kernel_observed`]); the
//! per-map value is [`crate::score::meco::map_value`], as in the candle reference.

use super::naswot::{FastNaswot, Workspace};
use super::weights::NetWeights;
use crate::score::meco::map_value;
use crate::score::{Result, ScoreError, ScoreSettings};
use simnas_shared::Arch;

/// The fast MeCo scorer: the network of every initialisation, run on one image.
#[derive(Debug)]
pub struct FastMeco {
    net: FastNaswot,
}

impl FastMeco {
    /// Build from `weights` (one per initialisation, see [`NetWeights::from_seed`]); the
    /// image is the first of `settings`' synthetic input drawn at batch 1.
    pub fn new(settings: ScoreSettings, weights: Vec<NetWeights>) -> Result<FastMeco> {
        settings.validate()?;
        Ok(FastMeco { net: FastNaswot::build(ScoreSettings { batch: 1, ..settings }, weights)? })
    }

    /// Buffers for one thread (one image: small).
    pub fn workspace(&self) -> Workspace {
        self.net.workspace()
    }

    /// Mean over the initialisations of the sum of [`map_value`] over the cell outputs (a
    /// cell output that is all zero scores 0).
    pub fn score(&self, arch: &Arch, ws: &mut Workspace) -> Result<f64> {
        let inits = self.net.settings().inits;
        let mut total = 0.0;
        for init in 0..inits {
            self.net.kernel_observed(arch, init, ws, &mut |map, side, c, zero| {
                if !zero {
                    // NHWC with one image: position p, channel ch at p * c + ch.
                    total += map_value(side * side, c, |p, ch| f64::from(map[p * c + ch]))
                        .ok_or_else(|| ScoreError::Settings("MeCo of a non-finite feature map".into()))?;
                }
                Ok(())
            })?;
        }
        Ok(total / inits as f64)
    }
}
