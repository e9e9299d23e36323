//! The real `simnas` process against a scripted board ([`host_trainer::board::scripted`])
//! on a real pty, read through the serialport crate as `--device serial:PTY`: a board that
//! hangs up mid-search is an error with a message, a closed stdout is not; a board whose
//! answer cannot be a measurement gets no pick made of it.

use host_trainer::board::scripted::{answer, good_answer, hello, pty, serve, timing, Reply};
use serialport::{SerialPort, TTYPort};
use simnas_shared::protocol::{encode_frame_vec, BoardMsg, ProbeRequest, Timing};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// A scripted board on a fresh pty; returns its port path and the pty's other end, which
/// must stay open while `simnas` runs (the line hangs up when the last one closes).
fn board(script: impl FnMut(usize, &ProbeRequest) -> Reply + Send + 'static) -> (String, TTYPort) {
    let (board_end, host_end) = pty().expect("a pty pair");
    let path = host_end.name().expect("the pty's path");
    serve(board_end, script);
    (path, host_end)
}

fn search(port: &str, budget: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_simnas"));
    c.args(["search", "--warmup", "0", "--repeats", "1", "--budget", &budget.to_string(), "--device"])
        .arg(format!("serial:{port}"))
        .stdin(Stdio::null());
    c
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn a_board_that_hangs_up_mid_search_is_an_error_that_says_so() {
    // Two answers, then half of the third and the line closes.
    let (port, _keep) = board(|n, req| match n {
        0 | 1 => Reply::Msgs(vec![good_answer(req)]),
        _ => {
            let frame = encode_frame_vec(9, &good_answer(req)).unwrap();
            Reply::HangUp(frame[..frame.len() / 2].to_vec())
        }
    });
    let out = search(&port, 6).output().expect("running simnas search");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("the board hung up: the serial line closed during probe request 3"), "{stderr}");
    assert!(stderr.contains("probe 3 ("), "the search step is named: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // The two probes measured before are on stdout; there is no pick.
    assert_eq!(stdout.lines().filter(|l| l.trim_start().starts_with(['1', '2'])).count(), 2, "{stdout}");
    assert!(!stdout.contains("pick:"), "{stdout}");
}

#[test]
fn a_board_that_hangs_up_during_probe_is_an_error_that_says_so() {
    let (port, _keep) = board(|n, req| match n {
        0 => Reply::Msgs(vec![good_answer(req)]),
        _ => Reply::HangUp(vec![]),
    });
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["probe", "--warmup", "0", "--repeats", "1", "--device"])
        .arg(format!("serial:{port}"))
        .output()
        .expect("running simnas probe");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("the board hung up: the serial line closed during probe request 2"), "{stderr}");
    assert_eq!(stdout.lines().count(), 3, "the header and the first cell: {stdout}");
}

#[test]
fn a_board_that_hangs_up_mid_frame_while_monitored_is_an_error_after_the_summary() {
    // The board's end of the line is written here directly: one record, half of the next,
    // then it closes.
    let (mut board_end, host_end) = pty().expect("a pty pair");
    let port = host_end.name().expect("the pty's path");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["monitor", "--port", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running simnas monitor");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("monitoring"), "{first}");
    let mut bytes = encode_frame_vec(0, &hello()).unwrap();
    let next = encode_frame_vec(1, &BoardMsg::Pong { nonce: 7 }).unwrap();
    bytes.extend(&next[..next.len() / 2]);
    board_end.write_all(&bytes).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(board_end);
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    drop(host_end);
    assert_eq!(out.status.code(), Some(1), "{rest}");
    let summary = rest.find("1 frames, 0 corrupt, 0 missing, 0 board resets").expect(&rest);
    let error = rest.find("error: the board hung up: the serial line closed while reading its records").expect(&rest);
    assert!(summary < error, "the summary, then the error: {rest}");
    assert!(rest.contains("bytes into a frame"), "{rest}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hello"), "the record before is printed");
}

