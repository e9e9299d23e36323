//! `simnas search` end to end: the real binary on small generated tables, a scripted
//! board on a real pty, real exit codes and the JSON it writes.

mod common;

use serde_json::Value;
use serialport::{SerialPort, TTYPort};
use simnas_shared::protocol::{
    encode_frame_vec, BoardMsg, ErrorCode, ErrorReport, Frame, FrameAccumulator, Hello, HostMsg, Mode, NetShape,
    ProbeResult, Timing, MAX_FRAME, PROTOCOL_VERSION,
};
use simnas_shared::{Arch, ArchCode, Op};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn simnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simnas")).args(args).output().expect("run simnas")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A refusal: non-zero exit, an error message saying `what`, and never a panic.
fn assert_refused(out: &Output, what: &str) {
    let err = stderr(out);
    assert!(!out.status.success(), "exit status {:?}", out.status);
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
}

/// A fresh temporary directory holding a score table (`scores.csv`, index = compact code,
/// metrics from a fixed hash of the code) and a device table `lat.csv` (arch-keyed, column
/// `ms`: an additive per-op device with a small interaction term).
struct Fixture {
    dir: PathBuf,
}

fn latency(a: Arch) -> f64 {
    let t = [0.0, 0.1, 0.6, 2.0, 0.4];
    3.0 + a.ops.iter().map(|&o| t[o as usize]).sum::<f64>() + 0.05 * ((a.code().get() % 7) as f64 - 3.0)
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("simnas-search-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let lat: String = std::iter::once("arch,ms\n".to_string())
            .chain(ArchCode::all().map(Arch::from_code).map(|a| format!("{a},{:.6}\n", latency(a))))
            .collect();
        std::fs::write(dir.join("scores.csv"), common::scores_csv()).unwrap();
        std::fs::write(dir.join("lat.csv"), lat).unwrap();
        Fixture { dir }
    }

    fn path(&self, f: &str) -> String {
        self.dir.join(f).display().to_string()
    }

    /// `simnas --data <empty dir> search --scores <fixture> ...` (no benchmark data read).
    fn search(&self, extra: &[&str]) -> Output {
        let (data, scores) = (self.dir.display().to_string(), self.path("scores.csv"));
        let mut args = vec!["--data", &data, "search", "--scores", &scores];
        args.extend_from_slice(extra);
        simnas(&args)
    }

    fn table(&self) -> String {
        format!("table:{}#ms", self.path("lat.csv"))
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn read_json(p: &str) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[test]
fn json_schema_budget_and_a_measured_pick() {
    let fx = Fixture::new("schema");
    let dev = fx.table();
    for strategy in ["random", "evolution", "lut-probe", "lut-prior", "oracle"] {
        let out_json = fx.path(&format!("{strategy}.json"));
        let out = fx.search(&["--device", &dev, "--strategy", strategy, "--budget", "10", "--json", &out_json]);
        assert!(out.status.success(), "{strategy}: {}", stderr(&out));
        let v = read_json(&out_json);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(
            keys,
            ["budget", "device", "objective", "probes", "proxy", "result", "seed", "space", "strategy"],
            "{strategy}"
        );
        assert_eq!(v["strategy"], strategy);
        assert_eq!(v["proxy"], "freerea");
        assert_eq!((&v["budget"], &v["seed"]), (&serde_json::json!(10), &serde_json::json!(0)));
        assert_eq!(v["objective"], serde_json::json!({"kind": "weighted", "weight": 0.5}));
        let probes = v["probes"].as_array().unwrap();
        assert!(!probes.is_empty() && probes.len() <= 10, "{strategy}: {} probes", probes.len());
        for (i, p) in probes.iter().enumerate() {
            assert_eq!(p["step"], i + 1);
            let a = Arch::parse(p["arch"].as_str().unwrap()).unwrap();
            assert_eq!(p["index"], a.code().get(), "index from the score table");
            assert!((p["latency_ms"].as_f64().unwrap() - latency(a)).abs() < 1e-5);
        }
        let r = &v["result"];
        let measured = probes.iter().find(|p| p["arch"] == r["arch"]).expect("the pick was probed");
        assert_eq!(measured["latency_ms"], r["latency_ms"], "reported latency is the measurement");
        assert!(r["tf"].as_f64().unwrap() >= 0.0 && r["index"].is_u64());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("pick: ") && text.contains("(measured, probe"), "{text}");
    }
}

#[test]
fn same_seed_same_bytes() {
    let fx = Fixture::new("determinism");
    let dev = fx.table();
    for strategy in ["random", "evolution"] {
        let run = |seed: &str, f: &str| {
            let p = fx.path(f);
            let _ = std::fs::remove_file(&p);
            let out = fx.search(&["--device", &dev, "--strategy", strategy, "--seed", seed, "--json", &p]);
            assert!(out.status.success(), "{}", stderr(&out));
            std::fs::read(p).unwrap()
        };
        assert_eq!(run("5", "a.json"), run("5", "b.json"), "{strategy}");
        assert_ne!(run("5", "a.json"), run("6", "c.json"), "{strategy}");
    }
}

#[test]
fn constrained_picks_are_feasible_by_measurement_or_absent() {
    let fx = Fixture::new("constraint");
    let dev = fx.table();
    for strategy in ["lut-probe", "evolution", "random"] {
        let out_json = fx.path(&format!("{strategy}.json"));
        let out = fx.search(&["--device", &dev, "--strategy", strategy, "--max-latency-ms", "8", "--json", &out_json]);
        let v = read_json(&out_json);
        assert_eq!(v["objective"], serde_json::json!({"kind": "constraint", "max_latency_ms": 8.0}));
        if out.status.success() {
            assert!(v["result"]["latency_ms"].as_f64().unwrap() <= 8.0, "{strategy}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{strategy}: {}", stderr(&out));
            assert!(v["result"].is_null());
        }
    }
    // Nothing in the space runs within 1 ms: explicit status, null result, exit code 2.
    let out_json = fx.path("none.json");
    let out = fx.search(&["--device", &dev, "--strategy", "lut-probe", "--max-latency-ms", "1", "--json", &out_json]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no feasible architecture found"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pick: none") && !stdout.contains("no feasible"), "the reason is said once: {stdout}");
    let v = read_json(&out_json);
    assert!(v["result"].is_null() && v["probes"].as_array().unwrap().len() <= 10);
}

