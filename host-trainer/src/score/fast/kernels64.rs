//! Single-image `f64` kernels of the fast LogSynflow (forward and backward of the
//! linearised network), over HWC maps and conv weights `[kh][kw][cin][cout]`.
//!
//! For a conv `out[o][co] = sum_{tap, ci} in_pad[o*s + tap][ci] * w[tap][ci][co]` over a
//! padded input (see [`super::kernels`] for the geometry):
//! * [`conv_fwd`]: the forward pass;
//! * [`conv_wgrad`]: `dW[tap][ci][co] = sum_o in_pad[o*s + tap][ci] * dout[o][co]`;
//! * [`conv_dgrad`]: `din_pad[o*s + tap][ci] += sum_co wt[tap][co][ci] * dout[o][co]` with the
//!   weights transposed to `[kh][kw][cout][cin]` ([`transpose_taps`]), into a padded buffer
//!   whose border the caller drops.
//!
//! Lengths are checked by [`conv_fwd`] and friends; on a mismatch they do nothing and return
//! `false`. The bodies are `#[inline(always)]` and are also compiled with AVX2/FMA enabled
//! by `simd`.

use super::kernels::ConvGeom;

fn lens_ok(g: &ConvGeom, inp: usize, w: usize, out: usize) -> bool {
    g.is_valid() && inp >= g.padded_len() && w >= g.weights_len() && out >= g.out_len()
}

/// `out (=|+=) conv(in_pad, w)`.
pub fn conv_fwd(g: &ConvGeom, inp: &[f64], w: &[f64], out: &mut [f64], acc: bool) -> bool {
    if !lens_ok(g, inp.len(), w.len(), out.len()) {
        return false;
    }
    super::simd::conv_fwd64(g, inp, w, out, acc);
    true
}

/// Pixel block and channel block of the `f64` kernels (4 x 8 = 8 `ymm` accumulators).
const PB: usize = 4;
const CB: usize = 8;

/// Padded-input offset of tap 0 for flattened output pixel `px`.
#[inline(always)]
fn in_base(g: &ConvGeom, px: usize) -> usize {
    let os = g.out_side();
    let (oy, ox) = (px / os, px % os);
    ((oy * g.stride + g.off()) * (g.in_side + 2) + ox * g.stride + g.off()) * g.cin
}

#[inline(always)]
pub(crate) fn conv_fwd_body(g: &ConvGeom, inp: &[f64], w: &[f64], out: &mut [f64], acc: bool) {
    if g.cout % CB == 0 {
        fwd_blocked::<CB>(g, inp, w, out, acc);
    } else {
        fwd_blocked::<1>(g, inp, w, out, acc);
    }
}

#[inline(always)]
fn fwd_blocked<const C: usize>(g: &ConvGeom, inp: &[f64], w: &[f64], out: &mut [f64], acc: bool) {
    let npx = g.out_side() * g.out_side();
    for co0 in (0..g.cout).step_by(C) {
        let mut p0 = 0;
        while p0 + PB <= npx {
            fwd_block::<PB, C>(g, inp, w, out, acc, p0, co0);
            p0 += PB;
        }
        while p0 < npx {
            fwd_block::<1, C>(g, inp, w, out, acc, p0, co0);
            p0 += 1;
        }
    }
}

#[inline(always)]
fn fwd_block<const P: usize, const C: usize>(
    g: &ConvGeom,
    inp: &[f64],
    w: &[f64],
    out: &mut [f64],
    acc: bool,
    p0: usize,
    co0: usize,
) {
    let (cin, cout, k, pw) = (g.cin, g.cout, g.k, g.in_side + 2);
    let mut a = [[0f64; C]; P];
    if acc {
        for (p, ap) in a.iter_mut().enumerate() {
            let o = (p0 + p) * cout + co0;
            ap.copy_from_slice(&out[o..o + C]);
        }
    }
    let base: [usize; P] = core::array::from_fn(|p| in_base(g, p0 + p));
    for ky in 0..k {
        for kx in 0..k {
            let toff = (ky * pw + kx) * cin;
            let xs: [&[f64]; P] = core::array::from_fn(|p| &inp[base[p] + toff..base[p] + toff + cin]);
            let tap = (ky * k + kx) * cin * cout;
            for (ci, wrow) in w[tap..tap + cin * cout].chunks_exact(cout).enumerate() {
                let Ok(wv) = <&[f64; C]>::try_from(&wrow[co0..co0 + C]) else { continue };
                for p in 0..P {
                    let x = xs[p][ci];
                    for c in 0..C {
                        a[p][c] = x.mul_add(wv[c], a[p][c]);
                    }
                }
            }
        }
    }
    for (p, ap) in a.iter().enumerate() {
        let o = (p0 + p) * cout + co0;
        out[o..o + C].copy_from_slice(ap);
    }
}

