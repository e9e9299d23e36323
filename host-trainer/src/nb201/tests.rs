//! Unit tests of the candle NB201 model: cell wiring, pooling, modes, dtypes, observers,
//! gradients, initialisation.

use super::*;
use edge_runtime::layout::ParamLayout;
use edge_runtime::rng::SplitMix64;

const TINY: NetConfig = NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 5 };

fn arch(s: &str) -> Arch {
    Arch::parse(s).unwrap()
}

fn input(side: usize, batch: usize, seed: u64, dtype: DType) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..batch * 3 * side * side).map(|_| rng.next_signed()).collect();
    Tensor::from_vec(v, (batch, 3, side, side), &Device::Cpu).unwrap().to_dtype(dtype).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    let d = (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap()).unwrap();
    d.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap()
}

fn cell_out(a: &str, x: &Tensor) -> Tensor {
    let m = Nb201::new(TINY, arch(a), DType::F64, &Device::Cpu).unwrap();
    m.cell_forward(&m.cells[0][0], 0, 0, x, BnMode::Eval, &mut |_, _| Ok(())).unwrap()
}

fn feature_map(seed: u64) -> Tensor {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f64> = (0..2 * 4 * 8 * 8).map(|_| rng.next_signed() as f64).collect();
    Tensor::from_vec(v, (2, 4, 8, 8), &Device::Cpu).unwrap()
}

#[test]
fn cell_wiring_follows_the_nats_bench_edge_order() {
    let x = feature_map(1);
    // n1 = x, n2 = x + n1 = 2x, n3 = x + n1 + n2 = 4x.
    let all_skip = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";
    assert_eq!(max_abs_diff(&cell_out(all_skip, &x), &(&x * 4.0).unwrap()), 0.0);
    let all_none = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|";
    assert_eq!(max_abs_diff(&cell_out(all_none, &x), &x.zeros_like().unwrap()), 0.0);
    // Only the chain 0 -> 1 -> 2 -> 3: the output is x itself.
    let chain = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|";
    assert_eq!(max_abs_diff(&cell_out(chain, &x), &x), 0.0);
    // Only edge 1->3 (index 4) reaches the output, from n1 = x.
    let one = "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|";
    assert_eq!(max_abs_diff(&cell_out(one, &x), &x), 0.0);
}

#[test]
fn pool_does_not_count_padding() {
    // On a constant map the count_include_pad=False mean is the constant everywhere,
    // borders included; all-pool then gives n1 = c, n2 = 2c, n3 = 4c.
    let c = Tensor::full(0.75f64, (1, 4, 8, 8), &Device::Cpu).unwrap();
    let all_pool = "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|";
    assert!(max_abs_diff(&cell_out(all_pool, &c), &(&c * 4.0).unwrap()) < 1e-12);
    // Against a naive loop on a random map.
    let x = feature_map(2);
    let scale = pool_scale(8, DType::F64, &Device::Cpu).unwrap();
    let got: Vec<f64> = avg_pool_3x3(&x, &scale).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let xs: Vec<f64> = x.flatten_all().unwrap().to_vec1().unwrap();
    for (i, g) in got.iter().enumerate() {
        let (plane, y, x0) = (i / 64, (i % 64) / 8, i % 8);
        let (mut sum, mut n) = (0.0, 0);
        for yy in y.saturating_sub(1)..(y + 2).min(8) {
            for xx in x0.saturating_sub(1)..(x0 + 2).min(8) {
                sum += xs[plane * 64 + yy * 8 + xx];
                n += 1;
            }
        }
        assert!((g - sum / n as f64).abs() < 1e-12, "at {i}: {g} vs {}", sum / n as f64);
    }
}

#[test]
fn shapes_modes_and_dtypes() {
    let a = arch("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|");
    let m = Nb201::new(TINY, a, DType::F32, &Device::Cpu).unwrap();
    m.init_parity(7).unwrap();
    let x = input(8, 3, 3, DType::F32);
    let eval = m.forward(&x, BnMode::Eval).unwrap();
    let batch = m.forward(&x, BnMode::Batch).unwrap();
    let ident = m.forward(&x, BnMode::Identity).unwrap();
    assert_eq!(eval.dims(), &[3, 5]);
    assert_eq!(batch.dims(), &[3, 5]);
    assert_eq!(ident.dims(), &[3, 5]);
    assert!(max_abs_diff(&eval, &batch) > 1e-3);
    assert!(max_abs_diff(&eval, &ident) > 1e-3);
    for t in [&eval, &batch, &ident] {
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|v| v.is_finite()));
    }
    // The f64 copy computes the same function.
    let m64 = m.to_dtype(DType::F64).unwrap();
    assert_eq!(m64.dtype(), DType::F64);
    let e64 = m64.forward(&x, BnMode::Eval).unwrap();
    assert_eq!(e64.dtype(), DType::F64);
    assert!(max_abs_diff(&eval, &e64) < 1e-4);
    // Wrong input shapes are refused.
    assert!(matches!(m.forward(&input(16, 1, 0, DType::F32), BnMode::Eval), Err(Nb201Error::InputShape { .. })));
    assert!(matches!(Nb201::new(TINY, a, DType::BF16, &Device::Cpu), Err(Nb201Error::DType(_))));
    assert!(Nb201::new(NetConfig { resolution: 10, ..TINY }, a, DType::F32, &Device::Cpu).is_err());
}

