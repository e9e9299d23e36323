//! Batched `f32` kernels of the fast NASWOT forward pass, over NHWC activations (a batch
//! of HWC images, channel innermost) and conv weights `[kh][kw][cin][cout]`, as the edge
//! runtime lays them out.
//!
//! Convolutions read a *padded* input, `(side + 2)^2 x cin` per image with a zero border,
//! written by [`pad_relu_codes`], which also packs the ReLU's binary codes (one bit per
//! unit, `relu(x) > 0`, i.e. `x > 0`) for the NASWOT kernel. Output pixel `(oy, ox)` of a
//! `k x k` conv with stride `s` reads padded pixel `(oy*s + ky + off, ox*s + kx + off)`,
//! `off = 1 - k/2`. The conv either overwrites or accumulates into its output and can also
//! return per-channel sums and sums of squares of what it wrote (the batch statistics a
//! following batch norm needs), so the output is not read again just for them.
//!
//! The conv runs a register-blocked AVX2/FMA kernel when the CPU has it (see
//! `simd`, the only `unsafe` code of the crate) and this module's portable kernel
//! otherwise; both are tested against a naive loop.

use super::simd;

/// The executor's convolution geometry: one definition of padded layout and shapes.
pub use edge_runtime::ConvGeom;

/// Whether a conv replaces or adds to its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    /// `out = conv(x)`.
    Overwrite,
    /// `out += conv(x)`.
    Accumulate,
}

/// Per-channel running sums of values written, for batch statistics.
#[derive(Clone, Debug, Default)]
pub struct ChannelStats {
    /// Sum per channel.
    pub sum: Vec<f64>,
    /// Sum of squares per channel.
    pub sumsq: Vec<f64>,
    /// Values per channel summed so far.
    pub count: usize,
}

impl ChannelStats {
    /// Zeroed sums for `c` channels.
    pub fn reset(&mut self, c: usize) {
        self.sum.clear();
        self.sum.resize(c, 0.0);
        self.sumsq.clear();
        self.sumsq.resize(c, 0.0);
        self.count = 0;
    }

    /// Batch-norm `(mean, 1 / sqrt(var + eps))` per channel in `f32` (biased variance,
    /// PyTorch's train-mode BN).
    pub fn mean_inv_std(&self, eps: f64, mean: &mut Vec<f32>, inv_std: &mut Vec<f32>) {
        let n = self.count.max(1) as f64;
        mean.clear();
        inv_std.clear();
        for (s, q) in self.sum.iter().zip(&self.sumsq) {
            let m = s / n;
            let var = (q / n - m * m).max(0.0);
            mean.push(m as f32);
            inv_std.push((1.0 / (var + eps).sqrt()) as f32);
        }
    }
}

/// Error of a kernel call with inconsistent slice lengths (a programming error upstream;
/// reported, never a panic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("kernel {kernel}: buffer of {got} floats, expected at least {expected}")]
pub struct ShapeError {
    /// Which kernel.
    pub kernel: &'static str,
    /// Floats needed.
    pub expected: usize,
    /// Floats given.
    pub got: usize,
}

fn need(kernel: &'static str, got: usize, expected: usize) -> Result<(), ShapeError> {
    if got < expected {
        Err(ShapeError { kernel, expected, got })
    } else {
        Ok(())
    }
}

