//! Host-driven mode: greet with `Hello`, then answer host commands forever; the on-board
//! search (the `search` module) runs on the host's `Search` command, or at boot with the
//! `autonomous` feature.
//!
//! Every frame the board receives is answered: a command with its result, anything it
//! cannot read (garbage, overlong, bad CRC, unknown message, bad arguments) with an
//! `Error` frame; then it goes on serving. Nothing here panics on input.

use crate::bench;
use crate::board::{Board, EdgeSyncedTimer};
use crate::config::MAX_REPEATS;
use edge_runtime::{measure, BankParams, Executor, Measurement, NetConfig, ParamLayout, Plan};
use simnas_shared::protocol::{
    encode_frame, BenchRecord, BoardMsg, ErrorCode, ErrorReport, FrameAccumulator, FrameError, Hello, HostMsg, Mode,
    NetShape, ProbeRequest, ProbeResult, Timing, MAX_FRAME, PROTOCOL_VERSION,
};
use simnas_shared::{Arch, ArchCode};

mod search;
pub use search::{policy_detail, scores_detail, SearchInputs};

/// What the server measures with: the network, its memory, and the seed they came from.
pub struct Workload<'a> {
    /// The network.
    pub net: NetConfig,
    /// Activation arena (at least the plan's `arena_len`).
    pub arena: &'a mut [f32],
    /// Shared weight bank (at least the layout's `max_slot_len`).
    pub bank: &'a [f32],
    /// Input image, HWC.
    pub input: &'a [f32],
    /// Seed of the bank and input (reported in `Hello`).
    pub seed: u64,
    /// What the on-board search runs with.
    pub search: SearchInputs<'a>,
    /// Run the search at boot, with this budget (`None`: serve only).
    pub search_at_boot: Option<u16>,
}

/// The host-driven server over one board.
pub struct Server<'a, B: Board> {
    board: B,
    work: Workload<'a>,
    acc: FrameAccumulator<MAX_FRAME>,
    seq: u16,
}

impl<'a, B: Board> Server<'a, B> {
    /// A server that has sent nothing yet.
    pub fn new(board: B, work: Workload<'a>) -> Self {
        Server { board, work, acc: FrameAccumulator::new(), seq: 0 }
    }

    /// The board (for tests).
    pub fn board_mut(&mut self) -> &mut B {
        &mut self.board
    }

    /// Send `Hello`, run the search if asked to at boot, then serve forever.
    pub fn run(mut self) -> ! {
        // A lone delimiter first: it ends whatever partial frame the host holds from before
        // a reset (a frame cut off mid-way), so the Hello that follows is read, not lost.
        self.board.write(&[0]);
        self.send_hello();
        self.check_search_inputs();
        if let Some(budget) = self.work.search_at_boot {
            self.search(0, budget);
        }
        loop {
            self.poll();
        }
    }

    /// Read what the board has received and answer every complete frame.
    pub fn poll(&mut self) {
        // Keep the timer's 64-bit extension current while idle.
        self.board.ticks();
        while let Some(byte) = self.board.read_byte() {
            match self.acc.push::<HostMsg>(byte) {
                None => {}
                Some(Ok(frame)) => self.handle(frame.msg),
                Some(Err(e)) => self.send_error(frame_error_code(e), None, frame_error_detail(e)),
            }
        }
    }

    /// The greeting.
    pub fn hello(&self) -> Hello {
        let net = self.work.net;
        let plan_bytes = Plan::new(net, Arch::uniform(simnas_shared::Op::NorConv3x3)).map(|p| p.arena_bytes());
        Hello {
            protocol: PROTOCOL_VERSION,
            firmware: heapless::String::try_from(env!("CARGO_PKG_VERSION")).unwrap_or_default(),
            board: heapless::String::try_from(self.board.name()).unwrap_or_default(),
            clock_hz: self.board.clock_hz(),
            ticks_per_second: self.board.ticks_per_second(),
            net: NetShape {
                channels: sat16(net.channels),
                cells_per_stage: sat16(net.cells_per_stage),
                resolution: sat16(net.resolution),
                classes: sat32(net.classes),
            },
            arena_bytes: sat32(plan_bytes.unwrap_or(0)),
            bank_bytes: sat32(core::mem::size_of_val(self.work.bank)),
            seed: self.work.seed,
            mode: if self.work.search_at_boot.is_some() { Mode::Search } else { Mode::Serve },
        }
    }

    /// Validate the search's embedded files; an `Error` (no request) for each unusable one.
    pub fn check_search_inputs(&mut self) {
        if let Err(e) = edge_runtime::policy::Policy::from_bytes(self.work.search.policy) {
            self.send_error(ErrorCode::Policy, None, policy_detail(e));
        }
        if let Err(e) = edge_runtime::tf16::Tf16::parse(self.work.search.scores) {
            self.send_error(ErrorCode::Scores, None, scores_detail(e));
        }
    }

    /// Send `Hello`.
    pub fn send_hello(&mut self) {
        let hello = self.hello();
        self.send(&BoardMsg::Hello(hello));
    }

