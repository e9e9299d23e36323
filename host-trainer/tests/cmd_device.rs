//! `cmd:` devices end to end: the real `simnas` binary runs a real measuring program
//! (`simnas-onnx-time`, tract) on every exported candidate, and hostile commands (failing,
//! lying, hanging) end the search with a clear error while the record keeps what was
//! measured.

#![cfg(feature = "onnx")]

mod common;

use serde_json::Value;
use simnas_shared::Arch;
use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tract_onnx::prelude::*;

/// A small network, so each probe's export and timing stay fast.
const NET: [&str; 6] = ["--channels", "4", "--cells", "1", "--resolution", "8"];

/// A temporary directory with a score table (`scores.csv`, metrics from a fixed hash of
/// the code, favouring convs).
struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("simnas-cmd-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("scores.csv"), common::scores_csv()).unwrap();
        Fixture { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// `simnas --data <fixture> search --scores <fixture> --device cmd:COMMAND <NET> ...`.
    fn search(&self, command: &str, extra: &[&str]) -> Output {
        let (data, scores, device) = (self.path(""), self.path("scores.csv"), format!("cmd:{command}"));
        Command::new(env!("CARGO_BIN_EXE_simnas"))
            .args(["--data", &data, "search", "--scores", &scores, "--device", &device])
            .args(NET)
            .args(extra)
            .output()
            .expect("run simnas")
    }

    fn json(&self, f: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.dir.join(f)).unwrap()).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn timer() -> String {
    format!("'{}' {{onnx}} --warmup 1 --repeats 3", env!("CARGO_BIN_EXE_simnas-onnx-time"))
}

fn probes(v: &Value) -> Vec<Arch> {
    v["probes"].as_array().unwrap().iter().map(|p| Arch::parse(p["arch"].as_str().unwrap()).unwrap()).collect()
}

fn tract_runs(path: &str) {
    tract_onnx::onnx()
        .model_for_path(path)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .expect("tract loads the exported pick");
}

#[test]
fn search_with_the_tract_timer_measures_ten_distinct_executed_networks() {
    let fx = Fixture::new("e2e");
    for (strategy, pick) in [(Some("random"), "pick.onnx"), (None, "pick.py")] {
        let name = strategy.unwrap_or("controller");
        let json = format!("{name}.json");
        let (json_path, pick_path) = (fx.path(&json), fx.path(&format!("{name}-{pick}")));
        let mut extra = vec!["--budget", "10", "--json", &json_path, "--export-pick", &pick_path];
        if let Some(s) = strategy {
            extra.extend(["--strategy", s]);
        }
        let out = fx.search(&timer(), &extra);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let v = fx.json(&json);
        assert!(v["device"].as_str().unwrap().starts_with("cmd:'"), "{}", v["device"]);
        assert!(v["device"].as_str().unwrap().contains("C=4 N=1 8x8 10 classes"), "{}", v["device"]);
        let archs = probes(&v);
        assert_eq!(archs.len(), 10, "{name}");
        assert_eq!(archs.iter().collect::<HashSet<_>>().len(), 10, "{name}: distinct");
        for (a, p) in archs.iter().zip(v["probes"].as_array().unwrap()) {
            assert!(a.is_connected() && a.is_executed(), "{name}: {a}");
            let ms = p["latency_ms"].as_f64().unwrap();
            assert!(ms.is_finite() && ms > 0.0, "{name}: {ms}");
        }
        let picked = Arch::parse(v["result"]["arch"].as_str().unwrap()).unwrap();
        assert!(archs.contains(&picked));
        if pick.ends_with(".onnx") {
            tract_runs(&pick_path);
            let cfg = edge_runtime::NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 10 };
            let want = host_trainer::export::ExportSpec { arch: picked, cfg, batch: 1, seed: 0 }.onnx_bytes().unwrap();
            assert_eq!(std::fs::read(&pick_path).unwrap(), want, "the pick's network");
        } else {
            let src = std::fs::read_to_string(&pick_path).unwrap();
            assert!(src.contains(&format!("EXECUTED = \"{picked}\"")), "{src}");
        }
    }
}

