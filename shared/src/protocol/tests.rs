//! Wire-format fixtures and properties of the framing.
//!
//! The golden frames were computed independently in Python (`zlib.crc32` for the CRC, a
//! ten-line COBS encoder, postcard's varint rules written out by hand), not by this crate.

use super::*;
use proptest::prelude::*;

fn code(c: u16) -> ArchCode {
    ArchCode::new(c).unwrap()
}

fn encode<M: Serialize>(seq: u16, msg: &M) -> Vec<u8> {
    let mut out = [0u8; MAX_FRAME];
    let n = encode_frame(seq, msg, &mut out).unwrap();
    out[..n].to_vec()
}

/// Every frame result in `bytes`, fed in one go.
fn decode_all<M: DeserializeOwnedDebug>(bytes: &[u8]) -> Vec<Result<Frame<M>, FrameError>> {
    let mut acc = FrameAccumulator::<MAX_FRAME>::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    loop {
        match acc.feed::<M>(rest) {
            Feed::Consumed => return out,
            Feed::Frame { frame, remaining } => {
                out.push(Ok(frame));
                rest = remaining;
            }
            Feed::Error { error, remaining } => {
                out.push(Err(error));
                rest = remaining;
            }
        }
    }
}

trait DeserializeOwnedDebug: serde::de::DeserializeOwned + core::fmt::Debug {}
impl<T: serde::de::DeserializeOwned + core::fmt::Debug> DeserializeOwnedDebug for T {}

fn timing() -> Timing {
    Timing {
        median_ticks: 1000,
        min_ticks: 990,
        max_ticks: 1010,
        q1_ticks: 995,
        q3_ticks: 1005,
        ticks_per_second: 25_000_000,
        repeats: 3,
    }
}

fn hello() -> Hello {
    Hello {
        protocol: PROTOCOL_VERSION,
        firmware: heapless::String::try_from("0.1.0").unwrap(),
        board: heapless::String::try_from("mps2-an386").unwrap(),
        clock_hz: 25_000_000,
        ticks_per_second: 25_000_000,
        net: NetShape { channels: 16, cells_per_stage: 5, resolution: 16, classes: 120 },
        arena_bytes: 86_528,
        bank_bytes: 147_712,
        seed: 0x5EED,
        mode: Mode::Serve,
    }
}

// ---- golden bytes -------------------------------------------------------------------

#[test]
fn golden_ping() {
    // inner = 00 00 | 01 (Ping) 01 (nonce) | crc32 = 0x4f58decb
    let want = [0x01, 0x01, 0x07, 0x01, 0x01, 0xcb, 0xde, 0x58, 0x4f, 0x00];
    assert_eq!(encode(0, &HostMsg::Ping { nonce: 1 }), want);
}

#[test]
fn golden_probe_request() {
    // 11718 = all nor_conv_3x3 = varint c6 5b.
    let msg = HostMsg::Probe(ProbeRequest { id: 7, arch: code(11718), warmup: 1, repeats: 3 });
    let want = [0x02, 0x05, 0x0b, 0x02, 0x07, 0xc6, 0x5b, 0x01, 0x03, 0x66, 0xbc, 0xf7, 0x61, 0x00];
    assert_eq!(encode(5, &msg), want);
}

#[test]
fn golden_probe_result() {
    let msg = BoardMsg::ProbeResult(ProbeResult { id: 7, arch: code(11718), timing: timing() });
    let want = [
        0x1a, 0x2c, 0x01, 0x02, 0x07, 0xc6, 0x5b, 0xe8, 0x07, 0xde, 0x07, 0xf2, 0x07, 0xe3, 0x07, 0xed, 0x07, 0xc0,
        0xf0, 0xf5, 0x0b, 0x03, 0x7c, 0x45, 0xdb, 0xa1, 0x00,
    ];
    assert_eq!(encode(300, &msg), want);
}

