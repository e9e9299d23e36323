//! The shipped calibrated-controller prior is current: `simnas prior` recomputes it from the
//! benchmark tables, bit for bit (apart from the output path in its `command`).

use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

fn data_dir() -> PathBuf {
    std::env::var_os("SIMNAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

#[test]
fn shipped_prior_is_what_simnas_prior_computes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = std::env::temp_dir().join(format!("simnas-prior-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out_path = tmp.join("prior.json");
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .current_dir(&root)
        .arg("--data")
        .arg(data_dir())
        .args(["prior", "--out"])
        .arg(&out_path)
        .output()
        .expect("run simnas");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("<- chosen"), "{stdout}");
    let mut fresh: Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let mut shipped: Value =
        serde_json::from_slice(&std::fs::read(root.join("artifacts/controller/prior.json")).unwrap()).unwrap();
    fresh["command"] = Value::Null;
    shipped["command"] = Value::Null;
    assert_eq!(fresh, shipped, "artifacts/controller/prior.json is stale: rerun `simnas prior`");
    // Fitted on training devices only.
    let devices: Vec<&str> = shipped["devices"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(devices.len(), 31);
    for v in ["hw-c10-pixel3", "help-samsung-s7", "brp-sd855-cpu", "help-titanxp-bs1"] {
        assert!(!devices.contains(&v), "{v} is a validation device");
    }
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn a_prior_from_a_newer_format_is_refused() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut v: Value =
        serde_json::from_slice(&std::fs::read(root.join("artifacts/controller/prior.json")).unwrap()).unwrap();
    v["format_version"] = Value::from(99);
    let tmp = std::env::temp_dir().join(format!("simnas-prior-new-{}.json", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(&v).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .current_dir(&root)
        .args(["search", "--device", "host", "--budget", "1", "--controller-prior"])
        .arg(&tmp)
        .output()
        .expect("run simnas");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("format version 99"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_file(&tmp).ok();
}

/// Exploring the CLI never rewrites what the repository ships: with default flags, `prior`
/// and `score report` write under `./simnas-out/` (ignored by git), and the shipped prior
/// and score report stay byte for byte as they were.
#[cfg(feature = "train")]
#[test]
fn default_outputs_leave_the_shipped_artifacts_alone() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data =
        std::env::var_os("SIMNAS_DATA").map(std::path::PathBuf::from).unwrap_or_else(|| root.join("../shared/data"));
    let shipped = ["artifacts/controller/prior.json", "artifacts/scores/cifar10_scores_report.md"];
    let before: Vec<Vec<u8>> = shipped.iter().map(|p| std::fs::read(root.join(p)).unwrap()).collect();
    let cwd = std::env::temp_dir().join(format!("simnas-default-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&cwd).unwrap();
    for args in [&["prior"][..], &["score", "report"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
            .current_dir(&cwd)
            .arg("--data")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(cwd.join("simnas-out/controller/prior.json").is_file());
    assert!(cwd.join("simnas-out/scores/cifar10_scores_report.md").is_file());
    for (p, b) in shipped.iter().zip(&before) {
        assert_eq!(&std::fs::read(root.join(p)).unwrap(), b, "{p} was rewritten");
    }
    std::fs::remove_dir_all(&cwd).ok();
}

#[test]
fn shipped_device_distribution_is_what_devices_fit_computes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = std::env::temp_dir().join(format!("simnas-dist-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out_path = tmp.join("distribution.json");
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .current_dir(&root)
        .arg("--data")
        .arg(data_dir())
        .args(["devices", "fit", "--out"])
        .arg(&out_path)
        .output()
        .expect("run simnas");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut fresh: Value = serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let mut shipped: Value =
        serde_json::from_slice(&std::fs::read(root.join("artifacts/devices/distribution.json")).unwrap()).unwrap();
    fresh["command"] = Value::Null;
    shipped["command"] = Value::Null;
    assert_eq!(fresh, shipped, "artifacts/devices/distribution.json is stale: rerun `simnas devices fit`");
    // The runtimes the `runtime` preset draws around are the training devices'.
    let runtimes = shipped["runtimes"].as_array().unwrap();
    assert_eq!(runtimes.len(), 31);
    assert!(runtimes.iter().all(|r| r["name"] != "help-samsung-s7" && r["name"] != "hw-c10-pixel3"));
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn a_prior_meta_fitted_on_synthetic_devices_is_written_and_searches() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = std::env::temp_dir().join(format!("simnas-prior-synth-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out_path = tmp.join("prior.json");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_simnas"))
            .current_dir(&root)
            .arg("--data")
            .arg(data_dir())
            .args(["prior", "--meta-devices", "synthetic", "--draws", "20", "--seed", "3", "--out"])
            .arg(&out_path)
            .args(extra)
            .output()
            .expect("run simnas")
    };
    let out = run(&[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("meta-fitting on 20 synthetic devices (runtime) per prior, seed 3"), "{stdout}");
    let first = std::fs::read(&out_path).unwrap();
    let v: Value = serde_json::from_slice(&first).unwrap();
    assert!(v["command"].as_str().unwrap().contains("--meta-devices synthetic --synth runtime --draws 20 --seed 3"));
    // Different from the shipped prior (fitted on the tables), and the same bytes again.
    let shipped: Value =
        serde_json::from_slice(&std::fs::read(root.join("artifacts/controller/prior.json")).unwrap()).unwrap();
    assert_ne!(v["mean"], shipped["mean"]);
    assert!(run(&[]).status.success());
    assert_eq!(std::fs::read(&out_path).unwrap(), first, "same seed, same bytes");
    // The search reads it.
    let table = format!("table:{}#gtx1080ti_bs1_ms", data_dir().join("latency_help.csv").display());
    let search = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .current_dir(&root)
        .arg("--data")
        .arg(data_dir())
        .args(["search", "--device", &table, "--budget", "5", "--controller-prior"])
        .arg(&out_path)
        .output()
        .expect("run simnas");
    assert!(search.status.success(), "{}", String::from_utf8_lossy(&search.stderr));
    assert!(String::from_utf8_lossy(&search.stdout).contains("pick:"));
    // A distribution of another format is refused, naming the file.
    let old = tmp.join("old.json");
    std::fs::write(&old, "{\"format_version\": 1}").unwrap();
    let out = run(&["--distribution", old.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("format version 1"));
    std::fs::remove_dir_all(&tmp).ok();
}
