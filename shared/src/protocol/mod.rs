//! Messages between the host and a board, and how they travel on a serial line.
//!
//! ## Wire format (protocol version [`PROTOCOL_VERSION`])
//! Every message travels in one frame:
//! ```text
//! frame   = COBS(inner) 0x00
//! inner   = seq:u16-LE  postcard(message)  crc:u32-LE
//! crc     = CRC-32/ISO-HDLC over seq and the postcard bytes
//! ```
//! * `0x00` only ever appears as the frame delimiter (COBS), so a receiver that lost bytes
//!   resynchronises at the next delimiter ([`FrameAccumulator`]).
//! * `seq` counts the frames each side sends, from 0 after a reset, wrapping at 2^16; a
//!   gap tells the receiver frames were lost, a board frame with `seq` 0 carrying a
//!   [`Hello`] tells it the board restarted.
//! * The CRC covers the sequence number too, so a corrupted frame is refused whole; a
//!   frame whose CRC matches must also decode to exactly one message with no bytes left.
//! * Board -> host messages are [`BoardMsg`], host -> board [`HostMsg`]. postcard encodes
//!   enum variants by their index: variants are only ever appended, and a change that
//!   alters an existing message bumps [`PROTOCOL_VERSION`] (sent first in [`Hello`]).
//!
//! Architectures travel as [`ArchCode`]s (a `u16` below 15,625; anything else fails to
//! decode). Times travel as raw timer ticks with the timer's rate ([`Timing`]); latency in
//! ms is `ticks * 1000 / ticks_per_second`.

mod frame;

#[cfg(feature = "std")]
pub use frame::encode_frame_vec;
pub use frame::{decode_frame, encode_frame, Feed, Frame, FrameAccumulator, FrameError};

use crate::space::ArchCode;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Version of the wire format and message set; the first field of [`Hello`].
pub const PROTOCOL_VERSION: u16 = 2;
/// Largest postcard-encoded message either side sends (a [`Hello`] with the longest
/// names is about 90 bytes).
pub const MAX_MESSAGE: usize = 112;
/// Largest decoded frame: sequence number, message, CRC.
pub const MAX_INNER: usize = 2 + MAX_MESSAGE + 4;
/// Largest encoded frame including its delimiter; the default accumulator size.
pub const MAX_FRAME: usize = cobs::max_encoding_length(MAX_INNER) + 1;
/// Most timed repeats one probe may ask a board for (the firmware keeps the samples on its
/// stack and refuses more with [`ErrorCode::Repeats`]).
pub const MAX_REPEATS: usize = 64;
/// Longest board name in a [`Hello`].
pub const BOARD_NAME_LEN: usize = 24;
/// Longest firmware version string in a [`Hello`].
pub const FIRMWARE_VERSION_LEN: usize = 16;

/// Shape of the network a board measures (edge-runtime's `NetConfig` on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetShape {
    /// Base channels `C`.
    pub channels: u16,
    /// Cells per stage `N`.
    pub cells_per_stage: u16,
    /// Input side in pixels.
    pub resolution: u16,
    /// Output classes.
    pub classes: u32,
}

/// What the firmware does after its [`Hello`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// Serves host commands ([`HostMsg`]) until reset.
    Serve,
    /// Runs the search on itself and streams [`SearchProbe`]s, then a [`Final`]; then
    /// serves host commands.
    Search,
}

/// The board's greeting: sent on boot and in answer to [`HostMsg::Identify`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the firmware.
    pub protocol: u16,
    /// Firmware version (the crate version it was built from).
    pub firmware: heapless::String<FIRMWARE_VERSION_LEN>,
    /// Board name, e.g. `mps2-an386`.
    pub board: heapless::String<BOARD_NAME_LEN>,
    /// Core clock in Hz.
    pub clock_hz: u32,
    /// Rate of the timer every tick count is measured with.
    pub ticks_per_second: u64,
    /// The network every probe runs.
    pub net: NetShape,
    /// Bytes of activation arena the executor was given.
    pub arena_bytes: u32,
    /// Bytes of the shared weight bank.
    pub bank_bytes: u32,
    /// Seed of the weight bank and input.
    pub seed: u64,
    /// What the firmware does next.
    pub mode: Mode,
}

/// A summary of repeated timings, in timer ticks (edge-runtime's `Measurement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Timing {
    /// Median ticks.
    pub median_ticks: u64,
    /// Fastest run.
    pub min_ticks: u64,
    /// Slowest run.
    pub max_ticks: u64,
    /// First quartile.
    pub q1_ticks: u64,
    /// Third quartile.
    pub q3_ticks: u64,
    /// Timer rate.
    pub ticks_per_second: u64,
    /// Timed repeats.
    pub repeats: u32,
}