#[test]
fn golden_error() {
    let msg = BoardMsg::Error(ErrorReport { code: ErrorCode::FrameCrc, request: None, detail: 0 });
    let want = [0x02, 0x01, 0x03, 0x05, 0x03, 0x01, 0x05, 0x6d, 0x3c, 0x06, 0x4f, 0x00];
    assert_eq!(encode(1, &msg), want);
}

#[test]
fn golden_hello() {
    let want = [
        0x01, 0x01, 0x01, 0x28, 0x02, 0x05, 0x30, 0x2e, 0x31, 0x2e, 0x30, 0x0a, 0x6d, 0x70, 0x73, 0x32, 0x2d, 0x61,
        0x6e, 0x33, 0x38, 0x36, 0xc0, 0xf0, 0xf5, 0x0b, 0xc0, 0xf0, 0xf5, 0x0b, 0x10, 0x05, 0x10, 0x78, 0x80, 0xa4,
        0x05, 0x80, 0x82, 0x09, 0xed, 0xbd, 0x01, 0x05, 0x0d, 0xa9, 0x52, 0x29, 0x00,
    ];
    let got = encode(0, &BoardMsg::Hello(hello()));
    assert_eq!(got, want);
    assert_eq!(decode_all::<BoardMsg>(&want), vec![Ok(Frame { seq: 0, msg: BoardMsg::Hello(hello()) })]);
}

fn search_probe() -> SearchProbe {
    SearchProbe {
        id: 0,
        index: 3,
        step: 1,
        arch: code(11718),
        timing: timing(),
        probe_ticks: 4100,
        controller_ticks: 2000,
    }
}

fn final_record() -> Final {
    Final {
        id: 0,
        budget: 10,
        probes: 10,
        steps: 8,
        stop: SearchStop::Budget,
        arch: Some(code(14056)),
        pick_index: 7,
        pick_ticks: 253_000,
        score: 0.75,
        ticks_per_second: 25_000_000,
        controller_ticks: 40_000,
        probe_ticks: 9_000_000,
        max_step_ticks: 4_500,
    }
}

#[test]
fn golden_search_probe() {
    // Variant 6; 0.75f32 is 00 00 40 3f in the Final below.
    let want = [
        0x02, 0x0c, 0x02, 0x06, 0x1c, 0x03, 0x01, 0xc6, 0x5b, 0xe8, 0x07, 0xde, 0x07, 0xf2, 0x07, 0xe3, 0x07, 0xed,
        0x07, 0xc0, 0xf0, 0xf5, 0x0b, 0x03, 0x84, 0x20, 0xd0, 0x0f, 0x0d, 0x70, 0x82, 0xca, 0x00,
    ];
    assert_eq!(encode(12, &BoardMsg::SearchProbe(search_probe())), want);
    assert_eq!(decode_all::<BoardMsg>(&want), vec![Ok(Frame { seq: 12, msg: BoardMsg::SearchProbe(search_probe()) })]);
}

#[test]
fn golden_final() {
    let want = [
        0x02, 0x0d, 0x02, 0x04, 0x04, 0x0a, 0x0a, 0x08, 0x08, 0x01, 0xe8, 0x6d, 0x07, 0xc8, 0xb8, 0x0f, 0x01, 0x14,
        0x40, 0x3f, 0xc0, 0xf0, 0xf5, 0x0b, 0xc0, 0xb8, 0x02, 0xc0, 0xa8, 0xa5, 0x04, 0x94, 0x23, 0x18, 0x5b, 0x1f,
        0xd7, 0x00,
    ];
    assert_eq!(encode(13, &BoardMsg::Final(final_record())), want);
    assert_eq!(decode_all::<BoardMsg>(&want), vec![Ok(Frame { seq: 13, msg: BoardMsg::Final(final_record()) })]);
}

#[test]
fn golden_search_command() {
    let want = [0x02, 0x02, 0x08, 0x04, 0x09, 0x0a, 0xf6, 0x5e, 0xfc, 0x8a, 0x00];
    assert_eq!(encode(2, &HostMsg::Search { id: 9, budget: 10 }), want);
}

