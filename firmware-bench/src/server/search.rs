//! The search on the board: one of edge-runtime's controllers (the calibrated loop,
//! [`edge_runtime::search::calibrated`], the code `simnas search --strategy controller` runs
//! on the host, or the paper's walk, [`edge_runtime::search::paper`], `controller-paper`)
//! on the board's [`Probes`] record with the board itself as the [`Device`]. Each
//! candidate network is timed in place exactly as a host `Probe` is ([`Server::measure`]);
//! each probe is streamed as a [`SearchProbe`] the moment it is measured, and a [`Final`]
//! closes the search.
//!
//! The controller's own time is measured with the board's timer: a probe's
//! `controller_ticks` are the ticks between the end of the previous probe and the start of
//! this one (policy inference or the calibrated scan, bookkeeping; the serial output of the
//! previous record is excluded), the final record adds the pick.

use super::Server;
use crate::board::Board;
use edge_runtime::calib::Prior;
use edge_runtime::policy::{Policy, PolicyError};
use edge_runtime::search::calibrated::{self, Calibration, Groups, MAX_BUDGET as CALIB_MAX_BUDGET};
use edge_runtime::search::paper::{Stop, Walker, MAX_WALK_PROBES, PRIOR_TOP};
use edge_runtime::search::{pick_with, Answer, Device, Measured, Objective, Pick, Probes, SearchError, LO};
use edge_runtime::tf16::{Tf16, Tf16Error};
use simnas_shared::protocol::{BoardMsg, ErrorCode, Final, SearchProbe, SearchStop};
use simnas_shared::{Arch, ArchCode};

/// What the on-board search runs with: the embedded files and the settings (for the
/// firmware, [`crate::embedded::inputs`]).
#[derive(Clone, Copy, Debug)]
pub struct SearchInputs<'a> {
    /// Policy file (safetensors), validated when a search starts.
    pub policy: &'a [u8],
    /// Quantised score table (.tf16), validated when a search starts.
    pub scores: &'a [u8],
    /// The zero-shot prior's best cells (ArchCodes, best first; empty: start at all-skip).
    pub start: &'a [u16],
    /// The policy observes TF.
    pub obs_tf: bool,
    /// The calibrated controller's prior: the controller the board runs (`None`: the
    /// paper's RL walk with `policy`).
    pub calib: Option<&'a edge_runtime::calib::Prior>,
    /// The calibrated scan's cell groups, built from `scores` at build time.
    pub groups: Groups<'a>,
    /// Weight of TF in the objective (the pick).
    pub weight: f64,
    /// Untimed runs per probe.
    pub warmup: u16,
    /// Timed runs per probe.
    pub repeats: u16,
}

/// The number a policy error travels as in `ErrorReport::detail`.
pub fn policy_detail(e: PolicyError) -> u32 {
    use PolicyError::*;
    match e {
        Truncated { .. } => 1,
        HeaderTooLarge { .. } => 2,
        HeaderSyntax { .. } => 3,
        HeaderDepth => 4,
        TensorFields => 5,
        TensorRank => 6,
        DType { .. } => 7,
        Duplicate { .. } => 8,
        Missing { .. } => 9,
        TooManyLayers => 10,
        Shape { .. } => 11,
        HiddenTooWide { .. } => 12,
        Offsets { .. } => 13,
        NonFinite { .. } => 14,
        FormatVersion => 15,
        Activation => 16,
        ObsLayout => 17,
        BufferLength { .. } => 18,
        _ => 0,
    }
}

/// The number a score-table error travels as in `ErrorReport::detail`.
pub fn scores_detail(e: Tf16Error) -> u32 {
    match e {
        Tf16Error::Length { .. } => 1,
        Tf16Error::Magic(_) => 2,
        Tf16Error::Version(_) => 3,
        Tf16Error::Count(_) => 4,
        Tf16Error::Crc { .. } => 5,
        Tf16Error::Range(_) => 6,
        Tf16Error::Flags(_) => 7,
        _ => 0,
    }
}

/// The most probes either controller records: the paper walk's and the calibrated loop's
/// (the length of the board's record).
const MAX_PROBES: usize = if MAX_WALK_PROBES > CALIB_MAX_BUDGET { MAX_WALK_PROBES } else { CALIB_MAX_BUDGET };

/// The board's record: a fixed array of [`MAX_PROBES`] slots.
type Record<'b> = Probes<&'b mut [Measured]>;

/// The board as the controllers' device.
struct OnBoard<'s, 'a, B: Board> {
    server: &'s mut Server<'a, B>,
    id: u32,
    warmup: u16,
    repeats: u16,
    /// When the previous probe (and its record) ended.
    last_end: u64,
    /// Median ticks of every probe so far, by index.
    medians: [u64; MAX_PROBES],
    probes: u16,
    controller_ticks: u64,
    probe_ticks: u64,
    max_step_ticks: u64,
    ticks_per_second: u64,
}

