//! Deterministic weights without std: a SplitMix64 stream and seeded He-uniform fills.
//!
//! Used wherever the runtime needs numbers that only have to be realistic (latency probes,
//! the board's weight bank): same seed, same bytes, on every target.

use crate::layout::{ParamLayout, Slot};

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, full-period, good enough to fill weights.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A stream from `seed`.
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn next_signed(&mut self) -> f32 {
        // 24 random bits -> [0, 1) exactly representable.
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Fill `out` with `U(-b, b)` where `b = gain * sqrt(3 / fan_in)` (He-uniform for `gain` =
/// sqrt(2)).
pub fn fill_uniform(rng: &mut SplitMix64, out: &mut [f32], fan_in: usize, gain: f32) {
    let bound = gain * crate::layout::sqrtf(3.0 / fan_in.max(1) as f32);
    for v in out {
        *v = rng.next_signed() * bound;
    }
}

/// A dense inference parameter vector for `layout`, seeded: He-uniform conv weights scaled
/// down by the number of edges that can sum into a node (so activations stay O(1) through
/// 15 cells), small biases, identity final BN.
///
/// `out` must be `layout.total_len()` floats long; shorter or longer slots are filled as far
/// as they go.
pub fn fill_params(layout: &ParamLayout, seed: u64, out: &mut [f32]) {
    let mut rng = SplitMix64::new(seed);
    for s in layout.slots() {
        let end = (s.offset + s.len()).min(out.len());
        let Some(slot) = out.get_mut(s.offset.min(end)..end) else {
            continue;
        };
        let split = s.weights.min(slot.len());
        let (w, b) = slot.split_at_mut(split);
        match s.slot {
            Slot::FinalBn => {
                w.iter_mut().for_each(|v| *v = 1.0);
                b.iter_mut().for_each(|v| *v = 0.0);
            }
            _ => {
                let gain = match s.slot {
                    Slot::CellConv { .. } => 0.8,
                    _ => 1.0,
                };
                fill_uniform(&mut rng, w, s.kernel * s.kernel * s.cin, gain);
                fill_uniform(&mut rng, b, 100, 0.1);
            }
        }
    }
}
