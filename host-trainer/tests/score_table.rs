//! The shipped CIFAR-10 score table (`artifacts/scores/`): complete, finite, made with the
//! default settings, its quantised form embedded in the binary, and reproducible: three
//! cells are recomputed here and must match.
//!
//! Tolerances of the recomputation: NASWOT `1e-5` relative (the fast path's `f32` forward
//! can flip a code sitting within rounding of zero when the kernels differ, e.g. on a CPU
//! without AVX2/FMA; on the machine that wrote the table the values are identical),
//! LogSynflow `1e-9` relative (`f64`), SkipScore exact, MeCo `1e-4` relative (smallest
//! eigenvalues amplify the `f32` forward's rounding; identical on the machine that wrote it).
//! The CIFAR-100 and ImageNet16-120 tables are checked the same way.

#![cfg(feature = "train")]

use edge_runtime::NetConfig;
use host_trainer::score::fast::Scorer;
use host_trainer::score::table::{quantised_paths, read_rows, Proxy, Sidecar};
use host_trainer::score::{ScoreSettings, ScoreTable};
use simnas_shared::{Arch, NUM_ARCHS};
use std::path::PathBuf;

fn artifact(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts/scores").join(name)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

#[test]
fn shipped_table_is_complete_and_matches_its_sidecar() {
    let table = ScoreTable::load(&artifact("cifar10_scores.csv")).expect("shipped table loads");
    let side = Sidecar::from_json(&std::fs::read_to_string(artifact("cifar10_scores.json")).unwrap()).unwrap();
    let d = ScoreSettings::default();
    assert_eq!((side.run.seed, side.run.batch, side.run.inits, side.run.input), (d.seed, d.batch, d.inits, d.input));
    assert_eq!((side.run.channels, side.run.resolution, side.run.classes), (16, 32, 10));
    assert_eq!(side.rows, NUM_ARCHS);
    assert_eq!(side.run.sample, None);
    assert_eq!(*table.ranges(), side.ranges);
    assert_eq!(table.ranges().naswot.0, side.naswot_floor);
    // Every disconnected cell sits at the floor (the minimum of the connected cells).
    let mut floored = 0;
    for arch in host_trainer::score::table::all_archs() {
        let r = table.row(&arch).unwrap();
        if !arch.is_connected() {
            assert_eq!(r.naswot, side.naswot_floor, "{arch}");
            floored += 1;
        }
        assert!(r.naswot.is_finite() && r.logsynflow.is_finite());
    }
    assert_eq!(floored, side.degenerate_cells);
    // The embedded quantised table is the table of executed networks, the same TF within
    // half a quantisation step; the raw quantised table is the CSV's.
    let exec = table.executed();
    let emb = ScoreTable::embedded().expect("embedded table decodes");
    assert!(emb.is_executed() && exec.is_executed() && !table.is_executed());
    assert_eq!(emb.ranges(), exec.ranges());
    let raw = ScoreTable::load_quantised(&artifact("cifar10_scores_raw.tf16")).unwrap();
    assert!(!raw.is_executed());
    assert_eq!(raw.ranges(), table.ranges());
    for arch in host_trainer::score::table::all_archs() {
        assert!((emb.tf(&arch) - exec.tf(&arch)).abs() <= 0.5 / 65535.0 + 1e-12, "{arch}");
        assert!((raw.tf(&arch) - table.tf(&arch)).abs() <= 0.5 / 65535.0 + 1e-12, "{arch}");
        assert_eq!(exec.tf(&arch), exec.tf(&arch.executed()), "{arch}");
    }
    let file = ScoreTable::load_quantised(&artifact("cifar10_scores.tf16")).unwrap();
    assert_eq!(file.tf(&Arch::parse(CELLS[0]).unwrap()), emb.tf(&Arch::parse(CELLS[0]).unwrap()));
}

/// Every shipped table's quantised files hold its TF under each proxy (executed and raw).
#[test]
fn shipped_quantised_tables_match_their_csv_under_every_proxy() {
    for stem in ["cifar10_scores", "cifar100_scores", "imagenet16_scores"] {
        let csv = artifact(&format!("{stem}.csv"));
        if stem != "cifar10_scores" && !csv.exists() {
            continue;
        }
        let table = ScoreTable::load(&csv).unwrap();
        assert!(table.row(&Arch::parse(CELLS[0]).unwrap()).unwrap().meco.is_some(), "{stem} has MeCo");
        for proxy in Proxy::ALL {
            let t = table.clone().with_proxy(proxy).unwrap();
            let [exec_path, raw_path] = quantised_paths(&csv, proxy);
            let exec = ScoreTable::load_quantised(&exec_path).unwrap();
            let raw = ScoreTable::load_quantised(&raw_path).unwrap();
            assert_eq!((exec.proxy(), exec.is_executed(), raw.proxy(), raw.is_executed()), (proxy, true, proxy, false));
            let want = t.executed();
            for arch in host_trainer::score::table::all_archs() {
                assert!((exec.tf(&arch) - want.tf(&arch)).abs() <= 0.5 / 65535.0 + 1e-12, "{stem} {proxy:?} {arch}");
                assert!((raw.tf(&arch) - t.tf(&arch)).abs() <= 0.5 / 65535.0 + 1e-12, "{stem} {proxy:?} {arch}");
            }
        }
    }
}

/// Cells with dead branches, each scored with its dead edges pruned, give the scores the
/// executed table carries for them (its canonical row), and differ from their own raw row.
#[test]
fn dead_branch_cells_carry_their_executed_networks_scores() {
    let table = ScoreTable::load(&artifact("cifar10_scores.csv")).unwrap();
    let exec = table.executed();
    let scorer = Scorer::new(ScoreSettings::default()).unwrap();
    let mut ws = scorer.workspace();
    let dead = [
        // Nodes 1 and 2 never reach the output: what runs is a skip.
        "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|",
        // A conv out of node 1, which the input never reaches.
        "|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    ];
    for cell in dead {
        let arch = Arch::parse(cell).unwrap();
        assert!(!arch.is_executed());
        let m = scorer.score(&arch.executed(), &mut ws).unwrap();
        let row = exec.row(&arch).unwrap();
        let n = m.naswot.expect("connected");
        assert!(rel(n, row.naswot) < 1e-5, "{cell}: NASWOT {n} vs {}", row.naswot);
        assert!(rel(m.logsynflow, row.logsynflow) < 1e-9, "{cell}");
        assert_eq!(m.skip, row.skip, "{cell}");
        assert!(rel(m.meco, row.meco.unwrap()) < 1e-4, "{cell}: MeCo");
        assert_ne!(table.row(&arch).unwrap().naswot, row.naswot, "{cell}: the raw row scores the dead branch");
    }
}

/// A strong cell, a mixed one, and one with a dead node and a pool.
const CELLS: [&str; 3] = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|nor_conv_3x3~0|none~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
];

fn check_rows(stem: &str, net: NetConfig) {
    let csv = artifact(&format!("{stem}.csv"));
    if stem != "cifar10_scores" && !csv.exists() {
        return;
    }
    let rows = read_rows(&csv).unwrap();
    let scorer = Scorer::new(ScoreSettings { net, ..ScoreSettings::default() }).unwrap();
    let mut ws = scorer.workspace();
    for cell in CELLS {
        let arch = Arch::parse(cell).unwrap();
        let row = rows.iter().find(|r| r.arch == arch).unwrap();
        let m = scorer.score(&arch, &mut ws).unwrap();
        let n = m.naswot.expect("connected cell");
        assert!(rel(n, row.naswot) < 1e-5, "{stem} {cell}: NASWOT {n} vs shipped {}", row.naswot);
        assert!(
            rel(m.logsynflow, row.logsynflow) < 1e-9,
            "{stem} {cell}: LogSynflow {} vs {}",
            m.logsynflow,
            row.logsynflow
        );
        assert_eq!(m.skip, row.skip, "{stem} {cell}");
        let meco = row.meco.expect("the table has MeCo");
        assert!(rel(m.meco, meco) < 1e-4, "{stem} {cell}: MeCo {} vs {meco}", m.meco);
    }
}

#[test]
fn shipped_rows_are_reproduced() {
    check_rows("cifar10_scores", NetConfig::CIFAR10);
}

/// The CIFAR-100 table copies NASWOT and MeCo from the CIFAR-10 one (`--reuse`): scored from
/// scratch here, with 100 classes, they come out the same.
#[test]
fn shipped_cifar100_rows_are_reproduced() {
    check_rows("cifar100_scores", NetConfig::CIFAR100);
}

#[test]
fn shipped_imagenet16_rows_are_reproduced() {
    check_rows("imagenet16_scores", NetConfig::IMAGENET16_120);
}
