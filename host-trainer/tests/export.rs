//! The exported ONNX model computes what the edge-runtime executor computes: each model is
//! run by tract (an independent ONNX engine) and its logits compared with the executor's
//! on the same seeded weights and input. Also: the file's interface (names, shapes, opset),
//! deterministic bytes, that the full ONNX schema reads back every byte the exporter's
//! own protobuf subset writes, and `simnas export` end to end (ONNX and PyTorch source).

#![cfg(feature = "onnx")]

use edge_runtime::{DenseParams, Executor, NetConfig, ParamLayout, Plan};
use host_trainer::export::onnx::{IR_VERSION, OPSET};
use host_trainer::export::{seeded_params, ExportError, ExportSpec};
use prost::Message as _;
use simnas_shared::{Arch, ArchCode, Op};
use std::process::Command;
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

const SMALL: NetConfig = NetConfig { channels: 8, cells_per_stage: 2, resolution: 16, classes: 10 };

/// Logits of `arch`'s executed network from the executor; `input` is HWC.
fn executor_logits(cfg: NetConfig, arch: Arch, params: &[f32], input: &[f32]) -> Vec<f32> {
    let layout = ParamLayout::new(cfg).unwrap();
    let plan = Plan::new(cfg, arch.executed()).unwrap();
    let mut arena = vec![f32::NAN; plan.arena_len()];
    let mut ex = Executor::new(&plan, &mut arena).unwrap();
    let mut logits = vec![0.0; cfg.classes];
    ex.run(&DenseParams::new(&layout, params).unwrap(), input, &mut logits).unwrap();
    logits
}

/// Logits from tract running the ONNX bytes on `images` (each HWC), batched.
fn tract_logits(bytes: &[u8], cfg: NetConfig, images: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract loads the model");
    let r = cfg.resolution;
    let mut nchw = vec![0f32; images.len() * 3 * r * r];
    for (n, img) in images.iter().enumerate() {
        for y in 0..r {
            for x in 0..r {
                for c in 0..3 {
                    nchw[((n * 3 + c) * r + y) * r + x] = img[(y * r + x) * 3 + c];
                }
            }
        }
    }
    let input = Tensor::from_shape(&[images.len(), 3, r, r], &nchw).unwrap();
    let out = model.run(tvec!(input.into_tvalue())).expect("tract runs the model");
    let view = out[0].to_array_view::<f32>().unwrap();
    assert_eq!(view.shape(), &[images.len(), cfg.classes]);
    view.outer_iter().map(|row| row.iter().copied().collect()).collect()
}

fn image(cfg: NetConfig, seed: u64) -> Vec<f32> {
    let mut rng = edge_runtime::rng::SplitMix64::new(seed);
    (0..cfg.input_len()).map(|_| rng.next_signed()).collect()
}

/// `bytes` decoded with the full ONNX schema (tract-onnx's generated types) and encoded
/// again: the identical bytes, so the exporter's subset of the schema has onnx.proto's field
/// numbers and wire types, and writes nothing the schema would read differently.
fn assert_full_schema_round_trip(bytes: &[u8]) {
    let m = ModelProto::decode(bytes).expect("the full ONNX schema decodes the model");
    assert!(m.encode_to_vec() == bytes, "re-encoding with the full schema changed the bytes");
}

/// `max |got - want| / max |want|`.
fn rel_err(got: &[f32], want: &[f32]) -> f32 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(scale > 1e-3, "degenerate logits {want:?}");
    got.iter().zip(want).fold(0f32, |m, (g, w)| m.max((g - w).abs())) / scale
}

fn cells() -> Vec<Arch> {
    let p = |s: &str| Arch::parse(s).unwrap();
    let mut v = vec![
        Arch::uniform(Op::NorConv3x3),
        Arch::uniform(Op::NorConv1x1),
        Arch::uniform(Op::SkipConnect),
        Arch::uniform(Op::AvgPool3x3),
        p("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"),
        p("|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|"),
        // Dead branches: nodes 1 and 2 never reach the output (the executed network is a skip).
        p("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|"),
        // A conv out of node 1, which the input never reaches.
        p("|none~0|+|skip_connect~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|"),
        // Node 2 is fed but read by nothing.
        p("|nor_conv_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|skip_connect~1|none~2|"),
    ];
    // A fixed spread of further connected cells (every 997th code).
    v.extend(ArchCode::all().step_by(997).map(Arch::from_code).filter(|a| a.is_connected()));
    v
}

#[test]
fn onnx_logits_match_the_executor_across_cells() {
    let params = seeded_params(SMALL, 11).unwrap();
    let input = image(SMALL, 5);
    let mut checked = 0;
    for arch in cells() {
        let spec = ExportSpec { arch, cfg: SMALL, batch: 1, seed: 11 };
        let bytes = spec.onnx_bytes().unwrap();
        assert_full_schema_round_trip(&bytes);
        let got = tract_logits(&bytes, SMALL, std::slice::from_ref(&input));
        let want = executor_logits(SMALL, arch, &params, &input);
        let e = rel_err(&got[0], &want);
        assert!(e <= 1e-4, "{arch}: relative error {e:e}\n onnx {:?}\n exec {want:?}", got[0]);
        checked += 1;
    }
    assert!(checked >= 20, "{checked} cells");
}