/// Why a [`Timing`] cannot be a measurement (checked by the host on every board answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimingFault {
    /// A field that must be positive is 0: `median_ticks` (a latency of 0 ms),
    /// `ticks_per_second` (no timer rate), or `repeats` (nothing was timed).
    Zero {
        /// The field.
        field: &'static str,
    },
    /// The order `min <= q1 <= median <= q3 <= max` is broken: `low` exceeds `high`.
    Order {
        /// The field that should be the smaller.
        low: &'static str,
        /// Its ticks.
        low_ticks: u64,
        /// The field that should be the larger.
        high: &'static str,
        /// Its ticks.
        high_ticks: u64,
    },
    /// Another number of timed runs than were asked for.
    Repeats {
        /// Asked for.
        asked: u32,
        /// Reported.
        got: u32,
    },
}

impl core::fmt::Display for TimingFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            TimingFault::Zero { field } => write!(f, "{field} is 0"),
            TimingFault::Order { low, low_ticks, high, high_ticks } => {
                write!(f, "{low} ({low_ticks}) is larger than {high} ({high_ticks})")
            }
            TimingFault::Repeats { asked, got } => write!(f, "repeats is {got}, but {asked} were asked for"),
        }
    }
}

impl Timing {
    /// A timing that can be a measurement: a positive median, timer rate and repeat count,
    /// and `min <= q1 <= median <= q3 <= max`. (The latency in ms is then positive and
    /// finite.) The first fault found, in that order.
    pub fn check(&self) -> Result<(), TimingFault> {
        for (field, value) in [
            ("ticks_per_second", self.ticks_per_second),
            ("repeats", u64::from(self.repeats)),
            ("median_ticks", self.median_ticks),
        ] {
            if value == 0 {
                return Err(TimingFault::Zero { field });
            }
        }
        let order = [
            ("min_ticks", self.min_ticks),
            ("q1_ticks", self.q1_ticks),
            ("median_ticks", self.median_ticks),
            ("q3_ticks", self.q3_ticks),
            ("max_ticks", self.max_ticks),
        ];
        for pair in order.windows(2) {
            let ((low, low_ticks), (high, high_ticks)) = (pair[0], pair[1]);
            if low_ticks > high_ticks {
                return Err(TimingFault::Order { low, low_ticks, high, high_ticks });
            }
        }
        Ok(())
    }

    /// [`Timing::check`], and exactly `asked` timed runs.
    pub fn check_answer(&self, asked: u32) -> Result<(), TimingFault> {
        self.check()?;
        if self.repeats != asked {
            return Err(TimingFault::Repeats { asked, got: self.repeats });
        }
        Ok(())
    }

    /// Ticks in milliseconds at this timing's rate (0 if the rate is 0).
    pub fn ms(&self, ticks: u64) -> f64 {
        if self.ticks_per_second == 0 {
            return 0.0;
        }
        ticks as f64 * 1e3 / self.ticks_per_second as f64
    }
    /// Median in milliseconds.
    pub fn median_ms(&self) -> f64 {
        self.ms(self.median_ticks)
    }
    /// Interquartile range over the median.
    pub fn spread(&self) -> f64 {
        if self.median_ticks == 0 {
            return 0.0;
        }
        self.q3_ticks.saturating_sub(self.q1_ticks) as f64 / self.median_ticks as f64
    }
}

/// One measured cell: the answer to [`HostMsg::Probe`], and one record per probe of an
/// on-board search (`id` is then the probe's index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The request's id (or the probe's index in a search).
    pub id: u32,
    /// The cell measured.
    pub arch: ArchCode,
    /// Its timing.
    pub timing: Timing,
}

/// What a [`BenchRecord`] measured. Every item is a whole network run: per-op costs are
/// differences against [`BenchItem::Baseline`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BenchItem {
    /// Every cell empty (all `none`): stem, reductions and head only.
    Baseline,
    /// Every cell is the single edge 0->3 carrying this op (index of `Op`).
    SingleEdge(u8),
    /// A whole cell, repeated in every position of the network.
    Cell,
}

/// One line of the board's benchmark (answer to [`HostMsg::Bench`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BenchRecord {
    /// The request's id.
    pub id: u32,
    /// Position of this record, 0-based.
    pub index: u16,
    /// Records in this benchmark.
    pub total: u16,
    /// What was measured.
    pub item: BenchItem,
    /// The cell of every network position.
    pub arch: ArchCode,
    /// Its timing.
    pub timing: Timing,
}

/// One probe of an on-board search (board -> host, one per measured cell, in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SearchProbe {
    /// The search's id (0 for the search run at boot, else the [`HostMsg::Search`] id).
    pub id: u32,
    /// 1-based probe number (at most the budget).
    pub index: u16,
    /// Controller steps taken before this probe (0 for the references and the start).
    pub step: u16,
    /// The cell measured.
    pub arch: ArchCode,
    /// Its timing (the latency the search uses is the median).
    pub timing: Timing,
    /// Ticks of the whole probe: planning, warm-up and timed runs.
    pub probe_ticks: u64,
    /// Ticks the controller spent since the previous probe ended (policy inference and
    /// bookkeeping; for the first probe, the set-up).
    pub controller_ticks: u64,
}

