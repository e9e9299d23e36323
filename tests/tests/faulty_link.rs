//! A faulty serial line between a board and the host: a relay thread copies the board's
//! bytes from one real pty to another and injects faults on the way (bit flips, dropped,
//! duplicated and inserted bytes, frames cut short, garbage before the first frame), with
//! a seeded RNG so every run is the same. The board is a simulated one speaking the real
//! protocol (the shared frame encoder and accumulator) on its own pty, or the real
//! firmware in QEMU; the host end is the real `simnas monitor` process reading the other
//! pty through the serialport crate, or the host library's `BoardLink` in host-driven
//! probe mode.
//!
//! What is checked, against an independent account of the bytes the host received (the
//! relay's copy, split at the `0x00` delimiters):
//! * every frame that arrived intact is logged, in order: zero good records lost;
//! * every other frame is reported as a frame error, and no corrupted record is logged;
//! * a board reset (a frame cut off, then a new `Hello`) is seen as a reset;
//! * in probe mode every answer is the right one, a lost probe is asked again, and a board
//!   that stops answering ends in a clear error after a bounded number of attempts.
//!
//! The records lost vs sent per corruption rate are printed (`--nocapture`) and quoted in
//! the README's reliability section.

use host_trainer::board::qemu::Qemu;
use host_trainer::board::{BoardError, BoardLink};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serialport::{SerialPort, TTYPort};
use simnas_shared::protocol::{
    encode_frame_vec, BoardMsg, ErrorCode, ErrorReport, FrameAccumulator, Hello, HostMsg, Mode, NetShape, ProbeResult,
    Timing, MAX_FRAME, PROTOCOL_VERSION,
};
use simnas_shared::{Arch, ArchCode, Op};
use simnas_tests::{firmware, simnas};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// The relay

/// What the relay does to the bytes it copies.
#[derive(Clone, Copy, Debug)]
struct Faults {
    /// Probability that any one byte is hit by a fault (flip, drop, duplicate, insert
    /// garbage, or cut the rest of its frame).
    rate: f64,
    /// Random bytes sent before the first frame.
    garbage_first: usize,
    /// RNG seed.
    seed: u64,
}

/// Apply faults to one frame (delimiter included).
fn corrupt(frame: &[u8], rate: f64, rng: &mut ChaCha8Rng, out: &mut Vec<u8>) {
    for &b in frame {
        if !rng.random_bool(rate) {
            out.push(b);
            continue;
        }
        match rng.random_range(0..5u8) {
            0 => out.push(b ^ (1 << rng.random_range(0..8u8))),
            1 => {}
            2 => out.extend([b, b]),
            3 => {
                let n = rng.random_range(1..8usize);
                out.extend((0..n).map(|_| rng.random::<u8>()));
                out.push(b);
            }
            // Cut: the rest of the frame, its delimiter included, never arrives.
            _ => return,
        }
    }
}

/// A relay thread from `from` to `to`. It cuts the (clean) input into frames at each
/// `0x00` and forwards each one through [`corrupt`]; everything it sends is kept.
struct Relay {
    stop: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<u8>>>,
    handle: Option<JoinHandle<()>>,
}

impl Relay {
    fn start(mut from: Box<dyn SerialPort>, mut to: Box<dyn SerialPort>, faults: Faults) -> Relay {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (stop2, sent2) = (stop.clone(), sent.clone());
        let handle = thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(faults.seed);
            let mut frame = Vec::new();
            let mut started = false;
            let mut buf = [0u8; 512];
            from.set_timeout(Duration::from_millis(20)).expect("relay timeout");
            while !stop2.load(Ordering::SeqCst) {
                let n = match from.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                    Err(_) => return,
                };
                let mut out = Vec::new();
                if !started && n > 0 {
                    started = true;
                    out.extend((0..faults.garbage_first).map(|_| rng.random::<u8>()));
                }
                for &b in &buf[..n] {
                    frame.push(b);
                    if b != 0 {
                        continue;
                    }
                    corrupt(&frame, faults.rate, &mut rng, &mut out);
                    frame.clear();
                }
                if to.write_all(&out).is_err() {
                    return;
                }
                sent2.lock().expect("relay log").extend_from_slice(&out);
            }
        });
        Relay { stop, sent, handle: Some(handle) }
    }

    /// Stop and return every byte the relay sent.
    fn finish(mut self) -> Vec<u8> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.join().expect("relay thread");
        }
        std::mem::take(&mut *self.sent.lock().expect("relay log"))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// ---------------------------------------------------------------------------------------