#[test]
fn the_largest_search_records_fit() {
    let t = Timing {
        median_ticks: u64::MAX,
        min_ticks: u64::MAX,
        max_ticks: u64::MAX,
        q1_ticks: u64::MAX,
        q3_ticks: u64::MAX,
        ticks_per_second: u64::MAX,
        repeats: u32::MAX,
    };
    let p = SearchProbe {
        id: u32::MAX,
        index: u16::MAX,
        step: u16::MAX,
        arch: code(15_624),
        timing: t,
        probe_ticks: u64::MAX,
        controller_ticks: u64::MAX,
    };
    let f = Final {
        id: u32::MAX,
        budget: u16::MAX,
        probes: u16::MAX,
        steps: u16::MAX,
        stop: SearchStop::Failed,
        arch: Some(code(15_624)),
        pick_index: u16::MAX,
        pick_ticks: u64::MAX,
        score: f32::MAX,
        ticks_per_second: u64::MAX,
        controller_ticks: u64::MAX,
        probe_ticks: u64::MAX,
        max_step_ticks: u64::MAX,
    };
    for msg in [BoardMsg::SearchProbe(p), BoardMsg::Final(f)] {
        let bytes = encode(u16::MAX, &msg);
        assert!(bytes.len() <= MAX_FRAME);
        assert_eq!(decode_all::<BoardMsg>(&bytes), vec![Ok(Frame { seq: u16::MAX, msg })]);
    }
}

#[test]
fn the_largest_hello_fits() {
    let mut h = hello();
    h.firmware = heapless::String::try_from("9999.9999.9999-x").unwrap();
    h.board = heapless::String::try_from("a-board-name-of-24-chars").unwrap();
    h.clock_hz = u32::MAX;
    h.ticks_per_second = u64::MAX;
    h.arena_bytes = u32::MAX;
    h.bank_bytes = u32::MAX;
    h.seed = u64::MAX;
    h.net = NetShape { channels: u16::MAX, cells_per_stage: u16::MAX, resolution: u16::MAX, classes: u32::MAX };
    let f = encode(u16::MAX, &BoardMsg::Hello(h.clone()));
    assert!(f.len() <= MAX_FRAME);
    assert_eq!(decode_all::<BoardMsg>(&f), vec![Ok(Frame { seq: u16::MAX, msg: BoardMsg::Hello(h) })]);
}

// ---- the accumulator ----------------------------------------------------------------

#[test]
fn garbage_then_frames_resynchronise() {
    let mut bytes = vec![0x13, 0x37, 0xff, 0x00, 0x42];
    bytes.extend(encode(1, &HostMsg::Identify));
    bytes.extend(encode(2, &HostMsg::Ping { nonce: 9 }));
    let got = decode_all::<HostMsg>(&bytes);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].is_err());
    // "42" joins the next frame's bytes: that frame is lost, the one after survives.
    assert!(got[1].is_err());
    assert_eq!(got[2], Ok(Frame { seq: 2, msg: HostMsg::Ping { nonce: 9 } }));
}

#[test]
fn a_lone_delimiter_flushes_a_partial_frame_silently() {
    let mut bytes = vec![0x00, 0x00];
    bytes.extend(encode(3, &HostMsg::Identify));
    assert_eq!(decode_all::<HostMsg>(&bytes), vec![Ok(Frame { seq: 3, msg: HostMsg::Identify })]);
}

#[test]
fn overfull_is_reported_once_and_dropped_to_the_delimiter() {
    let mut bytes = vec![0x55; 3 * MAX_FRAME];
    bytes.push(0);
    bytes.extend(encode(4, &HostMsg::Identify));
    let got = decode_all::<HostMsg>(&bytes);
    assert_eq!(
        got,
        vec![Err(FrameError::DecodeOverfull { capacity: MAX_FRAME }), Ok(Frame { seq: 4, msg: HostMsg::Identify })]
    );
}

