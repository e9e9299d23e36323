//! A scripted board on a real pty: it speaks the protocol (the shared frame encoder and
//! accumulator) and answers each probe request with whatever its script says, good
//! answers, damaged frames, nonsense timings or a hang-up. The host end is read through
//! the serialport crate as any board is, in this process ([`super::BoardLink`]) or by a
//! `simnas ... --device serial:PTY` process, so a fault a real board or cable could
//! produce can be put on the line on purpose.
//!
//! The board greets an `Identify` with its `Hello` and a `Ping` with a `Pong`, like the
//! firmware; it sends nothing unasked.

use serialport::{SerialPort, TTYPort};
use simnas_shared::protocol::{
    encode_frame_vec, BoardMsg, Frame, FrameAccumulator, Hello, HostMsg, Mode, NetShape, ProbeRequest, ProbeResult,
    Timing, MAX_FRAME, PROTOCOL_VERSION,
};
use std::io::{Read, Write};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What the board does about one probe request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// Send these messages, framed with the board's running sequence numbers.
    Msgs(Vec<BoardMsg>),
    /// Send these bytes as they are (garbage, damaged frames, chosen sequence numbers);
    /// none at all is a lost reply.
    Raw(Vec<u8>),
    /// Send these bytes (e.g. the first half of a frame), then close the board's end of
    /// the line.
    HangUp(Vec<u8>),
}

/// The scripted board's `Hello`: 1,000 timer ticks per second.
pub fn hello() -> BoardMsg {
    BoardMsg::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        firmware: "0.1.0".try_into().expect("fits"),
        board: "scripted".try_into().expect("fits"),
        clock_hz: 1_000,
        ticks_per_second: 1_000,
        net: NetShape { channels: 16, cells_per_stage: 5, resolution: 16, classes: 120 },
        arena_bytes: 0,
        bank_bytes: 0,
        seed: 0,
        mode: Mode::Serve,
    })
}

/// A consistent timing of request `req`, a function of its cell: the median is 100 to 999
/// ticks (ms), the quartiles 5 ticks either side, min and max 10; `repeats` as asked.
pub fn timing(req: &ProbeRequest) -> Timing {
    let median = 100 + u64::from(req.arch.get()) % 900;
    Timing {
        median_ticks: median,
        min_ticks: median - 10,
        max_ticks: median + 10,
        q1_ticks: median - 5,
        q3_ticks: median + 5,
        ticks_per_second: 1_000,
        repeats: req.repeats.into(),
    }
}

/// The answer to `req` with `timing`.
pub fn answer(req: &ProbeRequest, timing: Timing) -> BoardMsg {
    BoardMsg::ProbeResult(ProbeResult { id: req.id, arch: req.arch, timing })
}

/// The good answer to `req` (its [`timing`]).
pub fn good_answer(req: &ProbeRequest) -> BoardMsg {
    answer(req, timing(req))
}

/// A pty for a scripted board: `(board end, host end)`. Neither is inherited by child
/// processes, so a `simnas` started on the host end's path sees the line close when the
/// board's end does.
pub fn pty() -> std::io::Result<(TTYPort, TTYPort)> {
    let (board, host) = TTYPort::pair()?;
    crate::child::keep_from_children(&board)?;
    crate::child::keep_from_children(&host)?;
    Ok((board, host))
}

/// Serve on `port` (one end of a pty) in a thread: every probe request is passed to
/// `script` with its 0-based count. The thread ends when the script hangs up or the other
/// end of the line closes.
pub fn serve(
    mut port: TTYPort,
    mut script: impl FnMut(usize, &ProbeRequest) -> Reply + Send + 'static,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut acc = FrameAccumulator::<MAX_FRAME>::new();
        let mut seq = 0u16;
        let mut n = 0;
        let mut buf = [0u8; 256];
        if port.set_timeout(Duration::from_millis(50)).is_err() {
            return;
        }
        loop {
            let got = match port.read(&mut buf) {
                Ok(k) => k,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(_) => return,
            };
            for &b in &buf[..got] {
                let reply = match acc.push::<HostMsg>(b) {
                    Some(Ok(Frame { msg: HostMsg::Probe(req), .. })) => {
                        n += 1;
                        script(n - 1, &req)
                    }
                    Some(Ok(Frame { msg: HostMsg::Identify, .. })) => Reply::Msgs(vec![hello()]),
                    Some(Ok(Frame { msg: HostMsg::Ping { nonce }, .. })) => Reply::Msgs(vec![BoardMsg::Pong { nonce }]),
                    _ => continue,
                };
                let (bytes, hang_up) = match reply {
                    Reply::Msgs(msgs) => {
                        let mut out = Vec::new();
                        for m in &msgs {
                            out.extend(encode_frame_vec(seq, m).expect("every message fits a frame"));
                            seq = seq.wrapping_add(1);
                        }
                        (out, false)
                    }
                    Reply::Raw(bytes) => (bytes, false),
                    Reply::HangUp(bytes) => (bytes, true),
                };
                if port.write_all(&bytes).is_err() {
                    return;
                }
                if hang_up {
                    // Let the host read what was sent before the line goes.
                    thread::sleep(Duration::from_millis(300));
                    return;
                }
            }
        }
    })
}
