//! Run-time dispatch to CPU-specific code: the only `unsafe` in this crate.
//!
//! * [`conv_image`]: an AVX2 + FMA convolution kernel blocked over 6 output pixels x 16
//!   output channels (12 `ymm` accumulators, weights loaded once per input channel and
//!   reused across the 6 pixels, inputs broadcast from memory), for `cout % 16 == 0`.
//!   Returns `false` (and does nothing) when the CPU lacks AVX2/FMA or the shape does not
//!   fit, so the caller runs the portable kernel.
//! * [`gemm`]: the same register blocking as a matrix product (Winograd's 16 GEMMs).
//! * [`pack_positive`]: ReLU codes, 8 units per compare-and-movemask.
//! * [`add_hamming`]: the portable popcount loop compiled with `popcnt` enabled.
//! * [`conv_fwd64`], [`conv_wgrad64`], [`conv_dgrad64`]: the portable `f64` kernels of
//!   [`super::kernels64`] compiled a second time with AVX2 + FMA enabled.
//!
//! Every public function here is safe: it checks CPU features at run time and slice
//! lengths before touching memory through raw pointers.

use super::kernels::{add_hamming_portable, ConvGeom};
use super::kernels64::{conv_dgrad_body, conv_fwd_body, conv_wgrad_body};

fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// [`super::kernels64::conv_fwd`]'s body (lengths checked by the caller).
pub fn conv_fwd64(g: &ConvGeom, inp: &[f64], w: &[f64], out: &mut [f64], acc: bool) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 and FMA were detected; the body is safe code.
        return unsafe { x86::conv_fwd64(g, inp, w, out, acc) };
    }
    conv_fwd_body(g, inp, w, out, acc)
}

/// [`super::kernels64::conv_wgrad`]'s body (lengths checked by the caller).
pub fn conv_wgrad64(g: &ConvGeom, inp: &[f64], dout: &[f64], dw: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 and FMA were detected; the body is safe code.
        return unsafe { x86::conv_wgrad64(g, inp, dout, dw) };
    }
    conv_wgrad_body(g, inp, dout, dw)
}

/// [`super::kernels64::conv_dgrad`]'s body (lengths checked by the caller).
pub fn conv_dgrad64(g: &ConvGeom, dout: &[f64], wt: &[f64], din_pad: &mut [f64]) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: AVX2 and FMA were detected; the body is safe code.
        return unsafe { x86::conv_dgrad64(g, dout, wt, din_pad) };
    }
    conv_dgrad_body(g, dout, wt, din_pad)
}

/// One image: `out (=|+=) conv(x, w)`, `stats[..cout]` += stored values, `stats[cout..]` +=
/// their squares. `false` when not handled (no AVX2/FMA, `cout % 16 != 0`, or short
/// slices); the caller then runs the portable kernel.
pub fn conv_image(g: &ConvGeom, x: &[f32], w: &[f32], out: &mut [f32], acc: bool, stats: &mut [f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let fits = g.is_valid()
            && g.cout % 16 == 0
            && x.len() >= g.padded_len()
            && w.len() >= g.weights_len()
            && out.len() >= g.out_len()
            && stats.len() >= 2 * g.cout;
        if fits && std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: AVX2 and FMA were detected; every length the kernel indexes up to was
            // checked just above (padded input, weights, output, stats), and a valid geometry
            // keeps every tap inside the padded image (see `x86::conv_image`).
            unsafe { x86::conv_image(g, x.as_ptr(), w.as_ptr(), out.as_mut_ptr(), acc, stats) };
            return true;
        }
    }
    let _ = (g, x, w, out, acc, stats);
    false
}

/// `c = a b` with `a` `m x k`, `b` `k x n`, `c` `m x n`, row-major (AVX2 + FMA when the CPU has
/// them and `n % 16 == 0`; the portable loop otherwise, and on short slices).
pub fn gemm(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let fits = n % 16 == 0 && a.len() >= m * k && b.len() >= k * n && c.len() >= m * n;
        if fits && has_avx2_fma() {
            // SAFETY: AVX2 and FMA were detected and the three lengths checked just above.
            unsafe { x86::gemm(a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), m, k, n) };
            return;
        }
    }
    if a.len() >= m * k && b.len() >= k * n && c.len() >= m * n {
        super::winograd::gemm_portable(a, b, c, m, k, n);
    }
}

/// `codes[w]` bit `i` set when `src[64 w + i] > 0`, for `w < min(codes.len(), src.len() / 64)`.
pub fn pack_positive(src: &[f32], codes: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            let words = codes.len().min(src.len() / 64);
            // SAFETY: AVX2 was detected; the kernel reads `src[..64 * words]` and writes
            // `codes[..words]`, both within bounds by the `min` above.
            unsafe { x86::pack_positive(src.as_ptr(), codes.as_mut_ptr(), words) };
            return;
        }
    }
    pack_positive_portable(src, codes);
}

