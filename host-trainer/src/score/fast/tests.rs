//! The fast paths against the candle references on the same weights and inputs.
//!
//! NASWOT: the fast path runs the same `f32` network, so its kernel may differ from the
//! reference only where a unit sits within rounding of zero (a flipped code changes `K` by
//! at most 2 per unit); the tolerance on `log|det K|` is `1e-6` relative. LogSynflow: both
//! are `f64` on the same values, summed in different orders; tolerance `1e-10` relative.
//! MeCo: the same `f32` maps, rounded differently; smallest eigenvalues amplify that, to
//! `2e-5` relative on the CIFAR-10 network.

use super::*;
use crate::nb201::Nb201;
use crate::score::INIT_FAN;
use crate::score::{logsynflow, meco, naswot};
use candle_core::{Device, Tensor};
use edge_runtime::NetConfig;

/// Small network: every map has a multiple of 64 units (the code packing's requirement).
const TINY: NetConfig = NetConfig { channels: 4, cells_per_stage: 2, resolution: 8, classes: 5 };

/// Cells exercising every op, zero nodes, dead nodes and convs into dead nodes.
const CELLS: [&str; 7] = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|none~2|",
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_3x3~2|",
];

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn settings(net: NetConfig, batch: usize, inits: usize) -> ScoreSettings {
    ScoreSettings { net, seed: 11, batch, inits, input: crate::score::InputKind::Gaussian }
}

#[test]
fn fast_naswot_kernel_equals_the_candle_kernel() {
    let s = settings(TINY, 8, 2);
    let scorer = Scorer::new(s).unwrap();
    let mut ws = scorer.workspace();
    let x = Tensor::from_vec(s.input_batch(), (8, 3, 8, 8), &Device::Cpu).unwrap();
    for cell in CELLS {
        let arch = Arch::parse(cell).unwrap();
        let model = Nb201::new(TINY, arch, DType::F32, &Device::Cpu).unwrap();
        for init in 0..2 {
            model.init_kaiming_with(s.init_seed(init), INIT_FAN).unwrap();
            let want = naswot::kernel(&model, &x).unwrap();
            let got = scorer.naswot.kernel(&arch, init, &mut ws.naswot).unwrap().to_f64();
            // Same units observed (diagonal), and at most a couple of near-zero flips.
            assert_eq!(got[0], want[0], "{cell}: D_total");
            let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(worst <= 4.0, "{cell} init {init}: kernels differ by {worst}");
        }
        let want = naswot::reference(&s, arch).unwrap();
        let got = scorer.naswot(&arch, &mut ws).unwrap();
        match (got, want) {
            (Some(g), Some(w)) => assert!(rel(g, w) < 1e-6, "{cell}: {g} vs {w}"),
            (g, w) => assert_eq!(g.is_none(), w.is_none(), "{cell}"),
        }
    }
}

#[test]
fn fast_logsynflow_equals_the_candle_reference() {
    let s = settings(TINY, 2, 2);
    let scorer = Scorer::new(s).unwrap();
    let mut ws = scorer.workspace();
    for cell in CELLS.iter().chain(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"].iter()) {
        let arch = Arch::parse(cell).unwrap();
        let want = logsynflow::reference(&s, arch).unwrap();
        let got = scorer.logsynflow(&arch, &mut ws).unwrap();
        assert!(rel(got, want) < 1e-10 || (got == 0.0 && want == 0.0), "{cell}: {got} vs {want}");
    }
}

#[test]
fn fast_meco_equals_the_candle_reference() {
    let s = settings(TINY, 8, 2);
    let scorer = Scorer::new(s).unwrap();
    let mut ws = scorer.workspace();
    for cell in CELLS.iter().chain(["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"].iter()) {
        let arch = Arch::parse(cell).unwrap();
        let want = meco::reference(&s, arch).unwrap();
        let got = scorer.meco(&arch, &mut ws).unwrap();
        assert!((got - want).abs() < 1e-5, "{cell}: {got} vs {want}");
    }
    // The value depends on the cell: not a constant.
    let a = scorer.meco(&Arch::parse(CELLS[0]).unwrap(), &mut ws).unwrap();
    let b = scorer.meco(&Arch::parse(CELLS[5]).unwrap(), &mut ws).unwrap();
    assert!((a - b).abs() > 1e-3, "{a} vs {b}");
}

#[test]
fn fast_paths_equal_the_references_on_the_cifar10_network() {
    // The real network and batch, one initialisation, on three cells (seconds in release).
    let s = settings(NetConfig::CIFAR10, 64, 1);
    let scorer = Scorer::new(s).unwrap();
    let mut ws = scorer.workspace();
    for cell in [CELLS[1], CELLS[2], CELLS[6]] {
        let arch = Arch::parse(cell).unwrap();
        let (g, w) = (scorer.naswot(&arch, &mut ws).unwrap().unwrap(), naswot::reference(&s, arch).unwrap().unwrap());
        assert!(rel(g, w) < 1e-6, "{cell}: NASWOT {g} vs {w}");
        let (g, w) = (scorer.logsynflow(&arch, &mut ws).unwrap(), logsynflow::reference(&s, arch).unwrap());
        assert!(rel(g, w) < 1e-10, "{cell}: LogSynflow {g} vs {w}");
        let (g, w) = (scorer.meco(&arch, &mut ws).unwrap(), meco::reference(&s, arch).unwrap());
        // Smallest eigenvalues amplify the f32 forward's rounding (seen: 5e-6 relative).
        assert!(rel(g, w) < 2e-5, "{cell}: MeCo {g} vs {w}");
    }
}

#[test]
fn disconnected_cells_are_degenerate() {
    let s = settings(TINY, 8, 1);
    let scorer = Scorer::new(s).unwrap();
    let mut ws = scorer.workspace();
    // Convs on the input (their ReLUs are observed upstream of the break), nothing reaches 3.
    let arch = Arch::parse("|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|none~1|none~2|").unwrap();
    assert!(!arch.is_connected());
    let m = scorer.score(&arch, &mut ws).unwrap();
    assert_eq!(m.naswot, None);
    assert_eq!(m.logsynflow, 0.0);
    assert_eq!(naswot::reference(&s, arch).unwrap(), None);
    assert_eq!(logsynflow::reference(&s, arch).unwrap(), 0.0);
}
