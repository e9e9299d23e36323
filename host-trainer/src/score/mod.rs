//! Training-free architecture scores (FreeREA): NASWOT, LogSynflow and SkipScore, the
//! whole-space score table, its quantised form for the board, and the correlation report.
//!
//! Every metric is computed on the NB201 macro network of [`crate::nb201`] (faithful,
//! unpruned) at initialisation; nothing is trained and no accuracy is ever read. Computing
//! them ([`naswot`], [`logsynflow`], [`fast`]) needs the `train` feature (candle); the
//! table, its quantised form and the report do not.
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
//! The NASWOT batch is synthetic and data-agnostic, the same batch for every cell, drawn
//! from a SplitMix64 stream seeded by [`ScoreSettings::input_seed`] (Box-Muller normals).
//! By default ([`InputKind::Pink`]) each of its `B x 3` planes (`R x R`) is a Gaussian random
//! field with a `1 / f^2` power spectrum, the classic second-order model of natural images,
//! standardised to mean 0 and variance 1 per channel over the batch; [`InputKind::Gaussian`]
//! (every value i.i.d. `N(0, 1)`) is the alternative. FreeREA feeds a real CIFAR batch;
//! between these two synthetic stand-ins, pink noise gave NASWOT a Spearman rho of 0.788
//! against CIFAR-10 accuracy on a 600-cell sample and white noise 0.749 (the only two
//! tried). Initialisation `i` is
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

#[cfg(feature = "train")]
use crate::nb201::{Fan, Nb201Error};
use edge_runtime::rng::SplitMix64;
use edge_runtime::NetConfig;
pub use table::{ScoreRow, ScoreTable, TableError};

#[cfg(feature = "train")]
pub mod fast;
pub mod linalg;
#[cfg(feature = "train")]
pub mod logsynflow;
pub mod meco;
#[cfg(feature = "train")]
pub mod naswot;
pub mod quant;
pub mod report;
pub mod skip;
pub mod table;

/// Kaiming mode of every scoring initialisation.
#[cfg(feature = "train")]
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
    #[cfg(feature = "train")]
    #[error(transparent)]
    Model(#[from] Nb201Error),
    /// A candle tensor operation failed.
    #[cfg(feature = "train")]
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
    /// Distribution of the synthetic NASWOT batch.
    pub input: InputKind,
}

/// The synthetic NASWOT batch's distribution (the sidecar's type).
pub use simnas_formats::score_table::InputKind;

