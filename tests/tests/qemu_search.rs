//! The search on the reference board (QEMU `mps2-an386`, `-icount`), read over a real pty
//! with the serialport crate:
//! * the firmware built with `--features autonomous` runs the search at boot: at most the
//!   budget of probes, a measured pick, the controller's time under 1% of every probe's,
//!   the same records on a second boot, and the same walk and pick as the host's
//!   controller (`simnas search`) given the latencies the board measured;
//! * `simnas search --device qemu` (the real binary): host-driven probes whose latencies
//!   are the board's own tick counts; a signal to simnas alone (SIGTERM, SIGHUP, SIGKILL)
//!   leaves no QEMU running.

use host_trainer::board::qemu::Qemu;
use host_trainer::board::{BoardLink, Event};
use serde_json::Value;
use simnas_shared::protocol::{BoardMsg, Final, Mode, SearchProbe, SearchStop, PROTOCOL_VERSION};
use simnas_shared::Arch;
use simnas_tests::{firmware, firmware_autonomous, simnas, workspace};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The firmware's default budget (`SIMNAS_FW_BUDGET`).
const BUDGET: u16 = 10;

/// Boot the autonomous firmware and read its records up to the `Final`.
fn autonomous_run() -> (Vec<SearchProbe>, Final) {
    let (mut qemu, port) = Qemu::launch(&firmware_autonomous()).expect("booting the firmware in QEMU");
    let mut link = BoardLink::new(port);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut probes = Vec::new();
    let mut hello = None;
    loop {
        let event = link.next_event(deadline).expect("reading the pty");
        let Some(Event::Msg { msg, .. }) = event else {
            panic!("no final record before the deadline ({event:?}; qemu {:?})", qemu.exited())
        };
        match msg {
            BoardMsg::Hello(h) => hello = Some(h),
            BoardMsg::SearchProbe(p) => probes.push(p),
            BoardMsg::Final(f) => {
                let h = hello.expect("Hello before the search");
                assert_eq!((h.protocol, h.mode), (PROTOCOL_VERSION, Mode::Search));
                assert_eq!((h.net.channels, h.net.resolution), (16, 16), "the default ImageNet16-120 network");
                let s = link.stats();
                assert_eq!((s.corrupt, s.missing, s.resets), (0, 0, 0), "{s:?}");
                return (probes, f);
            }
            other => panic!("unexpected record {other:?}"),
        }
    }
}

