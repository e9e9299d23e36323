//! Multi-device search: one network for a pool of devices.
//!
//! The objective is either the weighted one averaged over the pool (each device's latency
//! normalised on its own: `w TF + (1 - w)(1 - mean_d l_d)`) or the constrained one with a
//! limit per device (maximise TF subject to every device's measured latency within its
//! limit). The budget is the **total** number of probes over the pool: a probe measures one
//! cell on one device and says nothing measured about the others.
//!
//! The pick is always a cell measured on every device of the pool ([`pool_pick`]); a cell
//! measured on some devices only is never reported.
//!
//! Strategies ([`PoolStrategy`]):
//! * `pool` (default): the calibrated controller's latency model, one posterior per device
//!   from the shared meta-learned prior, and one decision over the pool. After the two
//!   reference cells on every device, each step scores every candidate on the pool
//!   objective (measured latencies where a device measured the cell, the device's
//!   posterior prediction elsewhere), takes the best candidate not measured everywhere and
//!   measures it on the device whose answer is the least certain (weighted) or the most
//!   likely to break its limit (constrained). A candidate that turns out slow (or over a
//!   limit) on its first device is dropped before any other device spends a probe on it:
//!   that is where the probes an independent search spends are saved.
//! * `independent`: the baseline. Each device searched alone by the calibrated controller
//!   with an equal share of the budget (its own limit, or the weighted objective on its own
//!   scale), then every device's pick measured on every other device; the pick is the best
//!   cell measured on all.

use super::strategies::members;
use super::ObjectiveExt as _;
use super::{
    pick_with, Answer, Context, Event, Measured, Normaliser, Objective, SearchConfig, SearchError, Session, Space,
    Strategy, HI, LO,
};
use crate::device::{Device, DeviceError, Probe};
use edge_runtime::calib::{predict, Posterior, Precision, Prior, RangeRule, Sums, DEAD_EDGE_CELL};
use simnas_shared::{Arch, NUM_ARCHS};
use std::cell::RefCell;

/// How the pool's probes are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum PoolStrategy {
    /// One decision over the pool: which cell to measure on which device next.
    Pool,
    /// Each device searched alone with an equal share, then the picks measured everywhere.
    Independent,
}

impl PoolStrategy {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PoolStrategy::Pool => "pool",
            PoolStrategy::Independent => "independent",
        }
    }
}

/// What a pool search maximises.
#[derive(Clone, Debug, PartialEq)]
pub enum PoolObjective {
    /// `w TF + (1 - w)(1 - mean_d l_d)`, each device's latency on its own scale.
    Weighted {
        /// `w` in `[0, 1]`.
        weight: f64,
    },
    /// TF subject to `lat_d <= max_latency_ms[d]` on every device `d`.
    Constraint {
        /// One limit per device, ms, in the pool's order.
        max_latency_ms: Vec<f64>,
    },
}

impl PoolObjective {
    /// The objective device `d` is searched with alone.
    pub fn for_device(&self, d: usize) -> Objective {
        match self {
            PoolObjective::Weighted { weight } => Objective::Weighted { weight: *weight },
            PoolObjective::Constraint { max_latency_ms } => {
                Objective::Constraint { max_latency_ms: max_latency_ms.get(d).copied().unwrap_or(f64::NAN) }
            }
        }
    }
}

/// A pool search's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    /// How probes are chosen.
    pub strategy: PoolStrategy,
    /// Total probes over the pool.
    pub budget: usize,
    /// What to maximise.
    pub objective: PoolObjective,
    /// Seed of every random choice.
    pub seed: u64,
    /// The cells the search may measure.
    pub space: Space,
}