impl Default for ScoreSettings {
    fn default() -> Self {
        ScoreSettings {
            net: NetConfig::CIFAR10,
            seed: DEFAULT_SEED,
            batch: DEFAULT_BATCH,
            inits: DEFAULT_INITS,
            input: InputKind::Pink,
        }
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

    /// The synthetic NASWOT batch, NCHW `[batch, 3, R, R]` flattened (see [`InputKind`]).
    pub fn input_batch(&self) -> Vec<f32> {
        let (c, r) = (edge_runtime::layout::IN_CHANNELS, self.net.resolution);
        let n = self.batch * c * r * r;
        let mut rng = SplitMix64::new(self.input_seed());
        match self.input {
            InputKind::Gaussian => (0..n).map(|_| standard_normal(&mut rng) as f32).collect(),
            InputKind::Pink => pink_batch(&mut rng, self.batch, c, r),
        }
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

/// `batch x c` planes of `r x r` Gaussian fields with power `1 / f^2` (`f` the radial
/// frequency on the periodic `r x r` grid; the mean, `f = 0`, is left out), each channel
/// then standardised over the batch. Synthesis: `x = sum_k a_k cos(theta_k) + b_k sin(theta_k)`,
/// `a_k, b_k ~ N(0, 1/f_k^2)`, evaluated separably with cosine/sine tables.
fn pink_batch(rng: &mut SplitMix64, batch: usize, c: usize, r: usize) -> Vec<f32> {
    let tau = std::f64::consts::TAU;
    let cs: Vec<f64> = (0..r * r).map(|i| (tau * ((i / r) * (i % r)) as f64 / r as f64).cos()).collect();
    let sn: Vec<f64> = (0..r * r).map(|i| (tau * ((i / r) * (i % r)) as f64 / r as f64).sin()).collect();
    let fold = |k: usize| k.min(r - k) as f64;
    let mut out = vec![0f64; batch * c * r * r];
    let (mut a, mut b) = (vec![0f64; r * r], vec![0f64; r * r]);
    let (mut t1, mut t2, mut t3, mut t4) = (vec![0f64; r * r], vec![0f64; r * r], vec![0f64; r * r], vec![0f64; r * r]);
    for plane in out.chunks_exact_mut(r * r) {
        for ky in 0..r {
            for kx in 0..r {
                let f = (fold(ky).powi(2) + fold(kx).powi(2)).sqrt();
                let amp = if f > 0.0 { 1.0 / f } else { 0.0 };
                a[ky * r + kx] = amp * standard_normal(rng);
                b[ky * r + kx] = amp * standard_normal(rng);
            }
        }
        // cos(u + v) = cos u cos v - sin u sin v, sin(u + v) = sin u cos v + cos u sin v, with
        // u = 2 pi ky y / r, v = 2 pi kx x / r: contract kx first (t = A C, ...), then ky.
        for ky in 0..r {
            for x in 0..r {
                let (mut ac, mut as_, mut bc, mut bs) = (0.0, 0.0, 0.0, 0.0);
                for kx in 0..r {
                    let (cv, sv) = (cs[kx * r + x], sn[kx * r + x]);
                    ac += a[ky * r + kx] * cv;
                    as_ += a[ky * r + kx] * sv;
                    bc += b[ky * r + kx] * cv;
                    bs += b[ky * r + kx] * sv;
                }
                (t1[ky * r + x], t2[ky * r + x], t3[ky * r + x], t4[ky * r + x]) = (ac, as_, bc, bs);
            }
        }
        for y in 0..r {
            for x in 0..r {
                let mut v = 0.0;
                for ky in 0..r {
                    let (cu, su) = (cs[ky * r + y], sn[ky * r + y]);
                    let i = ky * r + x;
                    v += t1[i] * cu - t2[i] * su + t3[i] * su + t4[i] * cu;
                }
                plane[y * r + x] = v;
            }
        }
    }
    // Standardise each channel over the batch.
    for ch in 0..c {
        let planes = (0..batch).map(|b| (b * c + ch) * r * r);
        let (mut s1, mut s2, mut n) = (0.0, 0.0, 0.0);
        for p in planes.clone() {
            for &v in &out[p..p + r * r] {
                s1 += v;
                s2 += v * v;
                n += 1.0;
            }
        }
        let mean = s1 / n;
        let sd = (s2 / n - mean * mean).max(1e-300).sqrt();
        for p in planes {
            out[p..p + r * r].iter_mut().for_each(|v| *v = (*v - mean) / sd);
        }
    }
    out.into_iter().map(|v| v as f32).collect()
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
    /// Mean MeCo ([`meco`]).
    pub meco: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_batch_is_seeded_standard_normal() {
        let s = ScoreSettings { input: InputKind::Gaussian, ..ScoreSettings::default() };
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
    fn pink_batch_is_standardised_and_smooth() {
        let s = ScoreSettings { batch: 8, ..ScoreSettings::default() };
        assert_eq!(s.input, InputKind::Pink);
        let x = s.input_batch();
        assert_eq!(x.len(), 8 * 3 * 32 * 32);
        let n = x.len() as f64;
        let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-4, "mean {mean} var {var}");
        // Neighbouring pixels are strongly correlated (white noise: ~0).
        let lag1: f64 = x.chunks_exact(32).flat_map(|row| row.windows(2).map(|w| (w[0] * w[1]) as f64)).sum::<f64>()
            / (x.len() / 32 * 31) as f64;
        assert!(lag1 > 0.5, "lag-1 correlation {lag1}");
        assert_ne!(x, ScoreSettings { input: InputKind::Gaussian, ..s }.input_batch());
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