/// Convolve every image of a batch: `out[b] (=|+=) conv(inp[b], w)` with `inp` padded
/// images back to back and `out` unpadded. With `stats`, the per-channel sums of the values
/// finally stored in `out` are added to it.
pub fn conv_batch(
    g: &ConvGeom,
    batch: usize,
    inp: &[f32],
    w: &[f32],
    out: &mut [f32],
    store: Store,
    mut stats: Option<&mut ChannelStats>,
) -> Result<(), ShapeError> {
    if !g.is_valid() {
        return Err(ShapeError { kernel: "conv (geometry)", expected: 0, got: 0 });
    }
    need("conv input", inp.len(), batch * g.padded_len())?;
    need("conv weights", w.len(), g.weights_len())?;
    need("conv output", out.len(), batch * g.out_len())?;
    if let Some(s) = stats.as_deref_mut() {
        need("conv stats", s.sum.len().min(s.sumsq.len()), g.cout)?;
    }
    let mut img_stats = vec![0f32; 2 * g.cout];
    let acc = store == Store::Accumulate;
    for b in 0..batch {
        let x = &inp[b * g.padded_len()..(b + 1) * g.padded_len()];
        let o = &mut out[b * g.out_len()..(b + 1) * g.out_len()];
        img_stats.fill(0.0);
        if !simd::conv_image(g, x, w, o, acc, &mut img_stats) {
            conv_image_portable(g, x, w, o, acc, &mut img_stats);
        }
        if let Some(s) = stats.as_deref_mut() {
            let (sum, sq) = img_stats.split_at(g.cout);
            for c in 0..g.cout {
                s.sum[c] += f64::from(sum[c]);
                s.sumsq[c] += f64::from(sq[c]);
            }
        }
    }
    if let Some(s) = stats {
        s.count += batch * g.out_side() * g.out_side();
    }
    Ok(())
}

/// One image, portable: `out (=|+=) conv(x, w)`; `stats[..cout]` += values stored,
/// `stats[cout..]` += their squares. Lengths are checked by the caller.
pub(crate) fn conv_image_portable(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32], acc: bool, stats: &mut [f32]) {
    let (cin, cout, k, s) = (g.cin, g.cout, g.k, g.stride);
    let (os, pw, off) = (g.out_side(), g.in_side + 2, g.off());
    let mut a = vec![0f32; cout];
    for oy in 0..os {
        for ox in 0..os {
            let o = (oy * os + ox) * cout;
            if acc {
                a.copy_from_slice(&out[o..o + cout]);
            } else {
                a.fill(0.0);
            }
            for ky in 0..k {
                for kx in 0..k {
                    let i = ((oy * s + ky + off) * pw + ox * s + kx + off) * cin;
                    let tap = (ky * k + kx) * cin * cout;
                    for ci in 0..cin {
                        let xv = x[i + ci];
                        let wr = &w[tap + ci * cout..tap + (ci + 1) * cout];
                        for (av, wv) in a.iter_mut().zip(wr) {
                            *av += xv * wv;
                        }
                    }
                }
            }
            out[o..o + cout].copy_from_slice(&a);
            for c in 0..cout {
                stats[c] += a[c];
                stats[cout + c] += a[c] * a[c];
            }
        }
    }
}

/// Padded ReLU of a batch (`src`: `batch x side^2 x c`; `dst`: `batch x (side+2)^2 x c`,
/// zero border) and, when `codes` is given, the ReLU's binary codes: per image
/// `side^2 * c / 64` words (`side^2 * c` must be a multiple of 64), bit `j % 64` of word
/// `j / 64` set when unit `j` (pixel-major, channel-minor) is positive.
pub fn pad_relu_codes(
    src: &[f32],
    batch: usize,
    side: usize,
    c: usize,
    dst: &mut [f32],
    codes: Option<&mut [u64]>,
) -> Result<(), ShapeError> {
    let n = side * side * c;
    let pw = side + 2;
    need("pad_relu input", src.len(), batch * n)?;
    need("pad_relu output", dst.len(), batch * pw * pw * c)?;
    let words = n / 64;
    if let Some(codes) = codes {
        if n % 64 != 0 {
            return Err(ShapeError { kernel: "relu codes (units not a multiple of 64)", expected: 64, got: n % 64 });
        }
        need("relu codes", codes.len(), batch * words)?;
        simd::pack_positive(&src[..batch * n], &mut codes[..batch * words]);
    }
    for b in 0..batch {
        let s = &src[b * n..(b + 1) * n];
        let d = &mut dst[b * pw * pw * c..(b + 1) * pw * pw * c];
        let row = pw * c;
        d[..row].fill(0.0);
        d[(pw - 1) * row..].fill(0.0);
        for y in 0..side {
            let dr = &mut d[(y + 1) * row..(y + 2) * row];
            dr[..c].fill(0.0);
            dr[row - c..].fill(0.0);
            for (o, &v) in dr[c..row - c].iter_mut().zip(&s[y * side * c..(y + 1) * side * c]) {
                *o = v.max(0.0);
            }
        }
    }
    Ok(())
}

