//! Compute kernels over HWC activations. Every kernel accumulates into its output
//! (`out += ...`); biases are written once by [`fill_channels`] before the convs run.
//!
//! Convolutions read a *padded* input: `(side + 2) x (side + 2) x cin` with a zero border,
//! written by [`pad_relu`] / [`pad_copy`]. Because every NB201 conv is ReLU-Conv-BN, the
//! padded ReLU of a node is computed once and shared by all conv edges leaving it, and the
//! conv kernel needs no bounds tests. Output pixel `(oy, ox)` of a `k x k` conv with stride
//! `s` reads padded pixel `(oy*s + ky + off, ox*s + kx + off)` with `off = 1 - k/2`.
//!
//! The portable conv is blocked over 4 output pixels x 16 (or 8) output channels. On
//! x86-64 hosts (feature `std`) a kernel for the CPU's best instruction set is chosen at
//! run time (`simd`: AVX-512F+FMA, else AVX2+FMA, else the portable code): `P` pixels x
//! 2 vectors of channels with the accumulators in registers and explicit fused
//! multiply-adds; calling it is the only `unsafe` site outside that module. On the
//! Cortex-M4F (`arm` with the hard-float ABI) the conv is assembly (`m4f`: 1 pixel x 16
//! channels, accumulators in registers, multi-register loads) for the channels up to a
//! multiple of 16, and the portable 4-pixel x 4-channel blocks for the rest; the assembly
//! is checked against the reference on the board by `crate::check` (run there by
//! `firmware-bench`'s `kernel-check`). Shapes are validated by the plan; each kernel re-checks its slice lengths and does
//! nothing on a mismatch rather than panic.

/// Geometry of one convolution over a padded input (`(in_side + 2)^2 x cin`, zero border),
/// output `out_side^2 x cout`, weights `[k][k][cin][cout]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Unpadded input side.
    pub in_side: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel side: 1 or 3.
    pub k: usize,
    /// Stride: 1 or 2.
    pub stride: usize,
}

impl ConvGeom {
    /// Output side.
    pub const fn out_side(&self) -> usize {
        self.in_side / self.stride
    }
    /// Floats of one padded input image.
    pub const fn padded_len(&self) -> usize {
        (self.in_side + 2) * (self.in_side + 2) * self.cin
    }
    /// Floats of the weights.
    pub const fn weights_len(&self) -> usize {
        self.k * self.k * self.cin * self.cout
    }
    /// Floats of one output image.
    pub const fn out_len(&self) -> usize {
        self.out_side() * self.out_side() * self.cout
    }
    /// Offset of tap 0 in padded coordinates (`1 - k/2`).
    pub const fn off(&self) -> usize {
        1 - self.k / 2
    }
    /// True for the geometries the network uses: k in {1, 3}, stride 1, or 2 on an even
    /// side, non-zero sizes.
    pub const fn is_valid(&self) -> bool {
        (self.k == 1 || self.k == 3)
            && (self.stride == 1 || (self.stride == 2 && self.in_side.is_multiple_of(2)))
            && self.in_side > 0
            && self.cin > 0
            && self.cout > 0
    }
}

const PB: usize = 4;

/// A plain portable loop that the compiler vectorises. Its `run` is `#[inline(always)]`,
/// so [`vectorised`] compiles it inside a function with the CPU's vector features on.
trait Loop {
    fn run(self);
}

/// Run `l` compiled for this CPU's best vector instructions (on x86-64 hosts; elsewhere
/// as it is).
#[inline(always)]
fn vectorised(l: impl Loop) {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        // SAFETY: `isa()` is what this CPU was detected to support; `l` is safe code.
        unsafe { simd::run(simd::isa(), l) };
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    l.run();
}

/// `out += conv(inp, w)`; `inp` padded, `w` is `[k][k][cin][cout]`.
pub(crate) fn conv_acc(g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32]) {
    if inp.len() < g.padded_len() || w.len() < g.weights_len() || out.len() < g.out_len() || g.k > 3 {
        return;
    }
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    {
        // SAFETY: `isa()` is what this CPU was detected to support, and the slice lengths
        // were checked against the geometry above.
        unsafe { simd::conv(simd::isa(), g, inp, w, out) };
    }
    #[cfg(not(all(feature = "std", target_arch = "x86_64")))]
    conv_dispatch(g, inp, w, out);
}

#[inline(always)]
fn conv_dispatch(g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32]) {
    if cfg!(target_arch = "arm") {
        // The Cortex-M4F's assembly kernel does the channels up to a multiple of 16.
        #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
        let done = m4f::conv(g, inp, w, out);
        #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
        let done = 0;
        conv_4x4(g, inp, w, out, done);
    } else if g.cout.is_multiple_of(16) {
        conv_blocked::<16>(g, inp, w, out);
    } else if g.cout.is_multiple_of(8) {
        conv_blocked::<8>(g, inp, w, out);
    } else {
        conv_blocked::<1>(g, inp, w, out);
    }
}

#[inline(always)]
fn conv_blocked<const CB: usize>(g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32]) {
    let os = g.out_side();
    for oy in 0..os {
        let mut ox = 0;
        while ox + PB <= os {
            conv_block::<PB, CB>(g, inp, w, out, oy, ox, 0);
            ox += PB;
        }
        while ox < os {
            conv_block::<1, CB>(g, inp, w, out, oy, ox, 0);
            ox += 1;
        }
    }
}

