//! The conv kernel this target runs, checked against the naive [`reference`](crate::reference)
//! on seeded data, without an allocator: the host's tests run it, and so does the board
//! (`firmware-bench`'s `kernel-check` binary, booted in QEMU by the workspace tests), whose
//! Cortex-M4F kernel is assembly that no host test executes.
//!
//! One check fills a caller-given scratch buffer with a padded input, weights and an output
//! to accumulate into (each value a hash of the seed and its index, uniform in `[-1, 1)`),
//! runs the executor's conv (`out += conv(inp, w)`), and compares every output value with
//! the initial value plus the reference's `f64` sum, computed from the same hashes (not
//! from the buffers the kernel read). It passes when the largest difference is at most
//! [`TOLERANCE`] times the largest expected magnitude and the kernel left the
//! [`GUARD`] floats after the output alone.

use crate::kernels::{conv_acc, ConvGeom};
use crate::reference::conv_at;

/// Largest allowed difference, relative to the largest expected output magnitude.
pub const TOLERANCE: f64 = 1e-5;

/// Floats after the output that the kernel must not write.
pub const GUARD: usize = 16;

const fn geom(in_side: usize, cin: usize, cout: usize, k: usize, stride: usize) -> ConvGeom {
    ConvGeom { in_side, cin, cout, k, stride }
}

/// The geometries the board checks: every conv of the board's network (the stem, the
/// cells' 3x3 and 1x1 at each stage, the reductions' two convs and shortcut), the 32x32
/// stem and cell conv of a CIFAR-sized network, and shapes that take the kernels'
/// remainder paths (channels not a multiple of 16 or of 4, input channels not a multiple
/// of 4, an odd output side).
pub const GEOMETRIES: [ConvGeom; 20] = [
    geom(16, 3, 16, 3, 1),
    geom(16, 16, 16, 3, 1),
    geom(16, 16, 16, 1, 1),
    geom(16, 16, 32, 3, 2),
    geom(8, 16, 32, 1, 1),
    geom(8, 32, 32, 3, 1),
    geom(8, 32, 32, 1, 1),
    geom(8, 32, 64, 3, 2),
    geom(4, 32, 64, 1, 1),
    geom(4, 64, 64, 3, 1),
    geom(4, 64, 64, 1, 1),
    geom(8, 64, 64, 1, 1),
    geom(32, 3, 16, 3, 1),
    geom(32, 16, 16, 3, 1),
    geom(32, 16, 16, 1, 1),
    geom(6, 5, 7, 3, 1),
    geom(7, 5, 16, 3, 1),
    geom(10, 7, 40, 3, 1),
    geom(12, 9, 23, 3, 2),
    geom(9, 16, 48, 1, 1),
];

/// Floats of scratch one check of `g` needs: padded input, weights, output, guard.
pub const fn scratch_len(g: &ConvGeom) -> usize {
    g.padded_len() + g.weights_len() + g.out_len() + GUARD
}

/// Floats of scratch the largest of [`GEOMETRIES`] needs.
pub const MAX_SCRATCH: usize = {
    let mut i = 0;
    let mut max = 0;
    while i < GEOMETRIES.len() {
        let n = scratch_len(&GEOMETRIES[i]);
        if n > max {
            max = n;
        }
        i += 1;
    }
    max
};

/// What one check found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvCheck {
    /// The geometry checked.
    pub geom: ConvGeom,
    /// Largest `|kernel - reference|` over the output (infinite if the kernel produced a
    /// NaN).
    pub max_err: f64,
    /// Largest `|reference|` over the output (initial value plus the conv).
    pub max_abs: f64,
    /// Guard floats after the output that the kernel changed.
    pub guard_writes: usize,
}

impl ConvCheck {
    /// Within [`TOLERANCE`] of the reference and nothing written past the output.
    pub fn passed(&self) -> bool {
        self.max_err <= TOLERANCE * self.max_abs && self.guard_writes == 0
    }
}

/// The data of stream `stream` at index `i` for `seed`: uniform in `[-1, 1)` (24 bits), a
/// pure function of its arguments so the reference can recompute it.
fn value(seed: u64, stream: u64, i: usize) -> f32 {
    let mut z = seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
}

const INPUT: u64 = 1;
const WEIGHTS: u64 = 2;
const OUTPUT: u64 = 3;
/// A NaN with a payload no arithmetic produces: what the guard floats hold.
const GUARD_BITS: u32 = 0x7FC0_5EED;

/// Check the executor's conv (`out += conv(inp, w)` as the network runs it) on `g` with
/// data from `seed`; `None` if `g` is not a geometry the network uses or `scratch` is
/// shorter than [`scratch_len`].
pub fn conv(g: &ConvGeom, seed: u64, scratch: &mut [f32]) -> Option<ConvCheck> {
    conv_with(conv_acc, g, seed, scratch)
}

