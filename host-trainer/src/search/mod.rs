//! Test-time search: find the best cell for a device with at most `budget` latency probes.
//!
//! **Objectives** ([`Objective`]).
//! * Weighted (the paper's reward): `f(h) = w * TF(h) + (1 - w) * (1 - l(h))`, with
//!   `l(h) = clamp((lat(h) - lat(lo)) / (lat(hi) - lat(lo)), 0, 1)` where `lo` is the
//!   all-`skip_connect` cell and `hi` the all-`nor_conv_3x3` cell ([`LO`], [`HI`]): the
//!   search estimates the device's latency range from its own probes of these two reference
//!   cells, the rule training uses on synthetic devices. Every strategy measures both
//!   first (they are also candidates). If a reference could not be measured (budget 1, or a
//!   table without it) or `lat(hi) <= lat(lo)`, the range falls back to the min and max of
//!   the latencies measured so far ([`Normaliser::of`]).
//!
//!   Cells are scored with `l` *unclamped* ([`Normaliser::linear`]): the order the weighted
//!   objective puts on cells depends only on the width of the latency range (maximising
//!   `w TF - (1 - w) lat / (hi - lo)`), while clamping at `lo` would make every cell faster
//!   than all-skip look equally fast (many are: cells with `none` edges). The paper's
//!   policy (`controller-paper`) still observes the clamped `l` it was trained with.
//! * Constrained: maximise `TF(h)` subject to the *measured* latency `<= max_latency_ms`.
//!
//! **Guarantees** (structural: the pick is chosen here, by [`pick`], from the probes the
//! [`Session`] recorded; no strategy can return anything else):
//! * at most `budget` probes reach the device (a cell measured twice is answered from the
//!   first measurement and costs nothing);
//! * the pick is a measured cell and its reported latency is that measurement;
//! * in constrained mode the pick satisfies the constraint by measurement, or there is no
//!   pick (`result: null` in the JSON, exit status 2 from `simnas search`).
//!
//! A table device without a value for a cell (e.g. BRP-NAS's disconnected cells) answers
//! "not measured": the session records the cell as skipped, spends no budget on it, and
//! the strategy moves on. Any other device error ends the search; what was measured until
//! then is kept in the [`SearchOutcome`].
//!
//! **Strategies** ([`Strategy`], same budget for all): `random`, `evolution`
//! (regularised evolution, proxy-guided), `lut-prior` (zero-shot ranking with the mean LUT
//! of the training devices, top candidates verified), `lut-probe` (five single-op cells
//! measured, the device's per-op LUT solved from them, best candidates verified),
//! `oracle` (table devices only: reads the whole table; a reference), `controller` (the
//! default: the calibrated controller) and `controller-paper` (the paper's meta-trained RL
//! policy). See [`strategies`]; their figures are in `artifacts/*/README.md`, next to the
//! commands that measured them.

pub mod eval;
pub mod json;
pub mod plot;
pub mod pool;
mod session;
pub mod strategies;

use crate::device::{Device, DeviceError};
use crate::latency::LatencyTable;
use crate::synth::lut::Lut;
use simnas_shared::{Arch, NUM_ARCHS};

/// The reference cells, a device's answer, the measurement record, the latency
/// normalisation and the pick are edge-runtime's: the board's on-device search runs the
/// same code.
pub use edge_runtime::search::{weighted, Answer, Measured, Normaliser, Pick, Space, HI, LO};
pub use session::{Session, SessionDevice, MAX_ASKS};

/// What the search maximises (the search record's type).
pub use simnas_formats::search::Objective;

/// Checking an [`Objective`]'s parameters.
pub trait ObjectiveExt {
    /// Check the parameters.
    fn validate(&self) -> Result<(), SearchError>;
}

impl ObjectiveExt for Objective {
    fn validate(&self) -> Result<(), SearchError> {
        match *self {
            Objective::Weighted { weight } if !(0.0..=1.0).contains(&weight) => {
                Err(SearchError::Objective(format!("weight {weight} outside [0, 1]")))
            }
            Objective::Constraint { max_latency_ms } if !(max_latency_ms.is_finite() && max_latency_ms > 0.0) => {
                Err(SearchError::Objective(format!("latency limit {max_latency_ms} ms is not a positive number")))
            }
            _ => Ok(()),
        }
    }
}

