//! The server against a scripted board on the host: every frame gets an answer, bad
//! frames get `Error`s and the server keeps serving.

use super::*;
use simnas_shared::protocol::{Feed, Frame, SearchProbe, SearchStop};
use simnas_shared::Op;
use std::collections::VecDeque;
use std::vec::Vec;

struct Fake {
    rx: VecDeque<u8>,
    tx: Vec<u8>,
    now: u64,
}

impl Board for Fake {
    fn name(&self) -> &'static str {
        "fake"
    }
    fn clock_hz(&self) -> u32 {
        1_000_000
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000
    }
    fn ticks(&mut self) -> u64 {
        self.now += 3;
        self.now
    }
    fn write(&mut self, bytes: &[u8]) {
        self.tx.extend_from_slice(bytes);
    }
    fn read_byte(&mut self) -> Option<u8> {
        self.rx.pop_front()
    }
}

const SMALL: NetConfig = NetConfig { channels: 4, cells_per_stage: 1, resolution: 8, classes: 3 };

fn frame(seq: u16, msg: &HostMsg) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(seq, msg, &mut buf).unwrap();
    buf[..n].to_vec()
}

/// Feed `input`, poll, decode everything the board sent.
fn exchange(server: &mut Server<'_, Fake>, input: &[u8]) -> Vec<Frame<BoardMsg>> {
    server.board_mut().rx.extend(input.iter().copied());
    server.poll();
    let tx = core::mem::take(&mut server.board_mut().tx);
    let mut acc = FrameAccumulator::<MAX_FRAME>::new();
    let mut out = Vec::new();
    let mut rest = &tx[..];
    loop {
        match acc.feed::<BoardMsg>(rest) {
            Feed::Consumed => return out,
            Feed::Frame { frame, remaining } => {
                out.push(frame);
                rest = remaining;
            }
            Feed::Error { error, .. } => panic!("board sent a bad frame: {error}"),
        }
    }
}

fn with_server(arena_len: usize, f: impl FnOnce(&mut Server<'_, Fake>)) {
    let layout = ParamLayout::new(SMALL).unwrap();
    let bank = vec![0.01f32; layout.max_slot_len()];
    let input = vec![0.5f32; SMALL.input_len()];
    let mut arena = vec![0f32; arena_len];
    let board = Fake { rx: VecDeque::new(), tx: Vec::new(), now: 0 };
    let work = Workload {
        net: SMALL,
        arena: &mut arena,
        bank: &bank,
        input: &input,
        seed: 1,
        search: crate::embedded::inputs(),
        search_at_boot: None,
    };
    f(&mut Server::new(board, work));
}

fn with_search_inputs(search: SearchInputs<'_>, f: impl FnOnce(&mut Server<'_, Fake>)) {
    let layout = ParamLayout::new(SMALL).unwrap();
    let bank = vec![0.01f32; layout.max_slot_len()];
    let input = vec![0.5f32; SMALL.input_len()];
    let mut arena = vec![0f32; arena_len()];
    let board = Fake { rx: VecDeque::new(), tx: Vec::new(), now: 0 };
    let work =
        Workload { net: SMALL, arena: &mut arena, bank: &bank, input: &input, seed: 1, search, search_at_boot: None };
    f(&mut Server::new(board, work));
}

fn arena_len() -> usize {
    Plan::new(SMALL, Arch::uniform(Op::NorConv3x3)).unwrap().arena_len()
}

#[test]
fn hello_ping_probe() {
    with_server(arena_len(), |s| {
        s.send_hello();
        let got = exchange(s, &frame(0, &HostMsg::Ping { nonce: 42 }));
        assert_eq!(got.len(), 2);
        let BoardMsg::Hello(h) = &got[0].msg else { panic!("{got:?}") };
        assert_eq!((h.protocol, h.board.as_str(), h.net.classes, h.seed), (PROTOCOL_VERSION, "fake", 3, 1));
        assert_eq!(h.arena_bytes as usize, arena_len() * 4);
        assert_eq!(got[1], Frame { seq: 1, msg: BoardMsg::Pong { nonce: 42 } });

        let arch = Arch::uniform(Op::NorConv3x3).code();
        let req = ProbeRequest { id: 9, arch, warmup: 1, repeats: 3 };
        let got = exchange(s, &frame(1, &HostMsg::Probe(req)));
        let [Frame { seq: 2, msg: BoardMsg::ProbeResult(r) }] = &got[..] else { panic!("{got:?}") };
        assert_eq!((r.id, r.arch, r.timing.repeats, r.timing.ticks_per_second), (9, arch, 3, 1_000_000));
        assert!(r.timing.median_ticks > 0);
    });
}

