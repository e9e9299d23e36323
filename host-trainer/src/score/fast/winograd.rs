//! Winograd `F(2x2, 3x3)` convolution (Lavin & Gray 2016) for the stride-1 3x3 convs of the
//! fast NASWOT: the same function as the direct conv of [`super::kernels::conv_batch`] with
//! 16 multiplies per 2x2 output tile and channel pair instead of 36 (2.25x fewer), up to
//! `f32` rounding (tested against the direct conv).
//!
//! Per image, over 2x2 output tiles `t` (the map side must be even):
//! ```text
//! V[xi][t][ci]  = (B^T d B)[xi]    d = the 4x4 padded input patch of tile t, channel ci
//! U[xi][ci][co] = (G g G^T)[xi]    g = the 3x3 kernel (ci -> co); transformed once
//! M[xi][t][co]  = sum_ci V[xi][t][ci] * U[xi][ci][co]      (16 small GEMMs)
//! Y[t][co]      = A^T M A          the 2x2 outputs of tile t
//! ```
//! with `B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]`, `G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],
//! [0,0,1]]`, `A^T = [[1,1,1,0],[0,1,-1,-1]]`, `xi = 4 i + j` over the 4x4 transformed patch.
//! The image's `V` and `M` (16 x tiles x channels each) stay in the per-core cache.

use super::kernels::{ChannelStats, ConvGeom, ShapeError, Store};
use super::simd;

/// Transformed weights `U[xi][ci][co]` of a 3x3 conv with weights `[3][3][cin][cout]`.
pub fn transform_weights(w: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let mut u = vec![0f32; 16 * cin * cout];
    if w.len() < 9 * cin * cout {
        return u;
    }
    const G: [[f64; 3]; 4] = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]];
    for ci in 0..cin {
        for co in 0..cout {
            let g = |ky: usize, kx: usize| f64::from(w[((ky * 3 + kx) * cin + ci) * cout + co]);
            for (i, gi) in G.iter().enumerate() {
                for (j, gj) in G.iter().enumerate() {
                    let mut v = 0.0;
                    for (ky, a) in gi.iter().enumerate() {
                        for (kx, b) in gj.iter().enumerate() {
                            v += a * g(ky, kx) * b;
                        }
                    }
                    u[((i * 4 + j) * cin + ci) * cout + co] = v as f32;
                }
            }
        }
    }
    u
}

/// Scratch of [`conv3x3_batch`] (grown on demand).
#[derive(Debug, Default)]
pub struct Scratch {
    v: Vec<f32>,
    m: Vec<f32>,
}

/// `out[b] (=|+=) conv3x3(inp[b])` for every image of a batch, stride 1, from padded inputs
/// (`(side+2)^2 x cin` each) and transformed weights `u` ([`transform_weights`]); with
/// `stats`, the per-channel sums of the stored values are added to it. `side` must be even
/// and `cout` a multiple of 16 (NB201's maps are).
#[allow(clippy::too_many_arguments)]
pub fn conv3x3_batch(
    g: &ConvGeom,
    batch: usize,
    inp: &[f32],
    u: &[f32],
    out: &mut [f32],
    store: Store,
    mut stats: Option<&mut ChannelStats>,
    scratch: &mut Scratch,
) -> Result<(), ShapeError> {
    let (side, cin, cout) = (g.in_side, g.cin, g.cout);
    if g.k != 3 || g.stride != 1 || side % 2 != 0 || cout % 16 != 0 || cin == 0 {
        return Err(ShapeError { kernel: "winograd (geometry)", expected: 0, got: 0 });
    }
    let tiles = (side / 2) * (side / 2);
    let check = |kernel, got: usize, expected: usize| {
        if got < expected {
            Err(ShapeError { kernel, expected, got })
        } else {
            Ok(())
        }
    };
    check("winograd input", inp.len(), batch * g.padded_len())?;
    check("winograd weights", u.len(), 16 * cin * cout)?;
    check("winograd output", out.len(), batch * g.out_len())?;
    if let Some(s) = stats.as_deref() {
        check("winograd stats", s.sum.len().min(s.sumsq.len()), cout)?;
    }
    scratch.v.resize(16 * tiles * cin, 0.0);
    scratch.m.resize(16 * tiles * cout, 0.0);
    let mut img_stats = vec![0f32; 2 * cout];
    for b in 0..batch {
        let x = &inp[b * g.padded_len()..(b + 1) * g.padded_len()];
        input_transform(x, side, cin, &mut scratch.v);
        for xi in 0..16 {
            let a = &scratch.v[xi * tiles * cin..(xi + 1) * tiles * cin];
            let w = &u[xi * cin * cout..(xi + 1) * cin * cout];
            let m = &mut scratch.m[xi * tiles * cout..(xi + 1) * tiles * cout];
            simd::gemm(a, w, m, tiles, cin, cout);
        }
        img_stats.fill(0.0);
        let o = &mut out[b * g.out_len()..(b + 1) * g.out_len()];
        output_transform(&scratch.m, side, cout, o, store, &mut img_stats);
        if let Some(s) = stats.as_deref_mut() {
            for c in 0..cout {
                s.sum[c] += f64::from(img_stats[c]);
                s.sumsq[c] += f64::from(img_stats[cout + c]);
            }
        }
    }
    if let Some(s) = stats {
        s.count += batch * side * side;
    }
    Ok(())
}