#[test]
fn frames_split_across_reads() {
    let f = encode(6, &BoardMsg::Pong { nonce: 77 });
    let mut acc = FrameAccumulator::<MAX_FRAME>::new();
    for b in &f[..f.len() - 1] {
        assert_eq!(acc.feed::<BoardMsg>(core::slice::from_ref(b)), Feed::Consumed);
    }
    assert_eq!(acc.pending(), f.len() - 1);
    assert_eq!(
        acc.feed::<BoardMsg>(&[0, 0xAA]),
        Feed::Frame { frame: Frame { seq: 6, msg: BoardMsg::Pong { nonce: 77 } }, remaining: &[0xAA][..] }
    );
}

#[test]
fn good_crc_but_wrong_content_is_refused() {
    // A host message read as a board message: variant 4 of BoardMsg is Final, whose body
    // is missing.
    let f = encode(0, &HostMsg::Ping { nonce: 1 });
    let f2 = encode(0, &HostMsg::Bench { id: 1, warmup: 0, repeats: 1 });
    assert_eq!(decode_all::<BoardMsg>(&f2), vec![Err(FrameError::DecodeMessage)]);
    // Ping{1} reads as Pong{1}: same shape, so it decodes; the message type is the contract.
    assert_eq!(decode_all::<BoardMsg>(&f), vec![Ok(Frame { seq: 0, msg: BoardMsg::Pong { nonce: 1 } })]);
    // An arch code beyond the space.
    let bad = encode(0, &(2u8, 7u8, 15_625u16, 1u8, 1u8));
    assert_eq!(decode_all::<HostMsg>(&bad), vec![Err(FrameError::DecodeMessage)]);
    // Bytes left after a complete message.
    let long = encode(0, &(1u8, 5u8, 0u8));
    assert_eq!(decode_all::<HostMsg>(&long), vec![Err(FrameError::DecodeTrailing { extra: 1 })]);
}

#[test]
fn short_and_encoding_errors() {
    assert_eq!(decode_all::<HostMsg>(&[0x03, 0x01, 0x02, 0x00]), vec![Err(FrameError::DecodeTooShort { len: 2 })]);
    // A code byte pointing past the end of the frame.
    assert_eq!(decode_all::<HostMsg>(&[0x09, 0x01, 0x02, 0x00]), vec![Err(FrameError::DecodeCobs)]);
    let mut small = [0u8; 6];
    assert_eq!(encode_frame(0, &HostMsg::Ping { nonce: 1 }, &mut small), Err(FrameError::EncodeBufferFull));
    let huge = [7u8; MAX_MESSAGE + 1];
    assert_eq!(encode_frame(0, &&huge[..], &mut [0u8; 512]), Err(FrameError::EncodeMessageTooLarge));
}

// ---- properties ---------------------------------------------------------------------

fn arb_code() -> impl Strategy<Value = ArchCode> {
    (0u16..15_625).prop_map(code)
}

fn arb_timing() -> impl Strategy<Value = Timing> {
    (any::<[u64; 6]>(), any::<u32>()).prop_map(|(t, repeats)| Timing {
        median_ticks: t[0],
        min_ticks: t[1],
        max_ticks: t[2],
        q1_ticks: t[3],
        q3_ticks: t[4],
        ticks_per_second: t[5],
        repeats,
    })
}

fn arb_host() -> impl Strategy<Value = HostMsg> {
    prop_oneof![
        Just(HostMsg::Identify),
        any::<u32>().prop_map(|nonce| HostMsg::Ping { nonce }),
        (any::<u32>(), arb_code(), any::<u16>(), any::<u16>())
            .prop_map(|(id, arch, warmup, repeats)| HostMsg::Probe(ProbeRequest { id, arch, warmup, repeats })),
        (any::<u32>(), any::<u16>(), any::<u16>()).prop_map(|(id, warmup, repeats)| HostMsg::Bench {
            id,
            warmup,
            repeats
        }),
        (any::<u32>(), any::<u16>()).prop_map(|(id, budget)| HostMsg::Search { id, budget }),
    ]
}