#[test]
fn a_closed_stdout_still_ends_a_board_search_quietly() {
    let (port, _keep) = board(|_, req| Reply::Msgs(vec![good_answer(req)]));
    let mut child = search(&port, 6).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // `simnas search ... | head -1`: one line is read, then the reader goes.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("device serial:"), "{first}");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn a_board_answering_a_zero_latency_or_timer_rate_gets_no_pick() {
    for (field, zero) in [
        ("median_ticks", (|t| (t.min_ticks, t.q1_ticks, t.median_ticks) = (0, 0, 0)) as fn(&mut Timing)),
        ("ticks_per_second", |t| t.ticks_per_second = 0),
    ] {
        // A good answer, then the impossible one.
        let (port, _keep) = board(move |n, req| {
            let mut t = timing(req);
            if n > 0 {
                zero(&mut t);
            }
            Reply::Msgs(vec![answer(req, t)])
        });
        let out = search(&port, 6).output().expect("running simnas search");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{field}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("board answered request 2 with an impossible timing: {field} is 0")),
            "{stderr}"
        );
        assert!(!stdout.contains("pick:") && !stdout.contains(" 0.0000 "), "{stdout}");
    }
}

#[test]
fn the_monitor_logs_an_impossible_record_marked_invalid() {
    let (mut board_end, host_end) = pty().expect("a pty pair");
    let port = host_end.name().expect("the pty's path");
    let log = std::env::temp_dir().join(format!("simnas-board-faults-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let req = ProbeRequest {
        id: 4,
        arch: simnas_shared::Arch::uniform(simnas_shared::Op::AvgPool3x3).code(),
        warmup: 0,
        repeats: 3,
    };
    let mut t = timing(&req);
    t.q1_ticks = t.q3_ticks + 1;
    let mut bytes = encode_frame_vec(0, &hello()).unwrap();
    bytes.extend(encode_frame_vec(1, &answer(&req, t)).unwrap());
    board_end.write_all(&bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["monitor", "--count", "2", "--idle", "5", "--port", &port, "--log"])
        .arg(&log)
        .output()
        .expect("running simnas monitor");
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("warning: the board's last record is no measurement (q1_ticks"), "{stderr}");
    let records: Vec<serde_json::Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let _ = std::fs::remove_file(&log);
    assert_eq!(records.len(), 2);
    assert!(records[0].get("invalid").is_none(), "{}", records[0]);
    assert_eq!(records[1]["kind"], "probe");
    let why = records[1]["invalid"].as_str().expect("marked invalid");
    assert!(why.starts_with("q1_ticks (") && why.contains("is larger than median_ticks"), "{why}");
}

/// A board naming itself with escape sequences (set the title, clear the screen) reaches
/// the terminal only escaped; a log whose last line was cut off gets its next record on a
/// line of its own.
#[test]
fn the_monitor_escapes_what_the_board_prints_and_never_glues_log_lines() {
    let (mut board_end, host_end) = pty().expect("a pty pair");
    let port = host_end.name().expect("the pty's path");
    let log = std::env::temp_dir().join(format!("simnas-board-escape-{}.jsonl", std::process::id()));
    std::fs::write(&log, "{\"kind\":\"hello\",\"cut\":").unwrap();
    let mut h = hello();
    if let BoardMsg::Hello(h) = &mut h {
        h.board = "\u{1b}]0;pwned\u{7}\u{1b}[2J".try_into().expect("fits");
    }
    board_end.write_all(&encode_frame_vec(0, &h).unwrap()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
        .args(["monitor", "--count", "1", "--idle", "5", "--port", &port, "--log"])
        .arg(&log)
        .output()
        .expect("running simnas monitor");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\u{7}'), "{stdout:?}");
    assert!(stdout.contains("\\u{1b}]0;pwned"), "{stdout:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    let _ = std::fs::remove_file(&log);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert_eq!(lines[0], "{\"kind\":\"hello\",\"cut\":");
    let rec: serde_json::Value = serde_json::from_str(lines[1]).expect("the new record is a line of its own");
    assert_eq!(rec["kind"], "hello");
}

/// A board that only serves host commands sends nothing on its own: the monitor says so
/// (and what to pass instead) rather than wait without a word; a searching board gets no
/// such hint.
#[test]
fn monitoring_a_serve_mode_board_says_what_to_pass() {
    for (mode, hinted) in [(simnas_shared::protocol::Mode::Serve, true), (simnas_shared::protocol::Mode::Search, false)]
    {
        let (mut board_end, host_end) = pty().expect("a pty pair");
        let port = host_end.name().expect("the pty's path");
        let mut h = hello();
        if let BoardMsg::Hello(h) = &mut h {
            h.mode = mode;
        }
        board_end.write_all(&encode_frame_vec(0, &h).unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_simnas"))
            .args(["monitor", "--idle", "1", "--port", &port])
            .output()
            .expect("running simnas monitor");
        let (_, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert_eq!(
            stderr.contains("serves host commands") && stderr.contains("--search"),
            hinted,
            "{mode:?}: {stderr}"
        );
    }
}
