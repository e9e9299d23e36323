//! Tests of the score table files: round trips, resume after a kill, and refusal of bad
//! input with a clear error.

use super::*;
use crate::score::quant::{Tf16Error, TF16_LEN};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simnas-table-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn prow(i: u16, naswot: Option<f64>) -> PartialRow {
    let arch = Arch::from_code(ArchCode::new(i).unwrap());
    let meco = Some(0.25 * (i % 4) as f64);
    PartialRow { index: NatsIndex::new(i).unwrap(), arch, naswot, logsynflow: 10.0 * i as f64, skip: 0.5, meco }
}

fn meta(sample: Option<usize>) -> RunMeta {
    RunMeta::new(&ScoreSettings::default(), sample, 7)
}

/// A synthetic full table: index = code, metrics from the code.
fn full_csv() -> String {
    let mut s = format!("{}\n", HEADER.join(","));
    for code in 0..NUM_ARCHS as u16 {
        let a = Arch::from_code(ArchCode::new(code).unwrap());
        let skip = crate::score::skip::skip_score(&a);
        let meco = ((code as u32 * 7) % 101) as f64 / 101.0;
        s += &format!("{code},{a},{},{},{skip},{meco}\n", 500.0 + (code % 97) as f64, (code as f64).sqrt());
    }
    s
}

#[test]
fn partial_run_resumes_and_finishes_sorted_with_the_floor() {
    let d = tmp("resume");
    let out = d.join("t.csv");
    let mut t = PartialTable::open(&out, meta(Some(4))).unwrap();
    t.append(prow(9, Some(700.5))).unwrap();
    t.append(prow(3, None)).unwrap();
    drop(t);
    // A kill in the middle of a line.
    let partial = with_suffix(&out, ".partial");
    std::fs::OpenOptions::new().append(true).open(&partial).unwrap().write_all(b"5,|nor_conv_3x3~0|+|no").unwrap();
    let mut t = PartialTable::open(&out, meta(Some(4))).unwrap();
    assert_eq!(t.rows().len(), 2, "the cut line is dropped");
    assert!(std::fs::read(&partial).unwrap().ends_with(b"\n"));
    t.append(prow(5, Some(650.25))).unwrap();
    t.append(prow(1, Some(800.0))).unwrap();
    t.add_time(1.5).unwrap();
    let side = t.finish("simnas score --all --out t.csv", 2).unwrap();
    assert_eq!((side.rows, side.degenerate_cells, side.naswot_floor), (4, 1, 650.25));
    assert_eq!(side.run.wall_time_s, 1.5);
    assert!(!partial.exists() && !with_suffix(&out, ".partial.json").exists());
    let rows = read_rows(&out).unwrap();
    let idx: Vec<u16> = rows.iter().map(|r| r.index.get()).collect();
    assert_eq!(idx, vec![1, 3, 5, 9]);
    assert_eq!(rows[1].naswot, 650.25, "degenerate cell floored");
    assert_eq!(rows[3].naswot, 700.5);
    let j: Sidecar = serde_json::from_str(&std::fs::read_to_string(d.join("t.json")).unwrap()).unwrap();
    assert_eq!(j.command, "simnas score --all --out t.csv");
    assert!(!d.join("t.tf16").exists(), "a sample has no quantised table");
}