// The simulated board

fn hello() -> BoardMsg {
    BoardMsg::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        firmware: "0.1.0".try_into().unwrap(),
        board: "simulated".try_into().unwrap(),
        clock_hz: 25_000_000,
        ticks_per_second: 25_000_000,
        net: NetShape { channels: 16, cells_per_stage: 5, resolution: 16, classes: 120 },
        arena_bytes: 0,
        bank_bytes: 0,
        seed: 7,
        mode: Mode::Search,
    })
}

/// The record the board sends for `id`: every field a function of `id`, so a record that
/// was altered on the way cannot pass for another.
fn record(id: u32) -> ProbeResult {
    let arch = ArchCode::new((id.wrapping_mul(7919) % 15_625) as u16).unwrap();
    let base = 1_000_000 + u64::from(id) * 1_009;
    let timing = Timing {
        median_ticks: base,
        min_ticks: base - 500,
        max_ticks: base + 900,
        q1_ticks: base - 200,
        q3_ticks: base + 300,
        ticks_per_second: 25_000_000,
        repeats: 5,
    };
    ProbeResult { id, arch, timing }
}

/// The bytes of an on-board search that streams `n` records, resetting once half-way: a
/// frame cut off mid-way, then what the firmware sends at boot (a lone delimiter and a
/// `Hello` with sequence number 0), then the rest. Returns the bytes, chunked per frame.
fn search_stream(n: u32) -> Vec<Vec<u8>> {
    let mut out = vec![[vec![0], encode_frame_vec(0, &hello()).unwrap()].concat()];
    let mut seq = 1u16;
    for id in 0..n {
        if id == n / 2 {
            let cut = encode_frame_vec(seq, &BoardMsg::ProbeResult(record(id))).unwrap();
            out.push(cut[..cut.len() / 2].to_vec());
            out.push([vec![0], encode_frame_vec(0, &hello()).unwrap()].concat());
            seq = 1;
        }
        out.push(encode_frame_vec(seq, &BoardMsg::ProbeResult(record(id))).unwrap());
        seq = seq.wrapping_add(1);
    }
    out
}

/// What the host should have made of the bytes it received: the frames that arrived
/// intact (exactly as some frame the board sent) and the number that did not.
#[derive(Debug, Default)]
struct Account {
    /// Ids of the records that arrived intact, in order.
    records: Vec<u32>,
    /// `Hello`s that arrived intact after another intact frame (resets the host can see).
    resets: usize,
    /// Non-empty stretches between delimiters that are not an intact frame.
    damaged: usize,
}

fn account(received: &[u8], sent: &[Vec<u8>]) -> Account {
    let mut known: HashMap<&[u8], Option<BoardMsg>> = HashMap::new();
    for chunk in sent {
        // Only whole frames count (the cut-off one ends without a delimiter).
        if let Some((0, body)) = chunk.split_last() {
            let body = body.strip_prefix(&[0]).unwrap_or(body);
            let msg = simnas_shared::protocol::decode_frame::<BoardMsg>(&mut body.to_vec()).ok().map(|f| f.msg);
            known.insert(body, msg);
        }
    }
    let mut acc = Account::default();
    let mut seen_any = false;
    for segment in received.split(|&b| b == 0).filter(|s| !s.is_empty()) {
        match known.get(segment) {
            Some(Some(BoardMsg::ProbeResult(r))) => acc.records.push(r.id),
            Some(Some(BoardMsg::Hello(_))) => acc.resets += usize::from(seen_any),
            Some(_) => {}
            None => {
                acc.damaged += 1;
                continue;
            }
        }
        seen_any = true;
    }
    acc
}