/// Why a pool search could not start or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Fewer than two devices.
    #[error("a pool needs at least two devices (got {0}); for one device leave out the pool flags")]
    TooFew(usize),
    /// The same device twice.
    #[error("device {name} is listed twice (devices {first} and {second}): a pool measures each device once")]
    Duplicate {
        /// The device.
        name: String,
        /// Its first position (1-based).
        first: usize,
        /// Its second position (1-based).
        second: usize,
    },
    /// Limits that do not match the devices.
    #[error(
        "{limits} latency limits for {devices} devices: give one --max-latency-ms per --device, in the same order"
    )]
    LimitCount {
        /// Limits given.
        limits: usize,
        /// Devices.
        devices: usize,
    },
    /// A budget the strategy cannot spend usefully.
    #[error("--budget {budget}: {strategy} on {devices} devices needs at least {least} probes ({why})")]
    BudgetTooSmall {
        /// The strategy.
        strategy: &'static str,
        /// The budget.
        budget: usize,
        /// Devices.
        devices: usize,
        /// The least it needs.
        least: usize,
        /// Why.
        why: &'static str,
    },
    /// The search on one device failed (the device's error is the source).
    #[error("device {device} ({name})")]
    Device {
        /// 1-based position in the pool.
        device: usize,
        /// Its name.
        name: String,
        /// What failed.
        source: Box<SearchError>,
    },
    /// What every device's search shares (objective parameters, scores, the prior).
    #[error(transparent)]
    Search(Box<SearchError>),
}

impl From<SearchError> for PoolError {
    fn from(e: SearchError) -> PoolError {
        PoolError::Search(Box::new(e))
    }
}

impl PoolError {
    /// The error and every cause under it, `: `-separated.
    pub fn message(&self) -> String {
        super::error_chain(self)
    }
}

impl PoolConfig {
    /// Check the pool before any probe: at least two devices, no device twice (by name),
    /// one limit per device, a budget the strategy can spend.
    pub fn validate(&self, names: &[String]) -> Result<(), PoolError> {
        let n = names.len();
        if n < 2 {
            return Err(PoolError::TooFew(n));
        }
        for (j, b) in names.iter().enumerate() {
            if let Some(i) = names[..j].iter().position(|a| a == b) {
                return Err(PoolError::Duplicate { name: b.clone(), first: i + 1, second: j + 1 });
            }
        }
        match &self.objective {
            PoolObjective::Constraint { max_latency_ms } if max_latency_ms.len() != n => {
                return Err(PoolError::LimitCount { limits: max_latency_ms.len(), devices: n });
            }
            PoolObjective::Constraint { max_latency_ms } => {
                for &l in max_latency_ms {
                    Objective::Constraint { max_latency_ms: l }.validate()?;
                }
            }
            PoolObjective::Weighted { weight } => Objective::Weighted { weight: *weight }.validate()?,
        }
        let (least, why) = match self.strategy {
            PoolStrategy::Pool => (n, "one network measured on every device"),
            PoolStrategy::Independent => (n * n, "one probe per device and each pick measured on every other device"),
        };
        if self.budget < least {
            return Err(PoolError::BudgetTooSmall {
                strategy: self.strategy.name(),
                budget: self.budget,
                devices: n,
                least,
                why,
            });
        }
        if self.budget > n * self.space.len() {
            return Err(SearchError::BudgetAboveSpace {
                budget: self.budget,
                space: self.space.name(),
                size: n * self.space.len(),
            }
            .into());
        }
        Ok(())
    }
}

/// One probe of a pool search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolProbe {
    /// 1-based probe number over the pool.
    pub step: usize,
    /// Which device (0-based position in the pool).
    pub device: usize,
    /// The cell (its executed network in the executed space).
    pub arch: Arch,
    /// Measured latency, ms.
    pub latency_ms: f64,
}

/// The pool's pick: a cell measured on every device.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolPick {
    /// The cell.
    pub arch: Arch,
    /// Its measured latency on each device, ms.
    pub latency_ms: Vec<f64>,
    /// Its proxy score.
    pub tf: f64,
    /// The pool objective as the search estimated it (weighted: each device's latency over
    /// its estimated range; constrained: TF).
    pub score: f64,
}

/// Everything a pool search produced, also when it failed part way.
#[derive(Debug)]
pub struct PoolOutcome {
    /// Every probe, in order.
    pub probes: Vec<PoolProbe>,
    /// Cells a device could not measure (no budget spent), with the device.
    pub skipped: Vec<(usize, Arch)>,
    /// The pick, if a cell measured everywhere (and, constrained, within every limit) exists.
    pub pick: Option<PoolPick>,
    /// Constrained: the devices (0-based) on which no measured cell is within the limit.
    pub infeasible_on: Vec<usize>,
    /// Each device's latency range estimate, as a multiple of its probed reference range.
    pub range_factors: Vec<f64>,
    /// Why the search stopped early, if it did.
    pub error: Option<PoolError>,
}

