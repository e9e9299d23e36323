//! The search core the host (`simnas search`) and the board's autonomous mode share: no
//! allocator, the device behind the [`Device`] trait.
//!
//! * Here: the space a search runs over ([`Space`]), the [`Objective`], a probe
//!   ([`Measured`]), the latency normalisation ([`Normaliser`]) and the pick ([`pick`]).
//! * [`Probes`] (in `probes.rs`): the one budgeted record every search spends its probes
//!   through, over a caller-given buffer, with the [`Device`] trait, its [`Answer`] and the
//!   [`SearchError`] a search ends with. A cell the device has no value for
//!   ([`Answer::Missing`], e.g. a table without it) costs no budget and is never asked
//!   again.
//! * [`calibrated`]: the calibrated controller's loop (the default controller; its latency
//!   model is [`crate::calib`]).
//! * [`paper`]: the paper's RL walk (`controller-paper`).
//!
//! A controller is a function of the record and the device; the pick is then the best
//! measured cell under the [`Objective`] ([`pick`]): weighted, `w TF + (1 - w)(1 - l)` with
//! `l` *unclamped* over the probed latency range ([`Normaliser::of`], widened by the
//! controller's range estimate with [`pick_with`]); constrained, the best-TF cell whose
//! measured latency is within the limit.

pub mod calibrated;
pub mod paper;
mod probes;

pub use probes::{Answer, CellSet, Device, Probes, SearchError};

use simnas_shared::{Arch, ArchCode, Op, NUM_ARCHS, NUM_EDGES, NUM_OPS};

/// The fast reference cell: all `skip_connect`.
pub const LO: Arch = Arch::uniform(Op::SkipConnect);
/// The slow reference cell: all `nor_conv_3x3`.
pub const HI: Arch = Arch::uniform(Op::NorConv3x3);

/// Which cells a search may measure.
///
/// A cell's dead edges (see [`Arch::live_edges`]) change nothing the network computes, so
/// by default a search runs over *executed networks* ([`Arch::executed`]): a request for a
/// cell measures its executed network, two cells with the same executed network are one
/// candidate, and a disconnected cell (whose output ignores its input) is no candidate at
/// all. The paper's raw space, every cell measured as written, stays available for
/// reproducing its numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Space {
    /// The executed networks whose output depends on the input
    /// ([`simnas_shared::NUM_CONNECTED_EXECUTED`] = 9,444). The default.
    #[default]
    Executed,
    /// All 15,625 cells as written (the paper's space).
    Raw,
}

impl Space {
    /// The cell a request for `arch` measures: its executed network, or `None` when it is
    /// disconnected (not a candidate); in the raw space, `arch` itself.
    pub const fn member(self, arch: Arch) -> Option<Arch> {
        match self {
            Space::Executed => {
                if arch.is_connected() {
                    Some(arch.executed())
                } else {
                    None
                }
            }
            Space::Raw => Some(arch),
        }
    }

    /// True when `arch` is itself a candidate of the space (what scans enumerate).
    pub const fn contains(self, arch: Arch) -> bool {
        match self {
            Space::Executed => arch.is_connected() && arch.is_executed(),
            Space::Raw => true,
        }
    }

    /// [`Space::contains`] for a compact code (`false` for a number outside the space).
    pub fn contains_code(self, code: usize) -> bool {
        u16::try_from(code).ok().and_then(ArchCode::new).is_some_and(|c| self.contains(Arch::from_code(c)))
    }

    /// Number of candidates.
    pub const fn len(self) -> usize {
        match self {
            Space::Executed => simnas_shared::NUM_CONNECTED_EXECUTED,
            Space::Raw => NUM_ARCHS,
        }
    }

    /// Never empty.
    pub const fn is_empty(self) -> bool {
        false
    }

    /// Name as on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Space::Executed => "executed",
            Space::Raw => "raw",
        }
    }
}

/// What the search maximises.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Objective {
    /// `w * TF + (1 - w) * (1 - l)`.
    Weighted {
        /// `w` in `[0, 1]`.
        weight: f64,
    },
    /// `TF` subject to measured latency `<= max_latency_ms`.
    Constraint {
        /// The limit, ms.
        max_latency_ms: f64,
    },
}

/// One probe.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    /// 1-based probe number.
    pub step: usize,
    /// The cell.
    pub arch: Arch,
    /// Measured latency, ms.
    pub latency_ms: f64,
}