    fn handle(&mut self, msg: HostMsg) {
        match msg {
            HostMsg::Identify => self.send_hello(),
            HostMsg::Ping { nonce } => self.send(&BoardMsg::Pong { nonce }),
            HostMsg::Probe(req) => self.probe(req),
            HostMsg::Bench { id, warmup, repeats } => self.bench(id, warmup, repeats),
            HostMsg::Search { id, budget } => self.search(id, budget),
        }
    }

    fn probe(&mut self, req: ProbeRequest) {
        match self.measure(req.arch, req.warmup, req.repeats) {
            Ok(timing) => self.send(&BoardMsg::ProbeResult(ProbeResult { id: req.id, arch: req.arch, timing })),
            Err((code, detail)) => self.send_error(code, Some(req.id), detail),
        }
    }

    fn bench(&mut self, id: u32, warmup: u16, repeats: u16) {
        let total = bench::ITEMS.len() as u16;
        for (i, (item, _)) in bench::ITEMS.iter().enumerate() {
            let Some(arch) = bench::cell(i) else {
                self.send_error(ErrorCode::Unsupported, Some(id), i as u32);
                continue;
            };
            match self.measure(arch, warmup, repeats) {
                Ok(timing) => self.send(&BoardMsg::BenchRecord(BenchRecord {
                    id,
                    index: i as u16,
                    total,
                    item: *item,
                    arch,
                    timing,
                })),
                Err((code, detail)) => {
                    self.send_error(code, Some(id), detail);
                    return;
                }
            }
        }
    }

    /// Time `arch`: plan, bind the arena, run `warmup` + `repeats` times.
    fn measure(&mut self, arch: ArchCode, warmup: u16, repeats: u16) -> Result<Timing, (ErrorCode, u32)> {
        let n = repeats as usize;
        if n == 0 || n > MAX_REPEATS {
            return Err((ErrorCode::Repeats, MAX_REPEATS as u32));
        }
        let runtime = |e: edge_runtime::Error| (ErrorCode::Runtime, runtime_detail(e));
        let work = &mut self.work;
        let plan = Plan::new(work.net, Arch::from_code(arch)).map_err(runtime)?;
        let layout = ParamLayout::new(work.net).map_err(runtime)?;
        let params = BankParams::new(&layout, work.bank).map_err(runtime)?;
        let mut exec = Executor::new(&plan, work.arena).map_err(runtime)?;
        let mut logits = [0f32; MAX_CLASSES];
        let logits = logits.get_mut(..work.net.classes).ok_or((ErrorCode::Runtime, 0))?;
        let mut samples = [0u64; MAX_REPEATS];
        let samples = samples.get_mut(..n).ok_or((ErrorCode::Repeats, MAX_REPEATS as u32))?;
        let input = work.input;
        let mut timer = EdgeSyncedTimer::new(&mut self.board);
        let m = measure(&mut timer, warmup as usize, samples, || exec.run(&params, input, logits)).map_err(runtime)?;
        Ok(timing(&m))
    }

    fn send_error(&mut self, code: ErrorCode, request: Option<u32>, detail: u32) {
        self.send(&BoardMsg::Error(ErrorReport { code, request, detail }));
    }

    fn send(&mut self, msg: &BoardMsg) {
        let mut buf = [0u8; MAX_FRAME];
        // Every board message fits MAX_FRAME (protocol tests check the largest Hello);
        // should one not, it is dropped and the host sees a sequence gap.
        if let Ok(n) = encode_frame(self.seq, msg, &mut buf) {
            self.board.write(buf.get(..n).unwrap_or_default());
        }
        self.seq = self.seq.wrapping_add(1);
    }
}

/// Largest class count the logit buffer holds.
pub const MAX_CLASSES: usize = 256;

fn timing(m: &Measurement) -> Timing {
    Timing {
        median_ticks: m.median_ticks,
        min_ticks: m.min_ticks,
        max_ticks: m.max_ticks,
        q1_ticks: m.q1_ticks,
        q3_ticks: m.q3_ticks,
        ticks_per_second: m.ticks_per_second,
        repeats: m.repeats,
    }
}

fn sat16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

fn sat32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The protocol error code for a refused frame.
pub fn frame_error_code(e: FrameError) -> ErrorCode {
    match e {
        FrameError::DecodeOverfull { .. } => ErrorCode::FrameOverfull,
        FrameError::DecodeCobs => ErrorCode::FrameCobs,
        FrameError::DecodeTooShort { .. } => ErrorCode::FrameTooShort,
        FrameError::DecodeCrc { .. } => ErrorCode::FrameCrc,
        _ => ErrorCode::Decode,
    }
}

fn frame_error_detail(e: FrameError) -> u32 {
    match e {
        FrameError::DecodeOverfull { capacity } => sat32(capacity),
        FrameError::DecodeTooShort { len } => sat32(len),
        FrameError::DecodeTrailing { extra } => sat32(extra),
        _ => 0,
    }
}

/// The number an edge-runtime error travels as in `ErrorReport::detail`.
pub fn runtime_detail(e: edge_runtime::Error) -> u32 {
    use edge_runtime::Error::*;
    match e {
        Config { .. } => 1,
        ResolutionNotMultipleOf4 { .. } => 2,
        ArenaTooSmall { .. } => 3,
        ParamsLength { .. } => 4,
        BankTooSmall { .. } => 5,
        InputLength { .. } => 6,
        OutputLength { .. } => 7,
        NoRepeats => 8,
        TimerRate => 9,
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