/// What each device's session reports to.
type SessionObserver<'a> = Box<dyn FnMut(Event) + 'a>;

/// Live events: which device, and what happened.
pub type PoolObserver<'a> = dyn FnMut(usize, Event) + 'a;

/// Per-device probes of a pool search, as the single-device record holds them.
pub fn per_device(probes: &[PoolProbe], devices: usize) -> Vec<Vec<Measured>> {
    let mut out = vec![Vec::new(); devices];
    for p in probes {
        if let Some(v) = out.get_mut(p.device) {
            let step = v.len() + 1;
            v.push(Measured { step, arch: p.arch, latency_ms: p.latency_ms });
        }
    }
    out
}

/// The best cell measured on every device under `objective`; each device's latency is
/// normalised by its probed references widened by its `range_factors` entry. Ties: the
/// lower worst latency ratio to the pool's fastest, then the lower code.
pub fn pool_pick(
    objective: &PoolObjective,
    tf: &[f64],
    probes: &[Vec<Measured>],
    range_factors: &[f64],
) -> Option<PoolPick> {
    let first = probes.first()?;
    let norms: Vec<Option<Normaliser>> = probes
        .iter()
        .enumerate()
        .map(|(d, p)| Normaliser::of(p).map(|n| n.widened(range_factors.get(d).copied().unwrap_or(1.0))))
        .collect();
    let mut best: Option<(PoolPick, usize)> = None;
    for m in first {
        let lat: Option<Vec<f64>> =
            probes.iter().map(|p| p.iter().find(|q| q.arch == m.arch).map(|q| q.latency_ms)).collect();
        let Some(lat) = lat else { continue };
        let t = tf[code(m.arch)];
        let score = match objective {
            PoolObjective::Weighted { weight } => {
                let l: f64 = lat.iter().zip(&norms).map(|(&ms, n)| n.map_or(0.0, |n| n.linear(ms))).sum::<f64>()
                    / lat.len() as f64;
                super::weighted(*weight, t, l)
            }
            PoolObjective::Constraint { max_latency_ms } => {
                if lat.iter().zip(max_latency_ms).any(|(ms, lim)| ms > lim) {
                    continue;
                }
                t
            }
        };
        let c = code(m.arch);
        let better = match &best {
            None => true,
            Some((b, bc)) => score > b.score || (score == b.score && c < *bc),
        };
        if better {
            best = Some((PoolPick { arch: m.arch, latency_ms: lat, tf: t, score }, c));
        }
    }
    best.map(|(p, _)| p)
}

