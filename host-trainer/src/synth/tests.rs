use super::*;
use crate::latency::registry::DEVICES;
use rand::SeedableRng;
use simnas_shared::{Arch, Op};

/// A small training set: three devices with known LUTs, one held out.
fn fake_tables() -> Vec<(&'static BenchDevice, LatencyTable)> {
    let luts = [
        Lut { base: 2.0, t: [[0.0, 0.1, 0.5, 1.0, 0.3]; NUM_EDGES] },
        Lut { base: 20.0, t: [[0.0, 1.0, 4.0, 12.0, 2.0]; NUM_EDGES] },
        Lut { base: 0.5, t: [[0.0, 0.05, 0.2, 0.3, 0.1]; NUM_EDGES] },
        Lut { base: 1.0, t: [[0.0, 0.12, 0.2, 0.35, 0.15]; NUM_EDGES] },
    ];
    let devs = [&DEVICES[0], &DEVICES[9], &DEVICES[12], &DEVICES[6]];
    devs.iter()
        .zip(luts)
        .map(|(d, l)| {
            assert_eq!(d.split == Split::Train, l.base != 1.0);
            (*d, LatencyTable::from_codes(d.name, l.table().into_iter().map(Some).collect()).unwrap())
        })
        .collect()
}

#[test]
fn fits_on_train_devices_only_and_normalises_by_hi() {
    let dist = DeviceDistribution::fit(&fake_tables(), "test".into());
    assert_eq!(dist.train.len(), 3);
    assert_eq!(dist.validation, vec!["hw-c10-pixel3".to_string()]);
    // Normalised LUTs have hi = 1, so the mean LUT does too.
    assert!((dist.per_edge_op.mean().hi() - 1.0).abs() < 1e-9);
    // The held-out device (conv3x3 0.35 of hi 3.1) is absent from the mean.
    // Train conv3x3 costs / hi: 1/8, 12/92, 0.3/2.3.
    let want = (1.0 / 8.0 + 12.0 / 92.0 + 0.3 / 2.3) / 3.0;
    assert!((dist.per_op.t[0][Op::NorConv3x3 as usize].mean - want).abs() < 1e-9);
    // Per-op in ms: mean of 1, 12, 0.3.
    assert!((dist.per_op_ms.t[2][3].mean - 4.433333333).abs() < 1e-6);
    // Exact LUT devices: no residual noise.
    assert!(dist.noise_sigma < 1e-9);
    let v = dist.devices.iter().find(|d| d.split == Split::Validation).unwrap();
    assert!(v.lut_norm.is_none() && (v.per_op.r2 - 1.0).abs() < 1e-9);
}