/// `dw = conv weight gradient` (overwrites `dw`, `g.weights_len()` values).
pub fn conv_wgrad(g: &ConvGeom, inp: &[f64], dout: &[f64], dw: &mut [f64]) -> bool {
    if !lens_ok(g, inp.len(), dw.len(), dout.len()) {
        return false;
    }
    super::simd::conv_wgrad64(g, inp, dout, dw);
    true
}

#[inline(always)]
pub(crate) fn conv_wgrad_body(g: &ConvGeom, inp: &[f64], dout: &[f64], dw: &mut [f64]) {
    match (g.cin % 4 == 0, g.cout % CB == 0) {
        (true, true) => wgrad_blocked::<4, CB>(g, inp, dout, dw),
        (false, true) => wgrad_blocked::<1, CB>(g, inp, dout, dw),
        (true, false) => wgrad_blocked::<4, 1>(g, inp, dout, dw),
        (false, false) => wgrad_blocked::<1, 1>(g, inp, dout, dw),
    }
}

/// `dw[tap][ci0..ci0+I][co0..co0+C]` accumulated over every output pixel in registers.
#[inline(always)]
fn wgrad_blocked<const I: usize, const C: usize>(g: &ConvGeom, inp: &[f64], dout: &[f64], dw: &mut [f64]) {
    let (cin, cout, k, pw) = (g.cin, g.cout, g.k, g.in_side + 2);
    let npx = g.out_side() * g.out_side();
    for ky in 0..k {
        for kx in 0..k {
            let toff = (ky * pw + kx) * cin;
            let tap = (ky * k + kx) * cin * cout;
            for ci0 in (0..cin).step_by(I) {
                for co0 in (0..cout).step_by(C) {
                    let mut a = [[0f64; C]; I];
                    for px in 0..npx {
                        let ib = in_base(g, px) + toff + ci0;
                        let Ok(x) = <&[f64; I]>::try_from(&inp[ib..ib + I]) else { continue };
                        let Ok(d) = <&[f64; C]>::try_from(&dout[px * cout + co0..px * cout + co0 + C]) else {
                            continue;
                        };
                        for i in 0..I {
                            for c in 0..C {
                                a[i][c] = x[i].mul_add(d[c], a[i][c]);
                            }
                        }
                    }
                    for (i, ai) in a.iter().enumerate() {
                        let o = tap + (ci0 + i) * cout + co0;
                        dw[o..o + C].copy_from_slice(ai);
                    }
                }
            }
        }
    }
}

/// `din_pad = 0; din_pad[o*s + tap] += wt[tap] . dout[o]` (`din_pad` padded, `wt`
/// `[kh][kw][cout][cin]`).
pub fn conv_dgrad(g: &ConvGeom, dout: &[f64], wt: &[f64], din_pad: &mut [f64]) -> bool {
    if !lens_ok(g, din_pad.len(), wt.len(), dout.len()) {
        return false;
    }
    super::simd::conv_dgrad64(g, dout, wt, din_pad);
    true
}

#[inline(always)]
pub(crate) fn conv_dgrad_body(g: &ConvGeom, dout: &[f64], wt: &[f64], din_pad: &mut [f64]) {
    din_pad[..g.padded_len()].fill(0.0);
    if g.cin % CB == 0 {
        dgrad_blocked::<CB>(g, dout, wt, din_pad);
    } else {
        dgrad_blocked::<1>(g, dout, wt, din_pad);
    }
}

#[inline(always)]
fn dgrad_blocked<const C: usize>(g: &ConvGeom, dout: &[f64], wt: &[f64], din_pad: &mut [f64]) {
    let npx = g.out_side() * g.out_side();
    let mut p0 = 0;
    while p0 + PB <= npx {
        dgrad_block::<PB, C>(g, dout, wt, din_pad, p0);
        p0 += PB;
    }
    while p0 < npx {
        dgrad_block::<1, C>(g, dout, wt, din_pad, p0);
        p0 += 1;
    }
}