/// Run one pool search on `devices` (in the pool's order). Never panics on device errors:
/// the outcome keeps everything measured.
pub fn search_pool(
    cfg: &PoolConfig,
    ctx: &Context,
    devices: &mut [&mut dyn Device],
    observe: &mut PoolObserver<'_>,
) -> PoolOutcome {
    let n = devices.len();
    let names: Vec<String> = devices.iter().map(|d| d.name()).collect();
    let fail = |e| PoolOutcome {
        probes: vec![],
        skipped: vec![],
        pick: None,
        infeasible_on: vec![],
        range_factors: vec![1.0; n],
        error: Some(e),
    };
    if let Err(e) = cfg.validate(&names) {
        return fail(e);
    }
    if ctx.tf.len() != NUM_ARCHS {
        return fail(SearchError::Scores(ctx.tf.len()).into());
    }
    let Some(prior) = ctx.calib else {
        return fail(
            SearchError::Unavailable {
                strategy: "controller",
                what: "the calibrated controller's prior (--controller-prior FILE)".into(),
            }
            .into(),
        );
    };
    if let Err(e) = prior.validate() {
        return fail(SearchError::Policy(format!("calibrated prior: {e}")).into());
    }
    // One record over the pool, in the order the probes happen; each device's session
    // reports into it.
    let log: RefCell<Log> = RefCell::new(Log::default());
    let outer = RefCell::new(observe);
    let mut observers: Vec<SessionObserver<'_>> = (0..n)
        .map(|d| {
            let (log, outer) = (&log, &outer);
            Box::new(move |e: Event| {
                log.borrow_mut().push(d, e);
                let mut f = outer.borrow_mut();
                (*f)(d, e);
            }) as Box<dyn FnMut(Event)>
        })
        .collect();
    // The pool strategy's first probes (the references and the dead-edge cell on every
    // device) do not depend on one another: they are measured on all devices at once, and
    // the search then takes them in its own order, as if measured one by one.
    let plan = match cfg.strategy {
        PoolStrategy::Pool => opening(cfg, prior, n),
        PoolStrategy::Independent => Vec::new(),
    };
    let ready = prefetch(devices, &plan);
    let fetched: Vec<Vec<Arch>> =
        ready.iter().map(|r| r.iter().filter(|(_, p)| p.is_ok()).map(|&(a, _)| a).collect()).collect();
    let mut wrapped: Vec<Prefetched> =
        devices.iter_mut().zip(ready).map(|(dev, ready)| Prefetched { inner: &mut **dev, ready }).collect();
    let mut sessions: Vec<Session> = match wrapped
        .iter_mut()
        .zip(observers.iter_mut())
        .map(|(dev, obs)| Session::new(dev, cfg.budget, cfg.space, obs.as_mut()))
        .collect::<Result<_, _>>()
    {
        Ok(s) => s,
        Err(e) => return fail(e.into()),
    };
    let mut pool = Pool { sessions: &mut sessions, budget: cfg.budget, names: &names };
    let (result, factors) = match cfg.strategy {
        PoolStrategy::Pool => {
            let mut run = Joint::new(prior, ctx.tf, cfg, n);
            let r = run.run(&mut pool, &plan);
            if r.is_err() {
                // What was measured in parallel is recorded even when another device failed
                // before the search asked for it (answered from the prefetch, no new probe).
                for (d, archs) in fetched.iter().enumerate() {
                    for &a in archs {
                        let _ = pool.sessions[d].measure(a);
                    }
                }
            }
            (r, run.range_factors(&pool))
        }
        PoolStrategy::Independent => independent(cfg, ctx, &mut pool),
    };
    let per: Vec<Vec<Measured>> = pool.sessions.iter().map(|s| s.probes().to_vec()).collect();
    drop(sessions);
    drop(wrapped);
    drop(observers);
    let log = log.into_inner();
    let pick = pool_pick(&cfg.objective, ctx.tf, &per, &factors);
    let infeasible_on = match &cfg.objective {
        PoolObjective::Constraint { max_latency_ms } if pick.is_none() => per
            .iter()
            .zip(max_latency_ms)
            .enumerate()
            .filter(|(_, (p, &lim))| !p.iter().any(|m| m.latency_ms <= lim))
            .map(|(d, _)| d)
            .collect(),
        _ => vec![],
    };
    PoolOutcome {
        probes: log.probes,
        skipped: log.skipped,
        pick,
        infeasible_on,
        range_factors: factors,
        error: result.err(),
    }
}

/// The cells the pool strategy measures first on every device, in order: the references,
/// then the dead-edge cell's network when the prior's probe plan says so (only what the
/// budget lets [`Joint::run`] ask for).
fn opening(cfg: &PoolConfig, prior: &Prior, n: usize) -> Vec<Arch> {
    let mut plan = Vec::new();
    if cfg.budget >= 2 * n {
        plan.extend([LO, HI]);
        let dead = match cfg.objective {
            PoolObjective::Weighted { .. } => prior.dead_edge_probe,
            PoolObjective::Constraint { .. } => prior.constrained_dead_edge_probe,
        };
        if dead && cfg.budget >= 4 * n {
            plan.extend(cfg.space.member(DEAD_EDGE_CELL));
        }
    } else {
        plan.push(LO);
    }
    plan
}

