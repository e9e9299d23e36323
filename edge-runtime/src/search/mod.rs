//! The controller's search walk, shared by the host (`simnas search --strategy controller`)
//! and the board's autonomous mode: no allocator, the device behind the [`Device`] trait.
//!
//! With a budget of `B` probes ([`walk`]):
//! 1. measure the two reference cells [`LO`] (all-`skip_connect`) and [`HI`]
//!    (all-`nor_conv_3x3`) when at least two probes are left: the latency normalisation of
//!    training;
//! 2. start at the first cell of the zero-shot prior's ranking ([`prior_top`]) not tried
//!    yet, or at `LO` without a prior; measure it (free if it was a reference);
//! 3. each step, encode the last five (state, action) pairs ([`History`]), take the
//!    policy's most likely action among those that change the cell and lead to a cell not
//!    tried yet ([`Policy::greedy`]), measure the new cell and push it into the history
//!    with its normalised latency (clamped, as trained) and TF (if the policy observes it);
//! 4. stop when the budget is spent, no action is allowed, the device says it is
//!    exhausted, or after [`EPISODE_LEN`] steps.
//!
//! A cell the device has no value for ([`Answer::Missing`], e.g. a table without it) costs
//! no budget and is never asked again. [`Probes`] keeps every measurement (in a
//! caller-given buffer) and which cells were tried (a bit set of the space).
//!
//! The pick is then the best measured cell under the [`Objective`] ([`pick`]): weighted,
//! `w TF + (1 - w)(1 - l)` with `l` *unclamped* over the probed latency range
//! ([`Normaliser::of`]); constrained, the best-TF cell whose measured latency is within
//! the limit.

use crate::policy::{normalise_latency, History, Policy, PolicyError, Step, OBS_DIM};
use simnas_shared::{Action, Arch, ArchCode, Op, NUM_ARCHS, NUM_EDGES, NUM_OPS};

/// The fast reference cell: all `skip_connect`.
pub const LO: Arch = Arch::uniform(Op::SkipConnect);
/// The slow reference cell: all `nor_conv_3x3`.
pub const HI: Arch = Arch::uniform(Op::NorConv3x3);
/// Steps of a training episode (the bound on a walk that finds no new cells).
pub const EPISODE_LEN: usize = 50;
/// Most probes a walk makes: the two references, the start and one cell per step.
pub const MAX_WALK_PROBES: usize = EPISODE_LEN + 3;
/// Length of the prior's ranking a walk needs: at most the two references are tried when
/// the start is chosen, so the third cell is always available.
pub const PRIOR_TOP: usize = 3;

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

/// The first `K` cells of the zero-shot prior's ranking, best first (ties: lower code):
/// `0.5 TF + 0.5 (1 - l_pred)` with `l_pred = clamp((lut(h) - lut(LO)) / (lut(HI) -
/// lut(LO)), 0, 1)` (0 when `lut(HI) <= lut(LO)`). `latency` is the prior LUT's prediction.
/// Only candidates of `space` are ranked.
pub fn prior_top<const K: usize>(
    space: Space,
    latency: impl Fn(Arch) -> f64,
    tf: impl Fn(Arch) -> f64,
) -> [Option<Arch>; K] {
    let (lo, hi) = (latency(LO), latency(HI));
    let norm = Normaliser { lo, hi };
    let mut top: [Option<(f64, Arch)>; K] = [None; K];
    for code in ArchCode::all() {
        let a = Arch::from_code(code);
        if !space.contains(a) {
            continue;
        }
        let v = weighted(0.5, tf(a), if hi > lo { norm.l(latency(a)) } else { 0.0 });
        if let Some(i) = top.iter().position(|e| e.is_none_or(|(bv, _)| v > bv)) {
            top.copy_within(i..K - 1, i + 1);
            top[i] = Some((v, a));
        }
    }
    top.map(|e| e.map(|(_, a)| a))
}

/// A device's answer to "measure this cell".
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    /// Measured, ms.
    Latency(f64),
    /// The device has no measurement of this cell; no budget spent.
    Missing,
    /// The device will measure nothing more (its own budget or request bound).
    Exhausted,
}

/// Anything that can measure the latency of a cell: a board timing the network in place,
/// the host's CPU, a table, a board over a serial line.
pub trait Device {
    /// What can go wrong (ends the walk).
    type Error;
    /// Measure `arch` (called at most once per cell); `step` is the number of policy
    /// decisions taken so far (0 for the references and the start).
    fn measure(&mut self, arch: Arch, step: usize) -> Result<Answer, Self::Error>;
}

