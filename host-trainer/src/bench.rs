//! Side-by-side benchmarks: the edge runtime's executor against candle on the same network.
//!
//! [`executor_vs_candle`] runs, for each cell, the identical NB201 network with identical
//! weights in both: the edge runtime's [`Executor`] on the dense folded parameters (one
//! thread, HWC, no allocation in `run`) and the candle model of [`crate::nb201`] (batch 1,
//! F32, [`BnMode::Eval`], NCHW, with candle's own thread pool). Inputs are built before
//! timing; each repeat recomputes the whole forward pass (nothing is cached), and the two
//! are interleaved (`A B`, then `B A`, ...) so a noisy machine slows both alike. After
//! timing, the two outputs are compared so the rows are known to describe the same
//! function.
//!
//! Not the same work: the candle model is the faithful unpruned NB201 network (it computes
//! `none` edges as zeros, convs on zero nodes, and nodes that never reach the output), while
//! the executor skips what cannot change the output ([`BenchRow::pruned_ops`] counts those
//! edges per cell). That difference is part of what a deployment gains, so it is reported,
//! not hidden.

use crate::nb201::{hwc_to_nchw, BnMode, Nb201};
use anyhow::{bail, ensure, Context};
use candle_core::{DType, Device};
use edge_runtime::rng::SplitMix64;
use edge_runtime::{DenseParams, Executor, NetConfig, ParamLayout, Plan};
use serde::Serialize;
use simnas_shared::{Arch, Edge, Op};
use std::hint::black_box;
use std::time::Instant;

/// Largest relative difference between the two implementations' logits that still counts
/// as "the same network" in F32.
pub const MAX_REL_DIFF: f64 = 1e-3;

/// One cell's timings.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchRow {
    /// The cell, NATS-Bench string.
    pub arch: String,
    /// Median executor forward pass, milliseconds.
    pub executor_ms: f64,
    /// Median candle forward pass, milliseconds.
    pub candle_ms: f64,
    /// `executor_ms / candle_ms` (below 1: the executor is faster).
    pub ratio: f64,
    /// Executor interquartile range over median.
    pub executor_spread: f64,
    /// Candle interquartile range over median.
    pub candle_spread: f64,
    /// Threads candle may use (`candle_core::utils::get_num_threads`); the executor uses 1.
    pub candle_threads: usize,
    /// Non-`none` edges of the cell the executor does not run on data (dead nodes, or convs
    /// reduced to their BN shift); candle runs all of them.
    pub pruned_ops: usize,
    /// Largest relative difference of the two logit vectors (`max|a-b| / max|b|`).
    pub max_rel_diff: f64,
    /// Timed repeats per implementation.
    pub repeats: usize,
}

/// Time the executor and candle on every cell of `archs` (see the module docs): `warmup`
/// untimed runs of each, then `repeats` interleaved timed runs of each. Weights and the
/// input are seeded by `seed` (the parity initialisation, random BN statistics included).
pub fn executor_vs_candle(
    cfg: NetConfig,
    archs: &[Arch],
    warmup: usize,
    repeats: usize,
    seed: u64,
) -> anyhow::Result<Vec<BenchRow>> {
    ensure!(repeats > 0, "a benchmark needs at least one timed repeat");
    let layout = ParamLayout::new(cfg).context("network configuration")?;
    let device = Device::Cpu;
    let Some(&first) = archs.first() else { return Ok(Vec::new()) };
    let mut model = Nb201::new(cfg, first, DType::F32, &device)?;
    model.init_parity(seed)?;
    let dense = model.to_dense_params()?;
    let params = DenseParams::new(&layout, &dense)?;
    let mut rng = SplitMix64::new(seed ^ 0x5EED_1A7E);
    let input: Vec<f32> = (0..cfg.input_len()).map(|_| rng.next_signed()).collect();
    let x = hwc_to_nchw(&input, cfg.resolution, DType::F32, &device)?;
    let candle_threads = candle_core::utils::get_num_threads();

    let mut rows = Vec::with_capacity(archs.len());
    for &arch in archs {
        model.set_arch(arch);
        let plan = Plan::new(cfg, arch)?;
        let mut arena = vec![0f32; plan.arena_len()];
        let mut exec = Executor::new(&plan, &mut arena)?;
        let mut logits = vec![0f32; cfg.classes];

        let mut run_exec = |logits: &mut [f32]| -> anyhow::Result<f64> {
            let t = Instant::now();
            exec.run(&params, black_box(&input), logits)?;
            black_box(&logits);
            Ok(t.elapsed().as_secs_f64() * 1e3)
        };
        let run_candle = || -> anyhow::Result<(f64, candle_core::Tensor)> {
            let t = Instant::now();
            let out = model.forward(black_box(&x), BnMode::Eval)?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            Ok((ms, black_box(out)))
        };

        for _ in 0..warmup {
            run_exec(&mut logits)?;
            run_candle()?;
        }
        let mut exec_ms = Vec::with_capacity(repeats);
        let mut candle_ms = Vec::with_capacity(repeats);
        let mut candle_out = None;
        for r in 0..repeats {
            if r % 2 == 0 {
                exec_ms.push(run_exec(&mut logits)?);
                let (ms, out) = run_candle()?;
                candle_ms.push(ms);
                candle_out = Some(out);
            } else {
                let (ms, out) = run_candle()?;
                candle_ms.push(ms);
                candle_out = Some(out);
                exec_ms.push(run_exec(&mut logits)?);
            }
        }
        let Some(candle_out) = candle_out else { bail!("no timed repeat ran") };
        let want: Vec<f32> = candle_out.flatten_all()?.to_vec1()?;
        let max_rel_diff = rel_diff(&logits, &want);
        ensure!(
            max_rel_diff <= MAX_REL_DIFF,
            "executor and candle disagree on {arch} (relative difference {max_rel_diff:.2e}); the timings would \
             not compare the same network"
        );
        let (executor_ms, executor_spread) = median_and_spread(&mut exec_ms);
        let (candle_med, candle_spread) = median_and_spread(&mut candle_ms);
        rows.push(BenchRow {
            arch: arch.to_string(),
            executor_ms,
            candle_ms: candle_med,
            ratio: executor_ms / candle_med,
            executor_spread,
            candle_spread,
            candle_threads,
            pruned_ops: Edge::ALL.iter().filter(|&&e| arch.op(e) != Op::None && !plan.runs_edge(e)).count(),
            max_rel_diff,
            repeats,
        });
    }
    Ok(rows)
}