/// Measure `plan` on every device, the devices in parallel (each in order, stopping at its
/// first failure; a cell a table lacks is not one).
fn prefetch(devices: &mut [&mut dyn Device], plan: &[Arch]) -> Vec<Vec<(Arch, Result<Probe, DeviceError>)>> {
    if plan.is_empty() {
        return devices.iter().map(|_| Vec::new()).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter_mut()
            .map(|dev| {
                s.spawn(move || {
                    let mut out = Vec::new();
                    for &a in plan {
                        let r = dev.probe(a);
                        let stop = matches!(&r, Err(e) if !matches!(e, DeviceError::NotMeasured { .. }));
                        out.push((a, r));
                        if stop {
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        // A device whose thread panicked has nothing prefetched: the search measures it
        // again, one probe at a time, and meets the same failure there.
        handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
    })
}

/// A device that first answers from what [`prefetch`] measured (each answer once).
struct Prefetched<'a> {
    inner: &'a mut dyn Device,
    ready: Vec<(Arch, Result<Probe, DeviceError>)>,
}

impl Device for Prefetched<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        match self.ready.iter().position(|(a, _)| *a == arch) {
            Some(i) => self.ready.remove(i).1,
            None => self.inner.probe(arch),
        }
    }
}

#[derive(Default)]
struct Log {
    probes: Vec<PoolProbe>,
    skipped: Vec<(usize, Arch)>,
}

impl Log {
    fn push(&mut self, device: usize, e: Event) {
        match e {
            Event::Probe(m) => {
                let step = self.probes.len() + 1;
                self.probes.push(PoolProbe { step, device, arch: m.arch, latency_ms: m.latency_ms });
            }
            Event::Skipped(a) => self.skipped.push((device, a)),
        }
    }
}

/// The pool's sessions under one total budget.
struct Pool<'p, 's> {
    sessions: &'p mut [Session<'s>],
    budget: usize,
    names: &'p [String],
}

impl Pool<'_, '_> {
    fn spent(&self) -> usize {
        self.sessions.iter().map(|s| s.probes().len()).sum()
    }

    fn remaining(&self) -> usize {
        self.budget.saturating_sub(self.spent())
    }

    /// Measure `arch` on device `d` unless the pool's budget is spent.
    fn measure(&mut self, d: usize, arch: Arch) -> Result<Answer, PoolError> {
        if self.remaining() == 0 && self.sessions[d].known(arch).is_none() {
            return Ok(Answer::Exhausted);
        }
        self.sessions[d].measure(arch).map_err(|source| PoolError::Device {
            device: d + 1,
            name: self.names[d].clone(),
            source: Box::new(source),
        })
    }
}

/// The baseline: each device alone, then the picks everywhere.
fn independent(cfg: &PoolConfig, ctx: &Context, pool: &mut Pool) -> (Result<(), PoolError>, Vec<f64>) {
    let n = pool.sessions.len();
    let share = (cfg.budget - n * (n - 1)) / n;
    let mut factors = vec![1.0; n];
    let mut picks = Vec::new();
    for d in 0..n {
        let single = SearchConfig {
            strategy: Strategy::Controller,
            budget: share,
            objective: cfg.objective.for_device(d),
            seed: cfg.seed,
            space: cfg.space,
        };
        let name = pool.names[d].clone();
        let s = &mut pool.sessions[d];
        s.limit_budget(share);
        let r = super::strategies::run(&single, ctx, s);
        factors[d] = s.range_factor();
        s.limit_budget(cfg.budget);
        if let Err(source) = r {
            return (Err(PoolError::Device { device: d + 1, name, source: Box::new(source) }), factors);
        }
        if let Some(p) = pick_with(&single.objective, ctx.tf, s.probes(), factors[d]) {
            picks.push(p.arch);
        }
    }
    for &a in &picks {
        for d in 0..n {
            match pool.measure(d, a) {
                Ok(_) => {}
                Err(e) => return (Err(e), factors),
            }
        }
    }
    (Ok(()), factors)
}

/// One device's calibrated model in the joint search.
struct Model {
    post: Posterior,
    lo: f64,
    hi: f64,
    /// Estimated whole range, reference units.
    range: f64,
}

/// The joint search's state.
struct Joint<'a> {
    prior: &'a Prior,
    precision: Option<Precision>,
    tf: &'a [f64],
    objective: PoolObjective,
    space: Space,
    /// Cells dropped: missing on some device, or over a limit by measurement.
    dropped: Vec<bool>,
    devices: usize,
}