const WORDS: usize = NUM_ARCHS.div_ceil(32);

/// A set of cells: one bit per [`ArchCode`].
#[derive(Clone, Debug)]
pub struct CellSet {
    bits: [u32; WORDS],
}

impl Default for CellSet {
    fn default() -> Self {
        CellSet::new()
    }
}

impl CellSet {
    /// The empty set.
    pub const fn new() -> CellSet {
        CellSet { bits: [0; WORDS] }
    }

    /// Add `arch`.
    pub fn insert(&mut self, arch: Arch) {
        let c = usize::from(arch.code().get());
        if let Some(w) = self.bits.get_mut(c / 32) {
            *w |= 1 << (c % 32);
        }
    }

    /// Is `arch` in the set.
    pub fn contains(&self, arch: Arch) -> bool {
        let c = usize::from(arch.code().get());
        self.bits.get(c / 32).is_some_and(|w| w & (1 << (c % 32)) != 0)
    }
}

/// Why a walk could not run or stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WalkError<E> {
    /// The probe buffer is shorter than the budget.
    Buffer {
        /// The budget.
        budget: usize,
        /// Slots in the buffer.
        got: usize,
    },
    /// A budget of zero probes.
    ZeroBudget,
    /// The policy refused its input (cannot happen with a validated policy).
    Policy(PolicyError),
    /// The device failed; what was measured before is kept.
    Device(E),
}

impl<E: core::fmt::Display> core::fmt::Display for WalkError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            WalkError::Buffer { budget, got } => {
                write!(f, "a probe buffer of {got} slots cannot hold a budget of {budget} probes")
            }
            WalkError::ZeroBudget => write!(f, "the probe budget must be at least 1"),
            WalkError::Policy(e) => write!(f, "policy: {e}"),
            WalkError::Device(e) => write!(f, "device: {e}"),
        }
    }
}

/// The budgeted record of a search: every measurement in order, and the cells tried.
/// Requests are taken through the record's [`Space`]: in the executed space a cell is
/// measured (and recorded) as its executed network, and a disconnected cell is answered
/// [`Answer::Missing`] without reaching the device.
pub struct Probes<'b> {
    buf: &'b mut [Measured],
    len: usize,
    budget: usize,
    space: Space,
    measured: CellSet,
    missing: CellSet,
}

impl<'b> Probes<'b> {
    /// A record of at most `budget` probes kept in `buf` (at least `budget` long).
    pub fn new<E>(buf: &'b mut [Measured], budget: usize) -> Result<Probes<'b>, WalkError<E>> {
        if budget == 0 {
            return Err(WalkError::ZeroBudget);
        }
        if buf.len() < budget {
            return Err(WalkError::Buffer { budget, got: buf.len() });
        }
        Ok(Probes { buf, len: 0, budget, space: Space::Executed, measured: CellSet::new(), missing: CellSet::new() })
    }

    /// The same record over `space` (default [`Space::Executed`]).
    pub fn in_space(mut self, space: Space) -> Probes<'b> {
        self.space = space;
        self
    }

    /// The space requests are taken in.
    pub fn space(&self) -> Space {
        self.space
    }

    /// Probes left.
    pub fn remaining(&self) -> usize {
        self.budget - self.len
    }

    /// Probes so far, in order.
    pub fn probes(&self) -> &[Measured] {
        self.buf.get(..self.len).unwrap_or_default()
    }

    /// The measured latency of `arch` (of its executed network in the executed space), if
    /// it was probed.
    pub fn known(&self, arch: Arch) -> Option<f64> {
        let arch = self.space.member(arch)?;
        if !self.measured.contains(arch) {
            return None;
        }
        self.probes().iter().find(|p| p.arch == arch).map(|p| p.latency_ms)
    }

    /// True if asking for `arch` teaches nothing new: what it measures was measured or
    /// found missing, or it is not a candidate of the space.
    pub fn tried(&self, arch: Arch) -> bool {
        match self.space.member(arch) {
            Some(a) => self.measured.contains(a) || self.missing.contains(a),
            None => true,
        }
    }

