//! The NB201 macro network's configuration and its parameter layout.
//!
//! Network (as in NAS-Bench-201): 3x3 conv stem + BN; three stages of `N` cells with
//! `C`, `2C`, `4C` channels, stages joined by the residual reduction block
//! (ReLU-Conv3x3/s2-BN, ReLU-Conv3x3-BN, shortcut AvgPool2x2 + Conv1x1); final BN + ReLU,
//! global average pool, linear head.
//!
//! Parameters are *inference* parameters: every BN that follows a conv is folded into it
//! ([`fold_batch_norm`]), so each conv slot holds weights and a bias. The layout depends
//! on the configuration only, never on the cell, so one parameter vector serves all 15,625
//! cells (like a supernet): every cell edge owns a 1x1 and a 3x3 conv slot and a cell uses
//! the one its op needs.
//!
//! Dense layout (`f32`, in this order):
//! 1. stem conv 3x3, 3 -> C
//! 2. for stage s in 0..3: if s > 0, reduction conv A (3x3, stride 2, C_{s-1} -> C_s),
//!    conv B (3x3, C_s -> C_s), shortcut (1x1, C_{s-1} -> C_s, bias 0 in NB201);
//!    then for each cell, for each edge 0..6: a 1x1 conv then a 3x3 conv, C_s -> C_s
//! 3. final BN as a per-channel affine: `scale[4C]`, then `shift[4C]`
//! 4. classifier: weights `[4C][classes]`, then bias `[classes]`
//!
//! A conv slot is weights `[kh][kw][cin][cout]` (output channel innermost) then `bias[cout]`.
//! Activations are HWC (channel innermost), see [`crate::Layout`].

use crate::Error;
use simnas_shared::NUM_EDGES;

/// Input image channels.
pub const IN_CHANNELS: usize = 3;
/// Number of stages.
pub const STAGES: usize = 3;

/// Largest accepted values; beyond these a configuration is refused as oversized.
pub mod limits {
    /// Max base channels `C`.
    pub const MAX_CHANNELS: usize = 256;
    /// Max cells per stage `N`.
    pub const MAX_CELLS: usize = 32;
    /// Max input side.
    pub const MAX_RESOLUTION: usize = 512;
    /// Max classes.
    pub const MAX_CLASSES: usize = 100_000;
}

/// Which configuration field a [`Error::Config`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigField {
    /// Base channels `C`.
    Channels,
    /// Cells per stage `N`.
    CellsPerStage,
    /// Input side.
    Resolution,
    /// Output classes.
    Classes,
}

/// Shape of the macro network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NetConfig {
    /// Base channels `C` (stage widths are C, 2C, 4C).
    pub channels: usize,
    /// Cells per stage `N`.
    pub cells_per_stage: usize,
    /// Input side in pixels (square input); a multiple of 4.
    pub resolution: usize,
    /// Output classes.
    pub classes: usize,
}

impl NetConfig {
    /// NAS-Bench-201 on CIFAR-10: C=16, N=5, 32x32, 10 classes.
    pub const CIFAR10: NetConfig = NetConfig { channels: 16, cells_per_stage: 5, resolution: 32, classes: 10 };
    /// NAS-Bench-201 on CIFAR-100.
    pub const CIFAR100: NetConfig = NetConfig { channels: 16, cells_per_stage: 5, resolution: 32, classes: 100 };
    /// NAS-Bench-201 on ImageNet16-120: 16x16 input, 120 classes.
    pub const IMAGENET16_120: NetConfig = NetConfig { channels: 16, cells_per_stage: 5, resolution: 16, classes: 120 };

    /// Check every field is non-zero, within [`limits`], and the resolution is a multiple of 4.
    pub fn validate(&self) -> Result<(), Error> {
        use ConfigField::*;
        let fields = [
            (Channels, self.channels, limits::MAX_CHANNELS),
            (CellsPerStage, self.cells_per_stage, limits::MAX_CELLS),
            (Resolution, self.resolution, limits::MAX_RESOLUTION),
            (Classes, self.classes, limits::MAX_CLASSES),
        ];
        for (field, value, max) in fields {
            if value == 0 || value > max {
                return Err(Error::Config { field, value, max });
            }
        }
        if !self.resolution.is_multiple_of(4) {
            return Err(Error::ResolutionNotMultipleOf4 { resolution: self.resolution });
        }
        Ok(())
    }

    /// Channels of stage `s` (C << s).
    pub const fn stage_channels(&self, s: usize) -> usize {
        self.channels << s
    }

    /// Feature-map side in stage `s` (resolution >> s).
    pub const fn stage_side(&self, s: usize) -> usize {
        self.resolution >> s
    }

    /// Channels entering the head (4C).
    pub const fn final_channels(&self) -> usize {
        self.stage_channels(STAGES - 1)
    }

    /// Input length in floats (HWC, 3 channels).
    pub const fn input_len(&self) -> usize {
        self.resolution * self.resolution * IN_CHANNELS
    }
}

