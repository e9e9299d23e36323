//! `controller`: the calibrated controller. A per-op latency model with a meta-learned
//! prior ([`edge_runtime::calib`]) is calibrated to the device by every probe, and each
//! probe goes to the cell the calibrated model ranks best.
//!
//! **At test time** (budget `B`, weighted objective), the edge runtime's `no_std` loop
//! ([`edge_runtime::search::calibrated`], the code a board runs) on the session's record
//! and device ([`Session::record_and_device`]):
//! 1. measure the reference cells `lo` (all-`skip_connect`) and `hi` (all-`nor_conv_3x3`):
//!    they fix the units (`scale = lat(hi) - lat(lo)`); then the dead-edge cell if the
//!    prior says so;
//! 2. each step, compute the posterior mean of the device's op costs from all probes so far,
//!    predict every cell's latency, score it `w TF - (1 - w) pred / W` with the range
//!    estimate `W` (the prior's range rule and factor), and measure the best untried cell;
//! 3. the pick is the best *measured* cell under the same `W` ([`super::super::pick`] with
//!    the session's range factor): predictions choose what to measure, never what is
//!    reported.
//!
//! Constrained objective (host only): after the two references (and the dead-edge cell if
//! the prior says so for this objective), the constrained loop the LUT baselines share
//! ([`super::lut`]), with the calibrated model's predictions in ms.
//!
//! **Meta-learning** ([`fit_prior`], `simnas prior`): on each training device, the model's
//! least-squares coefficients over the whole table, divided by the device's reference
//! range, are one sample; the prior is their mean and covariance. The noise level and the
//! range factor are then chosen on the training devices alone, leaving each device's whole
//! hardware family out of the prior it is searched with ([`select`]).

use super::super::{
    search as run_search, Context, Normaliser, Objective, SearchConfig, SearchError, Session, Space, Strategy, HI, LO,
};
use crate::device::table::TableDevice;
use crate::latency::LatencyTable;
use edge_runtime::calib::{features, predict, Prior, RangeRule, COEFS, DEAD_EDGE_CELL, FEATURES};
use edge_runtime::search::calibrated::{self, Calibration, GroupTable};
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// Noise levels [`select`] tries (units of the reference range).
pub const NOISE_GRID: [f64; 2] = [0.05, 0.15];
/// Range factors [`select`] tries.
pub const RANGE_GRID: [f64; 4] = [1.0, 1.15, 1.3, 1.5];
/// Range rules [`select`] tries.
pub const RULE_GRID: [RangeRule; 2] = [RangeRule::Reference, RangeRule::Model];
/// Dead-edge probe settings [`select`] tries.
pub const DEAD_GRID: [bool; 2] = [false, true];
/// The budget [`select`] tunes for.
pub const SELECT_BUDGET: usize = 10;
pub use simnas_formats::{
    BudgetRow, ConstrainedPoint, ExplorePoint, GridPoint, PriorFile, PriorFileError, FEATURE_NAMES, FORMAT_VERSION,
};

/// Run the calibrated controller.
pub fn run(cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
    let prior = ctx.calib.ok_or(SearchError::Unavailable {
        strategy: "controller",
        what: "the calibrated controller's prior (--controller-prior FILE)".into(),
    })?;
    match cfg.objective {
        Objective::Weighted { weight } => {
            prior.validate().map_err(|e| SearchError::Policy(format!("calibrated prior: {e}")))?;
            // The edge runtime's loop, the code a board runs, on the session's record.
            let groups = GroupTable::build(cfg.space, |c| ctx.tf[c]);
            let tf = |c: usize| ctx.tf[c];
            let mut cal = Calibration::new();
            let (probes, device) = s.record_and_device();
            let result = calibrated::search(prior, weight, tf, groups.groups(), probes, device, &mut cal);
            s.set_range_factor(cal.range());
            match result {
                Ok(()) => Ok(()),
                Err(edge_runtime::search::SearchError::Device(e)) => Err(e),
                // The prior was checked above: what failed is the fit to the measurements.
                Err(edge_runtime::search::SearchError::Calib(e)) => Err(SearchError::Policy(format!(
                    "the calibrated controller cannot fit the device's measured latencies ({e}): are they in milliseconds?"
                ))),
                Err(e) => Err(SearchError::Policy(format!("the calibrated controller refused to start: {e}"))),
            }
        }
        Objective::Constraint { max_latency_ms } => {
            s.measure_references()?;
            if prior.constrained_dead_edge_probe && s.remaining() > 0 {
                s.measure(DEAD_EDGE_CELL)?;
            }
            constrained(prior, s, ctx.tf, max_latency_ms)
        }
    }
}