/// Portable [`pack_positive`].
pub(crate) fn pack_positive_portable(src: &[f32], codes: &mut [u64]) {
    for (word, chunk) in codes.iter_mut().zip(src.chunks_exact(64)) {
        let mut w = 0u64;
        for (i, &v) in chunk.iter().enumerate() {
            w |= u64::from(v > 0.0) << i;
        }
        *word = w;
    }
}

/// `h[i * batch + j] += mult * hamming(i, j)` for `i < j`; lengths checked by the caller.
pub fn add_hamming(codes: &[u64], batch: usize, words: usize, mult: u64, h: &mut [u64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("popcnt") {
            // SAFETY: popcnt was detected; the body is the safe portable loop.
            unsafe { x86::add_hamming_popcnt(codes, batch, words, mult, h) };
            return;
        }
    }
    add_hamming_portable(codes, batch, words, mult, h);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::kernels::{add_hamming_portable, ConvGeom};
    use super::super::kernels64::{conv_dgrad_body, conv_fwd_body, conv_wgrad_body};
    use core::arch::x86_64::*;

    /// Pixels per register block.
    const PB: usize = 6;

    #[target_feature(enable = "popcnt")]
    pub unsafe fn add_hamming_popcnt(codes: &[u64], batch: usize, words: usize, mult: u64, h: &mut [u64]) {
        add_hamming_portable(codes, batch, words, mult, h)
    }

    /// # Safety
    /// AVX2 present; `src` holds `64 * words` floats and `codes` `words` words.
    #[target_feature(enable = "avx2")]
    pub unsafe fn pack_positive(src: *const f32, codes: *mut u64, words: usize) {
        let zero = _mm256_setzero_ps();
        for w in 0..words {
            let p = src.add(64 * w);
            let mut bits = 0u64;
            for q in 0..8 {
                let v = _mm256_loadu_ps(p.add(8 * q));
                let m = _mm256_movemask_ps(_mm256_cmp_ps::<_CMP_GT_OQ>(v, zero)) as u32 as u64;
                bits |= m << (8 * q);
            }
            *codes.add(w) = bits;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn conv_fwd64(g: &ConvGeom, inp: &[f64], w: &[f64], out: &mut [f64], acc: bool) {
        conv_fwd_body(g, inp, w, out, acc)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn conv_wgrad64(g: &ConvGeom, inp: &[f64], dout: &[f64], dw: &mut [f64]) {
        conv_wgrad_body(g, inp, dout, dw)
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn conv_dgrad64(g: &ConvGeom, dout: &[f64], wt: &[f64], din_pad: &mut [f64]) {
        conv_dgrad_body(g, dout, wt, din_pad)
    }

    /// # Safety
    /// AVX2 and FMA present; `a`, `b`, `c` hold `m k`, `k n`, `m n` floats; `n % 16 == 0`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn gemm(a: *const f32, b: *const f32, c: *mut f32, m: usize, k: usize, n: usize) {
        for co0 in (0..n).step_by(16) {
            let mut r0 = 0;
            while r0 + PB <= m {
                gemm_block::<PB>(a, b, c, k, n, r0, co0);
                r0 += PB;
            }
            match m - r0 {
                1 => gemm_block::<1>(a, b, c, k, n, r0, co0),
                2 => gemm_block::<2>(a, b, c, k, n, r0, co0),
                3 => gemm_block::<3>(a, b, c, k, n, r0, co0),
                4 => gemm_block::<4>(a, b, c, k, n, r0, co0),
                5 => gemm_block::<5>(a, b, c, k, n, r0, co0),
                _ => {}
            }
        }
    }

    /// Rows `r0..r0+P` x columns `co0..co0+16` of `c = a b`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gemm_block<const P: usize>(
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        k: usize,
        n: usize,
        r0: usize,
        co0: usize,
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; P];
        let rows: [*const f32; P] = core::array::from_fn(|p| a.add((r0 + p) * k));
        for q in 0..k {
            let bp = b.add(q * n + co0);
            let w0 = _mm256_loadu_ps(bp);
            let w1 = _mm256_loadu_ps(bp.add(8));
            for p in 0..P {
                let x = _mm256_broadcast_ss(&*rows[p].add(q));
                acc[p][0] = _mm256_fmadd_ps(x, w0, acc[p][0]);
                acc[p][1] = _mm256_fmadd_ps(x, w1, acc[p][1]);
            }
        }
        for (p, ap) in acc.iter().enumerate() {
            let cp = c.add((r0 + p) * n + co0);
            _mm256_storeu_ps(cp, ap[0]);
            _mm256_storeu_ps(cp.add(8), ap[1]);
        }
    }

    /// Raw view of one image's conv.
    struct Ctx {
        x: *const f32,
        w: *const f32,
        out: *mut f32,
        cin: usize,
        cout: usize,
        k: usize,
        s: usize,
        os: usize,
        pw: usize,
        off: usize,
        acc: bool,
    }

    /// # Safety
    /// AVX2 and FMA present; `g` valid with `cout % 16 == 0`; `x` holds `g.padded_len()`,
    /// `w` `g.weights_len()`, `out` `g.out_len()` floats and `stats` `2 * cout`. Every read
    /// `x[((oy*s + ky + off) * pw + ox*s + kx + off) * cin + ci]` stays below
    /// `padded_len` because `(os - 1) * s + (k - 1) + off <= in_side + 1`.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn conv_image(g: &ConvGeom, x: *const f32, w: *const f32, out: *mut f32, acc: bool, stats: &mut [f32]) {
        let c = Ctx {
            x,
            w,
            out,
            cin: g.cin,
            cout: g.cout,
            k: g.k,
            s: g.stride,
            os: g.out_side(),
            pw: g.in_side + 2,
            off: g.off(),
            acc,
        };
        let npx = c.os * c.os;
        for co0 in (0..c.cout).step_by(16) {
            let mut st = [_mm256_setzero_ps(); 4];
            let mut p0 = 0;
            while p0 + PB <= npx {
                block::<PB>(&c, p0, co0, &mut st);
                p0 += PB;
            }
            match npx - p0 {
                1 => block::<1>(&c, p0, co0, &mut st),
                2 => block::<2>(&c, p0, co0, &mut st),
                3 => block::<3>(&c, p0, co0, &mut st),
                4 => block::<4>(&c, p0, co0, &mut st),
                5 => block::<5>(&c, p0, co0, &mut st),
                _ => {}
            }
            let mut tmp = [0f32; 8];
            for (v, dst) in st.iter().zip([co0, co0 + 8, c.cout + co0, c.cout + co0 + 8]) {
                _mm256_storeu_ps(tmp.as_mut_ptr(), *v);
                for (s, t) in stats[dst..dst + 8].iter_mut().zip(tmp) {
                    *s += t;
                }
            }
        }
    }

    /// `P` consecutive output pixels (row-major, may cross rows) x 16 channels from `co0`.
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block<const P: usize>(c: &Ctx, p0: usize, co0: usize, st: &mut [__m256; 4]) {
        let mut a = [[_mm256_setzero_ps(); 2]; P];
        let out = c.out.add(p0 * c.cout + co0);
        if c.acc {
            for (p, ap) in a.iter_mut().enumerate() {
                ap[0] = _mm256_loadu_ps(out.add(p * c.cout));
                ap[1] = _mm256_loadu_ps(out.add(p * c.cout + 8));
            }
        }
        let mut base = [c.x; P];
        for (p, b) in base.iter_mut().enumerate() {
            let px = p0 + p;
            let (oy, ox) = (px / c.os, px % c.os);
            *b = c.x.add(((oy * c.s + c.off) * c.pw + ox * c.s + c.off) * c.cin);
        }
        for ky in 0..c.k {
            for kx in 0..c.k {
                let toff = (ky * c.pw + kx) * c.cin;
                let wt = c.w.add((ky * c.k + kx) * c.cin * c.cout + co0);
                for ci in 0..c.cin {
                    let wp = wt.add(ci * c.cout);
                    let w0 = _mm256_loadu_ps(wp);
                    let w1 = _mm256_loadu_ps(wp.add(8));
                    for p in 0..P {
                        let xv = _mm256_broadcast_ss(&*base[p].add(toff + ci));
                        a[p][0] = _mm256_fmadd_ps(xv, w0, a[p][0]);
                        a[p][1] = _mm256_fmadd_ps(xv, w1, a[p][1]);
                    }
                }
            }
        }
        for (p, ap) in a.iter().enumerate() {
            _mm256_storeu_ps(out.add(p * c.cout), ap[0]);
            _mm256_storeu_ps(out.add(p * c.cout + 8), ap[1]);
            st[0] = _mm256_add_ps(st[0], ap[0]);
            st[1] = _mm256_add_ps(st[1], ap[1]);
            st[2] = _mm256_fmadd_ps(ap[0], ap[0], st[2]);
            st[3] = _mm256_fmadd_ps(ap[1], ap[1], st[3]);
        }
    }
}