/// Binary codes of `x - mean[c] > 0` (the head's ReLU after batch-statistics BN with
/// `gamma = 1, beta = 0`), per image `side^2 * c / 64` words as in [`pad_relu_codes`].
pub fn centred_codes(x: &[f32], batch: usize, n: usize, mean: &[f32], codes: &mut [u64]) -> Result<(), ShapeError> {
    let c = mean.len();
    if c == 0 || n % 64 != 0 || n % c != 0 {
        return Err(ShapeError { kernel: "centred codes (shape)", expected: 64, got: n });
    }
    need("centred codes input", x.len(), batch * n)?;
    need("centred codes output", codes.len(), batch * n / 64)?;
    let mut buf = [0f32; 64];
    for (i, (word, chunk)) in codes.iter_mut().zip(x[..batch * n].chunks_exact(64)).enumerate() {
        let base = i * 64;
        for (j, (b, &v)) in buf.iter_mut().zip(chunk).enumerate() {
            *b = v - mean[(base + j) % c];
        }
        simd::pack_positive(&buf, std::slice::from_mut(word));
    }
    Ok(())
}

/// `h[i * batch + j] += mult * hamming(codes_i, codes_j)` for `i < j` (upper triangle), the
/// codes of image `i` being `codes[i * words..(i + 1) * words]`.
pub fn add_hamming(codes: &[u64], batch: usize, words: usize, mult: u64, h: &mut [u64]) -> Result<(), ShapeError> {
    need("hamming codes", codes.len(), batch * words)?;
    need("hamming matrix", h.len(), batch * batch)?;
    simd::add_hamming(codes, batch, words, mult, h);
    Ok(())
}

/// Portable [`add_hamming`] body (lengths checked by the caller).
#[inline(always)]
pub(crate) fn add_hamming_portable(codes: &[u64], batch: usize, words: usize, mult: u64, h: &mut [u64]) {
    for i in 0..batch {
        let ci = &codes[i * words..(i + 1) * words];
        for j in i + 1..batch {
            let cj = &codes[j * words..(j + 1) * words];
            let d: u32 = ci.iter().zip(cj).map(|(a, b)| (a ^ b).count_ones()).sum();
            h[i * batch + j] += mult * u64::from(d);
        }
    }
}

/// Batch-norm with batch statistics, `gamma = 1, beta = 0`: `dst (=|+=) (src - mean[c]) *
/// inv_std[c]` over `len` values (`c = mean.len()` channels innermost).
pub fn bn_apply(src: &[f32], mean: &[f32], inv_std: &[f32], dst: &mut [f32], len: usize, store: Store) {
    let c = mean.len();
    if c == 0 || inv_std.len() != c || src.len() < len || dst.len() < len {
        return;
    }
    let pixels = src[..len].chunks_exact(c).zip(dst[..len].chunks_exact_mut(c));
    match store {
        Store::Overwrite => {
            for (s, d) in pixels {
                for (((d, &s), &m), &k) in d.iter_mut().zip(s).zip(mean).zip(inv_std) {
                    *d = (s - m) * k;
                }
            }
        }
        Store::Accumulate => {
            for (s, d) in pixels {
                for (((d, &s), &m), &k) in d.iter_mut().zip(s).zip(mean).zip(inv_std) {
                    *d += (s - m) * k;
                }
            }
        }
    }
}

/// `dst (=|+=) src` over `len` values.
pub fn copy_or_add(src: &[f32], dst: &mut [f32], len: usize, store: Store) {
    if src.len() < len || dst.len() < len {
        return;
    }
    match store {
        Store::Overwrite => dst[..len].copy_from_slice(&src[..len]),
        Store::Accumulate => dst[..len].iter_mut().zip(&src[..len]).for_each(|(d, s)| *d += s),
    }
}

