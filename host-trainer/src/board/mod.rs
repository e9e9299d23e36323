//! Boards over a serial line: the host end of `simnas_shared::protocol`.
//!
//! * [`BoardLink`]: frames in and out of any [`serialport::SerialPort`] (a USB-serial
//!   adapter, or the pty of a QEMU board). Every frame is CRC-checked by the shared
//!   accumulator; corrupted frames are counted and reported, never decoded; sequence
//!   numbers reveal lost frames and board resets. A probe whose reply is lost is asked
//!   again a bounded number of times, with the same id, so a late reply still matches.
//!   A line that closes (`POLLHUP`: the board unplugged, QEMU or a relay gone) is a
//!   [`BoardError::HungUp`] at once, never mistaken for a closed stdout or waited out.
//! * [`qemu`]: boots the firmware in `qemu-system-arm` (mps2-an386) on a pty.
//! * [`scripted`]: a board that answers from a script, on a real pty (faults on purpose).
//! * [`BoardDevice`]: a board as a [`crate::device::Device`].

pub mod qemu;
pub mod scripted;

use crate::device::{Device, DeviceError, Probe};
use serialport::SerialPort;
use simnas_shared::protocol::{
    encode_frame, BoardMsg, ErrorCode, FrameAccumulator, FrameError, Hello, HostMsg, ProbeRequest, ProbeResult,
    TimingFault, MAX_FRAME, PROTOCOL_VERSION,
};
use simnas_shared::Arch;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Serial speed of the firmware's UART (QEMU ignores it).
pub const DEFAULT_BAUD: u32 = 115_200;

/// Errors talking to a board.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    /// The serial port could not be opened.
    #[error("cannot open serial port {port}")]
    Open {
        /// The port.
        port: String,
        /// Why.
        source: serialport::Error,
    },
    /// Reading or writing the port failed.
    #[error("serial I/O")]
    Io(#[from] std::io::Error),
    /// The serial line closed: the board was unplugged or reset its USB port, or the
    /// program on the other end of a pty (QEMU, a relay) ended.
    #[error(
        "the board hung up: the serial line closed {during}{} (unplugged, reset, or the program on the other end of the port ended?)",
        cut_frame(*pending)
    )]
    HungUp {
        /// What the link was doing.
        during: Phase,
        /// Bytes of an unfinished frame received before the line closed.
        pending: usize,
    },
    /// Configuring the port failed.
    #[error("serial port")]
    Port(#[from] serialport::Error),
    /// No `Hello` came, even after asking.
    #[error("no Hello from the board within {waited:?} (is the firmware running, and is this its port?)")]
    NoHello {
        /// How long we waited.
        waited: Duration,
    },
    /// The firmware speaks another protocol version.
    #[error("board speaks protocol v{board}, this simnas speaks v{host}: rebuild the firmware (cargo fw-build)")]
    Protocol {
        /// The board's version.
        board: u16,
        /// Ours.
        host: u16,
    },
    /// The board refused a command.
    #[error("board refused request {request}: {}", refusal(*code, *detail))]
    Refused {
        /// The request id.
        request: u32,
        /// Why.
        code: ErrorCode,
        /// Qualifier (e.g. the largest accepted repeat count).
        detail: u32,
    },
    /// The board's answer is no measurement (a latency of 0, no timer rate, quartiles out
    /// of order, other repeats than asked): its timer or firmware is broken.
    #[error(
        "board answered request {request} with an impossible timing: {fault} (a broken timer or firmware: rebuild and flash it, e.g. cargo fw-build)"
    )]
    BadTiming {
        /// The request id.
        request: u32,
        /// What is wrong.
        fault: TimingFault,
    },
    /// No answer after every retry.
    #[error("no answer to request {request} after {attempts} attempts of {timeout:?} each")]
    NoAnswer {
        /// The request id.
        request: u32,
        /// Attempts made.
        attempts: u32,
        /// Wait per attempt.
        timeout: Duration,
    },
    /// A message could not be framed (a bug: every message fits).
    #[error("framing: {0}")]
    Frame(FrameError),
    /// More timed repeats than a board keeps samples for (checked before it is opened).
    #[error("--repeats {asked}: a board times at most {max} repeats per probe")]
    Repeats {
        /// Repeats asked for.
        asked: u32,
        /// The protocol's limit.
        max: usize,
    },
    /// The firmware ELF is not there.
    #[error("firmware not found at {}: build it with `cargo fw-build` (or pass --firmware PATH)", path.display())]
    FirmwareMissing {
        /// Where we looked.
        path: PathBuf,
    },
    /// The file is not firmware for the QEMU board (checked before QEMU starts).
    #[error("{} is not firmware for the QEMU board (mps2-an386): {why}; build it with `cargo fw-build` (or pass --firmware PATH)", path.display())]
    FirmwareInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// `qemu-system-arm` is not installed.
    #[error("cannot run {program} (install QEMU: apt-get install qemu-system-arm, or set SIMNAS_QEMU)")]
    QemuMissing {
        /// The program we tried.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// QEMU ended while we were talking to it.
    #[error("QEMU exited ({status}){stderr}")]
    QemuExited {
        /// Its exit status.
        status: String,
        /// What it printed, if anything.
        stderr: String,
    },
}