// ---------------------------------------------------------------------------------------
// `simnas monitor` behind the relay

/// One row of the records-lost table.
#[derive(Debug)]
struct Row {
    rate: f64,
    sent: usize,
    intact: usize,
    logged: usize,
    lost_by_host: usize,
    corrupt_accepted: usize,
    frame_errors: usize,
}

fn monitor_through_relay(rate: f64, n: u32, seed: u64) -> Row {
    let (board_end, relay_in) = {
        let (master, slave) = TTYPort::pair().expect("pty");
        (slave, master)
    };
    let (relay_out, host_end) = TTYPort::pair().expect("pty");
    let host_path = host_end.name().expect("pty path");
    let dir = std::env::temp_dir().join(format!("simnas-relay-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("monitor.jsonl");
    let _ = std::fs::remove_file(&log);

    let relay = Relay::start(Box::new(relay_in), Box::new(relay_out), Faults { rate, garbage_first: 40, seed });
    let mut child = Command::new(simnas())
        .args(["monitor", "--port", &host_path, "--idle", "1.5", "--log"])
        .arg(&log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running simnas monitor");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("monitoring"), "{first}");

    // The board streams its search, then stops (a board that stops answering: the
    // monitor ends on --idle).
    let stream = search_stream(n);
    let mut board = board_end;
    for chunk in &stream {
        board.write_all(chunk).expect("board write");
    }
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "monitor failed: {rest}");
    assert!(!rest.contains("panicked"), "{rest}");
    let received = relay.finish();
    drop(host_end);

    let expected = account(&received, &stream);
    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("every log line is JSON")).collect();
    let kind = |v: &serde_json::Value, k: &str| v["kind"].as_str() == Some(k);
    let mut logged = Vec::new();
    let mut corrupt_accepted = 0;
    for v in lines.iter().filter(|v| kind(v, "probe")) {
        let id = v["id"].as_u64().expect("id") as u32;
        let r = record(id);
        let same = v["arch_code"].as_u64() == Some(u64::from(r.arch.get()))
            && v["median_ticks"].as_u64() == Some(r.timing.median_ticks)
            && v["min_ticks"].as_u64() == Some(r.timing.min_ticks)
            && v["max_ticks"].as_u64() == Some(r.timing.max_ticks);
        corrupt_accepted += usize::from(!same || !expected.records.contains(&id));
        logged.push(id);
    }
    let frame_errors = lines.iter().filter(|v| kind(v, "frame_error")).count();
    let lost_by_host = expected.records.iter().filter(|id| !logged.contains(id)).count();

    assert_eq!(corrupt_accepted, 0, "rate {rate}: a corrupted record was logged");
    assert_eq!(logged, expected.records, "rate {rate}: logged records differ from those that arrived intact");
    assert_eq!(frame_errors, expected.damaged, "rate {rate}: every damaged frame is reported once");
    let resets = rest
        .lines()
        .last()
        .and_then(|l| l.split(", ").find_map(|p| p.strip_suffix(" board resets")))
        .and_then(|x| x.parse::<usize>().ok());
    assert_eq!(resets, Some(expected.resets), "rate {rate}: {rest}");
    if rate == 0.0 {
        // Only the garbage before the first frame and the frame the reset cut off are refused.
        assert_eq!((logged.len(), expected.resets), (n as usize, 1), "clean line: {rest}");
        assert!(frame_errors >= 2, "{rest}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Row {
        rate,
        sent: n as usize,
        intact: expected.records.len(),
        logged: logged.len(),
        lost_by_host,
        corrupt_accepted,
        frame_errors,
    }
}

#[test]
fn monitor_logs_every_intact_record_and_no_corrupted_one() {
    let t0 = Instant::now();
    let rows: Vec<Row> = [(0.0, 1), (0.0005, 2), (0.002, 3), (0.01, 4), (0.03, 5)]
        .into_iter()
        .map(|(rate, seed)| monitor_through_relay(rate, 1_000, seed))
        .collect();
    eprintln!("| fault rate per byte | records sent | arrived intact | logged | lost by the host | corrupted records logged | frame errors reported |");
    eprintln!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        eprintln!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            r.rate, r.sent, r.intact, r.logged, r.lost_by_host, r.corrupt_accepted, r.frame_errors
        );
    }
    // The faults really bit at the higher rates.
    assert!(rows[4].intact < rows[4].sent * 3 / 4, "{rows:?}");
    eprintln!("relay monitor test: {:.1} s", t0.elapsed().as_secs_f64());
}