/// The constrained search: the LUT baselines' loop with the calibrated model's predictions.
fn constrained(prior: &Prior, s: &mut Session, tf: &[f64], max_latency_ms: f64) -> Result<(), SearchError> {
    super::lut::constrained(s, tf, max_latency_ms, |probes| {
        let norm = units_of(probes);
        match prior.posterior(probes.iter().map(|p| (p.arch, (p.latency_ms - norm.lo) / (norm.hi - norm.lo)))) {
            Ok(theta) => all_archs().map(|a| norm.lo + predict(&theta, &a) * (norm.hi - norm.lo)).collect(),
            Err(_) => vec![f64::INFINITY; NUM_ARCHS],
        }
    })
}

/// The units of the probes: the reference rule, else `lo = 0, hi = 1` (no data yet).
fn units_of(probes: &[super::super::Measured]) -> Normaliser {
    Normaliser::of(probes).unwrap_or(Normaliser { lo: 0.0, hi: 1.0 })
}

fn all_archs() -> impl Iterator<Item = Arch> {
    ArchCode::all().map(Arch::from_code)
}

/// The model's least-squares coefficients over a whole table, divided by the table's
/// reference range (`None` if a reference cell is missing or the range is not positive).
pub fn normalised_fit(table: &LatencyTable) -> Option<[f64; COEFS]> {
    let (lo, hi) = (table.get(LO)?, table.get(HI)?);
    if hi.partial_cmp(&lo) != Some(std::cmp::Ordering::Greater) {
        return None;
    }
    let mut ata = [[0.0; FEATURES]; FEATURES];
    let mut atb = [0.0; FEATURES];
    for (c, v) in table.values().iter().enumerate() {
        let Some(y) = *v else { continue };
        let f = features(&Arch::from_code(ArchCode::new(c as u16)?));
        let y = (y - lo) / (hi - lo);
        for i in 0..FEATURES {
            atb[i] += f[i] * y;
            for j in 0..FEATURES {
                ata[i][j] += f[i] * f[j];
            }
        }
    }
    // A whisker of ridge keeps the system definite when an op never appears live.
    let tr: f64 = (0..FEATURES).map(|i| ata[i][i]).sum();
    for (i, row) in ata.iter_mut().enumerate() {
        row[i] += 1e-12 * tr;
    }
    let l = edge_runtime::calib::cholesky(&mut ata)?;
    let x = edge_runtime::calib::cholesky_solve(&l, &atb);
    let mut out = [0.0; COEFS];
    out.copy_from_slice(&x[1..]);
    out.iter().all(|v| v.is_finite()).then_some(out)
}

/// Mean and covariance (with `n - 1`, plus a small ridge) of the normalised fits of
/// `tables`; `noise` and `range_factor` as given. `None` with fewer than two usable tables.
pub fn fit_prior(
    tables: &[&LatencyTable],
    noise: f64,
    range_factor: f64,
    range_rule: RangeRule,
    dead_edge_probe: bool,
) -> Option<Prior> {
    let fits: Vec<[f64; COEFS]> = tables.iter().filter_map(|t| normalised_fit(t)).collect();
    prior_from_fits(&fits, noise, range_factor, range_rule, dead_edge_probe)
}