/// What a link was doing when its line closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the board's `Hello`.
    Connecting,
    /// Waiting for the answer to the probe with this request id.
    Probe(u32),
    /// Reading whatever the board sends (`simnas monitor`).
    Listening,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Connecting => f.write_str("while waiting for its Hello"),
            Phase::Probe(id) => write!(f, "during probe request {id}"),
            Phase::Listening => f.write_str("while reading its records"),
        }
    }
}

fn cut_frame(pending: usize) -> String {
    if pending == 0 {
        String::new()
    } else {
        format!(", {pending} bytes into a frame")
    }
}

/// Why a board refused a command, in words.
fn refusal(code: ErrorCode, detail: u32) -> String {
    match code {
        ErrorCode::Repeats => format!("repeats must be 1..={detail} on this board"),
        ErrorCode::Runtime => format!("the executor refused the network (edge-runtime error {detail})"),
        ErrorCode::Unsupported => "this firmware does not implement the command".into(),
        other => format!("it could not read our frame ({other:?}, detail {detail})"),
    }
}

/// Frame-level counts of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    /// Frames decoded.
    pub frames: u64,
    /// Frames refused (bad CRC, bad COBS, overlong, undecodable).
    pub corrupt: u64,
    /// Board frames missing according to sequence numbers.
    pub missing: u64,
    /// Board restarts seen (a `Hello` with sequence 0 after the first).
    pub resets: u64,
}

/// What arrived.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A good frame.
    Msg {
        /// The board's sequence number.
        seq: u16,
        /// The message.
        msg: BoardMsg,
    },
    /// A refused frame.
    Corrupt(FrameError),
}

/// Frames over a serial port.
pub struct BoardLink {
    port: Box<dyn SerialPort>,
    acc: FrameAccumulator<MAX_FRAME>,
    inbox: Vec<u8>,
    pos: usize,
    tx_seq: u16,
    rx_seq: Option<u16>,
    next_id: u32,
    hello: Option<Hello>,
    stats: LinkStats,
    phase: Phase,
}

impl BoardLink {
    /// Open `port` at `baud` (8N1, no flow control).
    pub fn open(port: &str, baud: u32) -> Result<BoardLink, BoardError> {
        let p = serialport::new(port, baud)
            .timeout(Duration::from_millis(100))
            .open()
            .map_err(|source| BoardError::Open { port: port.to_string(), source })?;
        Ok(BoardLink::new(p))
    }

    /// A link over an open port.
    pub fn new(port: Box<dyn SerialPort>) -> BoardLink {
        BoardLink {
            port,
            acc: FrameAccumulator::new(),
            inbox: Vec::new(),
            pos: 0,
            tx_seq: 0,
            rx_seq: None,
            next_id: 1,
            hello: None,
            stats: LinkStats::default(),
            phase: Phase::Listening,
        }
    }

    /// The last `Hello` received.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Frame counts so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Send one message.
    pub fn send(&mut self, msg: &HostMsg) -> Result<(), BoardError> {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode_frame(self.tx_seq, msg, &mut buf).map_err(BoardError::Frame)?;
        self.tx_seq = self.tx_seq.wrapping_add(1);
        self.send_raw(&buf[..n])
    }