fn arb_board() -> impl Strategy<Value = BoardMsg> {
    let hello = ("[ -~]{0,16}", "[a-z0-9-]{0,24}", any::<(u32, u64, u32, u32, u64)>(), any::<(u16, u16, u16, u32)>())
        .prop_map(|(fw, board, (clock_hz, ticks_per_second, arena_bytes, bank_bytes, seed), (c, n, r, k))| {
            BoardMsg::Hello(Hello {
                protocol: PROTOCOL_VERSION,
                firmware: heapless::String::try_from(fw.as_str()).unwrap(),
                board: heapless::String::try_from(board.as_str()).unwrap(),
                clock_hz,
                ticks_per_second,
                net: NetShape { channels: c, cells_per_stage: n, resolution: r, classes: k },
                arena_bytes,
                bank_bytes,
                seed,
                mode: if seed % 2 == 0 { Mode::Serve } else { Mode::Search },
            })
        });
    let item = prop_oneof![Just(BenchItem::Baseline), (0u8..5).prop_map(BenchItem::SingleEdge), Just(BenchItem::Cell)];
    let code = prop_oneof![
        Just(ErrorCode::FrameOverfull),
        Just(ErrorCode::FrameCobs),
        Just(ErrorCode::FrameTooShort),
        Just(ErrorCode::FrameCrc),
        Just(ErrorCode::Decode),
        Just(ErrorCode::Repeats),
        Just(ErrorCode::Runtime),
        Just(ErrorCode::Unsupported),
        Just(ErrorCode::Policy),
        Just(ErrorCode::Scores),
        Just(ErrorCode::Budget),
    ];
    let stop = prop_oneof![
        Just(SearchStop::Budget),
        Just(SearchStop::NoStart),
        Just(SearchStop::NoAction),
        Just(SearchStop::EpisodeEnd),
        Just(SearchStop::Failed),
    ];
    prop_oneof![
        hello,
        any::<u32>().prop_map(|nonce| BoardMsg::Pong { nonce }),
        (any::<u32>(), arb_code(), arb_timing()).prop_map(|(id, arch, timing)| BoardMsg::ProbeResult(ProbeResult {
            id,
            arch,
            timing
        })),
        (any::<(u32, u16, u16)>(), item, arb_code(), arb_timing()).prop_map(
            |((id, index, total), item, arch, timing)| {
                BoardMsg::BenchRecord(BenchRecord { id, index, total, item, arch, timing })
            }
        ),
        (any::<(u32, u16, u16, u16, u16)>(), stop, proptest::option::of(arb_code()), any::<[u64; 5]>(), any::<f32>())
            .prop_filter("a score that compares equal to itself", |t| !t.4.is_nan())
            .prop_map(|((id, budget, probes, steps, pick_index), stop, arch, t, score)| {
                BoardMsg::Final(Final {
                    id,
                    budget,
                    probes,
                    steps,
                    stop,
                    arch,
                    pick_index,
                    pick_ticks: t[0],
                    score,
                    ticks_per_second: t[1],
                    controller_ticks: t[2],
                    probe_ticks: t[3],
                    max_step_ticks: t[4],
                })
            }),
        (any::<(u32, u16, u16, u64, u64)>(), arb_code(), arb_timing()).prop_map(
            |((id, index, step, probe_ticks, controller_ticks), arch, timing)| {
                BoardMsg::SearchProbe(SearchProbe { id, index, step, arch, timing, probe_ticks, controller_ticks })
            }
        ),
        (code, any::<Option<u32>>(), any::<u32>()).prop_map(|(code, request, detail)| BoardMsg::Error(ErrorReport {
            code,
            request,
            detail
        })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_and_never_decode_as_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        // Anything may come back, but as values; a frame that decodes must re-encode to
        // exactly the bytes it came from (no "almost valid" frame is accepted).
        let mut acc = FrameAccumulator::<64>::new();
        let mut rest = &bytes[..];
        loop {
            match acc.feed::<BoardMsg>(rest) {
                Feed::Consumed => break,
                Feed::Frame { frame, remaining } => {
                    let again = encode(frame.seq, &frame.msg);
                    let consumed = bytes.len() - remaining.len();
                    prop_assert!(bytes[..consumed].ends_with(&again));
                    rest = remaining;
                }
                Feed::Error { remaining, .. } => rest = remaining,
            }
        }
        for _ in decode_all::<HostMsg>(&bytes) {}
    }

    #[test]
    fn board_messages_round_trip(seq in any::<u16>(), msg in arb_board()) {
        let f = encode(seq, &msg);
        prop_assert!(f.len() <= MAX_FRAME);
        prop_assert_eq!(f.iter().filter(|&&b| b == 0).count(), 1);
        prop_assert_eq!(decode_all::<BoardMsg>(&f), vec![Ok(Frame { seq, msg })]);
    }

    #[test]
    fn host_messages_round_trip(seq in any::<u16>(), msg in arb_host()) {
        let f = encode(seq, &msg);
        prop_assert_eq!(decode_all::<HostMsg>(&f), vec![Ok(Frame { seq, msg })]);
    }

    #[test]
    fn any_single_bit_flip_is_detected(seq in any::<u16>(), msg in arb_board(), bit in any::<prop::sample::Index>()) {
        let mut f = encode(seq, &msg);
        let at = bit.index(f.len() * 8);
        f[at / 8] ^= 1 << (at % 8);
        // Whatever the flip did (changed a byte, ended the frame early, merged it with
        // the next one), no frame is accepted; and the frame after it still is.
        let mut stream = f.clone();
        stream.extend(encode(seq.wrapping_add(1), &BoardMsg::Pong { nonce: 5 }));
        let got = decode_all::<BoardMsg>(&stream);
        let ok: Vec<_> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
        if f.last() == Some(&0) {
            let next = Frame { seq: seq.wrapping_add(1), msg: BoardMsg::Pong { nonce: 5 } };
            prop_assert_eq!(ok, vec![&next]);
        } else {
            // The delimiter itself was flipped: this frame and the next merge and both are lost.
            prop_assert!(ok.is_empty(), "{:?}", ok);
        }
    }
}

/// A fault on a serial line, at a byte position of the stream.
#[derive(Clone, Debug)]
enum Fault {
    Flip(prop::sample::Index, u8),
    Drop(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
    /// Lose everything from here to the end of the frame (its delimiter included).
    Cut(prop::sample::Index),
}

fn arb_fault() -> impl Strategy<Value = Fault> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        (at.clone(), 0u8..8).prop_map(|(i, b)| Fault::Flip(i, b)),
        at.clone().prop_map(Fault::Drop),
        at.clone().prop_map(Fault::Duplicate),
        (at.clone(), proptest::collection::vec(any::<u8>(), 1..12)).prop_map(|(i, g)| Fault::Insert(i, g)),
        at.prop_map(Fault::Cut),
    ]
}