/// `dst (=|+=) avg_pool_3x3(src)` per image: stride 1, padding 1, padding not counted in
/// the divisor (`count_include_pad=False`). Summed as the reference does: the three rows
/// first, then the three columns of those sums, then scaled by `1 / count`.
pub fn avg_pool3(src: &[f32], batch: usize, side: usize, c: usize, dst: &mut [f32], store: Store) {
    let n = side * side * c;
    if c == 0 || src.len() < batch * n || dst.len() < batch * n {
        return;
    }
    let taps = |i: usize| ((i + 2).min(side) - i.saturating_sub(1)) as f64;
    let mut rows = vec![0f32; n];
    let mut h = vec![0f32; c];
    for b in 0..batch {
        let s = &src[b * n..(b + 1) * n];
        let d = &mut dst[b * n..(b + 1) * n];
        let row = side * c;
        // Vertical: rows[y] = (s[y-1] + s[y]) + s[y+1] (absent rows are the zero padding).
        for y in 0..side {
            let r = &mut rows[y * row..(y + 1) * row];
            r.copy_from_slice(&s[y * row..(y + 1) * row]);
            if y > 0 {
                for (a, v) in r.iter_mut().zip(&s[(y - 1) * row..y * row]) {
                    *a += v; // = s[y-1] + s[y]: addition commutes exactly
                }
            }
            if y + 1 < side {
                r.iter_mut().zip(&s[(y + 1) * row..(y + 2) * row]).for_each(|(a, v)| *a += v);
            }
        }
        // Horizontal: (v[x-1] + v[x]) + v[x+1], times 1 / count.
        for y in 0..side {
            let r = &rows[y * row..(y + 1) * row];
            for x in 0..side {
                let inv = (1.0 / (taps(y) * taps(x))) as f32;
                h.copy_from_slice(&r[x * c..(x + 1) * c]);
                if x > 0 {
                    h.iter_mut().zip(&r[(x - 1) * c..x * c]).for_each(|(a, v)| *a += v);
                }
                if x + 1 < side {
                    h.iter_mut().zip(&r[(x + 1) * c..(x + 2) * c]).for_each(|(a, v)| *a += v);
                }
                let o = &mut d[(y * side + x) * c..(y * side + x + 1) * c];
                match store {
                    Store::Overwrite => o.iter_mut().zip(&h).for_each(|(o, v)| *o = v * inv),
                    Store::Accumulate => o.iter_mut().zip(&h).for_each(|(o, v)| *o += v * inv),
                }
            }
        }
    }
}