#[inline(always)]
fn conv_block<const P: usize, const CB: usize>(
    g: &ConvGeom,
    inp: &[f32],
    w: &[f32],
    out: &mut [f32],
    oy: usize,
    ox0: usize,
    co_start: usize,
) {
    let (cin, cout, k, s) = (g.cin, g.cout, g.k, g.stride);
    let pw = g.in_side + 2;
    let off = g.off();
    let os = g.out_side();
    let mut co0 = co_start;
    while co0 + CB <= cout {
        let mut acc = [[0f32; CB]; P];
        for (p, a) in acc.iter_mut().enumerate() {
            let o = (oy * os + ox0 + p) * cout + co0;
            a.copy_from_slice(&out[o..o + CB]);
        }
        for ky in 0..k {
            let row = oy * s + ky + off;
            for kx in 0..k {
                let tap = (ky * k + kx) * cin * cout;
                let wt = &w[tap..tap + cin * cout];
                let xs: [&[f32]; P] = core::array::from_fn(|p| {
                    let i = (row * pw + (ox0 + p) * s + kx + off) * cin;
                    &inp[i..i + cin]
                });
                for (ci, wrow) in wt.chunks_exact(cout).enumerate() {
                    let Ok(wv) = <&[f32; CB]>::try_from(&wrow[co0..co0 + CB]) else {
                        continue;
                    };
                    for p in 0..P {
                        let x = xs[p][ci];
                        for c in 0..CB {
                            acc[p][c] += x * wv[c];
                        }
                    }
                }
            }
        }
        for (p, a) in acc.iter().enumerate() {
            let o = (oy * os + ox0 + p) * cout + co0;
            out[o..o + CB].copy_from_slice(a);
        }
        co0 += CB;
    }
}

/// The portable conv for cores with 32 single-precision registers and no vectors, over
/// output channels `co_start..cout`: blocks of 4 output pixels x 4 output channels, the 16
/// accumulators, 4 weights and 4 inputs all in registers, weights streamed; written out so
/// that it stays in registers at any optimisation level. Channels past a multiple of 4 and
/// pixels past a multiple of 4 take the 1-channel blocks. On the Cortex-M4F it does the
/// channels past the last multiple of 16 (the assembly kernel, [`m4f`], does the rest).
pub(crate) fn conv_4x4(g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32], co_start: usize) {
    if co_start >= g.cout {
        return;
    }
    let os = g.out_side();
    let c4 = g.cout - (g.cout - co_start) % 4;
    for oy in 0..os {
        let mut ox = 0;
        while ox + 4 <= os {
            let mut co0 = co_start;
            while co0 < c4 {
                conv_block_4x4(g, inp, w, out, oy, ox, co0);
                co0 += 4;
            }
            conv_block::<4, 1>(g, inp, w, out, oy, ox, c4);
            ox += 4;
        }
        while ox < os {
            conv_block::<1, 1>(g, inp, w, out, oy, ox, co_start);
            ox += 1;
        }
    }
}

/// 4 pixels of row `oy` from `ox0` x output channels `co0..co0 + 4`.
#[inline(always)]
fn conv_block_4x4(g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32], oy: usize, ox0: usize, co0: usize) {
    let (cin, cout, k, s) = (g.cin, g.cout, g.k, g.stride);
    let (pw, off, os) = (g.in_side + 2, g.off(), g.out_side());
    let o = (oy * os + ox0) * cout + co0;
    let acc = |p: usize| out.get(o + p * cout..o + p * cout + 4).and_then(|a| <[f32; 4]>::try_from(a).ok());
    let (Some(mut a0), Some(mut a1), Some(mut a2), Some(mut a3)) = (acc(0), acc(1), acc(2), acc(3)) else {
        return;
    };
    for ky in 0..k {
        let row = oy * s + ky + off;
        for kx in 0..k {
            let tap = (ky * k + kx) * cin * cout;
            let x = |p: usize| {
                let i = (row * pw + (ox0 + p) * s + kx + off) * cin;
                inp.get(i..i + cin)
            };
            let (Some(x0), Some(x1), Some(x2), Some(x3), Some(wt)) =
                (x(0), x(1), x(2), x(3), w.get(tap + co0..tap + cin * cout))
            else {
                return;
            };
            // Row `ci` of the tap's weights starts at `ci * cout` of `wt` (which starts at `co0`).
            for ((((wr, &v0), &v1), &v2), &v3) in wt.chunks(cout).zip(x0).zip(x1).zip(x2).zip(x3) {
                let Some(wv) = wr.first_chunk::<4>() else { break };
                macro_rules! mac4 {
                    ($a:ident, $v:ident) => {
                        $a[0] += $v * wv[0];
                        $a[1] += $v * wv[1];
                        $a[2] += $v * wv[2];
                        $a[3] += $v * wv[3];
                    };
                }
                mac4!(a0, v0);
                mac4!(a1, v1);
                mac4!(a2, v2);
                mac4!(a3, v3);
            }
        }
    }
    for (p, a) in [a0, a1, a2, a3].iter().enumerate() {
        out[o + p * cout..o + p * cout + 4].copy_from_slice(a);
    }
}