#[test]
fn refusals() {
    let fx = Fixture::new("refusals");
    let dev = fx.table();
    assert_refused(&fx.search(&["--device", &dev, "--budget", "0", "--strategy", "random"]), "at least one probe");
    assert_refused(&fx.search(&["--device", "tabel:x.csv#ms", "--strategy", "random"]), "unknown device");
    assert_refused(&fx.search(&["--device", "table:x.csv", "--strategy", "random"]), "table:PATH#COLUMN");
    let missing = format!("table:{}#nope", fx.path("lat.csv"));
    assert_refused(&fx.search(&["--device", &missing, "--strategy", "random"]), "has no column \"nope\"");
    let absent = format!("table:{}#ms", fx.path("absent.csv"));
    assert_refused(&fx.search(&["--device", &absent, "--strategy", "random"]), "cannot read");
    assert_refused(&fx.search(&["--device", &dev, "--weight", "2", "--strategy", "random"]), "outside [0, 1]");
    let absent = fx.path("absent.safetensors");
    assert_refused(&fx.search(&["--device", &dev, "--policy", &absent]), "absent.safetensors");
    std::fs::write(fx.path("junk.safetensors"), b"not a policy").unwrap();
    let junk = fx.path("junk.safetensors");
    assert_refused(&fx.search(&["--device", &dev, "--policy", &junk]), "policy");
    assert_refused(&fx.search(&["--device", "host", "--strategy", "oracle"]), "needs a table");
    let scores = fx.path("absent-scores.csv");
    assert_refused(&simnas(&["search", "--device", &dev, "--strategy", "random", "--scores", &scores]), "score table");
    // A NaN and a negative latency: the whole table is refused, nothing is measured.
    for (bad, what) in [("NaN", "not a finite number"), ("-1", "not positive")] {
        let text = std::fs::read_to_string(fx.path("lat.csv")).unwrap();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let arch = lines[40].split(',').next().unwrap().to_string();
        lines[40] = format!("{arch},{bad}");
        std::fs::write(fx.path("bad.csv"), lines.join("\n") + "\n").unwrap();
        let spec = format!("table:{}#ms", fx.path("bad.csv"));
        let j = fx.path("bad.json");
        assert_refused(&fx.search(&["--device", &spec, "--strategy", "random", "--json", &j]), what);
        assert!(!Path::new(&j).exists());
    }
}