#[test]
fn autonomous_search_on_the_board() {
    let t0 = Instant::now();
    let (probes, fin) = autonomous_run();
    let first_run = t0.elapsed().as_secs_f64();
    for p in &probes {
        let a = Arch::from_code(p.arch);
        eprintln!(
            "probe {:>2} step {:>2} {:>9.3} ms  controller {:>7} ticks = {:.3}% of the probe  {a}",
            p.index,
            p.step,
            p.timing.median_ms(),
            p.controller_ticks,
            100.0 * p.controller_ticks as f64 / p.probe_ticks as f64
        );
    }
    eprintln!("{fin:?}");

    // At most the budget, numbered, distinct cells, the final count agrees.
    assert!(!probes.is_empty() && probes.len() <= usize::from(BUDGET), "{} probes", probes.len());
    assert_eq!((fin.budget, usize::from(fin.probes)), (BUDGET, probes.len()));
    for (i, p) in probes.iter().enumerate() {
        assert_eq!((p.id, usize::from(p.index)), (0, i + 1));
        assert!(probes[..i].iter().all(|q| q.arch != p.arch), "{:?} measured twice", p.arch);
        // Every probe is an executed network that depends on its input, so distinct codes
        // are distinct networks.
        let a = Arch::from_code(p.arch);
        assert!(a.is_connected() && a.is_executed(), "probe {} runs dead branches: {a}", p.index);
        assert!(p.timing.median_ticks > 0 && p.probe_ticks >= p.timing.median_ticks);
    }
    assert!(matches!(fin.stop, SearchStop::Budget | SearchStop::NoAction | SearchStop::EpisodeEnd), "{fin:?}");
    // The pick is a valid cell that was measured, with that measurement.
    let pick = fin.arch.expect("a pick");
    let measured = probes.iter().find(|p| p.arch == pick).expect("the pick is among the probes");
    assert_eq!((fin.pick_index, fin.pick_ticks), (measured.index, measured.timing.median_ticks));
    assert!(Arch::from_code(pick).is_connected() && Arch::from_code(pick).is_executed());

    // The controller's own time (policy inference and bookkeeping) per step is under 1% of
    // the probe it leads to, and so is its total against all probing.
    for p in probes.iter().filter(|p| p.step > 0) {
        assert!(
            p.controller_ticks * 100 < p.probe_ticks,
            "step {}: {} vs {}",
            p.step,
            p.controller_ticks,
            p.probe_ticks
        );
    }
    assert!(fin.controller_ticks * 100 < fin.probe_ticks, "{fin:?}");
    assert!(fin.max_step_ticks > 0 && fin.steps > 0);

    // Deterministic: a second boot sends the same records, tick for tick.
    let (again, fin2) = autonomous_run();
    assert_eq!(again, probes);
    assert_eq!(fin2, fin);

    // The same code as the host: the host controller, on a table holding what the board
    // measured, with the same score table and prior, walks the same cells to the same pick.
    let dir = std::env::temp_dir().join(format!("simnas-qemu-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("arch,board_ms\n");
    for p in &probes {
        csv += &format!("{},{}\n", Arch::from_code(p.arch), p.timing.median_ms());
    }
    let table = dir.join("board.csv");
    std::fs::write(&table, csv).unwrap();
    let json = dir.join("host.json");
    let scores = workspace().join("artifacts/scores/imagenet16_scores.tf16");
    let out = Command::new(simnas())
        .current_dir(workspace())
        .args(["search", "--budget", &BUDGET.to_string(), "--min-table-coverage", "0", "--device"])
        .arg(format!("table:{}#board_ms", table.display()))
        .arg("--scores")
        .arg(&scores)
        .arg("--json")
        .arg(&json)
        .output()
        .expect("running simnas search");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let host: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let host_cells: Vec<&str> =
        host["probes"].as_array().unwrap().iter().map(|p| p["arch"].as_str().unwrap()).collect();
    let board_cells: Vec<String> = probes.iter().map(|p| Arch::from_code(p.arch).to_string()).collect();
    assert_eq!(host_cells, board_cells);
    assert_eq!(host["result"]["arch"].as_str(), Some(Arch::from_code(pick).to_string().as_str()));
    std::fs::remove_dir_all(&dir).ok();
    eprintln!("autonomous search: {first_run:.1} s per boot, {:.1} s in all", t0.elapsed().as_secs_f64());
}

#[test]
fn simnas_search_device_qemu_probes_come_from_the_board() {
    let t0 = Instant::now();
    let dir = std::env::temp_dir().join(format!("simnas-search-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("search.json");
    let out = Command::new(simnas())
        .current_dir(workspace())
        .args(["search", "--device", "qemu", "--budget", "4", "--warmup", "0", "--repeats", "1", "--json"])
        .arg(&json)
        .arg("--firmware")
        .arg(firmware())
        .output()
        .expect("running simnas search");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simnas search --device qemu failed: {stderr}");
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();

    // The schema.
    assert!(v["device"].as_str().unwrap().starts_with("qemu (mps2-an386"), "{v}");
    assert_eq!((v["strategy"].as_str(), v["budget"].as_u64()), (Some("controller"), Some(4)));
    assert_eq!(v["objective"]["kind"].as_str(), Some("weighted"));
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 4, "{v}");
    let mut cells = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        assert_eq!(p["step"].as_u64(), Some(i as u64 + 1));
        let arch = Arch::parse(p["arch"].as_str().unwrap()).expect("a NATS-Bench cell string");
        assert!(p["latency_ms"].as_f64().unwrap() > 0.0);
        assert!(arch.is_connected() && arch.is_executed(), "probe {} runs dead branches: {arch}", i + 1);
        assert!(cells.iter().all(|&(a, _)| a != arch), "{arch} measured twice");
        cells.push((arch, p["latency_ms"].as_f64().unwrap()));
    }
    let result = &v["result"];
    let pick = Arch::parse(result["arch"].as_str().unwrap()).unwrap();
    assert!(pick.live_edges().iter().zip(pick.ops).all(|(&live, op)| live || op == simnas_shared::Op::None));
    let tf = result["tf"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&tf));
    assert!(cells.iter().any(|&(a, ms)| a == pick && ms == result["latency_ms"].as_f64().unwrap()));

    // Each latency is the board's: under -icount a cell's tick count is repeatable to one
    // tick (a timed run starts on a tick edge, its end may fall either side of the next),
    // so a fresh board measuring the same cells the same way gives the same numbers to one
    // tick, 40 ns (no host clock would: host probes of one cell differ by percents).
    let (_qemu, port) = Qemu::launch(&firmware()).expect("booting the firmware in QEMU");
    let mut link = BoardLink::new(port);
    link.connect(Duration::from_secs(20)).expect("Hello");
    for (k, &(arch, ms)) in cells.iter().enumerate() {
        let r = link.probe(arch, 0, 1, Duration::from_secs(60), 0).expect("probe");
        let tick_ms = 1e3 / r.timing.ticks_per_second as f64;
        assert!(
            (r.timing.median_ms() - ms).abs() <= tick_ms * 1.0001,
            "probe {} ({arch}): {} vs {ms}",
            k + 1,
            r.timing.median_ms()
        );
    }
    eprintln!("simnas search --device qemu: 4 probes checked in {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn simnas_monitor_prints_and_logs_the_search_records() {
    let dir = std::env::temp_dir().join(format!("simnas-monitor-search-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("search.jsonl");
    let out = Command::new(simnas())
        .args(["monitor", "--qemu", "--search", "--search-budget", "3", "--idle", "60", "--log"])
        .arg(&log)
        .arg("--firmware")
        .arg(firmware())
        .output()
        .expect("running simnas monitor");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    let kinds: Vec<&str> = records.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["hello", "search_probe", "search_probe", "search_probe", "final"], "{stdout}");
    for (i, r) in records[1..4].iter().enumerate() {
        assert_eq!(
            (r["id"].as_u64(), r["index"].as_u64(), r["step"].as_u64()),
            (Some(2), Some(i as u64 + 1), Some(i as u64))
        );
        assert!(Arch::parse(r["arch"].as_str().unwrap()).is_ok());
        assert!(r["latency_ms"].as_f64().unwrap() > 0.0 && r["probe_ticks"].as_u64().unwrap() > 0);
        assert!(r["controller_share"].as_f64().unwrap() < 0.01);
    }
    let f = &records[4];
    assert_eq!((f["probes"].as_u64(), f["budget"].as_u64(), f["stop"].as_str()), (Some(3), Some(3), Some("Budget")));
    let pick = f["arch"].as_str().unwrap();
    let measured = records[1..4].iter().find(|r| r["arch"].as_str() == Some(pick)).expect("a measured pick");
    assert_eq!(f["latency_ms"], measured["latency_ms"]);
    assert!(stdout.lines().filter(|l| l.starts_with("search probe")).count() == 3, "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("final") && l.contains(pick)), "{stdout}");
}

/// Processes whose parent is `pid`, from /proc: (pid, command name).
fn children_of(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        let ppid = stat[close + 1..].split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            found.push((stat[..open].trim().parse().unwrap(), stat[open + 1..close].to_string()));
        }
    }
    found
}

/// Whether `pid` still runs (a zombie runs nothing: it waits only to be reaped).
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let state = stat.rfind(')').and_then(|c| stat[c + 1..].split_whitespace().next().map(str::to_string));
    !matches!(state.as_deref(), Some("Z" | "X") | None)
}

#[test]
fn a_search_stopped_by_a_signal_leaves_no_qemu_running() {
    use std::os::unix::process::CommandExt;
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGKILL] {
        let mut cmd = Command::new(simnas());
        cmd.current_dir(workspace())
            .args(["search", "--device", "qemu", "--budget", "10", "--warmup", "0", "--repeats", "5", "--firmware"])
            .arg(firmware());
        // simnas leaves alone a signal its parent ignores (`nohup` ignores SIGHUP): give it
        // the default dispositions, however this test was started.
        // SAFETY: between fork and exec only signal(2), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                for s in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
                    libc::signal(s, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running simnas search");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!("the search ended before its first probe: {seen}{err}");
            }
            seen += &line;
            if line.trim_start().starts_with("1 ") {
                break;
            }
        }
        let qemu: Vec<u32> =
            children_of(child.id()).into_iter().filter(|(_, c)| c.contains("qemu")).map(|c| c.0).collect();
        assert_eq!(qemu.len(), 1, "one QEMU child: {:?}", children_of(child.id()));
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let status = child.wait().unwrap();
        if sig == libc::SIGKILL {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(status.signal(), Some(sig), "{status}");
        } else {
            assert_eq!(status.code(), Some(128 + sig), "signal {sig}: {status}");
        }
        let start = Instant::now();
        while running(qemu[0]) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "signal {sig}: QEMU {} still runs after simnas ended",
                qemu[0]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The sample output in `firmware-bench/README.md` is what the board prints now: the
/// command named beside it, run on the default firmware, gives every sample line's probe
/// (number, step, latency, cell) and the final pick.
#[test]
fn the_firmware_readme_sample_is_current() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware-bench/README.md")).unwrap();
    let start = readme.find("(QEMU, default build, `").expect("the sample's heading");
    let block = &readme[start..];
    let block = &block[block.find("```text\n").expect("the sample") + 8..];
    let block = &block[..block.find("```").expect("the sample's end")];
    let budget =
        readme[start..].split("--search-budget ").nth(1).and_then(|s| s.split('`').next()).expect("its budget");
    let out = Command::new(simnas())
        .args(["monitor", "--qemu", "--search", "--search-budget", budget, "--idle", "60", "--firmware"])
        .arg(firmware())
        .output()
        .expect("running simnas monitor");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The controller's share of a probe is timing, not what the sample shows.
    let probe = |l: &str| {
        l.split("controller").next().map(str::trim_end).map(String::from).zip(l.rsplit(' ').next().map(String::from))
    };
    let printed: Vec<_> = stdout.lines().filter(|l| l.starts_with("search probe")).map(probe).collect();
    for line in block.lines().filter(|l| l.starts_with("search probe")) {
        assert!(printed.contains(&probe(line)), "README sample line not printed now:\n{line}\nprinted:\n{stdout}");
    }
    let pick = |l: &str| l.split(" pick ").nth(1).map(String::from);
    let final_now = stdout.lines().find(|l| l.starts_with("final")).and_then(pick);
    let final_readme = block.lines().find(|l| l.starts_with("final")).and_then(pick);
    assert!(final_now.is_some() && final_now == final_readme, "README: {final_readme:?}\nnow: {final_now:?}");
}