impl<'a> Joint<'a> {
    fn new(prior: &'a Prior, tf: &'a [f64], cfg: &PoolConfig, devices: usize) -> Joint<'a> {
        Joint {
            prior,
            precision: prior.precision().ok(),
            tf,
            objective: cfg.objective.clone(),
            space: cfg.space,
            dropped: vec![false; NUM_ARCHS],
            devices,
        }
    }

    /// Device `d`'s posterior from its probes (`None` before it has two distinct latencies).
    fn model(&self, s: &Session) -> Result<Option<Model>, SearchError> {
        let Some(norm) = Normaliser::of(s.probes()) else { return Ok(None) };
        let Some(prec) = &self.precision else { return Ok(None) };
        let mut sums = Sums::new();
        for m in s.probes() {
            sums.add(&m.arch, m.latency_ms);
        }
        let post = self.prior.posterior_from_sums(prec, &sums, norm.lo, norm.hi).map_err(|e| {
            SearchError::Policy(format!(
                "the calibrated controller cannot fit the device's measured latencies ({e}): are they in milliseconds?"
            ))
        })?;
        let range = match self.prior.range_rule {
            RangeRule::Reference => self.prior.range_factor,
            RangeRule::Model => {
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                for &a in members(self.space) {
                    let p = predict(&post.theta, &a);
                    lo = lo.min(p);
                    hi = hi.max(p);
                }
                let r = hi - lo;
                self.prior.range_factor * if r > 0.0 && r.is_finite() { r } else { 1.0 }
            }
        }
        .max(1e-9);
        Ok(Some(Model { post, lo: norm.lo, hi: norm.hi, range }))
    }

    /// [`Joint::model`] of device `d`, its failure naming the device.
    fn model_of(&self, pool: &Pool, d: usize) -> Result<Option<Model>, PoolError> {
        self.model(&pool.sessions[d]).map_err(|source| PoolError::Device {
            device: d + 1,
            name: pool.names[d].clone(),
            source: Box::new(source),
        })
    }

    /// Each device's final range estimate (what the pick normalises with).
    fn range_factors(&self, pool: &Pool) -> Vec<f64> {
        pool.sessions.iter().map(|s| self.model(s).ok().flatten().map_or(1.0, |m| m.range)).collect()
    }

    /// Spend the pool's budget: the `opening` cells ([`opening`]: the references on every
    /// device, one device after another, then the dead-edge cell on every device), then one
    /// (cell, device) decision per probe. With no room for the references the all-skip cell
    /// everywhere (a pick) is all it measures.
    fn run(&mut self, pool: &mut Pool, opening: &[Arch]) -> Result<(), PoolError> {
        let n = self.devices;
        let (refs, rest) = opening.split_at(opening.len().min(2));
        for d in 0..n {
            for &a in refs {
                pool.measure(d, a)?;
            }
        }
        if refs.len() < 2 {
            return Ok(());
        }
        for &a in rest {
            for d in 0..n {
                pool.measure(d, a)?;
            }
        }
        // A device's model changes only when it is measured.
        let mut models: Vec<Option<Model>> = (0..n).map(|d| self.model_of(pool, d)).collect::<Result<_, _>>()?;
        while pool.remaining() > 0 {
            let Some((arch, d)) = self.next(pool, &models) else { break };
            match pool.measure(d, arch)? {
                Answer::Latency(ms) => {
                    if let PoolObjective::Constraint { max_latency_ms } = &self.objective {
                        if ms > max_latency_ms[d] {
                            self.dropped[code(arch)] = true;
                        }
                    }
                    models[d] = self.model_of(pool, d)?;
                }
                Answer::Missing => self.dropped[code(arch)] = true,
                Answer::Exhausted => break,
            }
        }
        Ok(())
    }

    /// The next (cell, device) to measure, or `None` when nothing is left to learn.
    fn next(&self, pool: &Pool, models: &[Option<Model>]) -> Option<(Arch, usize)> {
        let n = self.devices;
        // Device d's latency of `a`: measured (exact) or predicted, in its normalised units
        // and ms, with the prediction's standard deviation (0 when measured).
        let view = |d: usize, a: Arch| -> Option<(f64, f64, f64, bool)> {
            if let Some(ms) = pool.sessions[d].known(a) {
                let m = models[d].as_ref()?;
                return Some(((ms - m.lo) / (m.hi - m.lo), ms, 0.0, true));
            }
            let m = models[d].as_ref()?;
            let y = predict(&m.post.theta, &a);
            let sd = (m.post.variance(&a) + self.prior.noise * self.prior.noise).sqrt();
            Some((y, m.lo + y * (m.hi - m.lo), sd, false))
        };
        let mut best: Option<(f64, f64, usize, Arch)> = None; // (score, tie, code, arch)
        let done_score = match &self.objective {
            PoolObjective::Weighted { .. } => f64::NEG_INFINITY,
            // Constrained: only cells better than the best feasible everywhere are worth a probe.
            PoolObjective::Constraint { .. } => {
                let per: Vec<Vec<Measured>> = pool.sessions.iter().map(|s| s.probes().to_vec()).collect();
                pool_pick(&self.objective, self.tf, &per, &vec![1.0; n]).map_or(f64::NEG_INFINITY, |p| p.score)
            }
        };
        let mut fallback: Option<(f64, usize, Arch)> = None; // constrained: least predicted excess
        for &a in members(self.space) {
            let c = code(a);
            if self.dropped[c] {
                continue;
            }
            let views: Option<Vec<(f64, f64, f64, bool)>> = (0..n).map(|d| view(d, a)).collect();
            let views = views?;
            if views.iter().all(|v| v.3) {
                continue; // measured everywhere: nothing to learn
            }
            let t = self.tf[c];
            let (score, tie) = match &self.objective {
                PoolObjective::Weighted { weight } => {
                    let l: f64 =
                        views.iter().zip(models).map(|(v, m)| v.0 / m.as_ref().map_or(1.0, |m| m.range)).sum::<f64>()
                            / n as f64;
                    (super::weighted(*weight, t, l), 0.0)
                }
                PoolObjective::Constraint { max_latency_ms } => {
                    let excess = views.iter().zip(max_latency_ms).map(|(v, lim)| v.1 / lim).fold(0.0, f64::max);
                    if excess > 1.0 {
                        if t > done_score && fallback.is_none_or(|(e, fc, _)| excess < e || (excess == e && c < fc)) {
                            fallback = Some((excess, c, a));
                        }
                        continue;
                    }
                    if t <= done_score {
                        continue;
                    }
                    (t, -excess)
                }
            };
            let better = match best {
                None => true,
                Some((bs, bt, bc, _)) => score > bs || (score == bs && (tie > bt || (tie == bt && c < bc))),
            };
            if better {
                best = Some((score, tie, c, a));
            }
        }
        let arch = match (best, fallback) {
            (Some((.., a)), _) => a,
            (None, Some((.., a))) => a,
            (None, None) => return None,
        };
        // Which device: weighted, the least certain prediction (ties: the lower position);
        // constrained, the one most likely over its limit.
        let mut pick: Option<(f64, usize)> = None;
        for d in 0..n {
            let (_, ms, sd, measured) = view(d, arch)?;
            if measured {
                continue;
            }
            let key = match &self.objective {
                PoolObjective::Weighted { .. } => sd / models[d].as_ref().map_or(1.0, |m| m.range),
                PoolObjective::Constraint { max_latency_ms } => {
                    let m = models[d].as_ref()?;
                    let sd_ms = sd * (m.hi - m.lo);
                    (ms - max_latency_ms[d]) / sd_ms.max(1e-12)
                }
            };
            if pick.is_none_or(|(k, _)| key > k) {
                pick = Some((key, d));
            }
        }
        pick.map(|(_, d)| (arch, d))
    }
}

fn code(a: Arch) -> usize {
    a.code().get() as usize
}

#[cfg(test)]
mod tests;