/// Latency normalisation from measurements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normaliser {
    /// Latency mapped to 0, ms.
    pub lo: f64,
    /// Latency mapped to 1, ms.
    pub hi: f64,
}

impl Normaliser {
    /// The reference rule: `lo = lat(LO)`, `hi = lat(HI)` when both were measured and
    /// `hi > lo`; otherwise the min and max of `probes`; `None` when fewer than two
    /// distinct latencies were measured.
    pub fn of(probes: &[Measured]) -> Option<Normaliser> {
        let find = |a: Arch| probes.iter().find(|p| p.arch == a).map(|p| p.latency_ms);
        if let (Some(lo), Some(hi)) = (find(LO), find(HI)) {
            if hi > lo {
                return Some(Normaliser { lo, hi });
            }
        }
        let lo = probes.iter().map(|p| p.latency_ms).fold(f64::INFINITY, f64::min);
        let hi = probes.iter().map(|p| p.latency_ms).fold(f64::NEG_INFINITY, f64::max);
        (hi > lo).then_some(Normaliser { lo, hi })
    }

    /// `clamp((ms - lo) / (hi - lo), 0, 1)`.
    pub fn l(&self, ms: f64) -> f64 {
        self.linear(ms).clamp(0.0, 1.0)
    }

    /// `(ms - lo) / (hi - lo)`, not clamped: how measured cells are scored.
    pub fn linear(&self, ms: f64) -> f64 {
        (ms - self.lo) / (self.hi - self.lo)
    }

    /// The same `lo` with the range widened by `factor` (a strategy's estimate of the
    /// device's whole latency range from the reference range).
    pub fn widened(&self, factor: f64) -> Normaliser {
        Normaliser { lo: self.lo, hi: self.lo + factor * (self.hi - self.lo) }
    }
}

/// `w * tf + (1 - w) * (1 - l)`.
pub fn weighted(weight: f64, tf: f64, l: f64) -> f64 {
    weight * tf + (1.0 - weight) * (1.0 - l)
}

/// The final pick: a measured cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pick {
    /// The cell.
    pub arch: Arch,
    /// Its measured latency, ms.
    pub latency_ms: f64,
    /// Its proxy score.
    pub tf: f64,
    /// The probe that measured it.
    pub step: usize,
    /// Its objective value as the search estimated it (weighted: with the probed range;
    /// constrained: TF).
    pub score: f64,
}

/// The best measured cell under `objective` (ties: lower latency, then the earlier probe).
pub fn pick(objective: &Objective, tf: impl Fn(Arch) -> f64, probes: &[Measured]) -> Option<Pick> {
    pick_with(objective, tf, probes, 1.0)
}

/// [`pick`] with the latency range estimated as `range_factor` times the probed one.
pub fn pick_with(
    objective: &Objective,
    tf: impl Fn(Arch) -> f64,
    probes: &[Measured],
    range_factor: f64,
) -> Option<Pick> {
    let norm = Normaliser::of(probes).map(|n| n.widened(range_factor));
    let score = |p: &Measured| -> Option<f64> {
        match *objective {
            Objective::Weighted { weight } => {
                Some(weighted(weight, tf(p.arch), norm.map_or(0.0, |n| n.linear(p.latency_ms))))
            }
            Objective::Constraint { max_latency_ms } => (p.latency_ms <= max_latency_ms).then(|| tf(p.arch)),
        }
    };
    let mut best: Option<Pick> = None;
    for p in probes {
        let Some(s) = score(p) else { continue };
        let better = match &best {
            None => true,
            Some(b) => s > b.score || (s == b.score && p.latency_ms < b.latency_ms),
        };
        if better {
            best = Some(Pick { arch: p.arch, latency_ms: p.latency_ms, tf: tf(p.arch), step: p.step, score: s });
        }
    }
    best
}

/// A per-op latency lookup table: `latency(h) = base + sum_e t[e][op_e]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lut {
    /// Cost of the macro network around the cells.
    pub base: f64,
    /// `t[edge][op]` (`t[e][none]` is normally 0).
    pub t: [[f64; NUM_OPS]; NUM_EDGES],
}

impl Lut {
    /// Predicted latency of `arch`.
    pub fn latency(&self, arch: Arch) -> f64 {
        self.base + arch.ops.iter().enumerate().map(|(e, &op)| self.t[e][op as usize]).sum::<f64>()
    }
}

#[cfg(test)]
mod tests;