#[test]
fn malformed_frames_get_errors_and_serving_goes_on() {
    with_server(arena_len(), |s| {
        let mut bad_crc = frame(0, &HostMsg::Ping { nonce: 1 });
        bad_crc[3] ^= 0x10;
        let mut input = vec![0x17, 0x42, 0x00];
        input.extend(bad_crc);
        input.extend(vec![0x33; 3 * MAX_FRAME]);
        input.push(0);
        input.extend(frame(1, &HostMsg::Ping { nonce: 2 }));
        let got: Vec<_> = exchange(s, &input).into_iter().map(|f| f.msg).collect();
        let codes: Vec<_> = got
            .iter()
            .filter_map(|m| match m {
                BoardMsg::Error(e) => Some((e.code, e.request)),
                _ => None,
            })
            .collect();
        assert_eq!(
            codes,
            [(ErrorCode::FrameCobs, None), (ErrorCode::FrameCrc, None), (ErrorCode::FrameOverfull, None)]
        );
        assert_eq!(got.last(), Some(&BoardMsg::Pong { nonce: 2 }));
    });
}

#[test]
fn bad_arguments_and_runtime_errors_name_the_request() {
    // An arena one float short: the executor refuses, the board says so and carries on.
    with_server(arena_len() - 1, |s| {
        let arch = Arch::uniform(Op::SkipConnect).code();
        let mut input = frame(0, &HostMsg::Probe(ProbeRequest { id: 5, arch, warmup: 0, repeats: 0 }));
        input.extend(frame(1, &HostMsg::Probe(ProbeRequest { id: 6, arch, warmup: 0, repeats: 1000 })));
        input.extend(frame(2, &HostMsg::Probe(ProbeRequest { id: 7, arch, warmup: 0, repeats: 1 })));
        input.extend(frame(3, &HostMsg::Ping { nonce: 3 }));
        let got: Vec<_> = exchange(s, &input).into_iter().map(|f| f.msg).collect();
        let e = |code, request, detail| BoardMsg::Error(ErrorReport { code, request: Some(request), detail });
        assert_eq!(
            got,
            [
                e(ErrorCode::Repeats, 5, MAX_REPEATS as u32),
                e(ErrorCode::Repeats, 6, MAX_REPEATS as u32),
                e(ErrorCode::Runtime, 7, 3),
                BoardMsg::Pong { nonce: 3 },
            ]
        );
    });
}

#[test]
fn bench_sends_every_item() {
    with_server(arena_len(), |s| {
        let got = exchange(s, &frame(0, &HostMsg::Bench { id: 11, warmup: 0, repeats: 1 }));
        assert_eq!(got.len(), bench::ITEMS.len());
        for (i, f) in got.iter().enumerate() {
            let BoardMsg::BenchRecord(r) = &f.msg else { panic!("{f:?}") };
            assert_eq!((r.id, r.index as usize, r.total as usize), (11, i, bench::ITEMS.len()));
            assert_eq!(r.item, bench::ITEMS[i].0);
        }
    });
}

