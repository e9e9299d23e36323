//! The link against a scripted board ([`super::scripted`]) on the other end of a real pty:
//! lost replies are retried a bounded number of times, corrupted frames are counted and
//! never decoded, sequence gaps and resets are seen, a line that closes is a hang-up.

use super::scripted::{answer, good_answer, hello, serve, timing, Reply};
use super::*;
use serialport::TTYPort;
use simnas_shared::protocol::{encode_frame_vec, ErrorReport, Timing};
use simnas_shared::Op;

/// A link and the board's end of its pty.
fn pty() -> (BoardLink, TTYPort) {
    let (master, slave) = TTYPort::pair().expect("a pty pair");
    (BoardLink::new(Box::new(master)), slave)
}

const T: Duration = Duration::from_millis(400);

#[test]
fn a_lost_reply_is_asked_again_and_garbage_is_counted_not_decoded() {
    let (mut link, port) = pty();
    serve(port, |n, req| match n {
        // The first request's reply is lost on the wire.
        0 => Reply::Raw(vec![]),
        // Then garbage, a frame with a flipped bit, and the reply.
        _ => {
            let mut out = vec![0x13, 0x37, 0x00];
            let mut bad = encode_frame_vec(0, &good_answer(req)).unwrap();
            bad[4] ^= 0x20;
            out.extend(bad);
            out.extend(encode_frame_vec(1, &good_answer(req)).unwrap());
            Reply::Raw(out)
        }
    });
    let start = Instant::now();
    let arch = Arch::uniform(Op::NorConv3x3);
    let r = link.probe(arch, 0, 3, T, 2).expect("answered on the retry");
    assert!(start.elapsed() >= T);
    let asked = ProbeRequest { id: r.id, arch: arch.code(), warmup: 0, repeats: 3 };
    assert_eq!((r.arch, r.timing, r.timing.repeats), (arch.code(), timing(&asked), 3));
    let s = link.stats();
    assert_eq!((s.frames, s.corrupt), (1, 2), "{s:?}");
}

#[test]
fn a_silent_board_fails_after_the_retries() {
    let (mut link, port) = pty();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = asked.clone();
    serve(port, move |_, _| {
        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Reply::Raw(vec![])
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
    serve(port, |n, req| {
        let mut stale = *req;
        stale.id = req.id.wrapping_sub(1);
        let mut out = encode_frame_vec(2 * n as u16, &good_answer(&stale)).unwrap();
        let reply = if n == 0 {
            good_answer(req)
        } else {
            BoardMsg::Error(ErrorReport { code: ErrorCode::Repeats, request: Some(req.id), detail: 64 })
        };
        out.extend(encode_frame_vec(2 * n as u16 + 1, &reply).unwrap());
        Reply::Raw(out)
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

#[test]
fn a_line_that_closes_mid_probe_is_a_hang_up_not_a_timeout() {
    let (mut link, port) = pty();
    serve(port, |n, req| match n {
        0 => Reply::Msgs(vec![good_answer(req)]),
        // Half of the second answer, then the board's end of the line closes.
        _ => {
            let frame = encode_frame_vec(1, &good_answer(req)).unwrap();
            Reply::HangUp(frame[..frame.len() / 2].to_vec())
        }
    });
    link.probe(Arch::uniform(Op::SkipConnect), 0, 1, T, 2).expect("the first answer");
    let start = Instant::now();
    let err = link.probe(Arch::uniform(Op::AvgPool3x3), 0, 1, Duration::from_secs(20), 2).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(5), "a hang-up is seen at once, not waited out");
    assert!(matches!(err, BoardError::HungUp { during: Phase::Probe(2), pending } if pending > 0), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("the board hung up: the serial line closed during probe request 2"), "{text}");
    assert!(text.contains("bytes into a frame"), "{text}");
}

/// Spoils a good timing.
type Spoil = fn(&mut Timing);

/// Answers no board may give, and what the refusal says (asked: 1 repeat).
const IMPOSSIBLE: [(Spoil, &str); 7] = [
    (|t| (t.min_ticks, t.q1_ticks, t.median_ticks) = (0, 0, 0), "median_ticks is 0"),
    (|t| t.ticks_per_second = 0, "ticks_per_second is 0"),
    (|t| t.repeats = 0, "repeats is 0"),
    (|t| t.min_ticks = t.median_ticks + 1, "min_ticks"),
    (|t| t.max_ticks = t.median_ticks - 1, "is larger than max_ticks"),
    (|t| t.q1_ticks = t.q3_ticks + 1, "q1_ticks"),
    (|t| t.repeats = 2, "repeats is 2, but 1 were asked for"),
];

#[test]
fn impossible_timings_are_refused_naming_the_field() {
    let (mut link, port) = pty();
    serve(port, |n, req| {
        let mut t = timing(req);
        IMPOSSIBLE[n].0(&mut t);
        Reply::Msgs(vec![answer(req, t)])
    });
    for (i, (_, what)) in IMPOSSIBLE.iter().enumerate() {
        let err = link.probe(Arch::uniform(Op::AvgPool3x3), 0, 1, T, 0).unwrap_err();
        let request = i as u32 + 1;
        assert!(matches!(err, BoardError::BadTiming { request: r, .. } if r == request), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("board answered request {request} with an impossible timing")), "{text}");
        assert!(text.contains(what), "case {i}: {text}");
    }
}