#[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
mod m4f {
    //! The Cortex-M4F conv: one output pixel x 16 output channels per block, in assembly
    //! so that the 16 accumulators (`s0-s15`) stay in registers and every load moves as
    //! many floats as one instruction can. Per input channel: the 16 weights in two
    //! `vldmia` of 8 (`s16-s23`), then 16 `vmla.f32`; the input values 4 channels at a time
    //! with one `vldmia` (`s24-s27`). For one kernel row `ky`, the `k` taps' inputs are
    //! `k * cin` consecutive floats of the padded input and their weights `k * cin`
    //! consecutive rows of `[k][k][cin][cout]`, so a row of taps is one loop with no
    //! per-tap set-up. That is 75 instructions per 64 MACs (4 input channels) when `cout`
    //! is 16, 79 otherwise (one `add` per channel to skip the other blocks' weights), plus
    //! 7 per kernel row and the block's load and store of its 16 accumulators (one
    //! `vldmia`, one `vstmia`).
    //!
    //! The order of the sums is the portable kernels' (`ky`, `kx`, `ci`) and `vmla.f32`
    //! rounds the product and the sum like `a += x * w`, so the results are those of the
    //! portable code.
    use super::ConvGeom;
    use core::arch::asm;

    /// `vmla.f32 $a, $x, $w`: `$a += $x * $w`.
    macro_rules! mla {
        ($a:literal, $x:literal, $w:literal) => {
            concat!("vmla.f32 ", $a, ", ", $x, ", ", $w, "\n")
        };
    }

    /// One input channel of the block: `$x` times the 16 weights at `w` (advanced past
    /// them) into `s0-s15`, then `$skip` (an `add` to the next weight row, or nothing).
    macro_rules! channel {
        ($x:literal, $skip:literal) => {
            concat!(
                "vldmia {w}!, {{s16-s23}}\n",
                mla!("s0", $x, "s16"),
                mla!("s1", $x, "s17"),
                mla!("s2", $x, "s18"),
                mla!("s3", $x, "s19"),
                mla!("s4", $x, "s20"),
                mla!("s5", $x, "s21"),
                mla!("s6", $x, "s22"),
                mla!("s7", $x, "s23"),
                "vldmia {w}!, {{s16-s23}}\n",
                mla!("s8", $x, "s16"),
                mla!("s9", $x, "s17"),
                mla!("s10", $x, "s18"),
                mla!("s11", $x, "s19"),
                mla!("s12", $x, "s20"),
                mla!("s13", $x, "s21"),
                mla!("s14", $x, "s22"),
                mla!("s15", $x, "s23"),
                $skip,
            )
        };
    }

    /// `acc[0..16] += sum over ky < k, j < n of x[ky * row + j] * w[(ky * n + j) * cout ..][0..16]`,
    /// with `n = k * cin` and `row` the padded input's row: the whole block, from the
    /// accumulators' load to their store.
    macro_rules! block {
        ($skip:literal, $x:ident, $w:ident, $acc:ident, $k:ident, $n:ident, $xskip:ident $(, $wskip:ident)?) => {
            asm!(
                "vldmia {acc}, {{s0-s15}}",
                "2:",
                "lsrs {cnt}, {n}, #2",
                "beq 4f",
                "3:",
                "vldmia {x}!, {{s24-s27}}",
                channel!("s24", $skip),
                channel!("s25", $skip),
                channel!("s26", $skip),
                channel!("s27", $skip),
                "subs {cnt}, {cnt}, #1",
                "bne 3b",
                "4:",
                "ands {cnt}, {n}, #3",
                "beq 6f",
                "5:",
                "vldmia {x}!, {{s24}}",
                channel!("s24", $skip),
                "subs {cnt}, {cnt}, #1",
                "bne 5b",
                "6:",
                "add {x}, {x}, {xskip}",
                "subs {ky}, {ky}, #1",
                "bne 2b",
                "vstmia {acc}, {{s0-s15}}",
                x = inout(reg) $x => _,
                w = inout(reg) $w => _,
                ky = inout(reg) $k => _,
                cnt = out(reg) _,
                acc = in(reg) $acc,
                n = in(reg) $n,
                xskip = in(reg) $xskip,
                $(wskip = in(reg) $wskip,)?
                out("s0") _, out("s1") _, out("s2") _, out("s3") _,
                out("s4") _, out("s5") _, out("s6") _, out("s7") _,
                out("s8") _, out("s9") _, out("s10") _, out("s11") _,
                out("s12") _, out("s13") _, out("s14") _, out("s15") _,
                out("s16") _, out("s17") _, out("s18") _, out("s19") _,
                out("s20") _, out("s21") _, out("s22") _, out("s23") _,
                out("s24") _, out("s25") _, out("s26") _, out("s27") _,
                options(nostack),
            )
        };
    }