#[test]
fn partial_run_with_other_settings_is_refused() {
    let d = tmp("mismatch");
    let out = d.join("t.csv");
    PartialTable::open(&out, meta(None)).unwrap().append(prow(0, Some(1.0))).unwrap();
    let other = RunMeta { seed: 99, ..meta(None) };
    let err = PartialTable::open(&out, other).unwrap_err();
    assert!(matches!(err, TableError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("seed=99"));
}

#[test]
fn full_table_loads_with_tf_in_unit_range() {
    let d = tmp("full");
    let p = d.join("full.csv");
    std::fs::write(&p, full_csv()).unwrap();
    let t = ScoreTable::load(&p).unwrap();
    let a = Arch::from_code(ArchCode::new(96).unwrap());
    assert_eq!(t.naswot(&a), Some(596.0));
    assert_eq!(t.ranges().naswot, (500.0, 596.0));
    for arch in all_archs() {
        let tf = t.tf(&arch);
        assert!((0.0..=1.0).contains(&tf));
    }
    // TF by hand for code 96: naswot max (1), logsynflow sqrt(96)/sqrt(15624), skip normalised.
    let r = t.row(&a).unwrap();
    let want = (1.0 + 96f64.sqrt() / 15624f64.sqrt() + r.skip / t.ranges().skip.1) / 3.0;
    assert!((t.tf(&a) - want).abs() < 1e-12);
    // Quantised round trip: within half a step.
    let bytes = quant::encode(&t, QuantMeta { seed: 0, batch: 64, inits: 3, executed: false });
    assert_eq!(bytes.len(), TF16_LEN);
    let q = ScoreTable::from_quantised(&bytes, Path::new("q")).unwrap();
    assert_eq!(q.ranges(), t.ranges());
    assert!(q.row(&a).is_none());
    for arch in all_archs() {
        assert!((q.tf(&arch) - t.tf(&arch)).abs() <= 0.5 / 65535.0 + 1e-12);
    }
}

#[test]
fn bad_tables_are_refused_with_clear_errors() {
    let d = tmp("bad");
    let p = d.join("t.csv");
    let full = full_csv();
    let check = |text: &str, want: &str| {
        std::fs::write(&p, text).unwrap();
        let e = ScoreTable::load(&p).unwrap_err().to_string();
        assert!(e.contains(want), "{e:?} should mention {want:?}");
    };
    // Wrong row count.
    let short: String = full.lines().take(100).map(|l| format!("{l}\n")).collect();
    check(&short, "has 99 rows");
    // Truncated mid-line.
    check(&full[..full.len() / 2], "truncated");
    // NaN and infinity.
    check(&full.replacen("500,", "NaN,", 1), "finite");
    check(&full.replacen(",500,", ",inf,", 1), "finite");
    // Bad header, duplicates, unknown cell, empty file.
    check(&full.replacen("index,arch", "idx,arch", 1), "header");
    let mut dup: Vec<&str> = full.lines().collect();
    dup[2] = dup[1];
    check(&(dup.join("\n") + "\n"), "twice");
    check(&full.replacen("nor_conv_3x3", "conv_5x5", 1), "cell");
    check("", "header");
    assert!(matches!(ScoreTable::load(&d.join("missing.csv")), Err(TableError::Io { .. })));
    // Quantised: truncated, corrupted, not a table.
    std::fs::write(&p, full).unwrap();
    let t = ScoreTable::load(&p).unwrap();
    let bytes = quant::encode(&t, QuantMeta { seed: 0, batch: 64, inits: 3, executed: false });
    let e = |b: &[u8]| ScoreTable::from_quantised(b, Path::new("q.tf16")).unwrap_err();
    assert!(matches!(e(&bytes[..1000]), TableError::Quant { err: Tf16Error::Length { .. }, .. }));
    assert!(matches!(e(&bytes[..10]), TableError::Quant { err: Tf16Error::Length { .. }, .. }));
    let mut flipped = bytes.clone();
    flipped[5000] ^= 1;
    assert!(matches!(e(&flipped), TableError::Quant { err: Tf16Error::Crc { .. }, .. }));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(e(&magic).to_string().contains("not a quantised score table"));
}

/// The host loads the shipped table through the board's reader (edge-runtime's no_std
/// `Tf16`): the same TF bits for all 15,625 cells, the same ranges and executed flag.
#[test]
fn edge_runtime_reads_the_shipped_table_bit_identically() {
    use edge_runtime::tf16::Tf16;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../artifacts/scores/cifar10_scores.tf16");
    let bytes = std::fs::read(&path).unwrap();
    let host = ScoreTable::load_quantised(&path).unwrap();
    let board = Tf16::parse(&bytes).unwrap();
    assert!(board.meta.executed && host.is_executed(), "the shipped table is the executed one");
    let r = host.ranges();
    assert_eq!(board.ranges, [r.naswot, r.logsynflow, r.skip]);
    let mut distinct = HashSet::new();
    for code in ArchCode::all() {
        let a = Arch::from_code(code);
        assert_eq!(board.tf(&a).to_bits(), host.tf(&a).to_bits(), "{a}");
        distinct.insert(board.quantised(code));
    }
    assert!(distinct.len() > 1000, "a real table has many distinct scores");
}

#[test]
fn log_ranks_average_ties_and_place_outsiders_between_neighbours() {
    let v = [1.0, 2.0, 2.0, 3.0];
    assert!((log_rank(&v, 1.0) - (1.0f64 / 4.0).ln()).abs() < 1e-15);
    assert!((log_rank(&v, 2.0) - (2.5f64 / 4.0).ln()).abs() < 1e-15, "ranks 2 and 3 average to 2.5");
    assert!((log_rank(&v, 3.0) - 0.0).abs() < 1e-15);
    assert!((log_rank(&v, 0.0) - (0.5f64 / 4.0).ln()).abs() < 1e-15);
    assert!((log_rank(&v, 2.5) - (3.5f64 / 4.0).ln()).abs() < 1e-15);
}

fn row(code: u16, naswot: f64, logsynflow: f64, meco: Option<f64>) -> ScoreRow {
    let arch = Arch::from_code(ArchCode::new(code).unwrap());
    ScoreRow { index: NatsIndex::new(code).unwrap(), arch, naswot, logsynflow, skip: 0.0, meco }
}

#[test]
fn the_rank_aggregate_by_hand() {
    // Cell 0 is last on all three metrics, cell 2 first on all three, cell 1 is first on
    // NASWOT only: A = ln(r_n/3) + ln(r_l/3) + ln(r_m/3).
    let rows = [row(0, 1.0, 1.0, Some(0.1)), row(1, 9.0, 2.0, Some(0.2)), row(2, 5.0, 3.0, Some(0.3))];
    let tf = proxy_tf(&rows, Proxy::MecoRank).unwrap();
    let a = |r: [f64; 3]| r.iter().map(|r| (r / 3.0).ln()).sum::<f64>();
    let (lo, hi) = (a([1.0, 1.0, 1.0]), a([2.0, 3.0, 3.0]));
    assert_eq!(tf[0], 0.0);
    assert!((tf[1] - (a([3.0, 2.0, 2.0]) - lo) / (hi - lo)).abs() < 1e-12);
    assert_eq!(tf[2], 1.0);
    // Ranks, not values: a monotone change of one metric changes nothing.
    let squashed = rows.map(|r| ScoreRow { naswot: r.naswot.ln(), ..r });
    assert_eq!(proxy_tf(&squashed, Proxy::MecoRank).unwrap(), tf);
    // Without MeCo the aggregate cannot be made; FreeREA's mean can.
    let v1 = [row(0, 1.0, 1.0, None), row(1, 9.0, 2.0, Some(0.2))];
    assert!(proxy_tf(&v1, Proxy::MecoRank).is_none());
    assert!(proxy_tf(&v1, Proxy::Freerea).is_some());
}

#[test]
fn a_table_without_meco_loads_and_says_what_the_rank_proxy_needs() {
    let d = tmp("v1");
    let p = d.join("v1.csv");
    let mut s = format!("{}\n", HEADER_V1.join(","));
    for code in 0..NUM_ARCHS as u16 {
        let a = Arch::from_code(ArchCode::new(code).unwrap());
        s += &format!("{code},{a},{},{},0\n", 500.0 + (code % 97) as f64, (code as f64).sqrt());
    }
    std::fs::write(&p, s).unwrap();
    let t = ScoreTable::load(&p).unwrap();
    assert_eq!(t.proxy(), Proxy::Freerea);
    assert_eq!(t.row(&Arch::uniform(simnas_shared::Op::SkipConnect)).unwrap().meco, None);
    let e = t.with_proxy(Proxy::MecoRank).unwrap_err().to_string();
    assert!(e.contains("meco-rank") && e.contains("--reuse"), "{e}");
}

#[test]
fn the_rank_proxy_quantises_under_its_own_name_and_id() {
    let d = tmp("proxies");
    let p = d.join("t.csv");
    std::fs::write(&p, full_csv()).unwrap();
    let t = ScoreTable::load(&p).unwrap();
    let meta = QuantMeta { seed: 0, batch: 64, inits: 3, executed: false };
    let paths = write_quantised(&t, &p, meta).unwrap();
    let names: Vec<String> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["t.tf16", "t_raw.tf16", "t_meco-rank.tf16", "t_meco-rank_raw.tf16"]);
    let want = t.clone().with_proxy(Proxy::MecoRank).unwrap().executed();
    let got = ScoreTable::load_quantised(&paths[2]).unwrap();
    assert_eq!((got.proxy(), got.is_executed()), (Proxy::MecoRank, true));
    for a in all_archs() {
        assert!((got.tf(&a) - want.tf(&a)).abs() <= 0.5 / 65535.0 + 1e-12, "{a}");
    }
    // FreeREA's TF differs from the aggregate's, so the files are not copies.
    assert_ne!(std::fs::read(&paths[0]).unwrap(), std::fs::read(&paths[2]).unwrap());
    // A quantised table cannot change proxy: its metrics are gone.
    let e = got.with_proxy(Proxy::Freerea).unwrap_err().to_string();
    assert!(e.contains("pass the CSV"), "{e}");
}