/// [`fit_prior`] from fits already computed.
fn prior_from_fits(
    fits: &[[f64; COEFS]],
    noise: f64,
    range_factor: f64,
    range_rule: RangeRule,
    dead_edge_probe: bool,
) -> Option<Prior> {
    if fits.len() < 2 {
        return None;
    }
    let n = fits.len() as f64;
    let mut mean = [0.0; COEFS];
    for f in fits {
        for i in 0..COEFS {
            mean[i] += f[i] / n;
        }
    }
    let mut cov = [[0.0; COEFS]; COEFS];
    for f in fits {
        for i in 0..COEFS {
            for j in 0..COEFS {
                cov[i][j] += (f[i] - mean[i]) * (f[j] - mean[j]) / (n - 1.0);
            }
        }
    }
    for (i, row) in cov.iter_mut().enumerate() {
        row[i] += 1e-6;
    }
    Some(Prior {
        mean,
        cov,
        noise,
        range_factor,
        range_rule,
        dead_edge_probe,
        constrained_dead_edge_probe: dead_edge_probe,
        explore: 0.0,
    })
}

/// A training device for [`select`].
pub struct TrainDevice<'a> {
    /// Name (reporting).
    pub name: &'a str,
    /// Hardware family: left out of its own prior.
    pub family: &'a str,
    /// Its whole table.
    pub table: &'a LatencyTable,
    /// Its [`normalised_fit`], computed once.
    fit: Option<[f64; COEFS]>,
    /// When the prior is meta-fitted on synthetic devices ([`with_synthetic_priors`]): the
    /// fits of the synthetic devices drawn without this device's family.
    synthetic: Option<std::sync::Arc<Vec<[f64; COEFS]>>>,
}

impl<'a> TrainDevice<'a> {
    /// A training device (fits its table now).
    pub fn new(name: &'a str, family: &'a str, table: &'a LatencyTable) -> TrainDevice<'a> {
        TrainDevice { name, family, table, fit: normalised_fit(table), synthetic: None }
    }
}

/// Where the calibrated controller's prior is meta-fitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum MetaDevices {
    /// The training devices' own tables (one sample per device).
    #[default]
    Real,
    /// Synthetic devices drawn around the training devices' runtimes
    /// ([`crate::synth::SynthPreset::Runtime`]).
    Synthetic,
}

/// The normalised fits of `draws` synthetic devices of `preset`, drawn from `dist` with its
/// devices and runtimes restricted to the families `keep` accepts (seeded by `seed`).
pub fn synthetic_fits(
    dist: &crate::synth::DeviceDistribution,
    preset: crate::synth::SynthPreset,
    keep: impl Fn(&str) -> bool,
    draws: usize,
    seed: u64,
) -> Vec<[f64; COEFS]> {
    use crate::synth::DeviceDistributionExt as _;
    use rand::SeedableRng;
    let mut sub = dist.clone();
    sub.runtimes.retain(|r| keep(&r.family));
    sub.devices.retain(|d| keep(&d.family));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..draws)
        .filter_map(|_| {
            let dev = sub.sample(preset, &mut rng);
            let table = LatencyTable::from_codes("synthetic", dev.latency.into_iter().map(Some).collect())?;
            normalised_fit(&table)
        })
        .collect()
}

/// Meta-fit every device's leave-one-family-out prior on synthetic devices instead of the
/// other families' tables: per family, `draws` devices of `preset` drawn around the
/// training runtimes of the *other* families (seed `seed` plus the family's index).
pub fn with_synthetic_priors(
    devices: &mut [TrainDevice],
    dist: &crate::synth::DeviceDistribution,
    preset: crate::synth::SynthPreset,
    draws: usize,
    seed: u64,
) {
    let mut families: Vec<&str> = devices.iter().map(|d| d.family).collect();
    families.sort_unstable();
    families.dedup();
    let fits: Vec<std::sync::Arc<Vec<[f64; COEFS]>>> = families
        .iter()
        .enumerate()
        .map(|(i, f)| std::sync::Arc::new(synthetic_fits(dist, preset, |g| g != *f, draws, seed + i as u64)))
        .collect();
    for d in devices.iter_mut() {
        let i = families.iter().position(|f| *f == d.family).unwrap_or(0);
        d.synthetic = Some(fits[i].clone());
    }
}