/// A parameter slot of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// Stem conv 3x3, 3 -> C (BN folded).
    Stem,
    /// Reduction block before stage `s` (1 or 2), first conv (3x3, stride 2).
    ReduceA(usize),
    /// Reduction block before stage `s`, second conv (3x3).
    ReduceB(usize),
    /// Reduction block before stage `s`, shortcut 1x1 conv after the 2x2 average pool.
    ReduceShortcut(usize),
    /// The conv of `kernel` (1 or 3) on `edge` of cell `cell` of stage `stage`.
    CellConv {
        /// Stage 0..3.
        stage: usize,
        /// Cell within the stage.
        cell: usize,
        /// Edge 0..6 in NATS-Bench string order.
        edge: usize,
        /// 1 or 3.
        kernel: usize,
    },
    /// Final BN as per-channel scale and shift.
    FinalBn,
    /// Linear classifier.
    Classifier,
}

/// Geometry and place of one parameter slot in the dense vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotInfo {
    /// Which slot.
    pub slot: Slot,
    /// Offset of the first weight in the dense vector.
    pub offset: usize,
    /// Kernel side (1 or 3) for convs; 1 for the affine and linear slots.
    pub kernel: usize,
    /// Input channels (features for the classifier; channels for the affine).
    pub cin: usize,
    /// Output channels (classes for the classifier; channels for the affine).
    pub cout: usize,
    /// Number of weights (`kernel^2 * cin * cout`, or `channels` for the affine scale).
    pub weights: usize,
    /// Number of biases / shifts that follow the weights.
    pub bias: usize,
}

impl SlotInfo {
    /// Total floats of the slot.
    pub const fn len(&self) -> usize {
        self.weights + self.bias
    }

    /// Always false: every slot holds parameters.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Enumerates the parameter slots of a configuration in dense-layout order.
#[derive(Clone, Copy, Debug)]
pub struct ParamLayout {
    cfg: NetConfig,
}

impl ParamLayout {
    /// Layout of a validated configuration.
    pub fn new(cfg: NetConfig) -> Result<ParamLayout, Error> {
        cfg.validate()?;
        Ok(ParamLayout { cfg })
    }

    /// The configuration.
    pub const fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Every slot with its offset, in dense order.
    pub fn slots(&self) -> SlotIter {
        SlotIter { cfg: self.cfg, next: 0, offset: 0 }
    }

    /// Total floats of the dense parameter vector.
    pub fn total_len(&self) -> usize {
        self.slots().last().map(|s| s.offset + s.len()).unwrap_or(0)
    }

    /// Largest single slot in floats (what a shared weight bank must hold).
    pub fn max_slot_len(&self) -> usize {
        self.slots().map(|s| s.len()).max().unwrap_or(0)
    }