    /// Send raw bytes (tests of the board's error handling).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), BoardError> {
        self.port.write_all(bytes).and_then(|()| self.port.flush()).map_err(|e| self.io_error(e))
    }

    /// A port error as a [`BoardError`]: the serialport crate reports a hang-up (`POLLHUP`)
    /// as `BrokenPipe`.
    fn io_error(&self, e: std::io::Error) -> BoardError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            BoardError::HungUp { during: self.phase, pending: self.acc.pending() }
        } else {
            BoardError::Io(e)
        }
    }

    /// The next frame (good or refused), or `None` once `deadline` passes.
    pub fn next_event(&mut self, deadline: Instant) -> Result<Option<Event>, BoardError> {
        loop {
            while let Some(&b) = self.inbox.get(self.pos) {
                self.pos += 1;
                if let Some(result) = self.acc.push::<BoardMsg>(b) {
                    return Ok(Some(self.account(result)));
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.port.set_timeout((deadline - now).min(Duration::from_millis(200)))?;
            let mut chunk = [0u8; 1024];
            match self.port.read(&mut chunk) {
                Ok(n) => {
                    self.inbox.clear();
                    self.inbox.extend_from_slice(&chunk[..n]);
                    self.pos = 0;
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(self.io_error(e)),
            }
        }
    }

    fn account(&mut self, result: Result<simnas_shared::protocol::Frame<BoardMsg>, FrameError>) -> Event {
        let frame = match result {
            Ok(f) => f,
            Err(e) => {
                self.stats.corrupt += 1;
                return Event::Corrupt(e);
            }
        };
        self.stats.frames += 1;
        let is_hello = matches!(frame.msg, BoardMsg::Hello(_));
        if is_hello && frame.seq == 0 {
            if self.rx_seq.is_some() {
                self.stats.resets += 1;
            }
        } else if let Some(prev) = self.rx_seq {
            self.stats.missing += u64::from(frame.seq.wrapping_sub(prev.wrapping_add(1)));
        }
        self.rx_seq = Some(frame.seq);
        if let BoardMsg::Hello(h) = &frame.msg {
            self.hello = Some(h.clone());
        }
        Event::Msg { seq: frame.seq, msg: frame.msg }
    }

    /// Wait for the board's `Hello`: a board that just booted sends one; one that has been
    /// running is asked (`Identify`) every second until `wait` runs out.
    pub fn connect(&mut self, wait: Duration) -> Result<Hello, BoardError> {
        self.phase = Phase::Connecting;
        let hello = self.await_hello(wait);
        self.phase = Phase::Listening;
        hello
    }

    fn await_hello(&mut self, wait: Duration) -> Result<Hello, BoardError> {
        let start = Instant::now();
        let deadline = start + wait;
        let mut ask_at = start + Duration::from_millis(300);
        loop {
            match self.next_event(deadline.min(ask_at))? {
                Some(Event::Msg { msg: BoardMsg::Hello(h), .. }) => {
                    if h.protocol != PROTOCOL_VERSION {
                        return Err(BoardError::Protocol { board: h.protocol, host: PROTOCOL_VERSION });
                    }
                    return Ok(h);
                }
                Some(_) => {}
                None if Instant::now() >= deadline => return Err(BoardError::NoHello { waited: wait }),
                None => {
                    self.send(&HostMsg::Identify)?;
                    ask_at = Instant::now() + Duration::from_secs(1);
                }
            }
        }
    }

    /// Measure `arch` on the board. Each attempt waits `timeout`; a lost command or reply
    /// (timeout, a corrupted-frame error from the board, a board reset) is retried up to
    /// `retries` times with the same request id. The answer's timing is checked
    /// ([`simnas_shared::protocol::Timing::check_answer`]): one that cannot be a
    /// measurement of the runs asked for is refused.
    pub fn probe(
        &mut self,
        arch: Arch,
        warmup: u16,
        repeats: u16,
        timeout: Duration,
        retries: u32,
    ) -> Result<ProbeResult, BoardError> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let req = ProbeRequest { id, arch: arch.code(), warmup, repeats };
        self.phase = Phase::Probe(id);
        let answer = self.await_answer(req, timeout, retries);
        self.phase = Phase::Listening;
        answer
    }

    fn await_answer(&mut self, req: ProbeRequest, timeout: Duration, retries: u32) -> Result<ProbeResult, BoardError> {
        let id = req.id;
        for _ in 0..=retries {
            self.send(&HostMsg::Probe(req))?;
            let deadline = Instant::now() + timeout;
            while let Some(event) = self.next_event(deadline)? {
                match event {
                    Event::Msg { msg: BoardMsg::ProbeResult(r), .. } if r.id == id && r.arch == req.arch => {
                        return match r.timing.check_answer(req.repeats.into()) {
                            Ok(()) => Ok(r),
                            Err(fault) => Err(BoardError::BadTiming { request: id, fault }),
                        };
                    }
                    Event::Msg { msg: BoardMsg::Error(e), .. } if e.request == Some(id) => {
                        return Err(BoardError::Refused { request: id, code: e.code, detail: e.detail })
                    }
                    // The board could not read a frame (ours, corrupted) or restarted:
                    // ask again now rather than wait out the timeout.
                    Event::Msg { msg: BoardMsg::Error(e), .. } if e.request.is_none() => break,
                    Event::Msg { seq: 0, msg: BoardMsg::Hello(_) } => break,
                    _ => {}
                }
            }
        }
        Err(BoardError::NoAnswer { request: id, attempts: retries + 1, timeout })
    }
}

/// How long one probe may take before it is asked again.
#[derive(Clone, Copy, Debug)]
pub struct ProbePolicy {
    /// Untimed runs.
    pub warmup: u16,
    /// Timed runs.
    pub repeats: u16,
    /// Allowance per run (warm-up or timed).
    pub per_run: Duration,
    /// Retries after the first attempt.
    pub retries: u32,
}

impl ProbePolicy {
    /// Refuse what every board would refuse, before a board is opened or booted: between
    /// 1 and [`MAX_REPEATS`](simnas_shared::protocol::MAX_REPEATS) timed repeats.
    pub fn check(&self) -> Result<(), BoardError> {
        let max = simnas_shared::protocol::MAX_REPEATS;
        if self.repeats == 0 || usize::from(self.repeats) > max {
            return Err(BoardError::Repeats { asked: u32::from(self.repeats), max });
        }
        Ok(())
    }

    /// The wait for one attempt: 5 s plus `per_run` for every run.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(5) + self.per_run * (u32::from(self.warmup) + u32::from(self.repeats))
    }
}