impl<'s, 'a, B: Board> OnBoard<'s, 'a, B> {
    /// The board as the device of search `id`, its clocks started now.
    fn new(server: &'s mut Server<'a, B>, id: u32) -> Self {
        let inputs = server.work.search;
        let last_end = server.board.ticks();
        let ticks_per_second = server.board.ticks_per_second();
        OnBoard {
            server,
            id,
            warmup: inputs.warmup,
            repeats: inputs.repeats,
            last_end,
            medians: [0; MAX_PROBES],
            probes: 0,
            controller_ticks: 0,
            probe_ticks: 0,
            max_step_ticks: 0,
            ticks_per_second,
        }
    }
}

impl<B: Board> OnBoard<'_, '_, B> {
    /// Send the search's `Final` record.
    fn finish(self, budget: u16, steps: u16, stop: SearchStop, chosen: Option<Pick>, controller_ticks: u64) {
        let pick_index = chosen.map_or(0, |p| p.step);
        let record = Final {
            id: self.id,
            budget,
            probes: self.probes,
            steps,
            stop,
            arch: chosen.map(|p| p.arch.code()),
            pick_index: u16::try_from(pick_index).unwrap_or(0),
            pick_ticks: pick_index.checked_sub(1).and_then(|i| self.medians.get(i)).copied().unwrap_or(0),
            score: chosen.map_or(0.0, |p| p.score as f32),
            ticks_per_second: self.ticks_per_second,
            controller_ticks,
            probe_ticks: self.probe_ticks,
            max_step_ticks: self.max_step_ticks,
        };
        self.server.send(&BoardMsg::Final(record));
    }
}

impl<B: Board> Device for OnBoard<'_, '_, B> {
    type Error = (ErrorCode, u32);

    fn measure(&mut self, arch: Arch, step: usize) -> Result<Answer, (ErrorCode, u32)> {
        let t0 = self.server.board.ticks();
        let controller = t0.saturating_sub(self.last_end);
        let timing = self.server.measure(arch.code(), self.warmup, self.repeats)?;
        let probe = self.server.board.ticks().saturating_sub(t0);
        if let Some(m) = self.medians.get_mut(usize::from(self.probes)) {
            *m = timing.median_ticks;
        }
        self.probes += 1;
        self.controller_ticks += controller;
        self.probe_ticks += probe;
        if step > 0 {
            self.max_step_ticks = self.max_step_ticks.max(controller);
        }
        self.ticks_per_second = timing.ticks_per_second;
        self.server.send(&BoardMsg::SearchProbe(SearchProbe {
            id: self.id,
            index: self.probes,
            step: u16::try_from(step).unwrap_or(u16::MAX),
            arch: arch.code(),
            timing,
            probe_ticks: probe,
            controller_ticks: controller,
        }));
        self.last_end = self.server.board.ticks();
        Ok(Answer::Latency(timing.median_ms()))
    }
}

/// How a controller's search ended, for the `Final` record.
struct Ended {
    stop: SearchStop,
    steps: usize,
}

/// A controller the board runs on its record, with the board as the device.
trait Controller {
    /// The most probes it spends: the budget cap (and the detail of a `Budget` error).
    const MAX_BUDGET: usize;
    /// Spend the record's budget on `dev`.
    fn run<D: Device>(&mut self, probes: &mut Record<'_>, dev: &mut D) -> Result<Ended, SearchError<D::Error>>;
    /// The latency range the pick is scored with, in units of the probed reference range.
    fn range(&self) -> f64;
    /// The `Final`'s `steps` after a failure (the probes measured until then).
    fn steps_on_failure(&self, probes: &[Measured]) -> usize;
}

/// The paper's RL walk: `steps` are its policy decisions.
struct PaperWalk<'p, 'w, T> {
    walker: Walker<'p, 'w>,
    start: [Arch; PRIOR_TOP],
    starts: usize,
    tf: T,
}

impl<T: Fn(Arch) -> f64> Controller for PaperWalk<'_, '_, T> {
    const MAX_BUDGET: usize = MAX_WALK_PROBES;

    fn run<D: Device>(&mut self, probes: &mut Record<'_>, dev: &mut D) -> Result<Ended, SearchError<D::Error>> {
        let start = self.start.get(..self.starts).unwrap_or_default();
        let r = self.walker.walk(&self.tf, start, probes, dev)?;
        let stop = match r.stop {
            Stop::Budget | Stop::Exhausted => SearchStop::Budget,
            Stop::NoStart => SearchStop::NoStart,
            Stop::NoAction => SearchStop::NoAction,
            Stop::EpisodeEnd => SearchStop::EpisodeEnd,
        };
        Ok(Ended { stop, steps: r.steps })
    }

    fn range(&self) -> f64 {
        1.0
    }

    fn steps_on_failure(&self, _: &[Measured]) -> usize {
        // The walk's report is lost with its error.
        0
    }
}

/// The calibrated controller: `steps` are its probes.
struct CalibratedLoop<'a, T> {
    prior: &'a Prior,
    weight: f64,
    tf: T,
    groups: Groups<'a>,
    cal: Calibration,
}