fn apply(stream: &mut Vec<u8>, fault: &Fault) {
    if stream.is_empty() {
        return;
    }
    match fault {
        Fault::Flip(i, b) => {
            let at = i.index(stream.len());
            stream[at] ^= 1 << b;
        }
        Fault::Drop(i) => {
            stream.remove(i.index(stream.len()));
        }
        Fault::Duplicate(i) => {
            let at = i.index(stream.len());
            stream.insert(at, stream[at]);
        }
        Fault::Insert(i, g) => {
            let at = i.index(stream.len());
            stream.splice(at..at, g.iter().copied());
        }
        Fault::Cut(i) => {
            let at = i.index(stream.len());
            let end = stream[at..].iter().position(|&b| b == 0).map_or(stream.len(), |k| at + k + 1);
            stream.drain(at..end);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// A stream of frames hit by random faults: the decoder returns exactly the frames whose
    /// bytes arrived intact between two delimiters (an independent account of the stream),
    /// in order, and refuses every other non-empty stretch with an error.
    #[test]
    fn a_corrupted_stream_yields_exactly_the_intact_frames(
        msgs in proptest::collection::vec(arb_board(), 1..12),
        faults in proptest::collection::vec(arb_fault(), 0..6),
    ) {
        let frames: Vec<Vec<u8>> = msgs.iter().enumerate().map(|(i, m)| encode(i as u16, m)).collect();
        let mut stream: Vec<u8> = frames.concat();
        for f in &faults {
            apply(&mut stream, f);
        }
        let mut want = Vec::new();
        let mut damaged = 0;
        // Stretches closed by a delimiter; what follows the last one is still pending.
        let mut stretches: Vec<&[u8]> = stream.split(|&b| b == 0).collect();
        let open = usize::from(stretches.pop().is_some_and(|s| !s.is_empty()));
        for segment in stretches.into_iter().filter(|s| !s.is_empty()) {
            match frames.iter().position(|f| &f[..f.len() - 1] == segment) {
                Some(i) => want.push(Frame { seq: i as u16, msg: msgs[i].clone() }),
                None => damaged += 1,
            }
        }
        let got = decode_all::<BoardMsg>(&stream);
        let ok: Vec<Frame<BoardMsg>> = got.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        let errors = got.iter().filter(|r| r.is_err()).count();
        prop_assert_eq!(ok, want);
        // Every damaged stretch is refused once; the pending one only if it overflowed.
        prop_assert!(errors >= damaged && errors <= damaged + open, "{} errors, {} damaged", errors, damaged);
        if faults.is_empty() {
            prop_assert_eq!(got.len(), msgs.len());
        }
    }
}

#[test]
fn every_single_bit_flip_of_a_probe_result_is_detected() {
    let msg = BoardMsg::ProbeResult(ProbeResult { id: 7, arch: code(11718), timing: timing() });
    let f = encode(300, &msg);
    for at in 0..f.len() * 8 - 8 {
        let mut g = f.clone();
        g[at / 8] ^= 1 << (at % 8);
        assert!(decode_all::<BoardMsg>(&g).iter().all(|r| r.is_err()), "bit {at}");
    }
}

#[test]
fn a_timing_is_checked_field_by_field() {
    assert_eq!(timing().check(), Ok(()));
    assert_eq!(timing().check_answer(3), Ok(()));
    // One run: every statistic is the same tick count.
    let one = Timing { median_ticks: 7, min_ticks: 7, max_ticks: 7, q1_ticks: 7, q3_ticks: 7, ..timing() };
    assert_eq!(one.check(), Ok(()));
    let zero = |field| Err(TimingFault::Zero { field });
    assert_eq!(Timing { median_ticks: 0, min_ticks: 0, q1_ticks: 0, ..timing() }.check(), zero("median_ticks"));
    assert_eq!(Timing { ticks_per_second: 0, ..timing() }.check(), zero("ticks_per_second"));
    assert_eq!(Timing { repeats: 0, ..timing() }.check(), zero("repeats"));
    let order = |low, low_ticks, high, high_ticks| Err(TimingFault::Order { low, low_ticks, high, high_ticks });
    assert_eq!(Timing { min_ticks: 996, ..timing() }.check(), order("min_ticks", 996, "q1_ticks", 995));
    assert_eq!(Timing { q1_ticks: 1001, ..timing() }.check(), order("q1_ticks", 1001, "median_ticks", 1000));
    assert_eq!(Timing { median_ticks: 1006, ..timing() }.check(), order("median_ticks", 1006, "q3_ticks", 1005));
    assert_eq!(Timing { max_ticks: 1004, ..timing() }.check(), order("q3_ticks", 1005, "max_ticks", 1004));
    assert_eq!(timing().check_answer(5), Err(TimingFault::Repeats { asked: 5, got: 3 }));
    let text = TimingFault::Order { low: "median_ticks", low_ticks: 9, high: "max_ticks", high_ticks: 8 };
    assert_eq!(format!("{text}"), "median_ticks (9) is larger than max_ticks (8)");
}