#[test]
fn probe_fills_the_placeholders_and_refuses_a_disconnected_cell() {
    // Succeeds only if {onnx} is a non-empty file and {arch} the cell string.
    let cell = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|";
    let script = format!("cmd:sh -c 'test -s \"$0\" && test \"$1\" = \"{cell}\" && echo 1.5' {{onnx}} {{arch}}");
    let run = |arch: &str| {
        Command::new(env!("CARGO_BIN_EXE_simnas"))
            .args(["probe", "--device", &script, "--arch", arch, "--json"])
            .args(NET)
            .output()
            .unwrap()
    };
    let out = run(cell);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["latency_ms"], 1.5);
    assert_eq!(v["arch"], cell);
    let out = run("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|");
    assert!(!out.status.success() && stderr(&out).contains("disconnected"), "{}", stderr(&out));
    // The tested timer through `probe` too.
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["probe", "--device", &format!("cmd:{}", timer()), "--arch", cell, "--json"])
        .args(NET)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["latency_ms"].as_f64().unwrap() > 0.0);
}

/// A search on `cmd:sh -c SCRIPT {onnx}` (the model's path is the script's `$0`) that must fail with every one of `want` in its error,
/// never panic, and leave a record without probes.
fn refused(name: &str, script: &str, extra: &[&str], want: &[&str]) -> (Fixture, String) {
    let fx = Fixture::new(name);
    let json = fx.path("rec.json");
    let command = format!("sh -c '{script}' {{onnx}}");
    let mut args = vec!["--strategy", "random", "--budget", "5", "--json", &json];
    args.extend_from_slice(extra);
    let out = fx.search(&command, &args);
    let err = stderr(&out);
    assert!(!out.status.success(), "{name}: succeeded\n{err}");
    assert!(!err.contains("panicked"), "{name}: {err}");
    assert!(err.contains(&format!("cmd:{command}")), "{name}: the command is named: {err}");
    for w in want {
        assert!(err.contains(w), "{name}: expected {w:?} in {err}");
    }
    (fx, err)
}

fn recorded(fx: &Fixture) -> usize {
    let p = fx.dir.join("rec.json");
    if !p.exists() {
        return 0;
    }
    probes(&fx.json("rec.json")).len()
}

#[test]
fn a_failing_command_is_an_error_even_when_it_printed_a_number() {
    let (fx, _) =
        refused("exit1", "echo 2.5; echo boom >&2; exit 1", &[], &["exit status: 1", "2 attempt(s)", "boom", "2.5"]);
    assert_eq!(recorded(&fx), 0);
}

#[test]
fn garbage_is_not_a_latency() {
    let (fx, _) = refused("garbage", "echo warming up; echo latency: fast", &[], &["not a number", "latency: fast"]);
    assert_eq!(recorded(&fx), 0);
}

#[test]
fn nan_is_not_a_latency() {
    let (fx, _) = refused("nan", "echo nan", &[], &["not finite"]);
    assert_eq!(recorded(&fx), 0);
}

#[test]
fn a_negative_latency_is_refused() {
    let (fx, _) = refused("negative", "echo -3", &[], &["-3 ms is not positive"]);
    assert_eq!(recorded(&fx), 0);
}

#[test]
fn a_command_that_never_returns_is_killed() {
    let t0 = Instant::now();
    let (fx, _) = refused(
        "timeout",
        "echo 2.5; sleep 60",
        &["--probe-timeout-s", "0.5"],
        &["timed out", "after 0.5 s", "killed"],
    );
    assert!(t0.elapsed() < Duration::from_secs(20), "took {:?}", t0.elapsed());
    assert_eq!(recorded(&fx), 0);
}

#[test]
fn a_command_that_breaks_after_three_probes_keeps_them_and_resumes() {
    let fx = Fixture::new("three");
    let counter = fx.path("count");
    // Answers three times, then fails on every call until the counter is reset.
    let script =
        format!("n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -le 3 ] && echo 1.$n");
    let command = format!("sh -c '{script}' {{onnx}}");
    let json = fx.path("rec.json");
    let args = ["--strategy", "random", "--budget", "6", "--json", &json];
    let out = fx.search(&command, &args);
    let err = stderr(&out);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    assert!(err.contains("probe 4") && err.contains("exit status: 1") && err.contains("3 probes saved"), "{err}");
    let v = fx.json("rec.json");
    let first = probes(&v);
    assert_eq!(first.len(), 3, "{v}");
    let ms: Vec<f64> = v["probes"].as_array().unwrap().iter().map(|p| p["latency_ms"].as_f64().unwrap()).collect();
    assert_eq!(ms, [1.1, 1.2, 1.3]);

    // The same command again (its counter reset): the record is resumed on it, the three
    // probes replayed and the rest measured.
    std::fs::write(&counter, "0").unwrap();
    let mut resume = args.to_vec();
    resume.push("--resume");
    let out = fx.search(&command, &resume);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = fx.json("rec.json");
    let all = probes(&v);
    assert_eq!(all.len(), 6);
    assert_eq!(&all[..3], &first[..]);
    assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "3", "only the new cells were measured");
}