#[test]
fn cells_missing_from_the_table_are_skipped_without_spending_budget() {
    let fx = Fixture::new("gaps");
    let text = std::fs::read_to_string(fx.path("lat.csv")).unwrap();
    // Every cell with a pool out of the input goes missing: about a third of the executed
    // networks (the reference cells stay).
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("|avg_pool_3x3~0|")).collect();
    std::fs::write(fx.path("gappy.csv"), kept.join("\n") + "\n").unwrap();
    let (dev, j) = (format!("table:{}#ms", fx.path("gappy.csv")), fx.path("g.json"));
    let out = fx.search(&["--device", &dev, "--strategy", "random", "--seed", "3", "--json", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read_json(&j);
    assert_eq!(v["probes"].as_array().unwrap().len(), 10);
    let skipped = v["skipped"].as_array().expect("skipped cells are listed");
    assert!(!skipped.is_empty());
    assert!(stderr(&out).contains("cells were not in the table (no probe spent"));
}

#[test]
fn resume_refuses_a_record_whose_latencies_are_not_positive_finite() {
    let fx = Fixture::new("resume");
    let (dev, j) = (fx.table(), fx.path("r.json"));
    let run = || fx.search(&["--device", &dev, "--strategy", "random", "--budget", "4", "--json", &j, "--resume"]);
    let out = run();
    assert!(out.status.success(), "{}", stderr(&out));
    let good = read_json(&j);
    // NaN is written as null (JSON has no NaN).
    for (edit, what) in [
        ((|v| v["probes"][1]["latency_ms"] = 0.into()) as fn(&mut Value), "probe 2 has latency_ms 0"),
        (|v| v["probes"][0]["latency_ms"] = Value::Null, "probe 1 has latency_ms null"),
        (|v| v["probes"][2]["latency_ms"] = (-1.5).into(), "probe 3 has latency_ms -1.5"),
        (|v| v["result"]["latency_ms"] = 0.into(), "the pick has latency_ms 0"),
    ] {
        let mut bad = good.clone();
        edit(&mut bad);
        std::fs::write(&j, serde_json::to_vec(&bad).unwrap()).unwrap();
        let out = run();
        assert_refused(&out, what);
        assert!(stderr(&out).contains("not a positive finite number"), "{}", stderr(&out));
        assert_eq!(read_json(&j), bad, "a refused record is left as it was");
    }
}

/// A board on the master side of a pty: says Hello, measures `ok` probes (latency = 1 ms +
/// 1 ms per conv3x3), then refuses every further probe.
fn scripted_board(mut port: TTYPort, ok: usize) {
    std::thread::spawn(move || {
        let hello = BoardMsg::Hello(Hello {
            protocol: PROTOCOL_VERSION,
            firmware: "0.1.0".try_into().unwrap(),
            board: "scripted".try_into().unwrap(),
            clock_hz: 1_000_000,
            ticks_per_second: 1_000_000,
            net: NetShape { channels: 16, cells_per_stage: 5, resolution: 32, classes: 10 },
            arena_bytes: 0,
            bank_bytes: 0,
            seed: 0,
            mode: Mode::Serve,
        });
        let mut seq = 0u16;
        let mut send = |port: &mut TTYPort, m: &BoardMsg| {
            seq = seq.wrapping_add(1);
            port.write_all(&encode_frame_vec(seq - 1, m).unwrap()).is_ok()
        };
        let _ = port.set_timeout(Duration::from_millis(50));
        if !send(&mut port, &hello) {
            return;
        }
        let (mut acc, mut buf, mut n) = (FrameAccumulator::<MAX_FRAME>::new(), [0u8; 256], 0);
        loop {
            let got = match port.read(&mut buf) {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            };
            for &b in &buf[..got] {
                let reply = match acc.push::<HostMsg>(b) {
                    Some(Ok(Frame { msg: HostMsg::Identify, .. })) => hello.clone(),
                    Some(Ok(Frame { msg: HostMsg::Probe(req), .. })) if n < ok => {
                        n += 1;
                        let ms = 1_000 + 1_000 * Arch::from_code(req.arch).count(Op::NorConv3x3) as u64;
                        BoardMsg::ProbeResult(ProbeResult {
                            id: req.id,
                            arch: req.arch,
                            timing: Timing {
                                median_ticks: ms,
                                min_ticks: ms,
                                max_ticks: ms,
                                q1_ticks: ms,
                                q3_ticks: ms,
                                ticks_per_second: 1_000_000,
                                repeats: req.repeats.into(),
                            },
                        })
                    }
                    Some(Ok(Frame { msg: HostMsg::Probe(req), .. })) => {
                        BoardMsg::Error(ErrorReport { code: ErrorCode::Runtime, request: Some(req.id), detail: 7 })
                    }
                    _ => continue,
                };
                if !send(&mut port, &reply) {
                    return;
                }
            }
        }
    });
}

#[test]
fn a_failing_probe_exits_non_zero_and_keeps_what_was_measured() {
    let fx = Fixture::new("board");
    let (master, slave) = TTYPort::pair().expect("a pty pair");
    let port = slave.name().expect("pty name");
    scripted_board(master, 3);
    let (dev, j) = (format!("serial:{port}"), fx.path("board.json"));
    let out = fx.search(&["--device", &dev, "--strategy", "random", "--budget", "10", "--json", &j]);
    drop(slave);
    assert_refused(&out, "probe 4");
    assert!(stderr(&out).contains("3 probes saved to"), "{}", stderr(&out));
    let v = read_json(&j);
    assert_eq!(v["probes"].as_array().unwrap().len(), 3);
    assert!(v["error"].as_str().unwrap().contains("probe 4"), "{v}");
    assert!(v["result"]["arch"].is_string(), "the best of the measured cells is kept: {v}");
}

#[cfg(feature = "train")]
#[test]
fn paper_controller_runs_a_policy_file_within_the_budget() {
    use host_trainer::rl::export::policy_bytes;
    use host_trainer::rl::net::{ActorCritic, NetConfig};
    let fx = Fixture::new("controller");
    let bytes = policy_bytes(&ActorCritic::new(NetConfig::default(), 1).unwrap(), &[]).unwrap();
    std::fs::write(fx.path("p.safetensors"), bytes).unwrap();
    let (dev, pol, j) = (fx.table(), fx.path("p.safetensors"), fx.path("ctl.json"));
    let out = fx.search(&["--device", &dev, "--policy", &pol, "--budget", "8", "--json", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read_json(&j);
    assert_eq!(v["strategy"], "controller-paper", "--policy alone selects the paper controller");
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 8);
    assert!(probes.iter().any(|p| p["arch"] == v["result"]["arch"] && p["latency_ms"] == v["result"]["latency_ms"]));
    // A policy with another strategy is a mistake worth stopping for.
    let out = fx.search(&["--device", &dev, "--policy", &pol, "--strategy", "lut-probe"]);
    assert_refused(&out, "controller-paper");
}

#[test]
fn default_controller_runs_the_shipped_prior_within_the_budget() {
    let fx = Fixture::new("calibrated");
    let (dev, j) = (fx.table(), fx.path("cal.json"));
    let out = fx.search(&["--device", &dev, "--budget", "6", "--json", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read_json(&j);
    assert_eq!(v["strategy"], "controller");
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 6);
    assert_eq!(
        probes[0]["arch"],
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
    );
    assert!(probes.iter().any(|p| p["arch"] == v["result"]["arch"] && p["latency_ms"] == v["result"]["latency_ms"]));
}

/// The main job as a new user runs it (`simnas search`: this CPU, the shipped controller,
/// 10 probes): every probe is a distinct executed network that depends on its input, and
/// so is the pick; `--space raw` still runs the paper's cells.
#[test]
fn main_job_searches_distinct_executed_networks() {
    let dir = std::env::temp_dir().join(format!("simnas-main-job-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let j = dir.join("main.json");
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(["search", "--repeats", "3", "--json"])
        .arg(&j)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&std::fs::read(&j).unwrap()).unwrap();
    let cells: Vec<Arch> =
        v["probes"].as_array().unwrap().iter().map(|p| Arch::parse(p["arch"].as_str().unwrap()).unwrap()).collect();
    assert_eq!(cells.len(), 10);
    for (i, a) in cells.iter().enumerate() {
        assert!(a.is_connected() && a.is_executed(), "probe {} runs dead branches: {a}", i + 1);
        assert!(cells[..i].iter().all(|b| b != a), "{a} twice");
    }
    let pick = Arch::parse(v["result"]["arch"].as_str().unwrap()).unwrap();
    assert!(pick.is_connected() && pick.is_executed(), "{pick}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn raw_space_reaches_cells_with_dead_branches() {
    // The paper's space: uniform draws over all 15,625 cells land on dead branches (6,180 of
    // them have one); the default space never does.
    let fx = Fixture::new("raw");
    let j = fx.path("raw.json");
    let out =
        fx.search(&["--device", &fx.table(), "--strategy", "random", "--budget", "40", "--space", "raw", "--json", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read_json(&j);
    let dead = v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !Arch::parse(p["arch"].as_str().unwrap()).unwrap().is_executed())
        .count();
    assert!(dead > 0, "40 uniform cells of the raw space and none with a dead branch");
    let j = fx.path("executed.json");
    let out = fx.search(&["--device", &fx.table(), "--strategy", "random", "--budget", "40", "--json", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = read_json(&j);
    assert!(v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| Arch::parse(p["arch"].as_str().unwrap()).unwrap().is_executed()));
}

#[test]
fn an_existing_record_is_refused_without_resume_and_kept() {
    let fx = Fixture::new("keep");
    let (dev, j) = (fx.table(), fx.path("rec.json"));
    let out = fx.search(&["--device", &dev, "--strategy", "random", "--budget", "10", "--json", &j]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&j).unwrap();
    assert_eq!(read_json(&j)["probes"].as_array().unwrap().len(), 10);
    // A new run whose first probe fails (a board refusing every probe), and a new run with
    // another seed: both stop before measuring, the 10-probe record is untouched.
    let (master, slave) = TTYPort::pair().expect("a pty pair");
    let port = slave.name().expect("pty name");
    scripted_board(master, 0);
    let board = format!("serial:{port}");
    let out = fx.search(&["--device", &board, "--strategy", "random", "--budget", "10", "--json", &j]);
    drop(slave);
    assert_refused(&out, "holds a search record (10 probes, random on");
    assert!(stderr(&out).contains("pass --resume to continue it"), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing measured: {}", String::from_utf8_lossy(&out.stdout));
    let out = fx.search(&["--device", &dev, "--strategy", "random", "--seed", "9", "--json", &j]);
    assert_refused(&out, "choose another --json path");
    assert_eq!(std::fs::read(&j).unwrap(), before);
    // Something that is not a record is not replaced either.
    std::fs::write(fx.path("notes.txt"), "my notes\n").unwrap();
    let out = fx.search(&["--device", &dev, "--strategy", "random", "--json", &fx.path("notes.txt")]);
    assert_refused(&out, "is not a search record");
    assert_eq!(std::fs::read_to_string(fx.path("notes.txt")).unwrap(), "my notes\n");
}

#[test]
fn resume_refuses_other_settings_and_keeps_every_recorded_probe() {
    let fx = Fixture::new("resume-settings");
    let (dev, j) = (fx.table(), fx.path("rec.json"));
    let base = ["--device", &dev, "--strategy", "random", "--seed", "1", "--budget", "10", "--json", &j];
    let out = fx.search(&base);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = std::fs::read(&j).unwrap();
    let with = |flag: &str, value: &str| {
        let mut args: Vec<&str> = base.to_vec();
        match args.iter().position(|a| *a == flag) {
            Some(i) => args[i + 1] = value,
            None => args.extend([flag, value]),
        }
        args.push("--resume");
        fx.search(&args)
    };
    for (flag, value, recorded, asked) in [
        ("--budget", "5", "--budget 10", "--budget 5"),
        ("--budget", "20", "--budget 10", "--budget 20"),
        ("--strategy", "evolution", "--strategy random", "--strategy evolution"),
        ("--weight", "0.3", "--weight 0.5", "--weight 0.3"),
        ("--max-latency-ms", "8", "--weight 0.5", "--max-latency-ms 8"),
        ("--seed", "2", "--seed 1", "--seed 2"),
    ] {
        let out = with(flag, value);
        assert_refused(&out, &format!("was recorded with {recorded}, this run asks for {asked}"));
        assert!(out.stdout.is_empty(), "{flag} {value}: nothing measured");
        assert_eq!(std::fs::read(&j).unwrap(), before, "{flag} {value}: the record is untouched");
    }
    // The same settings: every probe replayed, the record rewritten as it was.
    let out = with("--seed", "1");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resumed: 10 of 10 recorded probes replayed"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&j).unwrap(), before);
}

/// `--resume` checks what it replays: an edited pick latency, a table re-measured at the
/// same path and a network recorded twice are refused; the same table named by another
/// path is the same device.
#[test]
fn resume_checks_the_record_against_itself_and_the_table() {
    let fx = Fixture::new("resume-checks");
    let (dev, j) = (fx.table(), fx.path("r.json"));
    let run = |extra: &[&str]| {
        let mut a = vec!["--device", &dev, "--strategy", "random", "--seed", "2", "--json", &j];
        a.extend_from_slice(extra);
        fx.search(&a)
    };
    assert!(run(&[]).status.success());
    let good = std::fs::read_to_string(&j).unwrap();
    let mut v: Value = serde_json::from_str(&good).unwrap();
    // The pick's latency edited.
    v["result"]["latency_ms"] = serde_json::json!(0.001);
    std::fs::write(&j, v.to_string()).unwrap();
    assert_refused(&run(&["--resume"]), "is not one of the recorded probes");
    // A network recorded twice.
    let mut v: Value = serde_json::from_str(&good).unwrap();
    let first = v["probes"][0]["arch"].clone();
    v["probes"][3]["arch"] = first;
    std::fs::write(&j, v.to_string()).unwrap();
    assert_refused(&run(&["--resume"]), "both record");
    // The table re-measured at the same path.
    std::fs::write(&j, &good).unwrap();
    let lat = std::fs::read_to_string(fx.path("lat.csv")).unwrap();
    let slower: String = lat
        .lines()
        .enumerate()
        .map(|(i, l)| match l.rsplit_once(',') {
            Some((a, ms)) if i > 0 => format!("{a},{}\n", ms.parse::<f64>().unwrap() * 1.5),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(fx.path("lat.csv"), slower).unwrap();
    assert_refused(&run(&["--resume"]), "the table changed since the record was made");
    assert_eq!(std::fs::read_to_string(&j).unwrap(), good, "the record is kept");
    std::fs::write(fx.path("lat.csv"), lat).unwrap();
    // The same table by a path with a detour is the same device.
    let dir = std::path::Path::new(&fx.path("lat.csv")).parent().unwrap().to_path_buf();
    let detour = format!("table:{}/../{}/lat.csv#ms", dir.display(), dir.file_name().unwrap().to_str().unwrap());
    let out = fx.search(&["--device", &detour, "--strategy", "random", "--seed", "2", "--json", &j, "--resume"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("resumed: 10 of 10 recorded probes replayed"), "{}", stderr(&out));
}

/// `--proxy` chooses how the table's metrics make TF: a table without MeCo cannot make the
/// rank aggregate, a quantised table holds one proxy, and the shipped CSV serves both.
#[test]
fn the_proxy_flag_reads_the_table_it_needs() {
    let fx = Fixture::new("proxy");
    let dev = fx.table();
    let out = fx.search(&["--device", &dev, "--strategy", "oracle", "--proxy", "meco-rank"]);
    assert_refused(&out, "meco");
    assert!(stderr(&out).contains("--reuse"), "{}", stderr(&out));
    let shipped = |f: &str| format!("{}/../artifacts/scores/{f}", env!("CARGO_MANIFEST_DIR"));
    let tf16 = shipped("cifar10_scores.tf16");
    let data = fx.dir.display().to_string();
    let out = simnas(&["--data", &data, "search", "--scores", &tf16, "--device", &dev, "--proxy", "meco-rank"]);
    assert_refused(&out, "--proxy freerea");
    assert!(stderr(&out).contains("cifar10_scores_meco-rank.tf16") || stderr(&out).contains("_meco-rank.tf16"));
    let mut picks = Vec::new();
    for (i, (proxy, scores)) in [
        ("freerea", shipped("cifar10_scores.csv")),
        ("meco-rank", shipped("cifar10_scores.csv")),
        ("meco-rank", shipped("cifar10_scores_meco-rank.tf16")),
    ]
    .into_iter()
    .enumerate()
    {
        let json = fx.path(&format!("{proxy}-{i}.json"));
        let args = ["--data", &data, "search", "--scores", &scores, "--device", &dev, "--strategy", "oracle"];
        let out = simnas(&[&args[..], &["--proxy", proxy, "--json", &json]].concat());
        assert!(out.status.success(), "{proxy}: {}", stderr(&out));
        let v = read_json(&json);
        picks.push((v["result"]["arch"].clone(), v["result"]["tf"].as_f64().unwrap()));
    }
    assert_ne!(picks[0], picks[1], "the two proxies rank cells differently");
    assert_eq!(read_json(&fx.path("meco-rank-1.json"))["proxy"], "meco-rank");
    // A record is resumed under the proxy it was made with.
    let json = fx.path("meco-rank-1.json");
    let scores = shipped("cifar10_scores.csv");
    let args = ["--data", &data, "search", "--scores", &scores, "--device", &dev, "--strategy", "oracle"];
    let out = simnas(&[&args[..], &["--json", &json, "--resume"]].concat());
    assert_refused(&out, "--proxy meco-rank");
    assert_eq!(picks[1].0, picks[2].0, "the CSV and the quantised table agree");
    assert!((picks[1].1 - picks[2].1).abs() <= 0.5 / 65535.0 + 1e-9);
}

/// Without `--scores`, the table is the shipped one of `--net`'s dataset.
#[test]
fn the_net_preset_chooses_the_shipped_score_table() {
    let fx = Fixture::new("preset");
    let dev = fx.table();
    let data = fx.dir.display().to_string();
    let shipped = |f: &str| format!("{}/../artifacts/scores/{f}", env!("CARGO_MANIFEST_DIR"));
    let mut tf = Vec::new();
    for (i, extra) in
        [vec!["--net", "cifar100"], vec!["--scores", &shipped("cifar100_scores.csv")], vec![]].into_iter().enumerate()
    {
        let json = fx.path(&format!("p{i}.json"));
        let args = ["--data", &data, "search", "--device", &dev, "--strategy", "oracle", "--json", &json];
        let out = simnas(&[&args[..], &extra].concat());
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        let v = read_json(&json);
        tf.push(v["result"]["tf"].as_f64().unwrap());
    }
    assert_eq!(tf[0], tf[1], "--net cifar100 reads the CIFAR-100 table");
    assert_ne!(tf[0], tf[2], "the default is CIFAR-10's");
}