impl<T: Fn(usize) -> f64> Controller for CalibratedLoop<'_, T> {
    const MAX_BUDGET: usize = CALIB_MAX_BUDGET;

    fn run<D: Device>(&mut self, probes: &mut Record<'_>, dev: &mut D) -> Result<Ended, SearchError<D::Error>> {
        calibrated::search(self.prior, self.weight, &self.tf, self.groups, probes, dev, &mut self.cal)?;
        Ok(Ended { stop: SearchStop::Budget, steps: probes.probes().len() })
    }

    fn range(&self) -> f64 {
        self.cal.range()
    }

    fn steps_on_failure(&self, probes: &[Measured]) -> usize {
        probes.len()
    }
}

impl<B: Board> Server<'_, B> {
    /// Run the search with `budget` probes and stream its records (answers `Search`, and
    /// runs at boot with the `autonomous` feature): the calibrated controller when a prior
    /// is embedded, else the paper's walk. Unusable inputs or a bad budget are answered
    /// with an `Error` naming `id`; a failed probe with its `Error`, then the `Final` of
    /// what was measured.
    pub fn search(&mut self, id: u32, budget: u16) {
        let inputs = self.work.search;
        if let Some(prior) = inputs.calib {
            let scores = match Tf16::parse(inputs.scores) {
                Ok(s) => s,
                Err(e) => return self.send_error(ErrorCode::Scores, Some(id), scores_detail(e)),
            };
            if prior.validate().is_err() {
                return self.send_error(ErrorCode::Policy, Some(id), 0);
            }
            let tf = |c: usize| ArchCode::new(c as u16).map_or(0.0, |code| scores.tf(&Arch::from_code(code)));
            let controller =
                CalibratedLoop { prior, weight: inputs.weight, tf, groups: inputs.groups, cal: Calibration::new() };
            return self.run_search(id, budget, controller, |a| scores.tf(&a));
        }
        let policy = match Policy::from_bytes(inputs.policy) {
            Ok(p) => p,
            Err(e) => return self.send_error(ErrorCode::Policy, Some(id), policy_detail(e)),
        };
        let scores = match Tf16::parse(inputs.scores) {
            Ok(s) => s,
            Err(e) => return self.send_error(ErrorCode::Scores, Some(id), scores_detail(e)),
        };
        let mut start = [LO; PRIOR_TOP];
        let mut starts = 0;
        for (slot, code) in start.iter_mut().zip(inputs.start.iter().filter_map(|&c| ArchCode::new(c))) {
            *slot = Arch::from_code(code);
            starts += 1;
        }
        let tf = |a: Arch| scores.tf(&a);
        let walker = Walker { policy: &policy, obs_tf: inputs.obs_tf };
        self.run_search(id, budget, PaperWalk { walker, start, starts, tf }, tf);
    }

    /// [`Server::search`] with its controller chosen and its inputs validated: the budget
    /// checked against the controller's cap, the controller run on the board's record, the
    /// pick (`tf` the proxy score) with the controller's range estimate, the `Final`.
    fn run_search<C: Controller>(&mut self, id: u32, budget: u16, mut controller: C, tf: impl Fn(Arch) -> f64) {
        let objective = Objective::Weighted { weight: self.work.search.weight };
        let n = usize::from(budget);
        if n == 0 || n > C::MAX_BUDGET {
            return self.send_error(ErrorCode::Budget, Some(id), C::MAX_BUDGET as u32);
        }
        let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; MAX_PROBES];
        let mut dev = OnBoard::new(self, id);
        let (result, chosen, failed_steps) = match Probes::new(&mut buf[..], n) {
            Ok(mut probes) => {
                let result = controller.run(&mut probes, &mut dev);
                let chosen = pick_with(&objective, &tf, probes.probes(), controller.range());
                (result, chosen, controller.steps_on_failure(probes.probes()))
            }
            Err(e) => (Err(e), None, 0),
        };
        let end = dev.server.board.ticks();
        let controller_ticks = dev.controller_ticks + end.saturating_sub(dev.last_end);
        let (stop, steps) = match result {
            Ok(ended) => (ended.stop, ended.steps),
            Err(e) => {
                let (code, detail) = match e {
                    SearchError::Device(cd) => cd,
                    SearchError::Policy(p) => (ErrorCode::Policy, policy_detail(p)),
                    SearchError::Calib(_) => (ErrorCode::Policy, 0),
                    SearchError::Buffer { .. } | SearchError::ZeroBudget => (ErrorCode::Budget, C::MAX_BUDGET as u32),
                    _ => (ErrorCode::Unsupported, 0),
                };
                dev.server.send_error(code, Some(id), detail);
                (SearchStop::Failed, failed_steps)
            }
        };
        dev.finish(budget, u16::try_from(steps).unwrap_or(u16::MAX), stop, chosen, controller_ticks);
    }
}