    /// `out += conv(inp, w)` for the output channels `0..cout - cout % 16`; returns the
    /// first channel it did not do (0 if it did none: an unusual geometry, or buffers
    /// too short for it), for the portable code to finish.
    pub(super) fn conv(g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32]) -> usize {
        let (cin, cout, k, s) = (g.cin, g.cout, g.k, g.stride);
        let c16 = cout - cout % 16;
        if c16 == 0 || cin == 0 || s == 0 || !(1..=3).contains(&k) || g.in_side == 0 {
            return 0;
        }
        let (pw, off, os) = (g.in_side + 2, g.off(), g.out_side());
        if os == 0 || (os - 1) * s + off + k > pw {
            return 0;
        }
        // What the last block reads and writes; every other block stays below it.
        let x_end = (((os - 1) * s + off + k - 1) * pw + (os - 1) * s + off + k) * cin;
        let w_end = (k * k * cin - 1) * cout + c16;
        if inp.len() < x_end || w.len() < w_end || out.len() < os * os * cout {
            return 0;
        }
        let n = k * cin;
        let xskip = (pw - k) * cin * 4;
        let wskip = (cout - 16) * 4;
        let (xp, wp, op) = (inp.as_ptr(), w.as_ptr(), out.as_mut_ptr());
        for oy in 0..os {
            for ox in 0..os {
                let xi = ((oy * s + off) * pw + ox * s + off) * cin;
                let o = (oy * os + ox) * cout;
                let mut co0 = 0;
                while co0 < c16 {
                    // SAFETY: the block reads `k` rows of `n` floats from `xi`, `pw * cin`
                    // apart (below `x_end`), the weight rows `0..k * k * cin` at columns
                    // `co0..co0 + 16` (below `w_end`), and reads and writes `out[o + co0..][..16]`
                    // (`o + co0 + 16 <= os * os * cout`); all were checked above. It uses
                    // only the registers it names (s16-s23 are callee-saved: the compiler
                    // saves them) and no stack.
                    unsafe {
                        let (x, wt, acc) = (xp.add(xi), wp.add(co0), op.add(o + co0));
                        if cout == 16 {
                            block!("", x, wt, acc, k, n, xskip);
                        } else {
                            block!("add {w}, {w}, {wskip}\n", x, wt, acc, k, n, xskip, wskip);
                        }
                    }
                    co0 += 16;
                }
            }
        }
        c16
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod simd {
    //! x86-64 kernels chosen at run time: AVX-512F (+FMA), then AVX2+FMA, else the
    //! portable code. The conv is register-blocked: `P` output pixels x `NV` vectors of
    //! output channels, accumulators in registers, each input value broadcast once per
    //! block and multiplied into the `NV` weight vectors with fused multiply-adds.
    use super::{conv_dispatch, ConvGeom, Loop};
    use core::arch::x86_64::*;
    use std::sync::atomic::{AtomicU8, Ordering};

    /// The instruction sets a kernel can be compiled for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Isa {
        /// No usable vector extension: the portable code.
        Portable = 1,
        /// AVX2 and FMA (8 lanes, 16 registers).
        Avx2Fma = 2,
        /// AVX-512F and FMA (16 lanes, 32 registers).
        Avx512 = 3,
    }

    static ISA: AtomicU8 = AtomicU8::new(0); // 0: not detected yet

    /// The best instruction set of this CPU (detected once, then cached).
    pub fn isa() -> Isa {
        match ISA.load(Ordering::Relaxed) {
            1 => Isa::Portable,
            2 => Isa::Avx2Fma,
            3 => Isa::Avx512,
            _ => {
                let fma = std::is_x86_feature_detected!("fma");
                let isa = if fma && std::is_x86_feature_detected!("avx512f") {
                    Isa::Avx512
                } else if fma && std::is_x86_feature_detected!("avx2") {
                    Isa::Avx2Fma
                } else {
                    Isa::Portable
                };
                ISA.store(isa as u8, Ordering::Relaxed);
                isa
            }
        }
    }

    /// `out += conv(inp, w)` with the kernel of `isa`.
    ///
    /// # Safety
    /// The CPU must support `isa`, and the slices must hold the geometry's padded input,
    /// weights and output (`conv_acc` checks both before calling).
    pub unsafe fn conv(isa: Isa, g: &ConvGeom, inp: &[f32], w: &[f32], out: &mut [f32]) {
        match isa {
            Isa::Avx512 => avx512::conv(g, inp.as_ptr(), w.as_ptr(), out.as_mut_ptr()),
            Isa::Avx2Fma => avx2::conv(g, inp.as_ptr(), w.as_ptr(), out.as_mut_ptr()),
            Isa::Portable => conv_dispatch(g, inp, w, out),
        }
    }

    /// Run `l` inside a function compiled for `isa` (so its loops are vectorised for it).
    ///
    /// # Safety
    /// The CPU must support `isa`.
    #[inline(always)]
    pub unsafe fn run(isa: Isa, l: impl Loop) {
        match isa {
            Isa::Avx512 => avx512::run(l),
            Isa::Avx2Fma => avx2::run(l),
            Isa::Portable => l.run(),
        }
    }

    /// One register-blocked conv over raw pointers, for one instruction set: `$v` the
    /// vector type, `$m` its lane mask, `$lanes` lanes, `$pmax` pixels of the widest block.
    macro_rules! blocked_conv {
        ($feat:literal, $v:ty, $m:ty, $lanes:literal, $pmax2:literal, $pmax1:literal) => {
            /// `out += conv(inp, w)`, every channel vector of `cout` (a partial last
            /// vector is masked).
            ///
            /// # Safety
            /// The CPU must support the module's features; `inp`, `w`, `out` must point
            /// at the geometry's padded input, weights and output.
            #[target_feature(enable = $feat)]
            pub unsafe fn conv(g: &ConvGeom, inp: *const f32, w: *const f32, out: *mut f32) {
                // The distance between neighbouring output pixels' inputs, as a constant
                // where the network has it: every pixel of a block is then addressed off one
                // pointer (no general-purpose register per pixel).
                match g.stride * g.cin {
                    16 => channel_blocks::<16>(g, inp, w, out),
                    32 => channel_blocks::<32>(g, inp, w, out),
                    64 => channel_blocks::<64>(g, inp, w, out),
                    _ => channel_blocks::<0>(g, inp, w, out),
                }
            }

            /// Every channel vector of `cout`, two at a time (a partial last vector is
            /// masked); `XSTEP` is `stride * cin`, or 0 for "read it from `g`".
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn channel_blocks<const XSTEP: usize>(g: &ConvGeom, inp: *const f32, w: *const f32, out: *mut f32) {
                let cout = g.cout;
                let mut co0 = 0;
                while co0 + 2 * $lanes <= cout {
                    rows::<2, $pmax2, XSTEP>(g, inp, w, out, co0, [mask($lanes), mask($lanes)]);
                    co0 += 2 * $lanes;
                }
                let rest = cout - co0;
                if rest > $lanes {
                    rows::<2, $pmax2, XSTEP>(g, inp, w, out, co0, [mask($lanes), mask(rest - $lanes)]);
                } else if rest > 0 {
                    rows::<1, $pmax1, XSTEP>(g, inp, w, out, co0, [mask(rest)]);
                }
            }

            /// Every output pixel for the `NV` channel vectors at `co0`, `PMAX` pixels of a
            /// row at a time, then 4, then 1.
            #[target_feature(enable = $feat)]
            #[inline]
            unsafe fn rows<const NV: usize, const PMAX: usize, const XSTEP: usize>(
                g: &ConvGeom,
                inp: *const f32,
                w: *const f32,
                out: *mut f32,
                co0: usize,
                masks: [$m; NV],
            ) {
                let os = g.out_side();
                for oy in 0..os {
                    let mut ox = 0;
                    while ox + PMAX <= os {
                        block::<PMAX, NV, XSTEP>(g, inp, w, out, oy, ox, co0, masks);
                        ox += PMAX;
                    }
                    while ox + 4 <= os {
                        block::<4, NV, XSTEP>(g, inp, w, out, oy, ox, co0, masks);
                        ox += 4;
                    }
                    while ox < os {
                        block::<1, NV, XSTEP>(g, inp, w, out, oy, ox, co0, masks);
                        ox += 1;
                    }
                }
            }

            /// `P` pixels of row `oy` from `ox0` x `NV` channel vectors from `co0`.
            #[target_feature(enable = $feat)]
            #[inline]
            #[allow(clippy::too_many_arguments)]
            unsafe fn block<const P: usize, const NV: usize, const XSTEP: usize>(
                g: &ConvGeom,
                inp: *const f32,
                w: *const f32,
                out: *mut f32,
                oy: usize,
                ox0: usize,
                co0: usize,
                masks: [$m; NV],
            ) {
                let (cin, cout, k, s) = (g.cin, g.cout, g.k, g.stride);
                let (pw, off, os) = (g.in_side + 2, g.off(), g.out_side());
                let o = out.add((oy * os + ox0) * cout + co0);
                let mut acc = [[zero(); NV]; P];
                for p in 0..P {
                    for v in 0..NV {
                        acc[p][v] = load(o.add(p * cout + v * $lanes), masks[v]);
                    }
                }
                let xstep = if XSTEP > 0 { XSTEP } else { s * cin };
                for ky in 0..k {
                    let row = oy * s + ky + off;
                    for kx in 0..k {
                        let x0 = inp.add((row * pw + ox0 * s + kx + off) * cin);
                        let mut wp = w.add((ky * k + kx) * cin * cout + co0);
                        for ci in 0..cin {
                            let mut wv = [zero(); NV];
                            for v in 0..NV {
                                wv[v] = load(wp.add(v * $lanes), masks[v]);
                            }
                            for p in 0..P {
                                let x = splat(*x0.add(p * xstep + ci));
                                for v in 0..NV {
                                    acc[p][v] = fma(x, wv[v], acc[p][v]);
                                }
                            }
                            wp = wp.add(cout);
                        }
                    }
                }
                for p in 0..P {
                    for v in 0..NV {
                        store(o.add(p * cout + v * $lanes), masks[v], acc[p][v]);
                    }
                }
            }
        };
    }

    mod avx512 {
        use super::*;

        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        fn zero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        fn mask(n: usize) -> __mmask16 {
            if n >= 16 {
                0xffff
            } else {
                (1u16 << n) - 1
            }
        }
        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        unsafe fn load(p: *const f32, m: __mmask16) -> __m512 {
            _mm512_maskz_loadu_ps(m, p)
        }
        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        unsafe fn store(p: *mut f32, m: __mmask16, v: __m512) {
            _mm512_mask_storeu_ps(p, m, v)
        }
        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        unsafe fn splat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[target_feature(enable = "avx512f,fma")]
        #[inline]
        unsafe fn fma(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }

        blocked_conv!("avx512f,fma", __m512, __mmask16, 16, 8, 16);

        #[target_feature(enable = "avx512f,fma")]
        pub unsafe fn run(l: impl Loop) {
            l.run()
        }
    }

    mod avx2 {
        use super::*;

        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn zero() -> __m256 {
            _mm256_setzero_ps()
        }
        /// Lanes `0..n` set (all 8 when `n >= 8`).
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        fn mask(n: usize) -> __m256i {
            let n = n.min(8) as i32;
            _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn load(p: *const f32, m: __m256i) -> __m256 {
            _mm256_maskload_ps(p, m)
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn store(p: *mut f32, m: __m256i, v: __m256) {
            _mm256_maskstore_ps(p, m, v)
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn splat(x: f32) -> __m256 {
            _mm256_set1_ps(x)
        }
        #[target_feature(enable = "avx2,fma")]
        #[inline]
        unsafe fn fma(a: __m256, b: __m256, c: __m256) -> __m256 {
            _mm256_fmadd_ps(a, b, c)
        }

        blocked_conv!("avx2,fma", __m256, __m256i, 8, 6, 8);

        #[target_feature(enable = "avx2,fma")]
        pub unsafe fn run(l: impl Loop) {
            l.run()
        }
    }
}

/// Write `f(src)` into the interior of a zero-bordered `(side+2)^2 x c` buffer.
#[inline(always)]
fn pad_with(src: &[f32], side: usize, c: usize, dst: &mut [f32], f: impl Fn(f32) -> f32) {
    let pw = side + 2;
    if src.len() < side * side * c || dst.len() < pw * pw * c {
        return;
    }
    let row_len = pw * c;
    dst[..row_len].fill(0.0);
    dst[(pw - 1) * row_len..pw * row_len].fill(0.0);
    for y in 0..side {
        let d = &mut dst[(y + 1) * row_len..(y + 2) * row_len];
        d[..c].fill(0.0);
        d[row_len - c..].fill(0.0);
        let s = &src[y * side * c..(y + 1) * side * c];
        for (o, &v) in d[c..row_len - c].iter_mut().zip(s) {
            *o = f(v);
        }
    }
}

/// Padded ReLU of `src` (`side x side x c`).
pub(crate) fn pad_relu(src: &[f32], side: usize, c: usize, dst: &mut [f32]) {
    struct PadRelu<'a>(&'a [f32], usize, usize, &'a mut [f32]);
    impl Loop for PadRelu<'_> {
        #[inline(always)]
        fn run(self) {
            pad_with(self.0, self.1, self.2, self.3, |v| if v > 0.0 { v } else { 0.0 });
        }
    }
    vectorised(PadRelu(src, side, c, dst));
}

/// Padded copy of `src` (the stem's input: no ReLU before the first conv).
pub(crate) fn pad_copy(src: &[f32], side: usize, c: usize, dst: &mut [f32]) {
    pad_with(src, side, c, dst, |v| v);
}

/// 2x2 average pool, stride 2, written into the interior of a padded buffer of side
/// `side/2` (what the shortcut's 1x1 conv reads; the border is never read by a 1x1 conv).
pub(crate) fn avg_pool2_into_padded(src: &[f32], side: usize, c: usize, dst: &mut [f32]) {
    let h = side / 2;
    let pw = h + 2;
    if src.len() < side * side * c || dst.len() < pw * pw * c {
        return;
    }
    for y in 0..h {
        for x in 0..h {
            let d = ((y + 1) * pw + x + 1) * c;
            let a = ((2 * y) * side + 2 * x) * c;
            let b = ((2 * y + 1) * side + 2 * x) * c;
            for ch in 0..c {
                dst[d + ch] = 0.25 * (src[a + ch] + src[a + c + ch] + src[b + ch] + src[b + c + ch]);
            }
        }
    }
}

/// `out += avg_pool_3x3(src)`: stride 1, padding 1, padding not counted in the divisor.
pub(crate) fn avg_pool3_acc(src: &[f32], side: usize, c: usize, out: &mut [f32]) {
    if src.len() < side * side * c || out.len() < side * side * c {
        return;
    }
    // Each window pixel's channels are added, scaled, into the output pixel's channels:
    // contiguous loops the compiler vectorises.
    struct Pool3<'a>(&'a [f32], usize, usize, &'a mut [f32]);
    impl Loop for Pool3<'_> {
        #[inline(always)]
        fn run(self) {
            let Pool3(src, side, c, out) = self;
            for y in 0..side {
                let (y0, y1) = (y.saturating_sub(1), (y + 2).min(side));
                for x in 0..side {
                    let (x0, x1) = (x.saturating_sub(1), (x + 2).min(side));
                    let inv = 1.0 / ((y1 - y0) * (x1 - x0)) as f32;
                    let o = (y * side + x) * c;
                    let dst = &mut out[o..o + c];
                    for yy in y0..y1 {
                        let row = &src[(yy * side + x0) * c..(yy * side + x1) * c];
                        for px in row.chunks_exact(c) {
                            for (d, v) in dst.iter_mut().zip(px) {
                                *d += inv * v;
                            }
                        }
                    }
                }
            }
        }
    }
    vectorised(Pool3(src, side, c, out));
}

/// `out += src`.
pub(crate) fn add_acc(src: &[f32], out: &mut [f32]) {
    struct Add<'a>(&'a [f32], &'a mut [f32]);
    impl Loop for Add<'_> {
        #[inline(always)]
        fn run(self) {
            for (o, s) in self.1.iter_mut().zip(self.0) {
                *o += s;
            }
        }
    }
    vectorised(Add(src, out));
}