/// Scatter `P` output pixels' gradients through every tap, `C` input channels at a time.
#[inline(always)]
fn dgrad_block<const P: usize, const C: usize>(g: &ConvGeom, dout: &[f64], wt: &[f64], din_pad: &mut [f64], p0: usize) {
    let (cin, cout, k, pw) = (g.cin, g.cout, g.k, g.in_side + 2);
    let base: [usize; P] = core::array::from_fn(|p| in_base(g, p0 + p));
    let ds: [&[f64]; P] = core::array::from_fn(|p| &dout[(p0 + p) * cout..(p0 + p + 1) * cout]);
    for ky in 0..k {
        for kx in 0..k {
            let toff = (ky * pw + kx) * cin;
            let tap = (ky * k + kx) * cout * cin;
            for ci0 in (0..cin).step_by(C) {
                let mut a = [[0f64; C]; P];
                for (co, wrow) in wt[tap..tap + cout * cin].chunks_exact(cin).enumerate() {
                    let Ok(wv) = <&[f64; C]>::try_from(&wrow[ci0..ci0 + C]) else { continue };
                    for p in 0..P {
                        let dv = ds[p][co];
                        for c in 0..C {
                            a[p][c] = dv.mul_add(wv[c], a[p][c]);
                        }
                    }
                }
                for (p, ap) in a.iter().enumerate() {
                    let o = base[p] + toff + ci0;
                    for (d, v) in din_pad[o..o + C].iter_mut().zip(ap) {
                        *d += v;
                    }
                }
            }
        }
    }
}

/// Conv weights `[kh][kw][cin][cout]` -> `[kh][kw][cout][cin]`.
pub fn transpose_taps(w: &[f64], k: usize, cin: usize, cout: usize) -> Vec<f64> {
    let mut t = vec![0.0; w.len()];
    for tap in 0..k * k {
        for ci in 0..cin {
            for co in 0..cout {
                if let (Some(d), Some(&v)) =
                    (t.get_mut((tap * cout + co) * cin + ci), w.get((tap * cin + ci) * cout + co))
                {
                    *d = v;
                }
            }
        }
    }
    t
}

/// Zero-bordered copy of an HWC map (`side^2 x c` -> `(side+2)^2 x c`).
pub fn pad(src: &[f64], side: usize, c: usize, dst: &mut [f64]) {
    let pw = side + 2;
    if src.len() < side * side * c || dst.len() < pw * pw * c {
        return;
    }
    dst[..pw * pw * c].fill(0.0);
    for y in 0..side {
        let d = ((y + 1) * pw + 1) * c;
        dst[d..d + side * c].copy_from_slice(&src[y * side * c..(y + 1) * side * c]);
    }
}

/// `dst += interior of the padded map `src`` (the gradient of [`pad`]).
pub fn add_interior(src: &[f64], side: usize, c: usize, dst: &mut [f64]) {
    let pw = side + 2;
    if dst.len() < side * side * c || src.len() < pw * pw * c {
        return;
    }
    for y in 0..side {
        let s = ((y + 1) * pw + 1) * c;
        for (d, v) in dst[y * side * c..(y + 1) * side * c].iter_mut().zip(&src[s..s + side * c]) {
            *d += v;
        }
    }
}

/// `dst (=|+=) src`.
pub fn add(src: &[f64], dst: &mut [f64], acc: bool) {
    if acc {
        dst.iter_mut().zip(src).for_each(|(d, s)| *d += s);
    } else {
        let n = dst.len().min(src.len());
        dst[..n].copy_from_slice(&src[..n]);
    }
}

/// Number of in-image taps of the 3x3 window at `i` on a side of `side`.
fn taps(i: usize, side: usize) -> usize {
    (i + 2).min(side) - i.saturating_sub(1)
}

/// Separable 3x3 box sum (zero padding): rows first, then columns, `((a + b) + c)` order.
fn box3(src: &[f64], side: usize, c: usize, rows: &mut [f64], mut f: impl FnMut(usize, f64)) {
    let row = side * c;
    for y in 0..side {
        let r = &mut rows[y * row..(y + 1) * row];
        r.copy_from_slice(&src[y * row..(y + 1) * row]);
        if y > 0 {
            r.iter_mut().zip(&src[(y - 1) * row..y * row]).for_each(|(a, v)| *a += v);
        }
        if y + 1 < side {
            r.iter_mut().zip(&src[(y + 1) * row..(y + 2) * row]).for_each(|(a, v)| *a += v);
        }
    }
    for y in 0..side {
        for x in 0..side {
            for ch in 0..c {
                let i = (y * side + x) * c + ch;
                let mut v = rows[i];
                if x > 0 {
                    v += rows[i - c];
                }
                if x + 1 < side {
                    v += rows[i + c];
                }
                f(i, v);
            }
        }
    }
}