    /// The slot's info (linear scan; the executor resolves offsets once at plan time).
    pub fn find(&self, slot: Slot) -> Option<SlotInfo> {
        self.slots().find(|s| s.slot == slot)
    }
}

/// Iterator over [`SlotInfo`]s; see [`ParamLayout::slots`].
#[derive(Clone, Debug)]
pub struct SlotIter {
    cfg: NetConfig,
    next: usize,
    offset: usize,
}

impl SlotIter {
    fn nth_slot(cfg: &NetConfig, mut i: usize) -> Option<(Slot, usize, usize, usize)> {
        // (slot, kernel, cin, cout)
        let per_cell = NUM_EDGES * 2;
        if i == 0 {
            return Some((Slot::Stem, 3, IN_CHANNELS, cfg.channels));
        }
        i -= 1;
        for s in 0..STAGES {
            let c = cfg.stage_channels(s);
            if s > 0 {
                let p = cfg.stage_channels(s - 1);
                match i {
                    0 => return Some((Slot::ReduceA(s), 3, p, c)),
                    1 => return Some((Slot::ReduceB(s), 3, c, c)),
                    2 => return Some((Slot::ReduceShortcut(s), 1, p, c)),
                    _ => i -= 3,
                }
            }
            let convs = cfg.cells_per_stage * per_cell;
            if i < convs {
                let cell = i / per_cell;
                let edge = (i % per_cell) / 2;
                let kernel = if i.is_multiple_of(2) { 1 } else { 3 };
                return Some((Slot::CellConv { stage: s, cell, edge, kernel }, kernel, c, c));
            }
            i -= convs;
        }
        let f = cfg.final_channels();
        match i {
            0 => Some((Slot::FinalBn, 1, f, f)),
            1 => Some((Slot::Classifier, 1, f, cfg.classes)),
            _ => None,
        }
    }
}

impl Iterator for SlotIter {
    type Item = SlotInfo;
    fn next(&mut self) -> Option<SlotInfo> {
        let (slot, kernel, cin, cout) = Self::nth_slot(&self.cfg, self.next)?;
        let weights = match slot {
            Slot::FinalBn => cin,
            _ => kernel * kernel * cin * cout,
        };
        let info = SlotInfo { slot, offset: self.offset, kernel, cin, cout, weights, bias: cout };
        self.next += 1;
        self.offset += info.len();
        Some(info)
    }
}

/// Fold an inference-mode batch norm into the conv slot before it.
///
/// `weights` is `[kh][kw][cin][cout]` (output channel innermost), `bias` is `[cout]` and
/// holds the conv's own bias (0 in NB201). Afterwards `conv'(x) = BN(conv(x))`:
/// `w' = w * g / sqrt(v + eps)`, `b' = beta + (b - mean) * g / sqrt(v + eps)`.
/// Slices shorter than `cout` leave the extra channels untouched.
pub fn fold_batch_norm(
    weights: &mut [f32],
    bias: &mut [f32],
    gamma: &[f32],
    beta: &[f32],
    mean: &[f32],
    var: &[f32],
    eps: f32,
) {
    let cout = bias.len();
    let n = cout.min(gamma.len()).min(beta.len()).min(mean.len()).min(var.len());
    for co in 0..n {
        let scale = gamma[co] / sqrtf(var[co] + eps);
        bias[co] = beta[co] + (bias[co] - mean[co]) * scale;
        for w in weights.iter_mut().skip(co).step_by(cout) {
            *w *= scale;
        }
    }
}

/// Square root without std (Newton iterations from the bit-level estimate), exact to f32
/// rounding for the positive, finite values BN variances produce.
pub(crate) fn sqrtf(x: f32) -> f32 {
    if x.is_nan() || x < 0.0 {
        return f32::NAN;
    }
    if x == 0.0 || x.is_infinite() {
        return x;
    }
    let mut y = f32::from_bits((x.to_bits() >> 1) + 0x1fbd_1df5);
    let xd = x as f64;
    let mut yd = y as f64;
    for _ in 0..4 {
        yd = 0.5 * (yd + xd / yd);
    }
    y = yd as f32;
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_layout_is_contiguous_and_covers_every_slot() {
        let l = ParamLayout::new(NetConfig::CIFAR10).unwrap();
        let mut end = 0;
        let mut n = 0;
        for s in l.slots() {
            assert_eq!(s.offset, end);
            end += s.len();
            n += 1;
        }
        // stem + 2 reductions x 3 + 15 cells x 12 + final BN + classifier
        assert_eq!(n, 1 + 6 + 15 * 12 + 2);
        assert_eq!(end, l.total_len());
        // Stage 2 3x3 cell conv: 9 * 64 * 64 weights + 64 biases is the largest slot.
        assert_eq!(l.max_slot_len(), 9 * 64 * 64 + 64);
        let s = l.find(Slot::CellConv { stage: 1, cell: 4, edge: 5, kernel: 3 }).unwrap();
        assert_eq!((s.cin, s.cout, s.weights), (32, 32, 9 * 32 * 32));
        let s = l.find(Slot::ReduceShortcut(2)).unwrap();
        assert_eq!((s.kernel, s.cin, s.cout), (1, 32, 64));
    }

    #[test]
    fn config_validation() {
        let ok = NetConfig::CIFAR10;
        assert!(ok.validate().is_ok() && NetConfig::IMAGENET16_120.validate().is_ok());
        let bad = [
            NetConfig { channels: 0, ..ok },
            NetConfig { cells_per_stage: 0, ..ok },
            NetConfig { resolution: 0, ..ok },
            NetConfig { classes: 0, ..ok },
            NetConfig { channels: limits::MAX_CHANNELS + 1, ..ok },
            NetConfig { resolution: 30, ..ok },
            NetConfig { resolution: usize::MAX, ..ok },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
            assert!(ParamLayout::new(c).is_err());
        }
    }

    #[test]
    fn folding_matches_bn_after_conv() {
        // One 1x1 conv, cin=2, cout=2: w[ci][co].
        let mut w = [1.0f32, 2.0, 3.0, 4.0];
        let mut b = [0.5f32, 0.0];
        let (g, beta, m, v) = ([2.0f32, 0.5], [0.1f32, -0.2], [0.3f32, 1.0], [3.0f32, 0.25]);
        let x = [0.7f32, -1.3];
        let conv = |w: &[f32], b: &[f32], co: usize| b[co] + x[0] * w[co] + x[1] * w[2 + co];
        let want: [f32; 2] =
            core::array::from_fn(|co| (conv(&w, &b, co) - m[co]) / (v[co] + 1e-5).sqrt() * g[co] + beta[co]);
        fold_batch_norm(&mut w, &mut b, &g, &beta, &m, &v, 1e-5);
        for co in 0..2 {
            assert!((conv(&w, &b, co) - want[co]).abs() < 1e-6);
        }
    }

    #[test]
    fn sqrt_is_exact_to_rounding() {
        for x in [1e-5f32, 0.25, 1.0, 2.0, 3.0, 1e5, 123.456] {
            assert_eq!(sqrtf(x), x.sqrt(), "{x}");
        }
        assert!(sqrtf(-1.0).is_nan());
        assert_eq!(sqrtf(0.0), 0.0);
    }
}