/// `(board, network)` as a person reads it.
pub fn describe(h: &Hello) -> String {
    let n = h.net;
    format!(
        "({} @ {} MHz | C={} N={} {}x{} {} classes)",
        h.board,
        h.clock_hz as f64 / 1e6,
        n.channels,
        n.cells_per_stage,
        n.resolution,
        n.resolution,
        n.classes
    )
}

/// A board (serial, or QEMU) as a device.
pub struct BoardDevice {
    link: BoardLink,
    hello: Hello,
    name: String,
    policy: ProbePolicy,
    qemu: Option<qemu::Qemu>,
}

impl BoardDevice {
    /// The board on serial port `port`.
    pub fn serial(port: &str, baud: u32, policy: ProbePolicy) -> Result<BoardDevice, BoardError> {
        policy.check()?;
        let mut link = BoardLink::open(port, baud)?;
        let hello = link.connect(Duration::from_secs(5))?;
        Ok(BoardDevice { name: format!("serial:{port} {}", describe(&hello)), link, hello, policy, qemu: None })
    }

    /// Boot `firmware` in QEMU and connect to it.
    pub fn qemu(firmware: &std::path::Path, policy: ProbePolicy) -> Result<BoardDevice, BoardError> {
        policy.check()?;
        let (mut q, port) = qemu::Qemu::launch(firmware)?;
        let mut link = BoardLink::new(port);
        let hello = link.connect(Duration::from_secs(10)).map_err(|e| q.explain(e))?;
        Ok(BoardDevice { name: format!("qemu {}", describe(&hello)), link, hello, policy, qemu: Some(q) })
    }

    /// The board's greeting.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The link (statistics, raw access).
    pub fn link_mut(&mut self) -> &mut BoardLink {
        &mut self.link
    }

    /// Measure `arch`, returning the board's record as it came.
    pub fn probe_raw(&mut self, arch: Arch) -> Result<ProbeResult, BoardError> {
        let p = self.policy;
        let r = self.link.probe(arch, p.warmup, p.repeats, p.timeout(), p.retries);
        match (r, self.qemu.as_mut()) {
            (Err(e), Some(q)) => Err(q.explain(e)),
            (r, _) => r,
        }
    }
}

impl Device for BoardDevice {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        let t = self.probe_raw(arch)?.timing;
        Ok(Probe { latency_ms: t.median_ms(), min_ms: t.ms(t.min_ticks), spread: t.spread(), repeats: t.repeats })
    }
}

#[cfg(test)]
mod tests;