#[test]
fn sampling_is_seeded_and_positive() {
    let dist = DeviceDistribution::fit(&fake_tables(), "test".into());
    for preset in SynthPreset::ALL {
        let a = dist.sample(preset, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let b = dist.sample(preset, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a.latency, b.latency);
        assert!(a.latency.iter().all(|&v| v > 0.0 && v.is_finite()), "{preset:?}");
        assert_eq!(a.latency.len(), NUM_ARCHS);
        let code = Arch::uniform(Op::NorConv3x3).code().get() as usize;
        assert!(
            (a.latency[code] - a.lut.hi()).abs() < 1e-12
                || matches!(preset, SynthPreset::Around | SynthPreset::Runtime)
        );
    }
}

#[test]
fn file_round_trip_and_version_check() {
    let dist = DeviceDistribution::fit(&fake_tables(), "test".into());
    let dir = std::env::temp_dir().join(format!("simnas-synth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("d.json");
    std::fs::write(&p, serde_json::to_string(&dist).unwrap()).unwrap();
    let back = DeviceDistribution::load(&p).unwrap();
    assert_eq!(back.train, dist.train);
    std::fs::write(&p, "{\"format_version\": 99}").unwrap();
    assert!(matches!(DeviceDistribution::load(&p), Err(SynthError::Version { got: 99, .. })));
    std::fs::write(&p, "not json").unwrap();
    assert!(DeviceDistribution::load(&p).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn coverage_of_exact_devices() {
    let tables = fake_tables();
    let dist = DeviceDistribution::fit(&tables, "test".into());
    let rows = coverage::coverage(&dist, &tables, &[SynthPreset::Paper], 20, 1);
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert!(r.own_edge.1 > 0.999);
        let (_, best, median) = r.presets[0];
        assert!(best >= median && best <= 1.0 + 1e-12);
    }
    let md = coverage::markdown(&rows, 20, "simnas devices report");
    assert!(md.contains("| hw-c10-pixel3 |") && md.contains("paper closest"));
}

#[test]
fn the_committed_distribution_parses() {
    let d = DeviceDistribution::embedded();
    assert_eq!(d.format_version, FORMAT_VERSION);
    assert_eq!(d.train.len() + d.validation.len(), DEVICES.len());
    let dev = d.sample(SynthPreset::Paper, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
    assert!(dev.latency.iter().all(|v| *v > 0.0));
}

/// A runtime with a `none` edge dearer than a skip, a known share of dead-edge work, a
/// millisecond clock and a few slow outliers.
fn runtime_table(dead_cost: f64, quantised: bool) -> (Lut, LatencyTable, usize) {
    let mut lut = Lut { base: 4.0, t: [[0.0, -0.3, 2.0, 6.0, 1.5]; NUM_EDGES] };
    lut.t[5][3] = 9.0;
    let mut outliers = 0;
    let vals = ArchCode::all()
        .map(|c| {
            let a = Arch::from_code(c);
            if !a.is_connected() {
                return None;
            }
            let run = lut.latency(a.executed());
            let mut v = run + dead_cost * (lut.latency(a) - run);
            if a.is_executed() && c.get() % 97 == 0 {
                v *= 2.0;
                outliers += 1;
            }
            Some(if quantised { v.round() } else { v })
        })
        .collect();
    (lut, LatencyTable::from_codes("runtime", vals).unwrap(), outliers)
}

#[test]
fn runtime_fit_recovers_the_runtime() {
    for (dead, quantised) in [(0.0, false), (1.0, false), (0.5, true)] {
        let (lut, table, outliers) = runtime_table(dead, quantised);
        let f = runtime::RuntimeFit::fit("x", "y", &table).unwrap();
        let hi = lut.hi();
        assert!((f.hi_ms - hi).abs() < 0.05 * hi, "{} vs {hi}", f.hi_ms);
        // The skip stays cheaper than `none` (a negative cost), the output conv dearer.
        assert!(f.lut.t[2][1] < 0.0 && f.lut.t[5][3] > f.lut.t[0][3], "{:?}", f.lut);
        assert!((f.dead_cost - dead).abs() < 0.05, "dead {dead}: {}", f.dead_cost);
        assert_eq!(f.quantum_ms, if quantised { 1.0 } else { 0.0 });
        let n_exec =
            ArchCode::all().filter(|c| Arch::from_code(*c).is_executed() && Arch::from_code(*c).is_connected()).count();
        let want = outliers as f64 / n_exec as f64;
        assert!((f.outlier_fraction - want).abs() < 0.3 * want, "{} vs {want}", f.outlier_fraction);
        // Mostly the doubled cells (ln 2); a few cells the rounding or the least-squares
        // fit's pull towards the outliers moved.
        let near = f.outliers.iter().filter(|l| (**l - 2f64.ln()).abs() < 0.1).count();
        assert!(4 * near >= 3 * f.outliers.len(), "{:?}", f.outliers);
    }
}

#[test]
fn runtime_draws_keep_the_runtime_kind() {
    let fits: Vec<_> = [(0.0, false), (1.0, true)]
        .iter()
        .map(|&(d, q)| runtime::RuntimeFit::fit("x", "y", &runtime_table(d, q).1).unwrap())
        .collect();
    let gen = runtime::RuntimeGenerator::new(&fits[..1]).unwrap();
    let dev = gen.sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
    // A pruning runtime: a cell costs what its executed network costs, up to noise.
    let dead = Arch::uniform(Op::NorConv3x3);
    let mut pruned = dead;
    pruned.ops[0] = Op::None;
    pruned.ops[1] = Op::None;
    pruned.ops[3] = Op::None;
    let pruned = pruned.executed();
    let (a, b) = (
        dev.latency[pruned.code().get() as usize],
        dev.latency[usize::from(
            simnas_shared::ArchCode::all()
                .find(|c| {
                    let x = Arch::from_code(*c);
                    !x.is_executed() && x.executed() == pruned
                })
                .unwrap()
                .get(),
        )],
    );
    assert!((a / b - 1.0).abs() < 0.3, "{a} vs {b}");
    // A millisecond-clock runtime: every value a multiple of one quantum.
    let gen = runtime::RuntimeGenerator::new(&fits[1..]).unwrap();
    let dev = gen.sample(&mut rand_chacha::ChaCha8Rng::seed_from_u64(2));
    let q = dev.latency.iter().copied().fold(f64::INFINITY, f64::min);
    assert!(dev.latency.iter().all(|v| ((v / q) - (v / q).round()).abs() < 1e-6));
    assert!(runtime::RuntimeGenerator::new(&[]).is_none());
}

#[test]
fn every_preset_is_listed() {
    use clap::ValueEnum;
    assert_eq!(SynthPreset::ALL.to_vec(), SynthPreset::value_variants().to_vec());
}