/// How candidates are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// The calibrated controller: a per-op latency model with a meta-learned prior,
    /// calibrated by every probe; each probe measures the cell it ranks best.
    Controller,
    /// The paper's configuration: the meta-trained RL policy (edits one edge per step from
    /// its probe history).
    ControllerPaper,
    /// Uniformly random distinct cells.
    Random,
    /// Regularised evolution: mutate the best of a tournament, children chosen by the proxy.
    Evolution,
    /// Zero-shot: rank the space by the training devices' mean LUT and TF, verify the top.
    LutPrior,
    /// Measure five single-op cells, solve the device's per-op LUT, verify the best.
    LutProbe,
    /// Reads the whole table (table devices only): the reference, not a search.
    Oracle,
}

impl Strategy {
    /// The baselines and the reference, in report order.
    pub const BASELINES: [Strategy; 5] =
        [Strategy::Random, Strategy::Evolution, Strategy::LutPrior, Strategy::LutProbe, Strategy::Oracle];

    /// The most probes the strategy can spend, when it is bounded: the calibrated
    /// controller at most [`edge_runtime::search::calibrated::MAX_BUDGET`] probes (the
    /// record a board keeps for it; the host accepts the same budgets), the paper's walk
    /// the references, its start and one cell per step of its training episode.
    pub fn max_budget(self) -> Option<usize> {
        match self {
            Strategy::Controller => Some(edge_runtime::search::calibrated::MAX_BUDGET),
            Strategy::ControllerPaper => Some(edge_runtime::search::paper::MAX_WALK_PROBES),
            _ => None,
        }
    }

    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Controller => "controller",
            Strategy::ControllerPaper => "controller-paper",
            Strategy::Random => "random",
            Strategy::Evolution => "evolution",
            Strategy::LutPrior => "lut-prior",
            Strategy::LutProbe => "lut-probe",
            Strategy::Oracle => "oracle",
        }
    }
}

/// Why a search stopped early or could not start.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A budget of zero probes.
    #[error("the probe budget must be at least 1")]
    ZeroBudget,
    /// More probes than the strategy can spend.
    #[error("--budget {budget}: {strategy} spends at most {cap} probes ({why}); ask for {cap} or fewer, or choose another --strategy")]
    BudgetAboveCap {
        /// The strategy.
        strategy: &'static str,
        /// The budget asked for.
        budget: usize,
        /// Its most.
        cap: usize,
        /// Where the bound comes from.
        why: &'static str,
    },
    /// More probes than the space has candidates.
    #[error("--budget {budget}: the {space} space has only {size} networks to measure")]
    BudgetAboveSpace {
        /// The budget asked for.
        budget: usize,
        /// The space.
        space: &'static str,
        /// Its candidates.
        size: usize,
    },
    /// Bad objective parameters.
    #[error("invalid objective: {0}")]
    Objective(String),
    /// The score table does not cover the space.
    #[error("the score table has {0} cells; the space has {NUM_ARCHS}")]
    Scores(usize),
    /// A probe failed (board error, timeout, ...). The device's error is the `source`
    /// ([`SearchError::message`] says both).
    #[error("probe {step} ({arch}) failed")]
    Probe {
        /// 1-based step of the failed probe.
        step: usize,
        /// The cell.
        arch: String,
        /// The device's error.
        source: DeviceError,
    },
    /// The policy file is unusable.
    #[error("policy {0}")]
    Policy(String),
    /// A strategy needs something the run was not given.
    #[error("{strategy} needs {what}")]
    Unavailable {
        /// The strategy.
        strategy: &'static str,
        /// What is missing.
        what: String,
    },
}

/// An error and every cause under it, `: `-separated (as `{:#}` prints an anyhow chain).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text += &format!(": {c}");
        cause = c.source();
    }
    text
}

impl SearchError {
    /// The error and every cause under it, `: `-separated (as `{:#}` prints an anyhow chain).
    pub fn message(&self) -> String {
        error_chain(self)
    }
}

/// Live events.
#[derive(Clone, Copy, Debug)]
pub enum Event<'a> {
    /// A probe completed.
    Probe(&'a Measured),
    /// The device has no measurement of this cell (no budget spent).
    Skipped(Arch),
}

