//! The budgeted connection between a strategy and the host's device: the edge runtime's
//! probe record ([`Probes`], the one the board keeps, here over a `Vec` sized to the
//! budget) and [`SessionDevice`], the host device behind the edge runtime's
//! [`edge_runtime::search::Device`] trait. The baselines measure through
//! [`Session::measure`]; both controllers run on [`Session::record_and_device`], the same
//! record and device.

use super::{Event, Measured, SearchError, Space, HI, LO};
use crate::device::{Device, DeviceError};
use edge_runtime::search::{Answer, Probes};
use simnas_shared::{Arch, NUM_ARCHS};

/// Requests (measured, cached or skipped) after which a session stops answering: a bound
/// on any strategy that keeps asking for cells it already knows or a table does not have.
pub const MAX_ASKS: usize = 4 * NUM_ARCHS;

/// The host's device as the edge runtime's [`edge_runtime::search::Device`]: whatever the
/// device, a latency that is not a positive finite number ends the search
/// ([`DeviceError::BadLatency`]), "not measured" ([`DeviceError::NotMeasured`]) is
/// [`Answer::Missing`] and recorded as skipped, and every probe and skip is reported to the
/// observer.
pub struct SessionDevice<'a> {
    device: &'a mut dyn Device,
    skipped: Vec<Arch>,
    observe: &'a mut dyn FnMut(Event),
    /// The number the next probe gets: [`Probes::measure`] records every latency this
    /// device answers (it asks only while the budget has room).
    next_step: usize,
}

impl edge_runtime::search::Device for SessionDevice<'_> {
    type Error = SearchError;

    fn measure(&mut self, arch: Arch, _step: usize) -> Result<Answer, SearchError> {
        let step = self.next_step;
        match self.device.probe(arch) {
            // Whatever the device, a pick is never made of a latency that is none.
            Ok(p) if !(p.latency_ms.is_finite() && p.latency_ms > 0.0) => Err(SearchError::Probe {
                step,
                arch: arch.to_string(),
                source: DeviceError::BadLatency { latency_ms: p.latency_ms },
            }),
            Ok(p) => {
                self.next_step += 1;
                (self.observe)(Event::Probe(&Measured { step, arch, latency_ms: p.latency_ms }));
                Ok(Answer::Latency(p.latency_ms))
            }
            Err(DeviceError::NotMeasured { .. }) => {
                self.skipped.push(arch);
                (self.observe)(Event::Skipped(arch));
                Ok(Answer::Missing)
            }
            Err(source) => Err(SearchError::Probe { step, arch: arch.to_string(), source }),
        }
    }
}

/// The budgeted connection between a strategy and the device: every measurement goes
/// through here and is recorded.
pub struct Session<'a> {
    probes: Probes<Vec<Measured>>,
    device: SessionDevice<'a>,
    asks: usize,
    range_factor: f64,
}

impl<'a> Session<'a> {
    /// A session of at most `budget` probes on `device`, over `space`: in the executed
    /// space every request measures the cell's executed network (recorded as such) and a
    /// disconnected cell is answered [`Answer::Missing`] without a probe.
    pub fn new(
        device: &'a mut dyn Device,
        budget: usize,
        space: Space,
        observe: &'a mut dyn FnMut(Event),
    ) -> Result<Session<'a>, SearchError> {
        let probes = Probes::with_budget::<()>(budget).map_err(|_| SearchError::ZeroBudget)?.in_space(space);
        Ok(Session {
            probes,
            device: SessionDevice { device, skipped: Vec::new(), observe, next_step: 1 },
            asks: 0,
            range_factor: 1.0,
        })
    }

    /// Probes left.
    pub fn remaining(&self) -> usize {
        if self.asks >= MAX_ASKS {
            0
        } else {
            self.probes.remaining()
        }
    }

    /// Score the pick with the latency range estimated as `factor` times the probed range
    /// (default 1).
    pub fn set_range_factor(&mut self, factor: f64) {
        if factor.is_finite() && factor > 0.0 {
            self.range_factor = factor;
        }
    }

    /// The range factor the pick is scored with.
    pub fn range_factor(&self) -> f64 {
        self.range_factor
    }

    /// Change the budget (a pool search gives each device's own search a share of it),
    /// within the probes already made and the budget the session was opened with.
    pub fn limit_budget(&mut self, budget: usize) {
        self.probes.set_budget(budget);
    }

    /// Probes so far.
    pub fn probes(&self) -> &[Measured] {
        self.probes.probes()
    }

    /// The space the session measures in.
    pub fn space(&self) -> Space {
        self.probes.space()
    }

    /// True when `arch` is a candidate of the space not tried yet: what a scan over the
    /// space may still ask for.
    pub fn candidate(&self, arch: Arch) -> bool {
        self.space().contains(arch) && !self.tried(arch)
    }

    /// The measured latency of `arch` (its executed network's), if it was probed.
    pub fn known(&self, arch: Arch) -> Option<f64> {
        self.probes.known(arch)
    }

    /// True if asking for `arch` teaches nothing: what it measures was probed or found
    /// missing, or it is no candidate of the space.
    pub fn tried(&self, arch: Arch) -> bool {
        self.probes.tried(arch)
    }

    /// Measure `arch` (its executed network in the executed space; one probe unless
    /// already measured). After [`MAX_ASKS`] requests a cell not tried yet is answered
    /// [`Answer::Exhausted`].
    pub fn measure(&mut self, arch: Arch) -> Result<Answer, SearchError> {
        self.asks += 1;
        if self.asks >= MAX_ASKS && !self.probes.tried(arch) {
            return Ok(Answer::Exhausted);
        }
        self.probes.measure(&mut self.device, arch, 0)
    }

    /// Measure the two reference cells (`lo`, then `hi`) if at least two probes are left.
    pub fn measure_references(&mut self) -> Result<(), SearchError> {
        if self.remaining() >= 2 {
            self.measure(LO)?;
            self.measure(HI)?;
        }
        Ok(())
    }

    /// The record and the device, for a controller of the edge runtime (the code a board
    /// runs) to spend the session's budget on. Controllers are bounded by construction, so
    /// their requests do not count towards [`MAX_ASKS`].
    pub fn record_and_device(&mut self) -> (&mut Probes<Vec<Measured>>, &mut SessionDevice<'a>) {
        (&mut self.probes, &mut self.device)
    }

    /// The probes in order and the cells the device could not measure.
    pub fn finish(self) -> (Vec<Measured>, Vec<Arch>) {
        (self.probes.into_vec(), self.device.skipped)
    }
}
