//! `simnas search` on a pool of devices, end to end with the real binary: benchmark tables
//! from the data directory and a real measuring command (`cmd:`), one network for all.

use serde_json::Value;
use simnas_shared::Arch;
use std::path::PathBuf;
use std::process::{Command, Output};

/// A small network, so a `cmd:` device's exports stay fast.
const NET: [&str; 6] = ["--channels", "4", "--cells", "1", "--resolution", "8"];

fn data_dir() -> PathBuf {
    std::env::var_os("SIMNAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

fn simnas(args: &[&str]) -> Output {
    let data = data_dir();
    Command::new(env!("CARGO_BIN_EXE_simnas"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .arg("--data")
        .arg(&data)
        .args(args)
        .output()
        .expect("run simnas")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("simnas-pool-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Two benchmark devices from different families.
const A: &str = "help-samsung-s7";
const B: &str = "hw-c10-pixel3";

fn read(path: &PathBuf) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Every probe names a device of the pool; the pick was measured on every device, with
/// the latencies the record reports.
fn check_record(v: &Value, devices: usize, budget: usize) {
    assert_eq!(v["devices"].as_array().unwrap().len(), devices);
    let probes = v["probes"].as_array().unwrap();
    assert!(!probes.is_empty() && probes.len() <= budget, "{} probes", probes.len());
    let mut seen = std::collections::HashSet::new();
    for (i, p) in probes.iter().enumerate() {
        assert_eq!(p["step"].as_u64(), Some(i as u64 + 1));
        let d = p["device"].as_u64().unwrap() as usize;
        assert!((1..=devices).contains(&d));
        let arch = Arch::parse(p["arch"].as_str().unwrap()).unwrap();
        assert!(arch.is_connected() && arch.is_executed());
        assert!(seen.insert((d, arch)), "{arch} measured twice on device {d}");
    }
    let r = &v["result"];
    let pick = r["arch"].as_str().unwrap();
    let lat = r["latency_ms"].as_array().unwrap();
    assert_eq!(lat.len(), devices);
    for (d, ms) in lat.iter().enumerate() {
        assert!(
            probes
                .iter()
                .any(|p| p["device"].as_u64() == Some(d as u64 + 1) && p["arch"] == pick && p["latency_ms"] == *ms),
            "the pick's latency on device {} is one of its probes",
            d + 1
        );
    }
}

#[test]
fn a_weighted_pool_search_picks_a_network_measured_on_every_device_and_repeats_itself() {
    let dir = tmp("weighted");
    let (j1, j2) = (dir.join("a.json"), dir.join("b.json"));
    for j in [&j1, &j2] {
        let out = simnas(&["search", "--device", A, "--device", B, "--budget", "12", "--json", j.to_str().unwrap()]);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("pool of 2") && text.contains("measured on every device"), "{text}");
    }
    let v = read(&j1);
    check_record(&v, 2, 12);
    assert_eq!(v["strategy"], "pool");
    assert_eq!(v["objective"]["kind"], "weighted");
    assert_eq!(std::fs::read(&j1).unwrap(), std::fs::read(&j2).unwrap(), "same seed, same bytes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_constrained_pool_search_meets_every_limit_or_names_the_device_without_one() {
    let dir = tmp("constrained");
    let json = dir.join("c.json");
    // Generous limits on both (above each device's all-skip cell).
    let out = simnas(&[
        "search",
        "--device",
        A,
        "--device",
        B,
        "--max-latency-ms",
        "40",
        "--max-latency-ms",
        "5",
        "--budget",
        "16",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read(&json);
    check_record(&v, 2, 16);
    let lat: Vec<f64> = v["result"]["latency_ms"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert!(lat[0] <= 40.0 && lat[1] <= 5.0, "{lat:?}");
    for strategy in ["pool", "independent"] {
        let out = simnas(&[
            "search",
            "--device",
            A,
            "--device",
            B,
            "--max-latency-ms",
            "40",
            "--max-latency-ms",
            "0.001",
            "--budget",
            "8",
            "--pool-strategy",
            strategy,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("no measured cell is within the limit on device 2 (") && err.contains("pixel3"), "{err}");
        assert!(!stderr(&out).contains("panicked"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_pools_are_refused_before_anything_is_measured() {
    let refused = |args: &[&str], what: &str| {
        let out = simnas(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(what) && !err.contains("panicked"), "{args:?}: expected {what:?} in {err}");
    };
    refused(&["search", "--device", A, "--device", B, "--device", A], "listed twice");
    // Boards are refused before QEMU boots: the duplicate is found by name first.
    refused(&["search", "--device", "qemu", "--device", "qemu"], "listed twice");
    refused(&["search", "--device", A, "--device", B, "--max-latency-ms", "5"], "1 latency limits for 2 devices");
    refused(&["search", "--device", A, "--max-latency-ms", "5", "--max-latency-ms", "6"], "one --device per limit");
    refused(&["search", "--device", A, "--device", B, "--strategy", "random"], "search one device");
    refused(&["search", "--device", A, "--device", B, "--budget", "1"], "needs at least 2 probes");
    refused(&["search", "--device", A, "--pool-strategy", "pool"], "a pool of devices");
    refused(&["probe", "--device", A, "--device", B], "measures one device");
}

#[test]
fn a_device_failing_half_way_keeps_every_probe_and_the_pool_resumes() {
    let dir = tmp("failing");
    let counter = dir.join("count");
    let c = counter.display();
    // Answers three times, then fails on every call until the counter is reset.
    let script = format!("n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -le 3 ] && echo 1.$n");
    let device = format!("cmd:sh -c '{script}' {{onnx}}");
    let json = dir.join("rec.json");
    let j = json.to_str().unwrap();
    let args = [&["search", "--device", A, "--device", &device, "--budget", "10", "--json", j][..], &NET[..]].concat();
    let out = simnas(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("device 2") && err.contains("probes saved") && !err.contains("panicked"), "{err}");
    let v = read(&json);
    let probes = v["probes"].as_array().unwrap().clone();
    let on_cmd: Vec<f64> =
        probes.iter().filter(|p| p["device"] == 2).map(|p| p["latency_ms"].as_f64().unwrap()).collect();
    assert_eq!(on_cmd, [1.1, 1.2, 1.3], "the command's three answers are kept");
    assert!(v["error"].as_str().unwrap().contains("device 2"));

    // Again without --resume: refused, the record untouched.
    let out = simnas(&args);
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    assert_eq!(read(&json)["probes"].as_array().unwrap().len(), probes.len());

    // Resumed with the counter reset: the recorded probes are replayed (the command is
    // asked only for new cells), the search completes.
    std::fs::write(&counter, "0").unwrap();
    let out = simnas(&[&args[..], &["--resume"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read(&json);
    check_record(&v, 2, 10);
    let all = v["probes"].as_array().unwrap();
    assert_eq!(&all[..probes.len()], &probes[..], "the old probes lead the new record");
    let asked: usize = std::fs::read_to_string(&counter).unwrap().trim().parse().unwrap();
    let new_on_cmd = all.iter().filter(|p| p["device"] == 2).count() - 3;
    assert_eq!(asked, new_on_cmd, "only cells without a record were measured");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The committed pool evaluation is what the code computes now: one of its pools, rerun
/// at every committed budget, gives the committed rows byte for byte.
#[test]
fn the_committed_pool_evaluation_is_current() {
    let dir = tmp("eval");
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let out = simnas(&[
        "eval",
        "--pools",
        "3",
        "--devices",
        "hw-c10-pixel3,help-titanxp-bs1,help-samsung-s7",
        "--budgets",
        "5,10,20",
        "--jobs",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let now = std::fs::read_to_string(dir.join("pools.csv")).unwrap();
    let committed = std::fs::read_to_string(root.join("artifacts/eval-pool/pools.csv")).unwrap();
    let pool = "hw-c10-pixel3+help-titanxp-bs1+help-samsung-s7,";
    let rows = |text: &str| text.lines().filter(|l| l.starts_with(pool)).map(str::to_owned).collect::<Vec<_>>();
    let (a, b) = (rows(&now), rows(&committed));
    assert_eq!(a.len(), 2 * 3 * 4, "2 strategies x 3 budgets x 4 objectives");
    assert_eq!(a, b, "rerun `simnas eval --pools 2,3 --budgets 5,10,20 --out artifacts/eval-pool`");
    let _ = std::fs::remove_dir_all(&dir);
}
