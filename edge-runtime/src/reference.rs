//! The naive convolution every optimised kernel is tested against (the executor's here and
//! the scoring kernels' on the host): unpadded HWC input, explicit bounds, `f64`
//! accumulation, no blocking. Slow on purpose.

use crate::ConvGeom;
use std::vec::Vec;

/// `conv(x, w)` for an *unpadded* `in_side^2 x cin` input `x` and weights
/// `[k][k][cin][cout]`, zero padding `k / 2`: `out_side^2 x cout` values, accumulated in
/// `f64`.
pub fn conv(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f64> {
    let (n, os, pad) = (g.in_side as isize, g.out_side(), (g.k / 2) as isize);
    let mut out = std::vec![0f64; g.out_len()];
    for oy in 0..os {
        for ox in 0..os {
            for co in 0..g.cout {
                let mut acc = 0f64;
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let iy = (oy * g.stride) as isize + ky as isize - pad;
                        let ix = (ox * g.stride) as isize + kx as isize - pad;
                        if iy < 0 || ix < 0 || iy >= n || ix >= n {
                            continue;
                        }
                        for ci in 0..g.cin {
                            let xv = f64::from(x[((iy * n + ix) as usize) * g.cin + ci]);
                            acc += xv * f64::from(w[((ky * g.k + kx) * g.cin + ci) * g.cout + co]);
                        }
                    }
                }
                out[(oy * os + ox) * g.cout + co] = acc;
            }
        }
    }
    out
}