/// The prior `d` is searched with in [`select`]: fitted on the devices of other families
/// (their tables, or the synthetic devices drawn around their runtimes); `None` with fewer
/// than two usable fits.
pub fn loo_prior(devices: &[TrainDevice], d: &TrainDevice, g: &GridPoint) -> Option<Prior> {
    let fits: Vec<[f64; COEFS]> = match &d.synthetic {
        Some(s) => s.to_vec(),
        None => devices.iter().filter(|o| o.family != d.family).filter_map(|o| o.fit).collect(),
    };
    prior_from_fits(&fits, g.noise, g.range_factor, g.range_rule, g.dead_edge_probe)
}

/// [`fit_prior`] from fits already computed (e.g. [`synthetic_fits`]).
pub fn prior_of_fits(fits: &[[f64; COEFS]], g: &GridPoint) -> Option<Prior> {
    prior_from_fits(fits, g.noise, g.range_factor, g.range_rule, g.dead_edge_probe)
}

/// Mean and worst `F(pick) / F(oracle)` over `devices`, each searched at [`SELECT_BUDGET`]
/// probes (w = 0.5) with its [`loo_prior`] for `g`, changed by `adjust`.
fn loo_weighted(devices: &[TrainDevice], tf: &[f64], g: &GridPoint, adjust: impl Fn(&mut Prior)) -> Option<(f64, f64)> {
    let ratios = per_device(devices, tf, g, PriorOf::OtherFamilies, adjust)?;
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    Some((mean, ratios.iter().copied().fold(f64::INFINITY, f64::min)))
}

/// The prior a training device is searched with in [`per_device`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorOf {
    /// Fitted on the training devices of other families (`loo_prior`): an honest test.
    OtherFamilies,
    /// The device's own whole-table fit as the mean, with a negligible covariance: the best
    /// a prior could be (a diagnostic; what remains below 1 is the range estimate, the
    /// probe budget and cells the model cannot describe).
    OwnFit,
}

/// Each device's `F(pick) / F(oracle)` at [`SELECT_BUDGET`] probes (w = 0.5), searched with
/// the prior `of` for `g` changed by `adjust`, in the order of `devices`.
pub fn per_device(
    devices: &[TrainDevice],
    tf: &[f64],
    g: &GridPoint,
    of: PriorOf,
    adjust: impl Fn(&mut Prior),
) -> Option<Vec<f64>> {
    let mut ratios = Vec::new();
    for d in devices {
        let mut prior = loo_prior(devices, d, g)?;
        if of == PriorOf::OwnFit {
            let own = Prior::isotropic(d.fit?, 1e-8);
            (prior.mean, prior.cov) = (own.mean, own.cov);
        }
        adjust(&mut prior);
        ratios.push(run_on_table(&prior, d.table, tf, SELECT_BUDGET, 0.5)?);
    }
    Some(ratios)
}

/// Choose the probe plan and noise, range rule and factor on the training devices: each
/// device is searched with a prior fitted on the training devices of *other* families
/// (leave one family out), at [`SELECT_BUDGET`] probes, w = 0.5; the grid point with the
/// best mean wins (ties: the earlier point). Returns the grid and the winner's index.
pub fn select(devices: &[TrainDevice], tf: &[f64]) -> Option<(Vec<GridPoint>, usize)> {
    let mut grid = Vec::new();
    for &dead_edge_probe in &DEAD_GRID {
        for &range_rule in &RULE_GRID {
            for &noise in &NOISE_GRID {
                for &range_factor in &RANGE_GRID {
                    let mut g = GridPoint { noise, range_factor, range_rule, dead_edge_probe, mean: 0.0, worst: 0.0 };
                    (g.mean, g.worst) = loo_weighted(devices, tf, &g, |_| {})?;
                    grid.push(g);
                }
            }
        }
    }
    let mut best = 0;
    for (i, g) in grid.iter().enumerate() {
        if g.mean > grid[best].mean {
            best = i;
        }
    }
    Some((grid, best))
}

/// The budgets [`by_budget`] compares at.
pub const COMPARE_BUDGETS: [usize; 3] = [5, 10, 20];

