use super::*;
use proptest::prelude::*;
use std::string::String;
use std::vec::Vec;

type T<'a> = (&'a str, Vec<usize>, Vec<f32>, &'a str);

/// A safetensors file written by hand (the format's spec: u64 LE header length, JSON, data).
fn build(tensors: &[T<'_>], meta: &[(&str, &str)]) -> Vec<u8> {
    let mut json = String::from("{\"__metadata__\":{");
    json += &meta.iter().map(|(k, v)| format!("\"{k}\":\"{v}\"")).collect::<Vec<_>>().join(",");
    json += "}";
    let mut data = Vec::new();
    for (name, shape, vals, dtype) in tensors {
        let begin = data.len();
        for v in vals {
            data.extend_from_slice(&v.to_le_bytes());
        }
        json += &format!(
            ",\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{begin},{}]}}",
            data.len()
        );
    }
    json += "}";
    while json.len() % 8 != 0 {
        json.push(' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(&data);
    out
}

const META: [(&str, &str); 3] = [("format_version", "1"), ("activation", "relu"), ("obs_dim", "315")];

fn vals(n: usize, seed: u64) -> Vec<f32> {
    let mut r = crate::rng::SplitMix64::new(seed);
    (0..n).map(|_| r.next_signed() * 0.1).collect()
}

fn tiny(h: usize) -> Vec<T<'static>> {
    vec![
        ("actor.0.weight", vec![h, OBS_DIM], vals(h * OBS_DIM, 1), "F32"),
        ("actor.0.bias", vec![h], vals(h, 2), "F32"),
        ("critic.0.weight", vec![1, 3], vals(3, 9), "F32"),
        ("actor.1.weight", vec![ACTIONS, h], vals(ACTIONS * h, 3), "F32"),
        ("actor.1.bias", vec![ACTIONS], vals(ACTIONS, 4), "F32"),
    ]
}

#[test]
fn forward_matches_a_naive_mlp() {
    let t = tiny(8);
    let bytes = build(&t, &META);
    let p = Policy::from_bytes(&bytes).unwrap();
    assert_eq!((p.depth(), p.parameters()), (2, 8 * (OBS_DIM + 1) + ACTIONS * 9));
    let obs: Vec<f32> = vals(OBS_DIM, 5);
    let mut logits = [0f32; ACTIONS];
    p.forward(&obs, &mut logits).unwrap();
    // Reference in f64.
    let (w0, b0, w1, b1) = (&t[0].2, &t[1].2, &t[3].2, &t[4].2);
    let h: Vec<f64> = (0..8)
        .map(|o| {
            (b0[o] as f64 + (0..OBS_DIM).map(|i| w0[o * OBS_DIM + i] as f64 * obs[i] as f64).sum::<f64>()).max(0.0)
        })
        .collect();
    for o in 0..ACTIONS {
        let want = b1[o] as f64 + (0..8).map(|i| w1[o * 8 + i] as f64 * h[i]).sum::<f64>();
        assert!((logits[o] as f64 - want).abs() < 1e-5, "{o}: {} vs {want}", logits[o]);
    }
    let best = p.greedy(&obs, |_| true).unwrap().unwrap();
    let argmax = (0..ACTIONS).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    assert_eq!(best.index(), argmax);
    assert_eq!(p.greedy(&obs, |_| false).unwrap(), None);
    assert!(matches!(p.forward(&obs[1..], &mut logits), Err(PolicyError::BufferLength { .. })));
}

#[test]
fn every_truncation_is_refused() {
    let bytes = build(&tiny(4), &META);
    for n in 0..bytes.len() {
        assert!(Policy::from_bytes(&bytes[..n]).is_err(), "prefix of {n} bytes accepted");
    }
}

#[test]
fn lies_in_the_header_are_refused() {
    let mut t = tiny(4);
    t[0].3 = "F16";
    assert_eq!(Policy::from_bytes(&build(&t, &META)).unwrap_err(), PolicyError::DType { layer: 0 });
    let mut t = tiny(4);
    t[0].1 = vec![4, OBS_DIM - 1];
    t[0].2.truncate(4 * (OBS_DIM - 1));
    assert!(matches!(Policy::from_bytes(&build(&t, &META)), Err(PolicyError::Shape { layer: 0, .. })));
    let mut t = tiny(4);
    t[4].1 = vec![ACTIONS + 1];
    assert!(matches!(
        Policy::from_bytes(&build(&t, &META)),
        Err(PolicyError::Shape { .. } | PolicyError::Offsets { .. })
    ));
    let mut t = tiny(4);
    t.remove(4);
    assert_eq!(Policy::from_bytes(&build(&t, &META)).unwrap_err(), PolicyError::Missing { layer: 1, bias: true });
    let mut t = tiny(4);
    t[2].0 = "actor.3.weight"; // a gap at layer 2
    assert!(matches!(Policy::from_bytes(&build(&t, &META)), Err(PolicyError::Missing { layer: 2, .. })));
    let mut t = tiny(4);
    t[1].2[2] = f32::NAN;
    assert_eq!(Policy::from_bytes(&build(&t, &META)).unwrap_err(), PolicyError::NonFinite { layer: 0 });
    let mut t = tiny(4);
    t.push(("actor.0.bias", vec![4], vals(4, 1), "F32"));
    assert_eq!(Policy::from_bytes(&build(&t, &META)).unwrap_err(), PolicyError::Duplicate { layer: 0 });
    let t = tiny(MAX_HIDDEN + 1);
    assert!(matches!(Policy::from_bytes(&build(&t, &META)), Err(PolicyError::HiddenTooWide { .. })));
    for (i, want) in [(0, PolicyError::FormatVersion), (1, PolicyError::Activation), (2, PolicyError::ObsLayout)] {
        let mut m = META.to_vec();
        m[i].1 = "x";
        assert_eq!(Policy::from_bytes(&build(&tiny(4), &m)).unwrap_err(), want);
    }
    // A file from a later format says so (and an older or unknown one does not).
    let mut m = META.to_vec();
    m[0].1 = "2";
    assert_eq!(Policy::from_bytes(&build(&tiny(4), &m)).unwrap_err(), PolicyError::NewerFormat { version: 2 });
    m[0].1 = "0";
    assert_eq!(Policy::from_bytes(&build(&tiny(4), &m)).unwrap_err(), PolicyError::FormatVersion);
    // Offsets past the end of the data, and a header length past the end of the file.
    let bytes = build(&tiny(4), &META);
    let cut = &bytes[..bytes.len() - 4];
    assert!(matches!(Policy::from_bytes(cut), Err(PolicyError::Offsets { .. })));
    let mut b = bytes.clone();
    b[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    assert!(matches!(Policy::from_bytes(&b), Err(PolicyError::Truncated { .. })));
    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(Policy::from_bytes(&b), Err(PolicyError::HeaderTooLarge { .. })));
}

#[test]
fn malformed_json_is_refused() {
    for json in [
        "",
        "{",
        "[]",
        "{\"a\":}",
        "{\"a\":{\"dtype\":\"F32\"}}",
        "{\"__metadata__\":{\"k\":1}}",
        "{} x",
        "{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}",
    ] {
        let mut b = (json.len() as u64).to_le_bytes().to_vec();
        b.extend_from_slice(json.as_bytes());
        assert!(Policy::from_bytes(&b).is_err(), "{json:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any byte changed anywhere: a result, never a panic; forward of what loads never panics.
    #[test]
    fn corrupted_files_never_panic(pos in 0usize..4000, byte in any::<u8>()) {
        let mut bytes = build(&tiny(2), &META);
        let n = bytes.len();
        bytes[pos % n] = byte;
        if let Ok(p) = Policy::from_bytes(&bytes) {
            let mut logits = [0f32; ACTIONS];
            prop_assert!(p.forward(&[0.5; OBS_DIM], &mut logits).is_ok());
        }
    }

    /// Arbitrary short inputs.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Policy::from_bytes(&bytes);
    }
}
