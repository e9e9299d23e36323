//! The `simnas` binary end to end: real processes, real exit codes.

use simnas_shared::Arch;
use std::path::PathBuf;
use std::process::{Command, Output};

const CONV3: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
const SKIP: &str = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";

fn simnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simnas")).args(args).output().expect("run simnas")
}

/// A refusal: non-zero exit, an error message saying `what`, and never a panic.
fn assert_refused(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
}

fn data_dir() -> PathBuf {
    std::env::var_os("SIMNAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

#[test]
fn probe_measures_conv3x3_slower_than_skip() {
    let out = simnas(&["probe", "--device", "host", "--json", "--repeats", "5", "--arch", CONV3, "--arch", SKIP]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["arch"], CONV3);
    let (conv, skip) = (rows[0]["latency_ms"].as_f64().unwrap(), rows[1]["latency_ms"].as_f64().unwrap());
    assert!(conv > 0.0 && skip > 0.0);
    assert!(conv > skip, "all-conv3x3 {conv} ms should be slower than all-skip {skip} ms");
}

#[test]
fn probe_default_showcase_prints_a_table() {
    let out = simnas(&["probe", "--net", "imagenet16", "--repeats", "3", "--warmup", "1"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().filter(|l| l.contains("~0|")).count(), 4, "{text}");
}

#[test]
fn malformed_arch_strings_are_refused() {
    for bad in ["", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "|none~0|+|none~0|none~1|", "garbage"] {
        assert_refused(&simnas(&["probe", "--arch", bad]), "--arch");
    }
}

#[test]
fn bad_network_configs_are_refused() {
    assert_refused(&simnas(&["probe", "--channels", "0"]), "invalid network");
    assert_refused(&simnas(&["probe", "--resolution", "30"]), "multiple of 4");
    assert_refused(&simnas(&["probe", "--channels", "100000"]), "out of range");
    assert_refused(&simnas(&["probe", "--classes", "0"]), "invalid network");
    assert_refused(&simnas(&["probe", "--repeats", "0"]), "repeats");
    assert_refused(&simnas(&["probe", "--device", "toaster"]), "unknown device");
}

#[test]
fn nats_index_mapping_from_the_benchmark_file() {
    let m = host_trainer::data::NatsMap::load(&data_dir()).expect("nb201_archs.csv");
    let conv3 = Arch::parse(CONV3).unwrap();
    // Fixture: rows 0 and 1462 of nb201_archs.csv (NATS-Bench `api.arch(i)`).
    assert_eq!(m.index(conv3).get(), 1462);
    assert_eq!(
        m.arch(simnas_shared::NatsIndex::new(0).unwrap()).to_string(),
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    );
    for code in simnas_shared::ArchCode::all() {
        let a = Arch::from_code(code);
        assert_eq!(m.arch(m.index(a)), a);
    }
}

#[test]
fn missing_data_dir_is_a_clear_error() {
    let err = host_trainer::data::NatsMap::load(std::path::Path::new("/nonexistent/simnas")).unwrap_err();
    assert!(err.to_string().contains("nb201_archs.csv"));
}

#[test]
fn closed_stdout_is_not_a_crash() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["probe", "--net", "imagenet16", "--repeats", "2", "--warmup", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before the first line
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{err}");
}

/// One device syntax for every command: a benchmark name works for `search` and `probe`
/// as for `eval --devices`, names are listed without writing anything, and without a data
/// directory the name gets a message saying what to pass. A budget above what a strategy
/// can spend is refused before any probe.
#[test]
fn benchmark_device_names_and_budget_caps() {
    let list = simnas(&["devices", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("hw-c10-edgegpu") && text.contains("table:PATH#COLUMN"), "{text}");
    let data = data_dir();
    let d = data.to_str().unwrap();
    let out = simnas(&["--data", d, "search", "--device", "hw-c10-edgegpu", "--strategy", "random", "--budget", "3"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pick:") && stdout.contains("CIFAR-10 test accuracy"), "{stdout}");
    let out = simnas(&["--data", d, "probe", "--device", "hw-c10-edgegpu", "--json", "--arch", CONV3]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .env_remove("SIMNAS_DATA")
        .args(["search", "--device", "hw-c10-edgegpu"])
        .output()
        .unwrap();
    assert_refused(&out, "pass --data DIR");
    for (strategy, cap) in [("controller", "64"), ("controller-paper", "53")] {
        let out = simnas(&["search", "--strategy", strategy, "--budget", "100", "--device", "qemu"]);
        assert_refused(&out, &format!("spends at most {cap} probes"));
    }
    let out = simnas(&["search", "--strategy", "random", "--budget", "100000"]);
    assert_refused(&out, "has only 9444 networks");
}

/// Out-of-range numbers are refused before any work: `eval --weight` outside [0, 1] (NaN,
/// 2, -1: negative numbers reach the range check) and `train --eval-episodes 0`.
#[cfg(feature = "train")]
#[test]
fn eval_weights_and_evidence_episodes_are_checked_up_front() {
    let data = data_dir();
    let d = data.to_str().unwrap();
    let out_dir = std::env::temp_dir().join(format!("simnas-eval-weight-{}", std::process::id()));
    let o = out_dir.to_str().unwrap();
    for w in ["NaN", "2", "-1"] {
        let out = simnas(&[
            "--data",
            d,
            "eval",
            "--devices",
            "hw-c10-pixel3",
            "--seeds",
            "1",
            "--out",
            o,
            &format!("--weight={w}"),
        ]);
        assert_refused(&out, "weight");
        assert!(!out_dir.join("report.md").exists(), "--weight {w}: a report was written");
    }
    let out = simnas(&["train", "--steps", "10", "--eval-episodes", "0", "--out", o]);
    assert_refused(&out, "eval-episodes");
    std::fs::remove_dir_all(&out_dir).ok();
}

#[test]
fn numeric_flags_are_checked_when_parsed() {
    // Each value is refused by clap before anything runs (no port is opened, no board
    // booted), with the flag and the reason; none panics.
    let board = ["search", "--device", "serial:/nonexistent/tty"];
    for t in ["1e300", "1e18", "0", "-1", "NaN", "inf", "soon"] {
        let out = simnas(&[&board[..], &["--probe-timeout-s", t]].concat());
        assert_refused(&out, "--probe-timeout-s");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("cannot open serial port"), "{t}: refused only after opening the port: {err}");
        assert_eq!(out.status.code(), Some(2), "{t}: clap's usage status");
    }
    assert_refused(&simnas(&[&board[..], &["--probe-timeout-s", "1e300"]].concat()), "at most one day");
    for idle in [&["--idle", "NaN"][..], &["--idle=-1"], &["--idle", "-1"], &["--idle", "0"], &["--idle", "1e18"]] {
        let out = simnas(&[&["monitor", "--port", "/nonexistent/tty"][..], idle].concat());
        assert_refused(&out, "--idle");
        assert!(String::from_utf8_lossy(&out.stderr).contains("outside (0, 86400]"), "{idle:?}");
    }
    // Negative numbers reach the range check instead of clap's "unexpected argument".
    for (cmd, flag, value, what) in [
        ("search", "--weight", "-0.1", "-0.1 is outside [0, 1]"),
        ("search", "--weight", "1.5", "1.5 is outside [0, 1]"),
        ("search", "--max-latency-ms", "-5", "-5 ms is not a positive number"),
        ("eval", "--weight", "-0.1", "-0.1 is outside [0, 1]"),
        #[cfg(feature = "train")]
        ("train", "--weight", "-0.1", "-0.1 is outside [0, 1]"),
    ] {
        let out = simnas(&[cmd, flag, value]);
        assert_refused(&out, what);
        assert!(!String::from_utf8_lossy(&out.stderr).contains("unexpected argument"), "{cmd} {flag} {value}");
    }
}

/// A network inside the flags' ranges whose parameters would not fit in memory (10.6 GB)
/// is refused when it is planned, not by the allocator aborting the process.
#[test]
fn an_oversized_network_is_refused_at_plan_time() {
    let out = simnas(&["probe", "--channels", "256", "--cells", "32", "--resolution", "8"]);
    assert_refused(&out, "bytes of parameters");
    assert_eq!(out.status.code(), Some(1));
}

/// Small things a newcomer trips over: a `--data` that is not a directory is warned about
/// even by commands that do not read it; a board device says how long a silent board is
/// waited for; a score table with a megabyte-long header gets a short error.
#[test]
fn warnings_and_waits_are_said_and_errors_stay_short() {
    let out = simnas(&["--data", "/nonexistent/simnas-data", "devices", "list"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a directory"));
    let out = simnas(&["search", "--device", "serial:/nonexistent/tty", "--strategy", "random", "--budget", "3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("per attempt") && err.contains("2 attempts"), "{err}");
    let dir = std::env::temp_dir().join(format!("simnas-long-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("scores.csv");
    std::fs::write(&f, format!("{}\n", "x".repeat(1 << 20))).unwrap();
    let out = simnas(&["search", "--scores", f.to_str().unwrap(), "--device", "qemu"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("header") && err.len() < 2000, "{} bytes", err.len());
    std::fs::remove_dir_all(&dir).ok();
}

/// `bench --serve` runs the network `export` writes (same executed cell, same seeded
/// weights) on the given image: its logits are the executor's on those parameters, and
/// each request `N` answers N timings.
#[cfg(feature = "train")]
#[test]
fn bench_serve_times_the_exported_network() {
    use edge_runtime::{DenseParams, Executor, NetConfig, ParamLayout, Plan};
    use std::io::Write as _;
    let cfg = NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 3 };
    let cell = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|";
    let image: Vec<f32> = (0..cfg.input_len()).map(|i| (i as f32 * 0.37).sin()).collect();
    let dir = std::env::temp_dir().join(format!("simnas-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.f32");
    std::fs::write(&input, image.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["bench", "--serve", "--arch", cell, "--seed", "7", "--channels", "4", "--cells", "1"])
        .args(["--resolution", "8", "--classes", "3", "--input", input.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run simnas");
    child.stdin.take().unwrap().write_all(b"2\n1\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    let arch = Arch::parse(cell).unwrap().executed();
    assert_eq!(lines[0]["arch"], arch.to_string());
    let layout = ParamLayout::new(cfg).unwrap();
    let params = host_trainer::export::seeded_params(cfg, 7).unwrap();
    let plan = Plan::new(cfg, arch).unwrap();
    let mut arena = vec![0f32; plan.arena_len()];
    let mut want = vec![0f32; 3];
    Executor::new(&plan, &mut arena)
        .unwrap()
        .run(&DenseParams::new(&layout, &params).unwrap(), &image, &mut want)
        .unwrap();
    let got: Vec<f32> = lines[0]["logits"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(got, want);
    assert_eq!(lines[1]["ms"].as_array().unwrap().len(), 2);
    assert_eq!(lines[2]["ms"].as_array().unwrap().len(), 1);
    assert!(lines[1]["ms"].as_array().unwrap().iter().all(|v| v.as_f64().unwrap() > 0.0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An OS error is said once, not once by the message that embeds it and again as its cause.
#[test]
fn an_os_error_is_said_once() {
    let out = simnas(&["search", "--device", "table:/nonexistent/simnas/table.csv#latency_ms", "--budget", "3"]);
    assert_refused(&out, "/nonexistent/simnas/table.csv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");
}

/// `prior --help` offers only what `prior` reads.
#[test]
fn prior_offers_only_the_flags_it_reads() {
    let out = simnas(&["prior", "--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--scores") && help.contains("--out"), "{help}");
    for ignored in ["--controller-prior", "--space", "--prior "] {
        assert!(!help.contains(ignored), "{ignored} in: {help}");
    }
}

/// `--device qemu` checks the firmware before QEMU starts: a host program, a text file or
/// an ARM executable linked for another board get a one-line reason, not a register dump.
#[test]
fn wrong_firmware_is_refused_before_qemu_starts() {
    let dir = std::env::temp_dir().join(format!("simnas-wrong-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not firmware\n").unwrap();
    // An ELF32 ARM executable header whose entry point is in a NUCLEO's flash (0x0800_0000).
    let mut nucleo = vec![0u8; 52];
    nucleo[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1]);
    nucleo[16..18].copy_from_slice(&2u16.to_le_bytes());
    nucleo[18..20].copy_from_slice(&40u16.to_le_bytes());
    nucleo[24..28].copy_from_slice(&0x0800_0199u32.to_le_bytes());
    let other_board = dir.join("nucleo.elf");
    std::fs::write(&other_board, &nucleo).unwrap();
    let host_program = env!("CARGO_BIN_EXE_simnas");
    for (firmware, why) in [
        (text.to_str().unwrap(), "not an ELF file"),
        (host_program, "not ARM"),
        (other_board.to_str().unwrap(), "entry point 0x08000199"),
    ] {
        for cmd in [&["search", "--strategy", "random", "--budget", "2"][..], &["probe"][..]] {
            let out = simnas(&[cmd, &["--device", "qemu", "--firmware", firmware][..]].concat());
            assert_refused(&out, why);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("not firmware for the QEMU board") && err.lines().count() <= 2, "{err}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A board's repeat limit is checked before anything is booted or opened.
#[test]
fn board_repeats_are_checked_before_the_board_starts() {
    for device in ["qemu", "serial:/nonexistent/tty"] {
        let out = simnas(&["probe", "--device", device, "--firmware", "/nonexistent/fw.elf", "--repeats", "1000"]);
        assert_refused(&out, "at most 64 repeats");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("/nonexistent"), "checked after opening");
    }
}

/// `bench` names its clocks as `--clock` spells them, on stdout and in its JSON.
#[cfg(feature = "train")]
#[test]
fn bench_spells_clocks_as_the_cli_does() {
    let json = std::env::temp_dir().join(format!("simnas-bench-{}.json", std::process::id()));
    let tiny =
        ["--channels", "4", "--cells", "1", "--resolution", "8", "--classes", "2", "--repeats", "1", "--warmup", "0"];
    let out = simnas(&[&["bench"][..], &tiny[..], &["--json", json.to_str().unwrap()][..]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("thread-cpu") && text.contains(" wall "), "{text}");
    let saved = std::fs::read_to_string(&json).unwrap();
    std::fs::remove_file(&json).ok();
    for written in [&text[..], &saved[..]] {
        assert!(
            !written.contains("ThreadCpu") && !written.contains("Wall") && !written.contains("Paired"),
            "{written}"
        );
    }
    assert!(saved.contains("\"thread-cpu\"") && saved.contains("\"paired\""), "{saved}");
}