/// `dst (=|+=) avg_pool_3x3(src)`, stride 1, pad 1, padding not counted.
pub fn pool3(src: &[f64], side: usize, c: usize, dst: &mut [f64], acc: bool) {
    let n = side * side * c;
    if c == 0 || src.len() < n || dst.len() < n {
        return;
    }
    let mut rows = vec![0.0; n];
    box3(src, side, c, &mut rows, |i, v| {
        let p = i / c;
        let inv = 1.0 / (taps(p / side, side) * taps(p % side, side)) as f64;
        if acc {
            dst[i] += v * inv;
        } else {
            dst[i] = v * inv;
        }
    });
}

/// `din += pool3^T(dout)`: `din[q] += sum_{p in window(q)} dout[p] / count(p)` (the window
/// is symmetric, so `q` is in `p`'s window exactly when `p` is in `q`'s).
pub fn pool3_backward(dout: &[f64], side: usize, c: usize, din: &mut [f64]) {
    let n = side * side * c;
    if c == 0 || dout.len() < n || din.len() < n {
        return;
    }
    let scaled: Vec<f64> = (0..n)
        .map(|i| {
            let p = i / c;
            dout[i] / (taps(p / side, side) * taps(p % side, side)) as f64
        })
        .collect();
    let mut rows = vec![0.0; n];
    box3(&scaled, side, c, &mut rows, |i, v| din[i] += v);
}

/// 2x2 average pool (stride 2) of `src` (`side^2 x c`) into the interior of a padded map
/// of side `side / 2`.
pub fn pool2_padded(src: &[f64], side: usize, c: usize, dst: &mut [f64]) {
    let h = side / 2;
    let pw = h + 2;
    if src.len() < side * side * c || dst.len() < pw * pw * c {
        return;
    }
    dst[..pw * pw * c].fill(0.0);
    for y in 0..h {
        for x in 0..h {
            let o = ((y + 1) * pw + x + 1) * c;
            let a = (2 * y * side + 2 * x) * c;
            let b = ((2 * y + 1) * side + 2 * x) * c;
            for ch in 0..c {
                dst[o + ch] = 0.25 * (src[a + ch] + src[a + c + ch] + src[b + ch] + src[b + c + ch]);
            }
        }
    }
}

/// `din += pool2^T(dpool)` with `dpool` a padded map of side `side / 2` (border ignored).
pub fn pool2_backward(dpool: &[f64], side: usize, c: usize, din: &mut [f64]) {
    let h = side / 2;
    let pw = h + 2;
    if dpool.len() < pw * pw * c || din.len() < side * side * c {
        return;
    }
    for y in 0..side {
        for x in 0..side {
            let p = ((y / 2 + 1) * pw + x / 2 + 1) * c;
            let o = (y * side + x) * c;
            for ch in 0..c {
                din[o + ch] += 0.25 * dpool[p + ch];
            }
        }
    }
}