#[test]
fn onnx_logits_match_on_the_presets_and_in_batches() {
    for (cfg, arch) in [
        (
            NetConfig::CIFAR10,
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
        ),
        (NetConfig::IMAGENET16_120, "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"),
    ] {
        let arch = Arch::parse(arch).unwrap();
        let params = seeded_params(cfg, 0).unwrap();
        let images = [image(cfg, 1), image(cfg, 2), image(cfg, 3)];
        let spec = ExportSpec { arch, cfg, batch: images.len(), seed: 0 };
        let got = tract_logits(&spec.onnx_bytes().unwrap(), cfg, &images);
        for (img, row) in images.iter().zip(&got) {
            let want = executor_logits(cfg, arch, &params, img);
            let e = rel_err(row, &want);
            assert!(e <= 1e-4, "{arch} on {cfg:?}: relative error {e:e}");
        }
        // Different images, different logits: the batch is not one image repeated.
        assert!(rel_err(&got[0], &got[1]) > 1e-3);
    }
}

#[test]
fn interface_and_bytes_are_fixed_by_the_spec() {
    let arch = Arch::uniform(Op::NorConv3x3);
    let spec = ExportSpec { arch, cfg: SMALL, batch: 4, seed: 7 };
    let bytes = spec.onnx_bytes().unwrap();
    assert_eq!(bytes, spec.onnx_bytes().unwrap(), "same seed, same bytes");
    assert_ne!(bytes, ExportSpec { seed: 8, ..spec }.onnx_bytes().unwrap());
    assert_full_schema_round_trip(&bytes);
    let m = ModelProto::decode(&bytes[..]).unwrap();
    assert_eq!((m.ir_version, m.opset_import[0].version, m.opset_import[0].domain.as_str()), (IR_VERSION, OPSET, ""));
    assert_eq!(OPSET, 17);
    let g = m.graph.unwrap();
    let dims = |v: &tract_onnx::pb::ValueInfoProto| -> (String, Vec<i64>) {
        let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) = v.r#type.as_ref().and_then(|t| t.value.clone())
        else {
            panic!("not a tensor")
        };
        let dims = t.shape.unwrap().dim.into_iter().map(|d| match d.value {
            Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(n)) => n,
            other => panic!("{other:?}"),
        });
        (v.name.clone(), dims.collect())
    };
    assert_eq!(dims(&g.input[0]), ("input".to_string(), vec![4, 3, 16, 16]));
    assert_eq!(dims(&g.output[0]), ("logits".to_string(), vec![4, 10]));
    let meta: Vec<(&str, &str)> = m.metadata_props.iter().map(|p| (p.key.as_str(), p.value.as_str())).collect();
    assert!(meta.contains(&("weights_seed", "7")) && meta.contains(&("executed", &*arch.to_string())), "{meta:?}");
}

#[test]
fn a_disconnected_cell_has_no_network() {
    let dead = Arch::parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|").unwrap();
    let err = ExportSpec { arch: dead, cfg: SMALL, batch: 1, seed: 0 }.onnx_bytes().unwrap_err();
    assert!(matches!(err, ExportError::Disconnected { .. }), "{err}");
    assert!(err.to_string().contains("disconnected"), "{err}");
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("simnas-export-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn cli_writes_onnx_that_tract_runs_and_refuses_dead_cells() {
    let dir = tmp("cli");
    let out = dir.join("net.onnx");
    let cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|";
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_simnas"))
            .args(["export", "--arch", cell, "--channels", "8", "--cells", "2", "--resolution", "16", "--seed", "3"])
            .args(extra)
            .output()
            .unwrap()
    };
    let o = run(&["--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&out).unwrap();
    let arch = Arch::parse(cell).unwrap();
    let expected = ExportSpec { arch, cfg: SMALL, batch: 1, seed: 3 }.onnx_bytes().unwrap();
    assert_eq!(bytes, expected, "the CLI writes the library's model");
    let input = image(SMALL, 9);
    let got = tract_logits(&bytes, SMALL, std::slice::from_ref(&input));
    assert!(rel_err(&got[0], &executor_logits(SMALL, arch, &seeded_params(SMALL, 3).unwrap(), &input)) <= 1e-4);

    let dead = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|";
    let o = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["export", "--arch", dead, "--out", dir.join("dead.onnx").to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("disconnected") && !err.contains("panicked"), "{err}");
    assert!(!dir.join("dead.onnx").exists());
    let o = run(&["--batch", "0", "--out", dir.join("b.onnx").to_str().unwrap()]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("batch 0"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_writes_pytorch_source_that_python_compiles() {
    let dir = tmp("py");
    let out = dir.join("pick.py");
    let cell = "|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
    let o = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["export", "--arch", cell, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let src = std::fs::read_to_string(&out).unwrap();
    assert!(src.contains("class Network(nn.Module)") && src.contains(&format!("ARCH = \"{cell}\"")));
    let py = Command::new("python3").args(["-m", "py_compile", out.to_str().unwrap()]).output();
    match py {
        Ok(o) => assert!(o.status.success(), "py_compile: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("python3 is needed for this test: {e}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