// ---------------------------------------------------------------------------------------
// Host-driven probes behind the relay (faults in both directions)

/// The board's answer to probe `req`: a function of the cell alone.
fn answer(id: u32, arch: ArchCode) -> ProbeResult {
    let mut r = record(u32::from(arch.get()));
    r.id = id;
    r.arch = arch;
    r
}

/// A board answering host commands on `port` like the firmware does: `Hello` on boot and
/// on `Identify`, a result per probe, an `Error` frame for a frame it cannot read. After
/// `answer_limit` probes it stops answering; `reset_at` probes in, it restarts instead of
/// answering.
fn serving_board(
    mut port: TTYPort,
    answer_limit: usize,
    reset_at: Option<usize>,
    asked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut acc = FrameAccumulator::<MAX_FRAME>::new();
        let mut seq = 0u16;
        let send = |port: &mut TTYPort, msg: &BoardMsg, seq: &mut u16| {
            let bytes = encode_frame_vec(*seq, msg).unwrap();
            *seq = seq.wrapping_add(1);
            port.write_all(&bytes).is_ok()
        };
        port.write_all(&[0]).ok();
        send(&mut port, &hello(), &mut seq);
        port.set_timeout(Duration::from_millis(20)).unwrap();
        let mut buf = [0u8; 256];
        while !stop.load(Ordering::SeqCst) {
            let n = match port.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            };
            for &b in &buf[..n] {
                let reply = match acc.push::<HostMsg>(b) {
                    None => continue,
                    Some(Ok(f)) => match f.msg {
                        HostMsg::Identify => hello(),
                        HostMsg::Probe(req) => {
                            let k = asked.fetch_add(1, Ordering::SeqCst);
                            if k >= answer_limit {
                                continue;
                            }
                            if reset_at == Some(k) {
                                seq = 0;
                                port.write_all(&[0]).ok();
                                hello()
                            } else {
                                BoardMsg::ProbeResult(answer(req.id, req.arch))
                            }
                        }
                        _ => continue,
                    },
                    Some(Err(_)) => {
                        BoardMsg::Error(ErrorReport { code: ErrorCode::FrameCrc, request: None, detail: 0 })
                    }
                };
                if !send(&mut port, &reply, &mut seq) {
                    return;
                }
            }
        }
    })
}

/// A board and a host connected through two relays (one per direction).
struct ProbeRig {
    link: BoardLink,
    relays: [Relay; 2],
    stop: Arc<AtomicBool>,
    asked: Arc<AtomicUsize>,
    board: Option<JoinHandle<()>>,
}

impl ProbeRig {
    fn new(rate: f64, seed: u64, answer_limit: usize, reset_at: Option<usize>) -> ProbeRig {
        // board <-> (pty A) <-> relays <-> (pty B) <-> host
        let (a_master, a_slave) = TTYPort::pair().expect("pty");
        let (b_master, b_slave) = TTYPort::pair().expect("pty");
        let up = Faults { rate, garbage_first: 20, seed };
        let down = Faults { rate, garbage_first: 0, seed: seed + 1000 };
        let relays = [
            Relay::start(a_master.try_clone().unwrap(), b_master.try_clone().unwrap(), up),
            Relay::start(Box::new(b_master), Box::new(a_master), down),
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicUsize::new(0));
        let board = serving_board(a_slave, answer_limit, reset_at, asked.clone(), stop.clone());
        let link = BoardLink::new(Box::new(b_slave));
        ProbeRig { link, relays, stop, asked, board: Some(board) }
    }
}