/// A pool mixing the board and a benchmark table: one network for both, every probe on one
/// of them, the pick measured on each (the board's latency its own tick count, the table's
/// its value).
#[test]
fn a_pool_of_the_board_and_a_table_device() {
    let data = std::env::var_os("SIMNAS_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace().join("../shared/data"));
    let dir = std::env::temp_dir().join(format!("simnas-pool-qemu-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("pool.json");
    let out = Command::new(simnas())
        .current_dir(workspace())
        .arg("--data")
        .arg(&data)
        .args(["search", "--device", "qemu", "--device", "help-samsung-s7", "--budget", "6"])
        .args(["--warmup", "0", "--repeats", "1", "--json"])
        .arg(&json)
        .arg("--firmware")
        .arg(firmware())
        .output()
        .expect("running simnas search");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simnas search on a pool with qemu failed: {stderr}");
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let devices = v["devices"].as_array().unwrap();
    assert!(devices[0].as_str().unwrap().starts_with("qemu (mps2-an386"), "{v}");
    assert!(devices[1].as_str().unwrap().contains("samsung_s7_ms"), "{v}");
    let probes = v["probes"].as_array().unwrap();
    assert_eq!(probes.len(), 6, "{v}");
    for d in [1, 2] {
        assert!(probes.iter().any(|p| p["device"] == d), "device {d} was probed: {v}");
    }
    let r = &v["result"];
    let pick = r["arch"].as_str().unwrap();
    let lat = r["latency_ms"].as_array().unwrap();
    assert_eq!(lat.len(), 2);
    for (d, ms) in lat.iter().enumerate() {
        assert!(
            probes.iter().any(|p| p["device"] == d + 1 && p["arch"] == pick && p["latency_ms"] == *ms),
            "the pick was measured on device {}: {v}",
            d + 1
        );
    }
}