/// Set every pixel of `out` (`pixels x values.len()`) to the per-channel `values`: the
/// first pixel is written, then the filled prefix is copied after itself, doubling, so
/// the copies are few and long (no per-pixel call).
pub(crate) fn fill_channels(out: &mut [f32], pixels: usize, values: &[f32]) {
    let c = values.len();
    let n = pixels * c;
    if c == 0 || out.len() < n || pixels == 0 {
        return;
    }
    out[..c].copy_from_slice(values);
    let mut filled = c;
    while filled < n {
        let len = filled.min(n - filled);
        out.copy_within(..len, filled);
        filled += len;
    }
}

/// Head: `pooled[c] = mean_p relu(x[p][c] * scale[c] + shift[c])`, then
/// `logits = bias + pooled . W` with `W` as `[c][classes]`.
pub(crate) fn head(
    x: &[f32],
    pixels: usize,
    scale_shift: &[f32],
    classifier: &[f32],
    pooled: &mut [f32],
    logits: &mut [f32],
) {
    let c = pooled.len();
    let classes = logits.len();
    if scale_shift.len() < 2 * c || classifier.len() < c * classes + classes || x.len() < pixels * c {
        return;
    }
    let (scale, shift) = scale_shift.split_at(c);
    pooled.fill(0.0);
    for px in x.chunks_exact(c).take(pixels) {
        for ch in 0..c {
            let v = px[ch] * scale[ch] + shift[ch];
            if v > 0.0 {
                pooled[ch] += v;
            }
        }
    }
    let inv = 1.0 / pixels.max(1) as f32;
    pooled.iter_mut().for_each(|v| *v *= inv);
    let (w, b) = classifier.split_at(c * classes);
    logits.copy_from_slice(&b[..classes]);
    for (ch, row) in w.chunks_exact(classes).enumerate() {
        let p = pooled[ch];
        for (l, wv) in logits.iter_mut().zip(row) {
            *l += p * wv;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The crate's naive reference, rounded to `f32`.
    fn conv_ref(g: &ConvGeom, x: &[f32], w: &[f32]) -> Vec<f32> {
        crate::reference::conv(g, x, w).into_iter().map(|v| v as f32).collect()
    }

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut r = crate::rng::SplitMix64::new(seed);
        (0..n).map(|_| r.next_signed()).collect()
    }

    fn check_conv(g: ConvGeom, seed: u64) {
        let x = data(g.in_side * g.in_side * g.cin, seed);
        let w = data(g.weights_len(), seed + 1);
        let mut padded = vec![f32::NAN; g.padded_len()];
        pad_copy(&x, g.in_side, g.cin, &mut padded);
        let init = data(g.out_len(), seed + 2);
        let want = conv_ref(&g, &x, &w);
        for (kernel, conv) in conv_kernels() {
            let mut out = init.clone();
            conv(&g, &padded, &w, &mut out);
            for i in 0..out.len() {
                let d = (out[i] - init[i] - want[i]).abs();
                assert!(
                    d <= 1e-4 * (1.0 + want[i].abs()),
                    "{kernel} {g:?} at {i}: {} vs {}",
                    out[i] - init[i],
                    want[i]
                );
            }
        }
    }

    type ConvFn = fn(&ConvGeom, &[f32], &[f32], &mut [f32]);

    /// Every conv kernel this CPU can run: the dispatching entry point, the portable code,
    /// and each x86-64 instruction set up to the detected one.
    fn conv_kernels() -> Vec<(&'static str, ConvFn)> {
        #[allow(unused_mut)]
        let mut kernels: Vec<(&'static str, ConvFn)> = vec![
            ("conv_acc", conv_acc),
            ("portable", conv_dispatch),
            ("4x4 (Cortex-M4 portable)", |g, i, w, o| conv_4x4(g, i, w, o, 0)),
        ];
        #[cfg(target_arch = "x86_64")]
        {
            use simd::Isa;
            fn avx2(g: &ConvGeom, i: &[f32], w: &[f32], o: &mut [f32]) {
                // SAFETY: listed only when the CPU has AVX2+FMA; `check_conv` sizes the slices.
                unsafe { simd::conv(Isa::Avx2Fma, g, i, w, o) }
            }
            fn avx512(g: &ConvGeom, i: &[f32], w: &[f32], o: &mut [f32]) {
                // SAFETY: listed only when the CPU has AVX-512F+FMA; `check_conv` sizes the slices.
                unsafe { simd::conv(Isa::Avx512, g, i, w, o) }
            }
            let isa = simd::isa();
            if isa as u8 >= Isa::Avx2Fma as u8 {
                kernels.push(("avx2+fma", avx2));
            }
            if isa == Isa::Avx512 {
                kernels.push(("avx512f+fma", avx512));
            }
        }
        kernels
    }

    #[test]
    fn this_cpu_tests_its_vector_kernels() {
        // The machines simnas is developed on have AVX-512: a test run there must cover it.
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            assert_eq!(conv_kernels().len(), 5);
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
            (32, 16, 16, 1, 1),
            (32, 3, 16, 3, 1),
            (32, 16, 32, 3, 2),
            (16, 32, 32, 3, 1),
            (16, 16, 32, 1, 1),
            (16, 32, 64, 3, 2),
            (8, 64, 64, 3, 1),
            (8, 64, 64, 1, 1),
            (8, 32, 64, 1, 1),
            (10, 7, 40, 3, 1),
            (12, 9, 23, 3, 2),
        ] {
            check_conv(ConvGeom { in_side, cin, cout, k, stride }, in_side as u64 * 31 + cout as u64);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn conv_matches_reference(half in 1usize..10, cin in 1usize..20, cout in 1usize..80, k3 in any::<bool>(), s2 in any::<bool>(), seed in any::<u64>()) {
            let g = ConvGeom { in_side: half * 2, cin, cout, k: if k3 { 3 } else { 1 }, stride: if s2 { 2 } else { 1 } };
            check_conv(g, seed);
        }

        #[test]
        fn pool3_matches_reference(side in 1usize..12, c in 1usize..70, seed in any::<u64>()) {
            let x = data(side * side * c, seed);
            let mut out = vec![1.0f32; x.len()];
            avg_pool3_acc(&x, side, c, &mut out);
            let n = side as isize;
            for y in 0..n { for xx in 0..n { for ch in 0..c {
                let (mut s, mut cnt) = (0f64, 0);
                for dy in -1..=1 { for dx in -1..=1 {
                    let (yy, xq) = (y + dy, xx + dx);
                    if yy >= 0 && xq >= 0 && yy < n && xq < n { s += x[((yy * n + xq) as usize) * c + ch] as f64; cnt += 1; }
                }}
                let got = out[((y * n + xx) as usize) * c + ch] - 1.0;
                prop_assert!((got as f64 - s / cnt as f64).abs() < 1e-5);
            }}}
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn fill_and_add_match_their_scalar_loops(pixels in 0usize..70, c in 1usize..70, extra in 0usize..5, seed in any::<u64>()) {
            let values = data(c, seed);
            let mut out = vec![f32::NAN; pixels * c + extra];
            fill_channels(&mut out, pixels, &values);
            for (i, v) in out.iter().enumerate() {
                if i < pixels * c {
                    prop_assert_eq!(v.to_bits(), values[i % c].to_bits());
                } else {
                    prop_assert!(v.is_nan());
                }
            }
            let src = data(pixels * c + extra, seed + 1);
            let mut acc = data(src.len(), seed + 2);
            let want: Vec<f32> = acc.iter().zip(&src).map(|(a, b)| a + b).collect();
            add_acc(&src, &mut acc);
            prop_assert_eq!(acc, want);
        }

        #[test]
        fn pads_match_their_scalar_loops(side in 1usize..12, c in 1usize..40, seed in any::<u64>()) {
            let x = data(side * side * c, seed);
            let pw = side + 2;
            let mut relu = vec![f32::NAN; pw * pw * c];
            let mut copy = relu.clone();
            pad_relu(&x, side, c, &mut relu);
            pad_copy(&x, side, c, &mut copy);
            for y in 0..pw { for xx in 0..pw { for ch in 0..c {
                let i = (y * pw + xx) * c + ch;
                let v = if y == 0 || xx == 0 || y == pw - 1 || xx == pw - 1 { 0.0 } else { x[((y - 1) * side + xx - 1) * c + ch] };
                prop_assert_eq!(copy[i], v);
                prop_assert_eq!(relu[i], v.max(0.0));
            }}}
        }
    }

    #[test]
    fn pool2_and_pads() {
        // 2x2x1 -> 1x1 average inside a 3x3 padded buffer.
        let mut dst = [9.0f32; 9];
        avg_pool2_into_padded(&[1.0, 2.0, 3.0, 6.0], 2, 1, &mut dst);
        assert_eq!(dst[4], 3.0);
        let mut p = [7.0f32; 16];
        pad_relu(&[-1.0, 2.0, 3.0, -4.0], 2, 1, &mut p);
        assert_eq!(p, [0., 0., 0., 0., 0., 0., 2., 0., 0., 3., 0., 0., 0., 0., 0., 0.]);
    }

    #[test]
    fn kernels_ignore_short_buffers() {
        let g = ConvGeom { in_side: 4, cin: 2, cout: 2, k: 3, stride: 1 };
        let mut out = vec![0.0; g.out_len()];
        conv_acc(&g, &[1.0; 3], &[1.0; 36], &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
        pad_relu(&[1.0; 3], 4, 2, &mut [0.0; 4]);
        avg_pool3_acc(&[1.0; 3], 4, 2, &mut [0.0; 4]);
        head(&[1.0; 2], 4, &[1.0], &[1.0], &mut [0.0; 2], &mut [0.0; 3]);
    }

    #[test]
    fn head_is_bn_relu_mean_linear() {
        // 2 pixels, 2 channels, 1 class.
        let x = [1.0f32, -2.0, 3.0, 4.0];
        let ss = [2.0f32, 1.0, -1.0, 0.5]; // scale, shift
        let cls = [0.5f32, -1.0, 0.25]; // w[c][1], bias
        let mut pooled = [0.0f32; 2];
        let mut logits = [0.0f32; 1];
        head(&x, 2, &ss, &cls, &mut pooled, &mut logits);
        // ch0: relu(1*2-1)=1, relu(3*2-1)=5 -> 3; ch1: relu(-2+.5)=0, relu(4+.5)=4.5 -> 2.25
        assert_eq!(pooled, [3.0, 2.25]);
        assert_eq!(logits[0], 0.25 + 3.0 * 0.5 - 2.25);
    }
}