/// The calibrated controller with the chosen setting `g` (optimism `explore`) against the
/// LUT baselines at [`COMPARE_BUDGETS`], leave one family out on the training devices:
/// the controller's prior and `lut-prior`'s mean LUT are fitted on the other families'
/// devices (`lut-probe` learns nothing before it meets a device). `None` if a prior cannot
/// be fitted.
pub fn by_budget(devices: &[TrainDevice], tf: &[f64], g: &GridPoint, explore: f64) -> Option<Vec<BudgetRow>> {
    let runs = lofo_runs(devices, tf, g, |p| p.explore = explore, &BASELINE_RACE, &COMPARE_BUDGETS)?;
    Some(
        runs.iter()
            .map(|r| {
                let mean = r.ratios.iter().sum::<f64>() / r.ratios.len().max(1) as f64;
                let (w, worst) =
                    r.ratios
                        .iter()
                        .enumerate()
                        .fold((0, f64::INFINITY), |(wi, wv), (i, &v)| if v < wv { (i, v) } else { (wi, wv) });
                BudgetRow {
                    strategy: r.strategy.name().to_string(),
                    budget: r.budget,
                    mean,
                    worst,
                    worst_device: devices.get(w).map_or_else(String::new, |d| d.name.to_string()),
                }
            })
            .collect(),
    )
}

/// The strategies [`by_budget`] races: the controller and the two LUT baselines.
pub const BASELINE_RACE: [Strategy; 3] = [Strategy::Controller, Strategy::LutProbe, Strategy::LutPrior];

/// One strategy at one budget on every training device ([`lofo_runs`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LofoRun {
    /// The strategy.
    pub strategy: Strategy,
    /// Probes.
    pub budget: usize,
    /// `F(pick) / F(oracle)` per device, in the order of the devices.
    pub ratios: Vec<f64>,
}

/// Every `strategy` at every `budget` on every training device, leave one family out: the
/// controller's prior (grid point `g`, changed by `adjust`) and `lut-prior`'s mean LUT are
/// fitted on the other families' devices. `None` if a prior cannot be fitted.
pub fn lofo_runs(
    devices: &[TrainDevice],
    tf: &[f64],
    g: &GridPoint,
    adjust: impl Fn(&mut Prior),
    strategies: &[Strategy],
    budgets: &[usize],
) -> Option<Vec<LofoRun>> {
    lofo_runs_with(devices, tf, g, adjust, None, strategies, budgets)
}

/// [`lofo_runs`] with `controller-paper`'s policy (`None`: that strategy cannot run).
pub fn lofo_runs_with(
    devices: &[TrainDevice],
    tf: &[f64],
    g: &GridPoint,
    adjust: impl Fn(&mut Prior),
    policy: Option<&dyn super::Policy>,
    strategies: &[Strategy],
    budgets: &[usize],
) -> Option<Vec<LofoRun>> {
    let luts: Vec<crate::synth::lut::Lut> = devices
        .iter()
        .map(|d| {
            let lut = crate::synth::lut::fit(d.table, crate::synth::lut::LutKind::PerOp).lut;
            lut.scaled(lut.hi())
        })
        .collect();
    // Per device, once: its leave-one-family-out prior and mean LUT, and its true fitness.
    let held_out = devices
        .iter()
        .map(|d| {
            let mut prior = loo_prior(devices, d, g)?;
            adjust(&mut prior);
            let others: Vec<_> =
                devices.iter().zip(&luts).filter(|(o, _)| o.family != d.family).map(|(_, l)| l.clone()).collect();
            let fit = super::super::eval::true_fitness(d.table, tf, 0.5, Space::Executed);
            Some((prior, crate::synth::LutGaussians::fit(&others).mean(), fit))
        })
        .collect::<Option<Vec<_>>>()?;
    let mut runs = Vec::new();
    for &strategy in strategies {
        for &budget in budgets {
            let mut ratios = Vec::new();
            for (d, (prior, mean_lut, fit)) in devices.iter().zip(&held_out) {
                let ctx = Context { tf, prior: Some(mean_lut), table: None, policy, calib: Some(prior) };
                ratios.push(ratio_with_fitness(strategy, &ctx, d.table, budget, 0.5, fit)?);
            }
            runs.push(LofoRun { strategy, budget, ratios });
        }
    }
    Some(runs)
}

