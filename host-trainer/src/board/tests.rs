//! The link against a scripted board on the other end of a real pty: lost replies are
//! retried a bounded number of times, corrupted frames are counted and never decoded,
//! sequence gaps and resets are seen.

use super::*;
use serialport::TTYPort;
use simnas_shared::protocol::{encode_frame_vec, ErrorReport, Frame, Mode, NetShape, Timing};
use simnas_shared::Op;
use std::thread;

/// A link and the board's end of its pty.
fn pty() -> (BoardLink, TTYPort) {
    let (master, slave) = TTYPort::pair().expect("a pty pair");
    (BoardLink::new(Box::new(master)), slave)
}

fn hello() -> BoardMsg {
    BoardMsg::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        firmware: "0.1.0".try_into().unwrap(),
        board: "scripted".try_into().unwrap(),
        clock_hz: 1_000,
        ticks_per_second: 1_000,
        net: NetShape { channels: 16, cells_per_stage: 5, resolution: 16, classes: 120 },
        arena_bytes: 0,
        bank_bytes: 0,
        seed: 0,
        mode: Mode::Serve,
    })
}

fn result(req: &ProbeRequest) -> BoardMsg {
    let timing = Timing {
        median_ticks: 20,
        min_ticks: 10,
        max_ticks: 30,
        q1_ticks: 15,
        q3_ticks: 25,
        ticks_per_second: 1_000,
        repeats: req.repeats.into(),
    };
    BoardMsg::ProbeResult(ProbeResult { id: req.id, arch: req.arch, timing })
}

/// Run `script` on every probe request the board receives (with its 0-based count);
/// it returns the bytes to send back.
fn board(mut port: TTYPort, mut script: impl FnMut(usize, &ProbeRequest) -> Vec<u8> + Send + 'static) {
    thread::spawn(move || {
        let mut acc = FrameAccumulator::<MAX_FRAME>::new();
        let mut n = 0;
        let mut buf = [0u8; 256];
        port.set_timeout(Duration::from_millis(50)).unwrap();
        loop {
            let got = match port.read(&mut buf) {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            };
            for &b in &buf[..got] {
                if let Some(Ok(Frame { msg: HostMsg::Probe(req), .. })) = acc.push::<HostMsg>(b) {
                    let reply = script(n, &req);
                    n += 1;
                    if port.write_all(&reply).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

const T: Duration = Duration::from_millis(400);

#[test]
fn a_lost_reply_is_asked_again_and_garbage_is_counted_not_decoded() {
    let (mut link, port) = pty();
    board(port, |n, req| match n {
        // The first request's reply is lost on the wire.
        0 => vec![],
        // Then garbage, a frame with a flipped bit, and the reply.
        _ => {
            let mut out = vec![0x13, 0x37, 0x00];
            let mut bad = encode_frame_vec(0, &result(req)).unwrap();
            bad[4] ^= 0x20;
            out.extend(bad);
            out.extend(encode_frame_vec(1, &result(req)).unwrap());
            out
        }
    });
    let start = Instant::now();
    let r = link.probe(Arch::uniform(Op::NorConv3x3), 0, 3, T, 2).expect("answered on the retry");
    assert!(start.elapsed() >= T);
    assert_eq!((r.arch, r.timing.median_ticks, r.timing.repeats), (Arch::uniform(Op::NorConv3x3).code(), 20, 3));
    let s = link.stats();
    assert_eq!((s.frames, s.corrupt), (1, 2), "{s:?}");
}

#[test]
fn a_silent_board_fails_after_the_retries() {
    let (mut link, port) = pty();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    board(port, move |_, _| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        vec![]
    });
    let start = Instant::now();
    let err = link.probe(Arch::uniform(Op::SkipConnect), 0, 1, T, 2).unwrap_err();
    assert!(matches!(err, BoardError::NoAnswer { attempts: 3, .. }), "{err}");
    assert!(start.elapsed() >= 3 * T && start.elapsed() < 3 * T + Duration::from_secs(2));
    assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 3);
}

#[test]
fn stale_replies_are_ignored_and_refusals_name_the_request() {
    let (mut link, port) = pty();
    board(port, |n, req| {
        let mut stale = *req;
        stale.id = req.id.wrapping_sub(1);
        let mut out = encode_frame_vec(2 * n as u16, &result(&stale)).unwrap();
        let reply = if n == 0 {
            result(req)
        } else {
            BoardMsg::Error(ErrorReport { code: ErrorCode::Repeats, request: Some(req.id), detail: 64 })
        };
        out.extend(encode_frame_vec(2 * n as u16 + 1, &reply).unwrap());
        out
    });
    let r = link.probe(Arch::uniform(Op::AvgPool3x3), 0, 5, T, 0).unwrap();
    assert_eq!(r.timing.repeats, 5);
    let err = link.probe(Arch::uniform(Op::AvgPool3x3), 0, 500, T, 0).unwrap_err();
    assert!(err.to_string().contains("repeats must be 1..=64"), "{err}");
}

#[test]
fn sequence_gaps_and_resets_are_counted() {
    let (mut link, mut port) = pty();
    let mut bytes = encode_frame_vec(0, &hello()).unwrap();
    bytes.extend(encode_frame_vec(1, &BoardMsg::Pong { nonce: 1 }).unwrap());
    bytes.extend(encode_frame_vec(4, &BoardMsg::Pong { nonce: 2 }).unwrap());
    bytes.extend(encode_frame_vec(0, &hello()).unwrap());
    bytes.extend(encode_frame_vec(1, &BoardMsg::Pong { nonce: 3 }).unwrap());
    port.write_all(&bytes).unwrap();
    let hello = link.connect(T).expect("the Hello");
    assert_eq!(hello.board.as_str(), "scripted");
    let mut seen = Vec::new();
    while let Some(Event::Msg { seq, .. }) = link.next_event(Instant::now() + Duration::from_millis(200)).unwrap() {
        seen.push(seq);
    }
    assert_eq!(seen, [1, 4, 0, 1]);
    let s = link.stats();
    assert_eq!((s.frames, s.missing, s.resets, s.corrupt), (5, 2, 1, 0), "{s:?}");
}