    /// Measure `arch` (its executed network in the executed space) on `dev` (at controller
    /// step `step`), one probe unless it was tried already.
    pub fn measure<D: Device>(&mut self, dev: &mut D, arch: Arch, step: usize) -> Result<Answer, D::Error> {
        let Some(arch) = self.space.member(arch) else { return Ok(Answer::Missing) };
        if let Some(ms) = self.known(arch) {
            return Ok(Answer::Latency(ms));
        }
        if self.missing.contains(arch) {
            return Ok(Answer::Missing);
        }
        if self.remaining() == 0 {
            return Ok(Answer::Exhausted);
        }
        let answer = dev.measure(arch, step)?;
        match answer {
            Answer::Latency(ms) => {
                let Some(slot) = self.buf.get_mut(self.len) else { return Ok(Answer::Exhausted) };
                *slot = Measured { step: self.len + 1, arch, latency_ms: ms };
                self.len += 1;
                self.measured.insert(arch);
            }
            Answer::Missing => self.missing.insert(arch),
            Answer::Exhausted => {}
        }
        Ok(answer)
    }
}

/// Why a walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every probe of the budget was spent.
    Budget,
    /// The start cell could not be measured (budget spent on the references, or missing).
    NoStart,
    /// No allowed action is left (every neighbour tried).
    NoAction,
    /// The device measures nothing more.
    Exhausted,
    /// [`EPISODE_LEN`] steps were taken.
    EpisodeEnd,
}

/// How a walk went (the probes are in the [`Probes`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkReport {
    /// The cell the episode started from.
    pub start: Arch,
    /// Policy decisions taken.
    pub steps: usize,
    /// Why it ended.
    pub stop: Stop,
}

/// The controller's settings besides its policy.
#[derive(Clone, Copy, Debug)]
pub struct Walker<'p, 'w> {
    /// The actor.
    pub policy: &'p Policy<'w>,
    /// TF is part of the policy's observation (its training config's `obs_tf`).
    pub obs_tf: bool,
}

impl Walker<'_, '_> {
    /// Run the walk described in the module doc on `dev`, recording into `probes`.
    /// `tf` is `TF(h)` in `[0, 1]`; `start` the prior's ranking ([`prior_top`]), empty
    /// without a prior.
    pub fn walk<D: Device>(
        &self,
        tf: impl Fn(Arch) -> f64,
        start: &[Arch],
        probes: &mut Probes<'_>,
        dev: &mut D,
    ) -> Result<WalkReport, WalkError<D::Error>> {
        if probes.remaining() >= 2 {
            probes.measure(dev, LO, 0).map_err(WalkError::Device)?;
            probes.measure(dev, HI, 0).map_err(WalkError::Device)?;
        }
        let first = start.iter().copied().find(|&a| !probes.tried(a)).unwrap_or(LO);
        // The walk's state is the network that runs (the cell itself in the raw space).
        let first = probes.space().member(first).unwrap_or(LO);
        let mut report = WalkReport { start: first, steps: 0, stop: Stop::NoStart };
        probes.measure(dev, first, 0).map_err(WalkError::Device)?; // free if it was `LO`
        let Some(mut lat) = probes.known(first) else { return Ok(report) };
        let mut cur = first;
        let tf_obs = |a: Arch| if self.obs_tf { tf(a) as f32 } else { 0.0 };
        let l = |p: &Probes<'_>, ms: f64| match Normaliser::of(p.probes()) {
            Some(n) => normalise_latency(ms, n.lo, n.hi),
            None => 0.0,
        };
        let mut history = History::new();
        history.push(Step { arch: cur, latency: l(probes, lat), tf: tf_obs(cur), action: None });
        let mut obs = [0f32; OBS_DIM];
        report.stop = Stop::EpisodeEnd;
        for _ in 0..EPISODE_LEN {
            if probes.remaining() == 0 {
                report.stop = Stop::Budget;
                break;
            }
            history.encode(&mut obs);
            let allowed = |a: Action| cur.ops[a.edge.index()] != a.op && !probes.tried(cur.apply(a));
            let action = self.policy.greedy(&obs, allowed).map_err(WalkError::Policy)?;
            report.steps += 1;
            let Some(action) = action else {
                report.stop = Stop::NoAction;
                break;
            };
            let next = cur.apply(action);
            let next = probes.space().member(next).unwrap_or(next);
            match probes.measure(dev, next, report.steps).map_err(WalkError::Device)? {
                Answer::Latency(ms) => lat = ms,
                Answer::Missing => continue,
                Answer::Exhausted => {
                    report.stop = Stop::Exhausted;
                    break;
                }
            }
            cur = next;
            history.push(Step { arch: cur, latency: l(probes, lat), tf: tf_obs(cur), action: Some(action) });
        }
        if report.stop == Stop::EpisodeEnd && probes.remaining() == 0 {
            report.stop = Stop::Budget;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests;
