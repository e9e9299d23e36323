//! The naive convolution every optimised kernel is tested against (the executor's here and
//! the scoring kernels' on the host): unpadded HWC input, explicit bounds, `f64`
//! accumulation, no blocking. Slow on purpose.
//!
//! [`conv_at`] computes one output value from any way of reading the input and the
//! weights, so it runs without an allocator (the board's kernel check, [`crate::check`]);
//! [`conv`] (feature `std`) computes a whole output from slices.

use crate::ConvGeom;
#[cfg(feature = "std")]
use std::vec::Vec;

/// Output value `(oy, ox, co)` of `conv(x, w)` for an *unpadded* `in_side^2 x cin` input
/// read by `x(i)` (index `(iy * in_side + ix) * cin + ci`) and weights
/// `[k][k][cin][cout]` read by `w(i)`, zero padding `k / 2`, accumulated in `f64`.
pub fn conv_at(
    g: &ConvGeom,
    x: impl Fn(usize) -> f32,
    w: impl Fn(usize) -> f32,
    oy: usize,
    ox: usize,
    co: usize,
) -> f64 {
    let (n, pad) = (g.in_side as isize, (g.k / 2) as isize);
    let mut acc = 0f64;
    for ky in 0..g.k {
        for kx in 0..g.k {
            let iy = (oy * g.stride) as isize + ky as isize - pad;
            let ix = (ox * g.stride) as isize + kx as isize - pad;
            if iy < 0 || ix < 0 || iy >= n || ix >= n {
                continue;
            }
            for ci in 0..g.cin {
                let xv = f64::from(x(((iy * n + ix) as usize) * g.cin + ci));
                acc += xv * f64::from(w(((ky * g.k + kx) * g.cin + ci) * g.cout + co));
            }
        }
    }
    acc
}

/// `conv(x, w)` for an *unpadded* `in_side^2 x cin` input `x` and weights
/// `[k][k][cin][cout]`, zero padding `k / 2`: `out_side^2 x cout` values, accumulated in
/// `f64`.
#[cfg(feature = "std")]
pub fn conv(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f64> {
    let os = g.out_side();
    let mut out = std::vec![0f64; g.out_len()];
    for oy in 0..os {
        for ox in 0..os {
            for co in 0..g.cout {
                out[(oy * os + ox) * g.cout + co] = conv_at(g, |i| x[i], |i| w[i], oy, ox, co);
            }
        }
    }
    out
}