/// `dst = a - b` / `a + b` over channel vectors.
#[inline(always)]
fn sub(dst: &mut [f32], a: &[f32], b: &[f32]) {
    dst.iter_mut().zip(a.iter().zip(b)).for_each(|(d, (x, y))| *d = x - y);
}
#[inline(always)]
fn add(dst: &mut [f32], a: &[f32], b: &[f32]) {
    dst.iter_mut().zip(a.iter().zip(b)).for_each(|(d, (x, y))| *d = x + y);
}

/// `V[xi][t][ci] = (B^T d B)[xi]` for every tile of one padded image.
fn input_transform(p: &[f32], side: usize, c: usize, v: &mut [f32]) {
    let (pw, tw) = (side + 2, side / 2);
    let tiles = tw * tw;
    let mut e = vec![0f32; 16 * c];
    for ty in 0..tw {
        for tx in 0..tw {
            let t = ty * tw + tx;
            // d(i, j): the padded pixel (2 ty + i, 2 tx + j), all channels.
            let d = |i: usize, j: usize| {
                let s = ((2 * ty + i) * pw + 2 * tx + j) * c;
                &p[s..s + c]
            };
            // e = B^T d: rows 0..4 of the transformed patch, for each column j.
            for j in 0..4 {
                let (e0, rest) = e.split_at_mut(4 * c);
                let (e1, rest) = rest.split_at_mut(4 * c);
                let (e2, e3) = rest.split_at_mut(4 * c);
                let r = j * c..(j + 1) * c;
                sub(&mut e0[r.clone()], d(0, j), d(2, j));
                add(&mut e1[r.clone()], d(1, j), d(2, j));
                sub(&mut e2[r.clone()], d(2, j), d(1, j));
                sub(&mut e3[r], d(1, j), d(3, j));
            }
            // V = e B: columns, written to V[xi = 4 i + j][t].
            for i in 0..4 {
                let ei = |j: usize| &e[(i * 4 + j) * c..(i * 4 + j + 1) * c];
                let at = |j: usize| ((i * 4 + j) * tiles + t) * c;
                let (o0, o1, o2, o3) = (at(0), at(1), at(2), at(3));
                sub(&mut v[o0..o0 + c], ei(0), ei(2));
                add(&mut v[o1..o1 + c], ei(1), ei(2));
                sub(&mut v[o2..o2 + c], ei(2), ei(1));
                sub(&mut v[o3..o3 + c], ei(1), ei(3));
            }
        }
    }
}

/// `Y = A^T M A` into the image's output (2x2 pixels per tile), with per-channel sums of
/// the stored values in `stats` (`[sum; cout] ++ [sum of squares; cout]`).
fn output_transform(m: &[f32], side: usize, cout: usize, out: &mut [f32], store: Store, stats: &mut [f32]) {
    let tw = side / 2;
    let tiles = tw * tw;
    let mut r = vec![0f32; 8 * cout];
    let mut y = vec![0f32; cout];
    let (sum, sq) = stats.split_at_mut(cout);
    for ty in 0..tw {
        for tx in 0..tw {
            let t = ty * tw + tx;
            let mm = |i: usize, j: usize| &m[((i * 4 + j) * tiles + t) * cout..((i * 4 + j) * tiles + t + 1) * cout];
            // r0[j] = m0j + m1j + m2j, r1[j] = m1j - m2j - m3j.
            for j in 0..4 {
                let (r0, r1) = r.split_at_mut(4 * cout);
                let (a, b, c2, d) = (mm(0, j), mm(1, j), mm(2, j), mm(3, j));
                for co in 0..cout {
                    r0[j * cout + co] = a[co] + b[co] + c2[co];
                    r1[j * cout + co] = b[co] - c2[co] - d[co];
                }
            }
            for i in 0..2 {
                let ri = |j: usize| &r[(i * 4 + j) * cout..(i * 4 + j + 1) * cout];
                for j in 0..2 {
                    let (a, b, c2, d) = (ri(0), ri(1), ri(2), ri(3));
                    if j == 0 {
                        for co in 0..cout {
                            y[co] = a[co] + b[co] + c2[co];
                        }
                    } else {
                        for co in 0..cout {
                            y[co] = b[co] - c2[co] - d[co];
                        }
                    }
                    let o = ((2 * ty + i) * side + 2 * tx + j) * cout;
                    let o = &mut out[o..o + cout];
                    match store {
                        Store::Overwrite => o.copy_from_slice(&y),
                        Store::Accumulate => o.iter_mut().zip(&y).for_each(|(o, v)| *o += v),
                    }
                    for co in 0..cout {
                        let v = o[co];
                        sum[co] += v;
                        sq[co] += v * v;
                    }
                }
            }
        }
    }
}