/// Optimism levels [`select_explore`] tries.
pub const EXPLORE_GRID: [f64; 4] = [0.0, 0.5, 1.0, 2.0];

/// With the weighted choice fixed, choose the search's optimism the same way (leave one
/// family out, [`SELECT_BUDGET`] probes; ties: the earlier, less optimistic, level).
pub fn select_explore(devices: &[TrainDevice], tf: &[f64], chosen: &GridPoint) -> Option<Vec<ExplorePoint>> {
    let mut out = Vec::new();
    for &explore in &EXPLORE_GRID {
        let (mean, worst) = loo_weighted(devices, tf, chosen, |p| p.explore = explore)?;
        out.push(ExplorePoint { explore, mean, worst });
    }
    Some(out)
}

/// With the weighted choice fixed, choose the dead-edge probe for the constrained objective
/// the same way (leave one family out, [`SELECT_BUDGET`] probes), by [`ConstrainedPoint`]'s
/// mean TF ratio (ties: without the probe).
pub fn select_constrained(devices: &[TrainDevice], tf: &[f64], chosen: &GridPoint) -> Option<Vec<ConstrainedPoint>> {
    let mut out = Vec::new();
    for dead in [false, true] {
        let (mut sum, mut feasible, mut n) = (0.0, 0usize, 0usize);
        for d in devices {
            let mut prior = loo_prior(devices, d, chosen)?;
            prior.constrained_dead_edge_probe = dead;
            for p in super::super::eval::PERCENTILES {
                let limit = super::super::eval::percentile_in(d.table, p, Space::Executed);
                let objective = Objective::Constraint { max_latency_ms: limit };
                let ceiling = super::oracle_pick(&objective, tf, d.table.values(), Space::Executed)?;
                let ctx = Context { tf, prior: None, table: None, policy: None, calib: Some(&prior) };
                let cfg = SearchConfig {
                    strategy: Strategy::Controller,
                    budget: SELECT_BUDGET,
                    objective,
                    seed: 0,
                    space: Space::Executed,
                };
                let outcome = run_search(&cfg, &ctx, &mut TableDevice::new(d.table.clone()), &mut |_| {});
                n += 1;
                if let Some(pick) = outcome.pick.filter(|p| p.latency_ms <= limit) {
                    feasible += 1;
                    sum += pick.tf / tf[ceiling.code().get() as usize];
                }
            }
        }
        out.push(ConstrainedPoint {
            dead_edge_probe: dead,
            mean: sum / n as f64,
            feasible: feasible as f64 / n as f64,
        });
    }
    Some(out)
}

/// `F(pick) / F(oracle)` of the calibrated controller on a table (the evaluation's fitness).
pub fn run_on_table(prior: &Prior, table: &LatencyTable, tf: &[f64], budget: usize, weight: f64) -> Option<f64> {
    let ctx = Context { tf, prior: None, table: None, policy: None, calib: Some(prior) };
    ratio_on_table(Strategy::Controller, &ctx, table, budget, weight)
}

/// `F(pick) / F(oracle)` of `strategy` (seed 0, executed space) on a table.
fn ratio_on_table(strategy: Strategy, ctx: &Context, table: &LatencyTable, budget: usize, weight: f64) -> Option<f64> {
    let fit = super::super::eval::true_fitness(table, ctx.tf, weight, Space::Executed);
    ratio_with_fitness(strategy, ctx, table, budget, weight, &fit)
}

/// [`ratio_on_table`] with the table's true fitness (`eval::true_fitness`) given.
fn ratio_with_fitness(
    strategy: Strategy,
    ctx: &Context,
    table: &LatencyTable,
    budget: usize,
    weight: f64,
    fit: &[Option<f64>],
) -> Option<f64> {
    let best = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let cfg =
        SearchConfig { strategy, budget, objective: Objective::Weighted { weight }, seed: 0, space: Space::Executed };
    let out = run_search(&cfg, ctx, &mut TableDevice::new(table.clone()), &mut |_| {});
    let f = out.pick.map_or(0.0, |p| fit[p.arch.code().get() as usize].unwrap_or(0.0));
    (best > 0.0).then(|| f / best)
}