/// `sum |w * ln(g + 1)|` (LogSynflow's per-layer term).
pub fn log_synflow_terms(w: &[f64], g: &[f64]) -> f64 {
    w.iter().zip(g).map(|(&w, &g)| (w * (g + 1.0).ln()).abs()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_runtime::rng::SplitMix64;
    use proptest::prelude::*;

    fn data(n: usize, seed: u64) -> Vec<f64> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| r.next_signed() as f64).collect()
    }

    /// `<dout, conv(x)>` is linear in `x` and `w`: its gradients are `conv_dgrad` and
    /// `conv_wgrad`. Checked against central differences (exact for a bilinear form up to
    /// rounding) at random coordinates.
    fn check_grads(g: ConvGeom, seed: u64) {
        let n_in = g.in_side * g.in_side * g.cin;
        let x = data(n_in, seed);
        let w = data(g.weights_len(), seed + 1);
        let dout = data(g.out_len(), seed + 2);
        let mut xp = vec![0.0; g.padded_len()];
        pad(&x, g.in_side, g.cin, &mut xp);
        let f = |xp: &[f64], w: &[f64]| {
            let mut o = vec![0.0; g.out_len()];
            assert!(conv_fwd(&g, xp, w, &mut o, false));
            o.iter().zip(&dout).map(|(a, b)| a * b).sum::<f64>()
        };
        let mut dw = vec![f64::NAN; g.weights_len()];
        assert!(conv_wgrad(&g, &xp, &dout, &mut dw));
        let wt = transpose_taps(&w, g.k, g.cin, g.cout);
        let mut dxp = vec![f64::NAN; g.padded_len()];
        assert!(conv_dgrad(&g, &dout, &wt, &mut dxp));
        let mut dx = vec![0.0; n_in];
        add_interior(&dxp, g.in_side, g.cin, &mut dx);
        let h = 0.5;
        for t in 0..6 {
            let i = (seed as usize + 7919 * t) % w.len();
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[i] += h;
            wm[i] -= h;
            let fd = (f(&xp, &wp) - f(&xp, &wm)) / (2.0 * h);
            assert!((fd - dw[i]).abs() < 1e-9 * (1.0 + fd.abs()), "{g:?} dw[{i}] {} vs {fd}", dw[i]);
            let j = (seed as usize + 104_729 * t) % n_in;
            let (mut xpl, mut xmi) = (x.clone(), x.clone());
            xpl[j] += h;
            xmi[j] -= h;
            let (mut a, mut b) = (vec![0.0; g.padded_len()], vec![0.0; g.padded_len()]);
            pad(&xpl, g.in_side, g.cin, &mut a);
            pad(&xmi, g.in_side, g.cin, &mut b);
            let fd = (f(&a, &w) - f(&b, &w)) / (2.0 * h);
            assert!((fd - dx[j]).abs() < 1e-9 * (1.0 + fd.abs()), "{g:?} dx[{j}] {} vs {fd}", dx[j]);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn conv_gradients_match_finite_differences(half in 1usize..5, cin in 1usize..9, cout in 1usize..9, k3 in any::<bool>(), s2 in any::<bool>(), seed in any::<u64>()) {
            check_grads(ConvGeom { in_side: half * 2, cin, cout, k: if k3 { 3 } else { 1 }, stride: if s2 { 2 } else { 1 } }, seed % 1_000_000);
        }

        #[test]
        fn pool_backwards_are_adjoints(side in 2usize..7, c in 1usize..4, seed in any::<u64>()) {
            // <dout, pool(x)> = <pool^T(dout), x> for random x and dout.
            let x = data(side * side * c, seed);
            let d = data(side * side * c, seed + 1);
            let mut px = vec![0.0; x.len()];
            pool3(&x, side, c, &mut px, false);
            let mut bt = vec![0.0; x.len()];
            pool3_backward(&d, side, c, &mut bt);
            let lhs: f64 = px.iter().zip(&d).map(|(a, b)| a * b).sum();
            let rhs: f64 = bt.iter().zip(&x).map(|(a, b)| a * b).sum();
            prop_assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()));
            if side % 2 == 0 {
                let h = side / 2;
                let dp = data((h + 2) * (h + 2) * c, seed + 2);
                let mut p2 = vec![0.0; dp.len()];
                pool2_padded(&x, side, c, &mut p2);
                let mut b2 = vec![0.0; x.len()];
                pool2_backward(&dp, side, c, &mut b2);
                // Only the interior of dp takes part.
                let mut lhs = 0.0;
                for y in 0..h { for xx in 0..h { for ch in 0..c {
                    let i = ((y + 1) * (h + 2) + xx + 1) * c + ch;
                    lhs += p2[i] * dp[i];
                }}}
                let rhs: f64 = b2.iter().zip(&x).map(|(a, b)| a * b).sum();
                prop_assert!((lhs - rhs).abs() < 1e-12 * (1.0 + lhs.abs()));
            }
        }
    }

    #[test]
    fn short_buffers_are_refused() {
        let g = ConvGeom { in_side: 4, cin: 2, cout: 2, k: 3, stride: 1 };
        assert!(!conv_fwd(&g, &[0.0; 3], &[0.0; 36], &mut [0.0; 32], false));
        assert!(!conv_wgrad(&g, &[0.0; 72], &[0.0; 32], &mut [0.0; 3]));
        assert!(!conv_dgrad(&g, &[0.0; 2], &[0.0; 36], &mut [0.0; 72]));
        assert_eq!(log_synflow_terms(&[2.0, 1.0], &[std::f64::consts::E - 1.0, 0.0]), 2.0);
    }
}