/// Everything a search produced, also when it failed part way.
#[derive(Debug)]
pub struct SearchOutcome {
    /// Probes in order.
    pub probes: Vec<Measured>,
    /// Cells the device could not measure (not counted against the budget).
    pub skipped: Vec<Arch>,
    /// The pick; `None` if nothing was measured or, constrained, nothing measured was feasible.
    pub pick: Option<Pick>,
    /// Why the search stopped early, if it did.
    pub error: Option<SearchError>,
    /// The latency range the pick was scored with, as a multiple of the probed reference
    /// range (1 unless the strategy estimated it wider).
    pub range_factor: f64,
}

/// What a search may use besides the device.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// `TF(h)` per [`simnas_shared::ArchCode`] (15,625 values in `[0, 1]`).
    pub tf: &'a [f64],
    /// The zero-shot prior: the mean LUT of the training devices (`lut-prior`).
    pub prior: Option<&'a Lut>,
    /// The device's whole table (`oracle` only).
    pub table: Option<&'a LatencyTable>,
    /// The meta-trained RL policy (`controller-paper`).
    pub policy: Option<&'a dyn strategies::Policy>,
    /// The calibrated controller's meta-learned prior (`controller`).
    pub calib: Option<&'a edge_runtime::calib::Prior>,
}

/// A search's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchConfig {
    /// Candidate selection.
    pub strategy: Strategy,
    /// Maximum probes.
    pub budget: usize,
    /// What to maximise.
    pub objective: Objective,
    /// Seed of every random choice.
    pub seed: u64,
    /// The cells the search may measure (default: the connected executed networks).
    pub space: Space,
}

impl SearchConfig {
    /// Check what can be checked before any probe: a budget of at least one probe, within
    /// what the strategy can spend and what the space holds, and the objective's parameters.
    pub fn validate(&self) -> Result<(), SearchError> {
        if self.budget == 0 {
            return Err(SearchError::ZeroBudget);
        }
        if let Some(cap) = self.strategy.max_budget().filter(|&c| self.budget > c) {
            let why = match self.strategy {
                Strategy::Controller => "the probe record the board also keeps",
                _ => "the references, its start and one cell per step of its 50-step episode",
            };
            return Err(SearchError::BudgetAboveCap { strategy: self.strategy.name(), budget: self.budget, cap, why });
        }
        if self.budget > self.space.len() {
            return Err(SearchError::BudgetAboveSpace {
                budget: self.budget,
                space: self.space.name(),
                size: self.space.len(),
            });
        }
        self.objective.validate()
    }
}

/// The best measured cell under `objective` (ties: lower latency, then the earlier probe).
pub fn pick(objective: &Objective, tf: &[f64], probes: &[Measured]) -> Option<Pick> {
    pick_with(objective, tf, probes, 1.0)
}

/// [`pick`] with the latency range estimated as `range_factor` times the probed one.
pub fn pick_with(objective: &Objective, tf: &[f64], probes: &[Measured], range_factor: f64) -> Option<Pick> {
    let tf_of = |a: Arch| tf[a.code().get() as usize];
    edge_runtime::search::pick_with(&objective.edge(), tf_of, probes, range_factor)
}

/// Run one search. Never panics on device errors: the outcome keeps what was measured.
pub fn search(
    cfg: &SearchConfig,
    ctx: &Context,
    device: &mut dyn Device,
    observe: &mut dyn FnMut(Event),
) -> SearchOutcome {
    let fail = |e| SearchOutcome { probes: vec![], skipped: vec![], pick: None, error: Some(e), range_factor: 1.0 };
    if let Err(e) = cfg.validate() {
        return fail(e);
    }
    if ctx.tf.len() != NUM_ARCHS {
        return fail(SearchError::Scores(ctx.tf.len()));
    }
    let mut session = match Session::new(device, cfg.budget, cfg.space, observe) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let error = strategies::run(cfg, ctx, &mut session).err();
    debug_assert!(session.probes().len() <= cfg.budget);
    let range_factor = session.range_factor();
    let pick = pick_with(&cfg.objective, ctx.tf, session.probes(), range_factor);
    let (probes, skipped) = session.finish();
    SearchOutcome { probes, skipped, pick, error, range_factor }
}

#[cfg(test)]
mod tests;
