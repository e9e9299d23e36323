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
    for preset in
        [SynthPreset::Paper, SynthPreset::PaperMs, SynthPreset::Edge, SynthPreset::EdgeNoise, SynthPreset::Around]
    {
        let a = dist.sample(preset, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let b = dist.sample(preset, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        assert_eq!(a.latency, b.latency);
        assert!(a.latency.iter().all(|&v| v > 0.0 && v.is_finite()), "{preset:?}");
        assert_eq!(a.latency.len(), NUM_ARCHS);
        let code = Arch::uniform(Op::NorConv3x3).code().get() as usize;
        assert!((a.latency[code] - a.lut.hi()).abs() < 1e-12 || preset == SynthPreset::Around);
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