/// 2x2 average pool, stride 2, per image, into the interior of padded images of side
/// `side/2` (what the reduction's 1x1 shortcut conv reads; its border is never read).
pub fn avg_pool2_padded(src: &[f32], batch: usize, side: usize, c: usize, dst: &mut [f32]) {
    let h = side / 2;
    let pw = h + 2;
    let (n, pn) = (side * side * c, pw * pw * c);
    if src.len() < batch * n || dst.len() < batch * pn {
        return;
    }
    for b in 0..batch {
        let s = &src[b * n..(b + 1) * n];
        let d = &mut dst[b * pn..(b + 1) * pn];
        for y in 0..h {
            for x in 0..h {
                let o = ((y + 1) * pw + x + 1) * c;
                let a = ((2 * y) * side + 2 * x) * c;
                let e = ((2 * y + 1) * side + 2 * x) * c;
                for ch in 0..c {
                    d[o + ch] = 0.25 * (s[a + ch] + s[a + c + ch] + s[e + ch] + s[e + c + ch]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_runtime::reference::conv as conv_ref;
    use edge_runtime::rng::SplitMix64;
    use proptest::prelude::*;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SplitMix64::new(seed);
        (0..n).map(|_| r.next_signed()).collect()
    }

    /// Batch of 2 through `conv_batch` (both stores, with stats) against the reference.
    fn check_conv(g: ConvGeom, seed: u64) {
        let batch = 2;
        let n = g.in_side * g.in_side * g.cin;
        let x = data(batch * n, seed);
        let w = data(g.weights_len(), seed + 1);
        let mut padded = vec![f32::NAN; batch * g.padded_len()];
        pad_relu_codes(&x, batch, g.in_side, g.cin, &mut padded, None).unwrap();
        let relu: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        let init = data(batch * g.out_len(), seed + 2);
        for store in [Store::Overwrite, Store::Accumulate] {
            let mut out = init.clone();
            let mut st = ChannelStats::default();
            st.reset(g.cout);
            conv_batch(&g, batch, &padded, &w, &mut out, store, Some(&mut st)).unwrap();
            let mut want_sum = vec![0f64; g.cout];
            for b in 0..batch {
                let want = conv_ref(&g, &relu[b * n..(b + 1) * n], &w);
                for (i, wv) in want.iter().enumerate() {
                    let j = b * g.out_len() + i;
                    let base = if store == Store::Accumulate { init[j] as f64 } else { 0.0 };
                    let got = out[j] as f64;
                    assert!(
                        (got - base - wv).abs() <= 1e-4 * (1.0 + wv.abs()),
                        "{g:?} {store:?} at {j}: {got} vs {}",
                        base + wv
                    );
                    want_sum[i % g.cout] += got;
                }
            }
            assert_eq!(st.count, batch * g.out_side() * g.out_side());
            for (c, (got, want)) in st.sum.iter().zip(&want_sum).enumerate() {
                assert!((got - want).abs() < 1e-3 * (1.0 + want.abs()), "stats {c}");
            }
        }
    }

    #[test]
    fn conv_matches_reference_on_network_shapes() {
        for (in_side, cin, cout, k, stride) in [
            (8, 3, 16, 3, 1),
            (8, 16, 16, 1, 1),
            (8, 16, 32, 3, 2),
            (4, 64, 64, 3, 1),
            (6, 5, 7, 3, 1),
            (4, 16, 32, 1, 1),
            (32, 16, 16, 3, 1),
        ] {
            check_conv(ConvGeom { in_side, cin, cout, k, stride }, in_side as u64 * 31 + cout as u64);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn conv_matches_reference(half in 1usize..6, cin in 1usize..20, cout in 1usize..50, k3 in any::<bool>(), s2 in any::<bool>(), seed in any::<u64>()) {
            let g = ConvGeom { in_side: half * 2, cin, cout, k: if k3 { 3 } else { 1 }, stride: if s2 { 2 } else { 1 } };
            check_conv(g, seed);
        }

        #[test]
        fn hamming_matches_naive(batch in 2usize..7, words in 1usize..9, mult in 1u64..4, seed in any::<u64>()) {
            let mut r = SplitMix64::new(seed);
            let codes: Vec<u64> = (0..batch * words).map(|_| r.next_u64()).collect();
            let mut h = vec![0u64; batch * batch];
            add_hamming(&codes, batch, words, mult, &mut h).unwrap();
            for i in 0..batch { for j in 0..batch {
                let want = if i < j {
                    let mut d = 0u64;
                    for w in 0..words { for bit in 0..64 {
                        d += ((codes[i * words + w] >> bit) & 1 != (codes[j * words + w] >> bit) & 1) as u64;
                    }}
                    mult * d
                } else { 0 };
                prop_assert_eq!(h[i * batch + j], want);
            }}
        }
    }

    /// The pool sums exactly as the candle reference does (rows, then columns, left to
    /// right), so it agrees with it bit for bit.
    #[test]
    fn pool3_follows_the_reference_summation_order() {
        let (side, c) = (5usize, 3usize);
        let x = data(side * side * c, 9);
        let mut out = vec![0f32; x.len()];
        avg_pool3(&x, 1, side, c, &mut out, Store::Overwrite);
        let at = |y: isize, xx: isize, ch: usize| {
            if y < 0 || xx < 0 || y >= side as isize || xx >= side as isize {
                0.0
            } else {
                x[(y as usize * side + xx as usize) * c + ch]
            }
        };
        let taps = |i: usize| ((i + 2).min(side) - i.saturating_sub(1)) as f64;
        for y in 0..side as isize {
            for xx in 0..side as isize {
                for ch in 0..c {
                    let v = |x0: isize| (at(y - 1, x0, ch) + at(y, x0, ch)) + at(y + 1, x0, ch);
                    let sum = (v(xx - 1) + v(xx)) + v(xx + 1);
                    let want = sum * (1.0 / (taps(y as usize) * taps(xx as usize))) as f32;
                    assert_eq!(out[(y as usize * side + xx as usize) * c + ch].to_bits(), want.to_bits());
                }
            }
        }
    }

    proptest! {
        #[test]
        fn pool3_matches_naive(batch in 1usize..3, side in 1usize..9, c in 1usize..6, seed in any::<u64>()) {
            let x = data(batch * side * side * c, seed);
            let mut out = vec![1.0f32; x.len()];
            avg_pool3(&x, batch, side, c, &mut out, Store::Accumulate);
            let n = side as isize;
            for b in 0..batch { for y in 0..n { for xx in 0..n { for ch in 0..c {
                let (mut s, mut cnt) = (0f64, 0);
                for dy in -1..=1 { for dx in -1..=1 {
                    let (yy, xq) = (y + dy, xx + dx);
                    if yy >= 0 && xq >= 0 && yy < n && xq < n {
                        s += x[b * side * side * c + ((yy * n + xq) as usize) * c + ch] as f64;
                        cnt += 1;
                    }
                }}
                let got = out[b * side * side * c + ((y * n + xx) as usize) * c + ch] - 1.0;
                prop_assert!((got as f64 - s / cnt as f64).abs() < 1e-5);
            }}}}
        }
    }

    #[test]
    fn simd_codes_equal_portable_codes() {
        let x = data(64 * 9, 5);
        let mut a = vec![0u64; 9];
        let mut b = vec![0u64; 9];
        simd::pack_positive(&x, &mut a);
        simd::pack_positive_portable(&x, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn codes_pack_positive_units_in_order() {
        // 1 image, side 4, 4 channels = 64 units; positive at units 0, 5 and 63 only.
        let mut x = vec![-1.0f32; 64];
        x[0] = 0.5;
        x[5] = 2.0;
        x[63] = 1e-30;
        x[7] = 0.0; // zero is not positive
        let mut dst = vec![7.0f32; 36 * 4];
        let mut codes = [0u64; 1];
        pad_relu_codes(&x, 1, 4, 4, &mut dst, Some(&mut codes)).unwrap();
        assert_eq!(codes[0], 1 | 1 << 5 | 1 << 63);
        // Padded: border zero, interior relu.
        assert_eq!(dst[..24], [0.0; 24]);
        assert_eq!(dst[(6 + 1) * 4..(6 + 1) * 4 + 4], [0.5, 0.0, 0.0, 0.0]);
        // Centred codes: x - mean > 0 with mean 1 on channel 1 only.
        let mean = [0.0f32, 1.0, 0.0, 0.0];
        let mut c2 = [0u64; 1];
        centred_codes(&x, 1, 64, &mean, &mut c2).unwrap();
        assert_eq!(c2[0], 1 | 1 << 5 | 1 << 63); // unit 5 is channel 1: 2 - 1 > 0
                                                 // Wrong lengths are errors, not panics.
        assert!(pad_relu_codes(&x, 2, 4, 4, &mut dst, None).is_err());
        assert!(pad_relu_codes(&x[..48], 1, 2, 12, &mut dst, Some(&mut codes)).is_err());
        assert!(add_hamming(&codes, 2, 1, 1, &mut [0; 4]).is_err());
    }

    #[test]
    fn pools_and_bn() {
        // avg_pool3 on a constant map is the constant (padding not counted).
        let x = vec![0.75f32; 2 * 5 * 5 * 3];
        let mut out = vec![1.0f32; x.len()];
        avg_pool3(&x, 2, 5, 3, &mut out, Store::Accumulate);
        assert!(out.iter().all(|&v| (v - 1.75).abs() < 1e-6));
        // avg_pool2 into a padded buffer.
        let mut d = vec![9.0f32; 9];
        avg_pool2_padded(&[1.0, 2.0, 3.0, 6.0], 1, 2, 1, &mut d);
        assert_eq!(d[4], 3.0);
        // BN stats and application: channel values {1, 3} -> mean 2, var 1.
        let mut st = ChannelStats::default();
        st.reset(1);
        st.sum[0] = 4.0;
        st.sumsq[0] = 10.0;
        st.count = 2;
        let (mut m, mut s) = (Vec::new(), Vec::new());
        st.mean_inv_std(0.0, &mut m, &mut s);
        assert_eq!((m[0], s[0]), (2.0, 1.0));
        let mut y = [0.0f32; 2];
        bn_apply(&[1.0, 3.0], &m, &s, &mut y, 2, Store::Overwrite);
        assert_eq!(y, [-1.0, 1.0]);
    }
}
