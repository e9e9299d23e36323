//! Parity: the edge runtime's executor against the faithful, unpruned candle NB201 network.
//!
//! For each configuration one candle model (F64, seeded, BN with random running statistics
//! so folding and "conv of a zero node adds its BN shift" are exercised) is exported to the
//! dense inference layout; the executor runs every chosen cell on the same HWC input and
//! its logits must match the candle logits to `max|a - b| / max(1e-6, max|b|) <= 1e-4`.
//! The cells cover the uniform ones, the fully disconnected one, cells with zero and dead
//! nodes, and seeded random codes.

#![cfg(feature = "train")]

use candle_core::{DType, Device};
use edge_runtime::rng::SplitMix64;
use edge_runtime::{DenseParams, Executor, NetConfig, ParamLayout, Plan};
use host_trainer::nb201::{hwc_to_nchw, BnMode, Nb201};
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

const TOLERANCE: f64 = 1e-4;

/// Hand-picked cells: each says what it exercises.
const CHOSEN: &[(&str, &str)] = &[
    ("all conv3x3", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
    ("all conv1x1", "|nor_conv_1x1~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|nor_conv_1x1~0|nor_conv_1x1~1|nor_conv_1x1~2|"),
    ("all skip", "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"),
    ("all pool", "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|"),
    ("all none (disconnected)", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"),
    (
        "NB201 best CIFAR-10 cell",
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    ),
    ("ResNet-like", "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"),
    (
        "node1 zero, convs out of it",
        "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    ),
    (
        "node2 does not reach output",
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    ),
    ("output fed only by none", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|"),
    ("output = BN shift of conv on zero node", "|none~0|+|none~0|none~1|+|none~0|nor_conv_3x3~1|none~2|"),
    ("output = 1x1 BN shift on zero node2", "|none~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|"),
    ("skip/pool out of zero node", "|none~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_1x1~2|"),
    ("only 0->3 skip", "|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"),
    ("only 0->3 conv1x1", "|none~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|"),
    ("node2 zero, conv out of it", "|nor_conv_1x1~0|+|none~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|"),
    (
        "pools and convs mixed",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
    ),
];

/// How many seeded random cells to add to [`CHOSEN`].
const RANDOM: usize = 10;

fn archs(seed: u64) -> Vec<(String, Arch)> {
    let mut out: Vec<(String, Arch)> =
        CHOSEN.iter().map(|(what, s)| (what.to_string(), Arch::parse(s).expect("valid cell string"))).collect();
    let mut rng = SplitMix64::new(seed);
    for _ in 0..RANDOM {
        let code = ArchCode::new((rng.next_u64() % NUM_ARCHS as u64) as u16).expect("code below 15625");
        out.push((format!("random code {}", code.get()), Arch::from_code(code)));
    }
    out
}

fn input(cfg: &NetConfig, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..cfg.input_len()).map(|_| rng.next_signed()).collect()
}

fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-6);
    got.iter().zip(want).fold(0f64, |m, (a, b)| m.max((*a as f64 - b).abs())) / scale
}

fn executor_logits(cfg: NetConfig, arch: Arch, dense: &[f32], input: &[f32]) -> Vec<f32> {
    let layout = ParamLayout::new(cfg).expect("layout");
    let plan = Plan::new(cfg, arch).expect("plan");
    let mut arena = vec![0f32; plan.arena_len()];
    let mut exec = Executor::new(&plan, &mut arena).expect("executor");
    let params = DenseParams::new(&layout, dense).expect("dense params");
    let mut logits = vec![0f32; cfg.classes];
    exec.run(&params, input, &mut logits).expect("run");
    logits
}

/// Runs every cell of [`archs`] on `cfg`; returns the largest relative error, failing with
/// the full list of offending cells.
fn check_config(name: &str, cfg: NetConfig, seed: u64) -> f64 {
    let device = Device::Cpu;
    let cells = archs(seed);
    let mut model = Nb201::new(cfg, cells[0].1, DType::F64, &device).expect("model");
    model.init_parity(seed).expect("init");
    let dense = model.to_dense_params().expect("export");
    let x_hwc = input(&cfg, seed ^ 0xA5A5);
    let x = hwc_to_nchw(&x_hwc, cfg.resolution, DType::F64, &device).expect("input");
    let mut worst = 0f64;
    let mut failures = Vec::new();
    for (what, arch) in &cells {
        model.set_arch(*arch);
        let want: Vec<f64> =
            model.forward(&x, BnMode::Eval).and_then(|t| Ok(t.flatten_all()?.to_vec1()?)).expect("candle");
        let got = executor_logits(cfg, *arch, &dense, &x_hwc);
        let err = rel_err(&got, &want);
        let max = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        println!("{name:>14} {err:9.2e}  (max |logit| {max:9.3e})  {what}: {arch}");
        worst = worst.max(err);
        if err.is_nan() || err > TOLERANCE {
            failures.push(format!("{what} {arch}: rel err {err:.3e}\n  executor {got:?}\n  candle   {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{name}: {} cells differ:\n{}", failures.len(), failures.join("\n"));
    println!("{name}: {} cells, max relative error {worst:.3e}", cells.len());
    worst
}

#[test]
fn parity_cifar10() {
    check_config("CIFAR10", NetConfig::CIFAR10, 10);
}

#[test]
fn parity_imagenet16_120() {
    check_config("ImageNet16-120", NetConfig::IMAGENET16_120, 120);
}

#[test]
fn parity_small_custom() {
    let cfg = NetConfig { channels: 8, cells_per_stage: 2, resolution: 16, classes: 7 };
    check_config("C8 N2 16px", cfg, 7);
}

/// The fully disconnected cell: every cell outputs zeros, so the logits are the head
/// applied to constants and cannot depend on the input, in either implementation.
#[test]
fn disconnected_network_ignores_its_input() {
    let cfg = NetConfig { channels: 8, cells_per_stage: 2, resolution: 16, classes: 7 };
    let arch = Arch::parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|").expect("cell");
    let model = Nb201::new(cfg, arch, DType::F64, &Device::Cpu).expect("model");
    model.init_parity(3).expect("init");
    let dense = model.to_dense_params().expect("export");
    let (a, b) = (input(&cfg, 1), input(&cfg, 2));
    assert_eq!(executor_logits(cfg, arch, &dense, &a), executor_logits(cfg, arch, &dense, &b));
    let run = |x: &[f32]| -> Vec<f64> {
        let t = hwc_to_nchw(x, cfg.resolution, DType::F64, &Device::Cpu).expect("input");
        model.forward(&t, BnMode::Eval).and_then(|t| Ok(t.flatten_all()?.to_vec1()?)).expect("candle")
    };
    let (ca, cb) = (run(&a), run(&b));
    assert_eq!(ca, cb);
    assert!(rel_err(&executor_logits(cfg, arch, &dense, &a), &ca) <= TOLERANCE);
}

/// The exported vector has the layout's length and F32 and F64 models export the same
/// folded values (the parity of the other tests does not hinge on the reference's dtype).
#[test]
fn export_is_dtype_independent() {
    let cfg = NetConfig { channels: 8, cells_per_stage: 2, resolution: 16, classes: 7 };
    let arch = Arch::parse("|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|").expect("cell");
    let m32 = Nb201::new(cfg, arch, DType::F32, &Device::Cpu).expect("model");
    m32.init_parity(11).expect("init");
    let m64 = m32.to_dtype(DType::F64).expect("f64 copy");
    let (d32, d64) = (m32.to_dense_params().expect("export"), m64.to_dense_params().expect("export"));
    assert_eq!(d32.len(), ParamLayout::new(cfg).expect("layout").total_len());
    assert_eq!(d32, d64);
}