/// The search's records: one `SearchProbe` per probe, numbered, then a `Final` whose pick
/// is one of them; the embedded calibrated controller: the reference cells first, then the
/// dead-edge cell.
#[test]
fn search_streams_one_record_per_probe_and_a_final() {
    use edge_runtime::search::{HI, LO};
    let run = || {
        let mut msgs = Vec::new();
        with_server(arena_len(), |s| {
            msgs = exchange(s, &frame(0, &HostMsg::Search { id: 4, budget: 6 })).into_iter().map(|f| f.msg).collect();
        });
        msgs
    };
    let got = run();
    assert_eq!(got.len(), 7, "{got:?}");
    let probes: Vec<SearchProbe> = got[..6]
        .iter()
        .map(|m| match m {
            BoardMsg::SearchProbe(p) => *p,
            other => panic!("{other:?}"),
        })
        .collect();
    let BoardMsg::Final(f) = got[6] else { panic!("{:?}", got[6]) };
    for (i, p) in probes.iter().enumerate() {
        assert_eq!((p.id, usize::from(p.index)), (4, i + 1));
        assert_eq!(p.timing.repeats, u32::from(crate::embedded::REPEATS));
        assert!(p.probe_ticks >= p.timing.median_ticks && p.controller_ticks > 0);
        assert!(probes[..i].iter().all(|q| q.arch != p.arch));
    }
    assert_eq!((probes[0].arch, probes[1].arch), (LO.code(), HI.code()));
    // The dead-edge cell is measured as the network it runs (a skip, input to output).
    assert_eq!(probes[2].arch, edge_runtime::calib::DEAD_EDGE_CELL.executed().code());
    for p in &probes {
        let a = simnas_shared::Arch::from_code(p.arch);
        assert!(a.is_connected() && a.is_executed(), "{a}");
    }
    assert_eq!(probes.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
    assert_eq!((f.id, f.budget, f.probes, f.steps, f.stop), (4, 6, 6, 6, SearchStop::Budget));
    let chosen = probes.iter().find(|p| Some(p.arch) == f.arch).expect("the pick was measured");
    assert_eq!((f.pick_index, f.pick_ticks), (chosen.index, chosen.timing.median_ticks));
    assert_eq!(f.probe_ticks, probes.iter().map(|p| p.probe_ticks).sum::<u64>());
    assert!(f.controller_ticks > probes.iter().map(|p| p.controller_ticks).sum::<u64>());
    assert_eq!(f.max_step_ticks, probes[1..].iter().map(|p| p.controller_ticks).max().unwrap());
    // The same search again: the same records.
    assert_eq!(run(), got);
}

/// The paper's walk (no calibrated prior embedded) through the same search function: the
/// references, then the prior's best cell, one record per probe with the walk's step, a
/// `Final` counting its policy decisions; a budget above the walk's 53 probes is refused
/// with 53 as the detail.
#[test]
fn the_paper_walk_streams_its_records_and_refuses_budgets_above_its_cap() {
    use edge_runtime::search::{HI, LO};
    let good = crate::embedded::inputs();
    with_search_inputs(SearchInputs { calib: None, ..good }, |s| {
        let mut input = frame(0, &HostMsg::Search { id: 9, budget: 6 });
        input.extend(frame(1, &HostMsg::Search { id: 10, budget: 54 }));
        let got: Vec<_> = exchange(s, &input).into_iter().map(|f| f.msg).collect();
        assert_eq!(got.len(), 8, "{got:?}");
        let probes: Vec<SearchProbe> = got[..6]
            .iter()
            .map(|m| match m {
                BoardMsg::SearchProbe(p) => *p,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!((probes[0].arch, probes[1].arch), (LO.code(), HI.code()));
        assert!(good.start.contains(&probes[2].arch.get()), "the walk starts at the prior's ranking");
        assert_eq!(probes.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 0, 0, 1, 2, 3]);
        let BoardMsg::Final(f) = got[6] else { panic!("{:?}", got[6]) };
        assert_eq!((f.id, f.budget, f.probes, f.steps, f.stop), (9, 6, 6, 3, SearchStop::Budget));
        assert!(probes.iter().any(|p| Some(p.arch) == f.arch), "the pick was measured");
        assert_eq!(got[7], BoardMsg::Error(ErrorReport { code: ErrorCode::Budget, request: Some(10), detail: 53 }));
    });
}

#[test]
fn unusable_search_inputs_and_budgets_are_errors() {
    let good = crate::embedded::inputs();
    let mut policy = good.policy.to_vec();
    policy[9] = b'['; // the header's JSON no longer opens with an object
    let mut scores = good.scores.to_vec();
    scores[200] ^= 1;
    with_search_inputs(SearchInputs { policy: &policy, scores: &scores, calib: None, ..good }, |s| {
        s.check_search_inputs();
        let mut input = frame(0, &HostMsg::Search { id: 8, budget: 10 });
        input.extend(frame(1, &HostMsg::Ping { nonce: 5 }));
        let got: Vec<_> = exchange(s, &input).into_iter().map(|f| f.msg).collect();
        let codes: Vec<_> = got
            .iter()
            .filter_map(|m| match m {
                BoardMsg::Error(e) => Some((e.code, e.request, e.detail)),
                _ => None,
            })
            .collect();
        assert_eq!(
            codes,
            [(ErrorCode::Policy, None, 3), (ErrorCode::Scores, None, 5), (ErrorCode::Policy, Some(8), 3),]
        );
        assert_eq!(got.last(), Some(&BoardMsg::Pong { nonce: 5 }));
    });
    with_search_inputs(SearchInputs { scores: &scores, ..good }, |s| {
        let got: Vec<_> =
            exchange(s, &frame(0, &HostMsg::Search { id: 3, budget: 10 })).into_iter().map(|f| f.msg).collect();
        assert_eq!(got, [BoardMsg::Error(ErrorReport { code: ErrorCode::Scores, request: Some(3), detail: 5 })]);
    });
    with_server(arena_len(), |s| {
        // The calibrated controller (embedded by default) records at most 64 probes, and
        // says so in the error's detail.
        let mut input = frame(0, &HostMsg::Search { id: 1, budget: 0 });
        input.extend(frame(1, &HostMsg::Search { id: 2, budget: 65 }));
        let got: Vec<_> = exchange(s, &input).into_iter().map(|f| f.msg).collect();
        let e = |request| BoardMsg::Error(ErrorReport { code: ErrorCode::Budget, request: Some(request), detail: 64 });
        assert_eq!(got, [e(1), e(2)]);
    });
}

/// A probe the executor refuses ends the search with its error and a `Final` marked failed.
#[test]
fn a_failing_probe_ends_the_search_with_an_error_and_a_final() {
    with_server(arena_len() - 1, |s| {
        let got: Vec<_> =
            exchange(s, &frame(0, &HostMsg::Search { id: 6, budget: 10 })).into_iter().map(|f| f.msg).collect();
        let [BoardMsg::Error(e), BoardMsg::Final(f)] = &got[..] else { panic!("{got:?}") };
        assert_eq!((e.code, e.request), (ErrorCode::Runtime, Some(6)));
        assert_eq!((f.probes, f.stop, f.arch), (0, SearchStop::Failed, None));
    });
}
