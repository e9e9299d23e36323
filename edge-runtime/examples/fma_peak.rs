//! The executor's arithmetic rate on the all-`nor_conv_3x3` CIFAR-10 network against this
//! core's measured AVX-512 FMA peak, side by side on one thread:
//!
//! ```sh
//! cargo run --release -p edge-runtime --example fma_peak
//! ```
//!
//! * **Peak**: 16 independent chains of `vfmadd231ps` on zmm registers (16 lanes, 2 flops
//!   each), the best of each round's timing.
//! * **Executor**: the median of one round's forward passes of the all-conv3x3 network
//!   (batch 1), its multiply-accumulates counted from the NB201 macro structure: the 3x3
//!   stem, 3 stages of `cells_per_stage` cells with 6 3x3 convs each, and the two residual
//!   reduction blocks (a 3x3 stride-2 conv, a 3x3 conv and a 1x1 shortcut).
//!
//! The two alternate for 7 rounds; the medians over rounds are printed. On a CPU without
//! AVX-512F and FMA it says so and exits.

use edge_runtime::layout::{NetConfig, ParamLayout};
use edge_runtime::params::DenseParams;
use edge_runtime::rng::{fill_params, SplitMix64};
use edge_runtime::{Executor, Plan};
use simnas_shared::{Arch, Op};
use std::time::Instant;

/// Multiply-accumulates of one forward pass of the all-conv3x3 network of `cfg`.
fn all_conv3x3_macs(cfg: &NetConfig) -> u64 {
    let conv = |side: usize, cin: usize, cout: usize, k: usize| (side * side * cin * cout * k * k) as u64;
    let mut macs = conv(cfg.stage_side(0), 3, cfg.stage_channels(0), 3);
    for s in 0..3 {
        let (side, c) = (cfg.stage_side(s), cfg.stage_channels(s));
        macs += cfg.cells_per_stage as u64 * 6 * conv(side, c, c, 3);
        if s > 0 {
            let cin = cfg.stage_channels(s - 1);
            macs += conv(side, cin, c, 3) + conv(side, c, c, 3) + conv(side, cin, c, 1);
        }
    }
    macs
}

#[cfg(target_arch = "x86_64")]
mod peak {
    use core::arch::x86_64::*;

    /// Flops of `iters` iterations of [`chains`].
    pub const fn flops(iters: u64) -> f64 {
        (iters * 16 * 16 * 2) as f64
    }

    /// 16 independent FMA chains for `iters` iterations; returns a value that depends on
    /// all of them, so none is optimised away.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and FMA.
    #[target_feature(enable = "avx512f,fma")]
    pub unsafe fn chains(iters: u64, seed: f32) -> f32 {
        let a = _mm512_set1_ps(0.999_999);
        let b = _mm512_set1_ps(1e-7);
        let mut acc = [_mm512_set1_ps(seed); 16];
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let mut sum = _mm512_setzero_ps();
        for v in acc {
            sum = _mm512_add_ps(sum, v);
        }
        _mm512_reduce_add_ps(sum)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    #[cfg(target_arch = "x86_64")]
    {
        if !(std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("fma")) {
            println!("this CPU has no AVX-512F+FMA: nothing to compare");
            return;
        }
        let cfg = NetConfig::CIFAR10;
        let Ok(layout) = ParamLayout::new(cfg) else { return eprintln!("error: the CIFAR-10 layout") };
        let Ok(plan) = Plan::new(cfg, Arch::uniform(Op::NorConv3x3)) else { return eprintln!("error: the plan") };
        let mut params = vec![0.0; layout.total_len()];
        fill_params(&layout, 0, &mut params);
        let Ok(params) = DenseParams::new(&layout, &params) else { return eprintln!("error: the parameters") };
        let mut r = SplitMix64::new(1);
        let input: Vec<f32> = (0..cfg.input_len()).map(|_| r.next_signed()).collect();
        let mut arena = vec![0.0; plan.arena_len()];
        let Ok(mut ex) = Executor::new(&plan, &mut arena) else { return eprintln!("error: the arena") };
        let mut logits = vec![0.0; cfg.classes];
        let macs = all_conv3x3_macs(&cfg);
        let iters = 20_000_000;
        let (mut peaks, mut execs) = (Vec::new(), Vec::new());
        let mut sink = 0.0f32;
        for _ in 0..7 {
            let mut best = f64::INFINITY;
            for _ in 0..3 {
                let t = Instant::now();
                // SAFETY: AVX-512F and FMA were detected above.
                sink += unsafe { peak::chains(iters, sink.min(1.0)) };
                best = best.min(t.elapsed().as_secs_f64());
            }
            peaks.push(peak::flops(iters) / best / 1e9);
            let mut times = Vec::new();
            for _ in 0..61 {
                let t = Instant::now();
                if ex.run(&params, &input, &mut logits).is_err() {
                    return eprintln!("error: the forward pass failed");
                }
                times.push(t.elapsed().as_secs_f64());
            }
            execs.push(median(&mut times));
        }
        let (peak, ms) = (median(&mut peaks), 1e3 * median(&mut execs));
        let rate = 2.0 * macs as f64 / (ms / 1e3) / 1e9;
        println!("AVX-512 FMA peak (one thread): {peak:.1} GFLOP/s");
        println!(
            "executor, all-conv3x3 CIFAR-10 network: {ms:.3} ms for {:.1} M MACs = {rate:.1} GFLOP/s = {:.1}% of the peak",
            macs as f64 / 1e6,
            100.0 * rate / peak
        );
        if !sink.is_finite() || logits.iter().any(|l| !l.is_finite()) {
            eprintln!("warning: a non-finite result");
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    println!("x86-64 only");
}