/// Why an on-board search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SearchStop {
    /// The probe budget was spent.
    Budget,
    /// The start cell could not be measured.
    NoStart,
    /// No allowed edit was left.
    NoAction,
    /// The training episode length was reached.
    EpisodeEnd,
    /// A probe failed (an [`ErrorReport`] precedes this record).
    Failed,
}

/// Outcome of an on-board search: the last record of a search.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Final {
    /// The search's id (as in its [`SearchProbe`]s).
    pub id: u32,
    /// The probe budget.
    pub budget: u16,
    /// Probes measured (at most the budget).
    pub probes: u16,
    /// Controller steps taken.
    pub steps: u16,
    /// Why it ended.
    pub stop: SearchStop,
    /// The pick: the best measured cell under the objective (`None` if nothing was
    /// measured).
    pub arch: Option<ArchCode>,
    /// The probe that measured the pick (its [`SearchProbe::index`]; 0 without a pick).
    pub pick_index: u16,
    /// The pick's median ticks (from that probe).
    pub pick_ticks: u64,
    /// The pick's objective value as the search estimated it.
    pub score: f32,
    /// Timer rate of every tick count here.
    pub ticks_per_second: u64,
    /// Ticks spent in the controller in total (every probe's `controller_ticks` and the
    /// final pick).
    pub controller_ticks: u64,
    /// Ticks spent probing in total.
    pub probe_ticks: u64,
    /// The largest `controller_ticks` of a single step after the start (one policy
    /// inference and its bookkeeping).
    pub max_step_ticks: u64,
}

/// Why a board refused a frame or a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A frame longer than the board's buffer (`detail`: the buffer size).
    FrameOverfull,
    /// Bytes between delimiters that are not valid COBS.
    FrameCobs,
    /// A frame too short to hold a sequence number and a CRC.
    FrameTooShort,
    /// A frame whose CRC does not match.
    FrameCrc,
    /// A frame with a good CRC that is not a known host message.
    Decode,
    /// Zero repeats, or more than the board can hold (`detail`: the maximum).
    Repeats,
    /// The executor refused the network (`detail`: edge-runtime error number).
    Runtime,
    /// A command this firmware does not implement.
    Unsupported,
    /// The embedded policy is unusable (`detail`: the reason's number, see the firmware).
    Policy,
    /// The embedded score table is unusable (`detail`: the reason's number).
    Scores,
    /// A search budget of 0 or more than the board records (`detail`: the maximum).
    Budget,
}

/// An error report (board -> host).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ErrorReport {
    /// What went wrong.
    pub code: ErrorCode,
    /// Id of the command it answers, when the command could be read.
    pub request: Option<u32>,
    /// A number qualifying the code (see [`ErrorCode`]).
    pub detail: u32,
}

/// Board -> host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum BoardMsg {
    /// Greeting with the board's configuration.
    Hello(Hello),
    /// Answer to [`HostMsg::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u32,
    },
    /// A measured cell.
    ProbeResult(ProbeResult),
    /// One benchmark line.
    BenchRecord(BenchRecord),
    /// End of an on-board search.
    Final(Final),
    /// A refused frame or command.
    Error(ErrorReport),
    /// One probe of an on-board search.
    SearchProbe(SearchProbe),
}

/// A request to measure one cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProbeRequest {
    /// Echoed in the answer.
    pub id: u32,
    /// The cell.
    pub arch: ArchCode,
    /// Untimed runs first.
    pub warmup: u16,
    /// Timed runs (the board refuses more than it can hold).
    pub repeats: u16,
}

/// Host -> board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HostMsg {
    /// Send [`Hello`] again (a host that connects after the board booted).
    Identify,
    /// Answer with [`BoardMsg::Pong`].
    Ping {
        /// Echoed.
        nonce: u32,
    },
    /// Measure a cell: answered by [`BoardMsg::ProbeResult`] or [`BoardMsg::Error`].
    Probe(ProbeRequest),
    /// Run the benchmark: answered by [`BenchRecord`]s.
    Bench {
        /// Echoed in every record.
        id: u32,
        /// Untimed runs per item.
        warmup: u16,
        /// Timed runs per item.
        repeats: u16,
    },
    /// Run the search on the board with the embedded policy and score table: answered by
    /// one [`SearchProbe`] per probe and a [`Final`].
    Search {
        /// Echoed in every record.
        id: u32,
        /// Probe budget (1 to the board's maximum).
        budget: u16,
    },
}

impl Serialize for ArchCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.get())
    }
}

impl<'de> Deserialize<'de> for ArchCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ArchCode, D::Error> {
        let raw = u16::deserialize(d)?;
        ArchCode::new(raw).ok_or_else(|| {
            serde::de::Error::invalid_value(
                serde::de::Unexpected::Unsigned(raw.into()),
                &"an architecture code below 15625",
            )
        })
    }
}

#[cfg(test)]
mod tests;