#[test]
fn observer_sees_one_relu_per_conv_op() {
    // Three conv edges, one of them (1->3) out of node 1 which is zero (fed by `none`).
    let a = arch("|none~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|");
    let cfg = NetConfig { cells_per_stage: 2, ..TINY };
    let m = Nb201::new(cfg, a, DType::F32, &Device::Cpu).unwrap();
    m.init_kaiming(1).unwrap();
    let mut sites = Vec::new();
    m.forward_observed(&input(8, 2, 4, DType::F32), BnMode::Batch, &mut |site, t| {
        assert_eq!(t.dim(0)?, 2);
        sites.push(site);
        Ok(())
    })
    .unwrap();
    assert_eq!(sites.len(), 3 * 2 * 3 + 2 * 2 + 1);
    assert_eq!(sites[0], ReluSite::Cell { stage: 0, cell: 0, edge: 1 });
    assert_eq!(sites[1], ReluSite::Cell { stage: 0, cell: 0, edge: 4 });
    assert_eq!(sites[6], ReluSite::Reduction { stage: 1, conv: 0 });
    assert_eq!(sites.last(), Some(&ReluSite::Head));
}

#[test]
fn gradients_reach_the_used_parameters() {
    let a = arch("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|");
    let m = Nb201::new(TINY, a, DType::F64, &Device::Cpu).unwrap();
    m.init_kaiming(3).unwrap();
    m.abs_params().unwrap();
    let ones = Tensor::ones((1, 3, 8, 8), DType::F64, &Device::Cpu).unwrap();
    let grads = m.forward(&ones, BnMode::Identity).unwrap().sum_all().unwrap().backward().unwrap();
    let used = ["cells.0.0.edge0.conv3x3.conv.weight", "cells.0.0.edge2.conv1x1.conv.weight", "stem.conv.weight"];
    for (name, var) in m.named_vars() {
        let g = grads.get(var.as_tensor());
        if used.contains(&name) {
            let g = g.unwrap_or_else(|| panic!("no gradient for {name}"));
            assert!(g.abs().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap() > 0.0, "{name}");
        }
        if name == "cells.0.0.edge0.conv1x1.conv.weight" {
            assert!(g.is_none(), "unused slot got a gradient");
        }
    }
}

#[test]
fn init_is_deterministic_and_abs_is_nonnegative() {
    let a = Arch::uniform(Op::NorConv3x3);
    let m = Nb201::new(TINY, a, DType::F32, &Device::Cpu).unwrap();
    m.init_parity(5).unwrap();
    let d1 = m.to_dense_params().unwrap();
    m.init_parity(6).unwrap();
    assert_ne!(d1, m.to_dense_params().unwrap());
    m.init_parity(5).unwrap();
    assert_eq!(d1, m.to_dense_params().unwrap());
    assert_eq!(d1.len(), ParamLayout::new(TINY).unwrap().total_len());

    m.init_kaiming(9).unwrap();
    let (_, w) = m.named_vars().find(|(n, _)| *n == "cells.2.0.edge5.conv3x3.conv.weight").unwrap();
    let v: Vec<f32> = w.flatten_all().unwrap().to_vec1().unwrap();
    let std = (v.iter().map(|x| (x * x) as f64).sum::<f64>() / v.len() as f64).sqrt();
    let want = (2.0f64 / (16 * 9) as f64).sqrt();
    assert!((std / want - 1.0).abs() < 0.1, "kaiming std {std} vs {want}");
    m.abs_params().unwrap();
    for (_, var) in m.named_vars() {
        let v: Vec<f32> = var.flatten_all().unwrap().to_vec1().unwrap();
        assert!(v.iter().all(|x| *x >= 0.0));
    }
}

#[test]
fn hwc_input_becomes_nchw() {
    let side = 4;
    let hwc: Vec<f32> = (0..side * side * 3).map(|i| i as f32).collect();
    let t = hwc_to_nchw(&hwc, side, DType::F64, &Device::Cpu).unwrap();
    assert_eq!(t.dims(), &[1, 3, 4, 4]);
    let v: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
    // NCHW (c, y, x) holds HWC index (y * side + x) * 3 + c.
    assert_eq!(v[(2 * side + 1) * side + 3], ((side + 3) * 3 + 2) as f64);
    assert!(matches!(hwc_to_nchw(&hwc[1..], side, DType::F32, &Device::Cpu), Err(Nb201Error::InputLength { .. })));
}

#[test]
fn batch_mode_normalises_with_biased_batch_statistics() {
    let m = Nb201::new(TINY, Arch::uniform(Op::SkipConnect), DType::F64, &Device::Cpu).unwrap();
    m.init_kaiming(0).unwrap(); // gamma = 1, beta = 0
    let x = (feature_map(4) * 3.0).unwrap().affine(1.0, 0.5).unwrap();
    let y = m.cells[0][0].convs[0][0].bn.forward(&x, BnMode::Batch).unwrap();
    let mean: Vec<f64> = y.mean((0, 2, 3)).unwrap().to_vec1().unwrap();
    let var: Vec<f64> = y.sqr().unwrap().mean((0, 2, 3)).unwrap().to_vec1().unwrap();
    for (m, v) in mean.iter().zip(&var) {
        assert!(m.abs() < 1e-12, "mean {m}");
        // Biased variance of x over (B, H, W) is ~3, so 1 - eps/3 within rounding.
        assert!((v - 1.0).abs() < 1e-5, "var {v}");
    }
    // Eval mode with the default statistics (mean 0, var 1) is x / sqrt(1 + eps).
    let e = m.cells[0][0].convs[0][0].bn.forward(&x, BnMode::Eval).unwrap();
    assert!(max_abs_diff(&e, &(&x / (1.0 + BN_EPS).sqrt()).unwrap()) < 1e-12);
}
