//! The one probe record both controllers (and every host strategy) spend their budget
//! through: the [`Device`] trait, its [`Answer`], the budgeted record [`Probes`] over a
//! caller-given buffer (an array on a board, a `Vec` on the host), and the [`SearchError`]
//! a search ends with.

use super::{Measured, Space};
use crate::calib::CalibError;
use crate::policy::PolicyError;
use simnas_shared::{Arch, NUM_ARCHS};

/// A device's answer to "measure this cell".
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Answer {
    /// Measured, ms.
    Latency(f64),
    /// The device has no measurement of this cell; no budget spent.
    Missing,
    /// The device will measure nothing more (its own budget or request bound), or the
    /// record's budget is spent; nothing was measured.
    Exhausted,
}

/// Anything that can measure the latency of a cell: a board timing the network in place,
/// the host's CPU, a table, a board over a serial line.
pub trait Device {
    /// What can go wrong (ends the search).
    type Error;
    /// Measure `arch` (called at most once per cell, by [`Probes::measure`]); `step` is the
    /// controller's step: the paper walk's policy decisions taken so far (0 for the
    /// references and the start), the calibrated loop's probes so far.
    fn measure(&mut self, arch: Arch, step: usize) -> Result<Answer, Self::Error>;
}

const WORDS: usize = NUM_ARCHS.div_ceil(32);

/// A set of cells: one bit per [`simnas_shared::ArchCode`].
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
        self.contains_code(usize::from(arch.code().get()))
    }

    /// Is the cell of compact code `code` in the set (`false` for a number outside the
    /// space).
    pub fn contains_code(&self, code: usize) -> bool {
        self.bits.get(code / 32).is_some_and(|w| w & (1 << (code % 32)) != 0)
    }
}

/// Why a search could not run or stopped (either controller, on the board or the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearchError<E> {
    /// The probe buffer is shorter than the budget.
    Buffer {
        /// The budget.
        budget: usize,
        /// Slots in the buffer.
        got: usize,
    },
    /// A budget of zero probes.
    ZeroBudget,
    /// The paper controller's policy refused its input (cannot happen with a validated
    /// policy).
    Policy(PolicyError),
    /// The calibrated controller's prior or posterior is unusable.
    Calib(CalibError),
    /// The device failed; what was measured before is kept.
    Device(E),
}

impl<E: core::fmt::Display> core::fmt::Display for SearchError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SearchError::Buffer { budget, got } => {
                write!(f, "a probe buffer of {got} slots cannot hold a budget of {budget} probes")
            }
            SearchError::ZeroBudget => write!(f, "the probe budget must be at least 1"),
            SearchError::Policy(e) => write!(f, "policy: {e}"),
            SearchError::Calib(e) => write!(f, "calibrated model: {e}"),
            SearchError::Device(e) => write!(f, "device: {e}"),
        }
    }
}

/// The budgeted record of a search: every measurement in order (in the caller's buffer
/// `B`: `&mut [Measured]`, an array, a `Vec`), and the cells measured or found missing.
/// Requests are taken through the record's [`Space`]: in the executed space a cell is
/// measured (and recorded) as its executed network, and a disconnected cell is answered
/// [`Answer::Missing`] without reaching the device.
pub struct Probes<B> {
    buf: B,
    len: usize,
    budget: usize,
    space: Space,
    measured: CellSet,
    missing: CellSet,
}

impl<B: AsRef<[Measured]> + AsMut<[Measured]>> Probes<B> {
    /// A record of at most `budget` probes kept in `buf` (at least `budget` long).
    pub fn new<E>(buf: B, budget: usize) -> Result<Probes<B>, SearchError<E>> {
        if budget == 0 {
            return Err(SearchError::ZeroBudget);
        }
        let got = buf.as_ref().len();
        if got < budget {
            return Err(SearchError::Buffer { budget, got });
        }
        Ok(Probes { buf, len: 0, budget, space: Space::Executed, measured: CellSet::new(), missing: CellSet::new() })
    }

    /// The same record over `space` (default [`Space::Executed`]).
    pub fn in_space(mut self, space: Space) -> Probes<B> {
        self.space = space;
        self
    }

    /// The space requests are taken in.
    pub fn space(&self) -> Space {
        self.space
    }

    /// The most probes the record takes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Probes left.
    pub fn remaining(&self) -> usize {
        self.budget - self.len
    }

    /// Change the budget: a search giving one part of its budget to another (a pool search
    /// gives each device's own search a share). Kept within the probes already made and
    /// the buffer's length.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget.clamp(self.len, self.buf.as_ref().len());
    }

    /// Probes so far, in order (steps from 1).
    pub fn probes(&self) -> &[Measured] {
        self.buf.as_ref().get(..self.len).unwrap_or_default()
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

    /// [`Probes::tried`] for a candidate of the space by its compact code, without
    /// decoding the cell (what a scan over the space's candidates asks): whether that cell
    /// was measured or found missing.
    pub fn tried_code(&self, code: usize) -> bool {
        self.measured.contains_code(code) || self.missing.contains_code(code)
    }

    /// Measure `arch` (its executed network in the executed space) on `dev` (at controller
    /// step `step`), one probe unless it was tried already.
    pub fn measure<D: Device + ?Sized>(&mut self, dev: &mut D, arch: Arch, step: usize) -> Result<Answer, D::Error> {
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
                let Some(slot) = self.buf.as_mut().get_mut(self.len) else { return Ok(Answer::Exhausted) };
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

#[cfg(feature = "std")]
impl Probes<std::vec::Vec<Measured>> {
    /// A record of at most `budget` probes in a buffer of its own, sized to the budget.
    pub fn with_budget<E>(budget: usize) -> Result<Probes<std::vec::Vec<Measured>>, SearchError<E>> {
        let empty = Measured { step: 0, arch: super::LO, latency_ms: 0.0 };
        Probes::new(std::vec![empty; budget], budget)
    }

    /// The probes, in order.
    pub fn into_vec(mut self) -> std::vec::Vec<Measured> {
        self.buf.truncate(self.len);
        self.buf
    }
}