/// [`conv`] for any kernel with `conv_acc`'s contract.
pub(crate) fn conv_with(
    kernel: fn(&ConvGeom, &[f32], &[f32], &mut [f32]),
    g: &ConvGeom,
    seed: u64,
    scratch: &mut [f32],
) -> Option<ConvCheck> {
    if !g.is_valid() || scratch.len() < scratch_len(g) {
        return None;
    }
    let (inp, rest) = scratch.split_at_mut(g.padded_len());
    let (w, rest) = rest.split_at_mut(g.weights_len());
    let (out, rest) = rest.split_at_mut(g.out_len());
    let guard = rest.get_mut(..GUARD)?;

    // The padded input: zero border, interior pixel (iy, ix) from the unpadded index.
    let (n, c, pw) = (g.in_side, g.cin, g.in_side + 2);
    inp.fill(0.0);
    for iy in 0..n {
        for ix in 0..n {
            for ci in 0..c {
                inp[((iy + 1) * pw + ix + 1) * c + ci] = value(seed, INPUT, (iy * n + ix) * c + ci);
            }
        }
    }
    w.iter_mut().enumerate().for_each(|(i, v)| *v = value(seed, WEIGHTS, i));
    out.iter_mut().enumerate().for_each(|(i, v)| *v = value(seed, OUTPUT, i));
    guard.fill(f32::from_bits(GUARD_BITS));

    kernel(g, inp, w, out);

    let (os, cout) = (g.out_side(), g.cout);
    let (mut max_err, mut max_abs) = (0f64, 0f64);
    for oy in 0..os {
        for ox in 0..os {
            for co in 0..cout {
                let i = (oy * os + ox) * cout + co;
                let conv = conv_at(g, |j| value(seed, INPUT, j), |j| value(seed, WEIGHTS, j), oy, ox, co);
                let want = f64::from(value(seed, OUTPUT, i)) + conv;
                let err = (f64::from(out[i]) - want).abs();
                max_err = if err.is_nan() { f64::INFINITY } else { max_err.max(err) };
                max_abs = max_abs.max(want.abs());
            }
        }
    }
    let guard_writes = guard.iter().filter(|v| v.to_bits() != GUARD_BITS).count();
    Some(ConvCheck { geom: *g, max_err, max_abs, guard_writes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_geometry_passes_on_this_target() {
        let mut scratch = vec![0f32; MAX_SCRATCH];
        for (i, g) in GEOMETRIES.iter().enumerate() {
            assert!(g.is_valid(), "{g:?}");
            let r = conv(g, 0x5eed + i as u64, &mut scratch).expect("a valid geometry with enough scratch");
            assert!(r.passed(), "{r:?}");
            assert!(r.max_abs > 1.0 && r.max_err < 1e-6 * r.max_abs, "{r:?}");
        }
        // The portable Cortex-M4 blocks (what the board runs for channels past a
        // multiple of 16) on the same data.
        for (i, g) in GEOMETRIES.iter().enumerate() {
            let r = conv_with(|g, x, w, o| crate::kernels::conv_4x4(g, x, w, o, 0), g, 0x5eed + i as u64, &mut scratch);
            assert!(r.is_some_and(|r| r.passed()), "{r:?}");
        }
    }

    #[test]
    fn a_wrong_kernel_fails() {
        let g = GEOMETRIES[1];
        let mut scratch = vec![0f32; MAX_SCRATCH];
        // One output value off by a few times the tolerance (the largest value is about 30).
        fn off_by_one_value(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32]) {
            conv_acc(g, x, w, out);
            out[77] += 1e-3;
        }
        let r = conv_with(off_by_one_value, &g, 1, &mut scratch).unwrap();
        assert!(!r.passed() && r.max_err > 9e-4 && r.max_abs < 100.0, "{r:?}");
        // An output channel's weights left out, a NaN, nothing done at all.
        fn no_last_channel(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32]) {
            let mut w = w.to_vec();
            w.chunks_mut(g.cout).for_each(|row| row[g.cout - 1] = 0.0);
            conv_acc(g, x, &w, out);
        }
        fn nan(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32]) {
            conv_acc(g, x, w, out);
            out[3] = f32::NAN;
        }
        fn nothing(_: &ConvGeom, _: &[f32], _: &[f32], _: &mut [f32]) {}
        for kernel in [no_last_channel as fn(&ConvGeom, &[f32], &[f32], &mut [f32]), nan, nothing] {
            let r = conv_with(kernel, &g, 2, &mut scratch).unwrap();
            assert!(!r.passed(), "{r:?}");
        }
        let n = g.padded_len() + g.weights_len() + g.out_len();
        assert_eq!(conv_with(conv_acc, &g, 3, &mut scratch[..n]), None, "no room for the guard");
    }

    #[test]
    fn invalid_geometries_and_short_scratch_are_refused() {
        let mut scratch = vec![0f32; 64];
        assert_eq!(conv(&geom(4, 2, 2, 2, 1), 0, &mut scratch), None);
        assert_eq!(conv(&geom(3, 2, 2, 3, 2), 0, &mut scratch), None);
        assert_eq!(conv(&geom(8, 16, 16, 3, 1), 0, &mut scratch), None);
        assert!(MAX_SCRATCH >= scratch_len(&geom(32, 16, 16, 3, 1)));
    }
}