/// `max|a - b| / max(1e-6, max|b|)`.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(1e-6);
    let diff = a.iter().zip(b).fold(0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
    if a.len() == b.len() {
        diff / scale
    } else {
        f64::INFINITY
    }
}

/// Median and interquartile range over median (linear interpolation between order
/// statistics); sorts `samples`. Empty input gives `(NaN, NaN)`.
fn median_and_spread(samples: &mut [f64]) -> (f64, f64) {
    samples.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        let Some(last) = samples.len().checked_sub(1) else { return f64::NAN };
        let pos = p * last as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        samples[lo] + (samples[hi] - samples[lo]) * (pos - lo as f64)
    };
    let median = q(0.5);
    (median, (q(0.75) - q(0.25)) / median)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_known_samples() {
        // 1..=5: median 3, quartiles 2 and 4, spread 2/3.
        let (m, s) = median_and_spread(&mut [5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!(m, 3.0);
        assert!((s - 2.0 / 3.0).abs() < 1e-12);
        // 1..=4: median 2.5, quartiles 1.75 and 3.25.
        let (m, s) = median_and_spread(&mut [4.0, 3.0, 2.0, 1.0]);
        assert_eq!(m, 2.5);
        assert!((s - 1.5 / 2.5).abs() < 1e-12);
        assert!(median_and_spread(&mut []).0.is_nan());
    }

    #[test]
    fn tiny_benchmark_returns_sane_rows() {
        let cfg = NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 3 };
        let archs = [
            Arch::uniform(Op::NorConv3x3),
            Arch::parse("|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|skip_connect~2|").unwrap(),
        ];
        let rows = executor_vs_candle(cfg, &archs, 1, 5, 42).unwrap();
        assert_eq!(rows.len(), 2);
        for (row, arch) in rows.iter().zip(&archs) {
            assert_eq!(Arch::parse(&row.arch).unwrap(), *arch);
            assert!(row.executor_ms > 0.0 && row.executor_ms.is_finite(), "{row:?}");
            assert!(row.candle_ms > 0.0 && row.candle_ms.is_finite(), "{row:?}");
            assert!((row.ratio - row.executor_ms / row.candle_ms).abs() < 1e-12);
            assert!(row.executor_spread >= 0.0 && row.candle_spread >= 0.0);
            assert!(row.candle_threads >= 1);
            assert!(row.max_rel_diff <= MAX_REL_DIFF);
            assert_eq!(row.repeats, 5);
        }
        assert_eq!(rows[0].pruned_ops, 0);
        // Node 1 and 2 are zero: the conv 1->3 is reduced to its BN shift, the skip 2->3 vanishes.
        assert_eq!(rows[1].pruned_ops, 2);
        assert!(executor_vs_candle(cfg, &archs, 0, 0, 1).is_err());
        assert!(executor_vs_candle(cfg, &[], 0, 1, 1).unwrap().is_empty());
    }
}