/// Portable `c = a b` (`a`: `m x k`, `b`: `k x n`, row-major).
pub(crate) fn gemm_portable(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    for i in 0..m {
        let ci = &mut c[i * n..(i + 1) * n];
        ci.fill(0.0);
        for (p, &av) in a[i * k..(i + 1) * k].iter().enumerate() {
            for (cv, &bv) in ci.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                *cv += av * bv;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::kernels::{conv_batch, pad_relu_codes};
    use super::*;
    use edge_runtime::rng::SplitMix64;

    #[test]
    fn winograd_equals_the_direct_conv() {
        for (side, c, cout) in [(2usize, 3usize, 16usize), (8, 16, 16), (4, 32, 32), (8, 64, 64), (6, 5, 48)] {
            let mut r = SplitMix64::new(side as u64 * 7 + c as u64);
            let batch = 3;
            let g = ConvGeom { in_side: side, cin: c, cout, k: 3, stride: 1 };
            let x: Vec<f32> = (0..batch * side * side * c).map(|_| r.next_signed()).collect();
            let w: Vec<f32> = (0..g.weights_len()).map(|_| r.next_signed() * 0.3).collect();
            let mut p = vec![0f32; batch * g.padded_len()];
            pad_relu_codes(&x, batch, side, c, &mut p, None).unwrap();
            let init: Vec<f32> = (0..batch * g.out_len()).map(|_| r.next_signed()).collect();
            for store in [Store::Overwrite, Store::Accumulate] {
                let (mut want, mut got) = (init.clone(), init.clone());
                let (mut sw, mut sg) = (ChannelStats::default(), ChannelStats::default());
                sw.reset(cout);
                sg.reset(cout);
                conv_batch(&g, batch, &p, &w, &mut want, store, Some(&mut sw)).unwrap();
                let u = transform_weights(&w, c, cout);
                conv3x3_batch(&g, batch, &p, &u, &mut got, store, Some(&mut sg), &mut Scratch::default()).unwrap();
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "side {side} c {c} at {i}: {a} vs {b}");
                }
                assert_eq!(sg.count, sw.count);
                for ch in 0..cout {
                    assert!((sg.sum[ch] - sw.sum[ch]).abs() < 1e-3 * (1.0 + sw.sum[ch].abs()));
                    assert!((sg.sumsq[ch] - sw.sumsq[ch]).abs() < 1e-3 * (1.0 + sw.sumsq[ch].abs()));
                }
            }
        }
    }

    #[test]
    fn gemm_simd_equals_portable() {
        let mut r = SplitMix64::new(3);
        for (m, k, n) in [(7usize, 16usize, 16usize), (13, 32, 32), (64, 64, 64), (5, 3, 48), (1, 1, 16)] {
            let a: Vec<f32> = (0..m * k).map(|_| r.next_signed()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| r.next_signed()).collect();
            let (mut c1, mut c2) = (vec![f32::NAN; m * n], vec![f32::NAN; m * n]);
            simd::gemm(&a, &b, &mut c1, m, k, n);
            gemm_portable(&a, &b, &mut c2, m, k, n);
            for (x, y) in c1.iter().zip(&c2) {
                assert!((x - y).abs() < 1e-5 * (1.0 + y.abs()), "{m}x{k}x{n}: {x} vs {y}");
            }
        }
    }

    #[test]
    fn bad_geometry_is_refused() {
        let g = ConvGeom { in_side: 5, cin: 16, cout: 16, k: 3, stride: 1 };
        let mut s = Scratch::default();
        assert!(
            conv3x3_batch(&g, 1, &[0.0; 1000], &[0.0; 4096], &mut [0.0; 1000], Store::Overwrite, None, &mut s).is_err()
        );
        let g = ConvGeom { in_side: 4, ..g };
        assert!(
            conv3x3_batch(&g, 1, &[0.0; 10], &[0.0; 4096], &mut [0.0; 1000], Store::Overwrite, None, &mut s).is_err()
        );
    }
}