impl Drop for ProbeRig {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for r in &self.relays {
            r.stop.store(true, Ordering::SeqCst);
        }
        if let Some(b) = self.board.take() {
            let _ = b.join();
        }
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_millis(120);

#[test]
fn probes_through_a_faulty_link_are_answered_right_or_fail_clearly() {
    let t0 = Instant::now();
    let n = 60u16;
    let retries = 6;
    eprintln!("| fault rate per byte | probes | answered | attempts | failed (no answer) | wrong answers |");
    eprintln!("|---:|---:|---:|---:|---:|---:|");
    for (rate, seed) in [(0.0, 11), (0.002, 12), (0.01, 13)] {
        let mut rig = ProbeRig::new(rate, seed, usize::MAX, None);
        let hello = rig.link.connect(Duration::from_secs(5)).expect("Hello through the relay");
        assert_eq!(hello.board.as_str(), "simulated");
        let (mut answered, mut failed, mut wrong) = (0, 0, 0);
        for i in 0..n {
            let arch = Arch::from_code(ArchCode::new(i * 257 % 15_625).unwrap());
            // On a clean line the wait is generous, so a busy machine causes no retry.
            let timeout = if rate == 0.0 { Duration::from_secs(2) } else { PROBE_TIMEOUT };
            match rig.link.probe(arch, 0, 5, timeout, retries) {
                Ok(r) => {
                    answered += 1;
                    wrong += usize::from(r.arch != arch.code() || r.timing != answer(r.id, arch.code()).timing);
                }
                Err(BoardError::NoAnswer { attempts, .. }) => {
                    assert_eq!(attempts, retries + 1);
                    failed += 1;
                }
                Err(e) => panic!("rate {rate}: unexpected error {e}"),
            }
        }
        let attempts = rig.asked.load(Ordering::SeqCst);
        eprintln!("| {rate} | {n} | {answered} | {attempts} | {failed} | {wrong} |");
        assert_eq!(wrong, 0, "rate {rate}: a wrong answer was accepted");
        if rate == 0.0 {
            assert_eq!((answered, attempts), (usize::from(n), usize::from(n)));
        } else {
            // Lost probes were asked again, and retries got nearly all of them through.
            assert!(answered >= usize::from(n) * 9 / 10, "rate {rate}: {answered}/{n}");
            if rate >= 0.01 {
                assert!(attempts > usize::from(n), "rate {rate}: no retries at all?");
            }
        }
    }
    eprintln!("relay probe test: {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn a_board_reset_mid_search_is_seen_and_the_probe_asked_again() {
    let mut rig = ProbeRig::new(0.0, 21, usize::MAX, Some(3));
    rig.link.connect(Duration::from_secs(5)).expect("Hello");
    for i in 0..6u16 {
        let arch = Arch::from_code(ArchCode::new(i * 1000).unwrap());
        let r = rig.link.probe(arch, 0, 5, Duration::from_secs(2), 1).expect("answered despite the reset");
        assert_eq!(r.timing, answer(r.id, arch.code()).timing);
    }
    let s = rig.link.stats();
    assert_eq!(s.resets, 1, "{s:?}");
    assert!(s.corrupt >= 1, "the garbage before the first frame is refused: {s:?}");
    assert_eq!(rig.asked.load(Ordering::SeqCst), 7, "the probe the reset swallowed is asked once more");
}

#[test]
fn a_board_that_stops_answering_fails_after_bounded_retries() {
    let mut rig = ProbeRig::new(0.0, 31, 2, None);
    rig.link.connect(Duration::from_secs(5)).expect("Hello");
    for i in 0..2u16 {
        let arch = Arch::from_code(ArchCode::new(i).unwrap());
        rig.link.probe(arch, 0, 5, Duration::from_secs(2), 2).expect("answered");
    }
    let start = Instant::now();
    let err = rig.link.probe(Arch::from_code(ArchCode::new(77).unwrap()), 0, 5, PROBE_TIMEOUT, 2).unwrap_err();
    let waited = start.elapsed();
    assert!(matches!(err, BoardError::NoAnswer { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains("no answer to request 3 after 3 attempts"), "{err}");
    assert!(waited >= 3 * PROBE_TIMEOUT && waited < 3 * PROBE_TIMEOUT + Duration::from_secs(2), "{waited:?}");
    assert_eq!(rig.asked.load(Ordering::SeqCst), 5, "3 attempts for the last probe, no more");
}

#[test]
fn the_firmware_in_qemu_behind_a_faulty_link_answers_every_probe_right() {
    let t0 = Instant::now();
    let rate = 0.005;
    let (_qemu, board) = Qemu::launch(&firmware()).expect("booting the firmware in QEMU");
    let (host_side, host_end) = TTYPort::pair().expect("pty");
    let _relays = [
        Relay::start(
            board.try_clone().unwrap(),
            host_side.try_clone().unwrap(),
            Faults { rate, garbage_first: 20, seed: 41 },
        ),
        Relay::start(Box::new(host_side), board, Faults { rate, garbage_first: 0, seed: 42 }),
    ];
    let mut link = BoardLink::new(Box::new(host_end));
    let hello = link.connect(Duration::from_secs(30)).expect("Hello through the faulty link");
    assert_eq!(hello.board.as_str(), "mps2-an386");
    // Cheap cells (no convolution), each measured several times: under -icount the same
    // cell takes the same ticks, so an altered answer could not hide.
    let cells = [
        Arch::uniform(Op::SkipConnect),
        Arch::uniform(Op::None),
        Arch::uniform(Op::AvgPool3x3),
        Arch::from_code(ArchCode::new(1).unwrap()),
    ];
    let mut ticks: HashMap<ArchCode, u64> = HashMap::new();
    let (mut answered, mut failed) = (0, 0);
    for round in 0..4 {
        for arch in cells {
            match link.probe(arch, 0, 1, Duration::from_millis(800), 6) {
                Ok(r) => {
                    answered += 1;
                    assert_eq!(r.arch, arch.code());
                    let first = *ticks.entry(r.arch).or_insert(r.timing.median_ticks);
                    // Repeatable to one tick: a timed run starts on a tick edge, its end
                    // may fall either side of the next one.
                    assert!(
                        r.timing.median_ticks.abs_diff(first) <= 1,
                        "round {round}: {arch} measured differently ({} vs {first} ticks)",
                        r.timing.median_ticks
                    );
                }
                Err(BoardError::NoAnswer { .. }) => failed += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    let s = link.stats();
    eprintln!(
        "QEMU behind the relay (rate {rate}): {answered} of 16 probes answered, {failed} failed; {} frames, {} refused, {} missing, {} resets; {:.1} s",
        s.frames,
        s.corrupt,
        s.missing,
        s.resets,
        t0.elapsed().as_secs_f64()
    );
    assert!(answered >= 15, "{answered} of 16");
    assert!(s.corrupt > 0, "the relay did corrupt frames: {s:?}");
    // The board kept serving through every corrupted command it was sent: a ping (asked
    // again while the faulty line eats it) is answered.
    let mut pong = false;
    for nonce in 0..5 {
        link.send(&HostMsg::Ping { nonce }).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        while let Some(ev) = link.next_event(deadline).unwrap() {
            if matches!(ev, host_trainer::board::Event::Msg { msg: BoardMsg::Pong { nonce: n }, .. } if n == nonce) {
                pong = true;
            }
        }
        if pong {
            break;
        }
    }
    assert!(pong, "no Pong after 5 pings");
}
