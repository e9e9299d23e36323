//! The strategies: how each one spends its probes. None of them chooses the final pick
//! ([`super::pick`] does, from the session's measurements).
//!
//! * `random`: the two reference cells (weighted objective), then uniformly random cells
//!   never tried before.
//! * `evolution`: regularised evolution in the FreeREA manner. The population holds the
//!   last [`POPULATION`] measured cells (oldest leave first, the references included). Each
//!   step draws a tournament of [`TOURNAMENT`] members, takes the best by the objective
//!   estimated from measurements (constrained: TF if feasible, else `-lat / limit`), draws
//!   [`CHILDREN`] single-edge mutations of it and measures the one the proxy scores highest
//!   (TF is free; only latency costs a probe); when even the winner violates the latency
//!   limit, the lightest mutation instead (fewest conv weights, FreeREA's analytic cost).
//!   The initial population is the best-TF cell of [`CHILDREN`] random draws, [`POPULATION`]
//!   times.
//! * `lut-prior`, `lut-probe`: see [`lut`].
//! * `oracle`: reads the whole table and measures the true optimum (one probe). Weighted:
//!   the objective with the latency normalised over the table's true min and max (the
//!   evaluation's fitness); constrained: the best-TF cell whose table latency satisfies the
//!   limit (the proxy's own ceiling).
//! * `controller` (the default): the calibrated controller, see [`controller`].
//! * `controller-paper`: the paper's meta-trained RL policy, see [`paper`], through [`Policy`].

pub mod controller;
pub mod lut;
pub mod paper;

use super::{Answer, Context, Measured, Normaliser, Objective, SearchConfig, SearchError, Session, Space, Strategy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simnas_shared::{Action, Arch, ArchCode, Op};
use std::sync::OnceLock;

/// Evolution: population size.
pub const POPULATION: usize = 4;
/// Evolution: tournament size.
pub const TOURNAMENT: usize = 2;
/// Evolution: random candidates the proxy chooses from (initial cells and mutations).
pub const CHILDREN: usize = 4;

/// A meta-trained controller as a strategy.
pub trait Policy {
    /// Spend the session's probes (the pick is chosen from them afterwards).
    fn run(&self, cfg: &SearchConfig, ctx: &Context, session: &mut Session) -> Result<(), SearchError>;
}

/// Run `cfg.strategy` until its probes are spent.
pub fn run(cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    match cfg.strategy {
        Strategy::Random => random(cfg, s, &mut rng),
        Strategy::Evolution => evolution(cfg, ctx, s, &mut rng),
        Strategy::LutPrior => lut::prior(cfg, ctx, s),
        Strategy::LutProbe => lut::probe(cfg, ctx, s),
        Strategy::Oracle => oracle(cfg, ctx, s),
        Strategy::Controller => controller::run(cfg, ctx, s),
        Strategy::ControllerPaper => match ctx.policy {
            Some(p) => p.run(cfg, ctx, s),
            None => Err(SearchError::Unavailable {
                strategy: "controller-paper",
                what: "a trained policy (--policy FILE)".into(),
            }),
        },
    }
}

/// The candidates of `space` in code order (computed once per space).
pub fn members(space: Space) -> &'static [Arch] {
    static EXECUTED: OnceLock<Vec<Arch>> = OnceLock::new();
    static RAW: OnceLock<Vec<Arch>> = OnceLock::new();
    let cell = match space {
        Space::Executed => &EXECUTED,
        Space::Raw => &RAW,
    };
    cell.get_or_init(|| ArchCode::all().map(Arch::from_code).filter(|&a| space.contains(a)).collect())
}

/// A candidate drawn uniformly from the space's candidates not tried yet (`None` once every
/// candidate was tried).
fn untried(s: &Session, rng: &mut impl Rng) -> Option<Arch> {
    let all = members(s.space());
    for _ in 0..64 {
        let a = all[rng.random_range(0..all.len())];
        if !s.tried(a) {
            return Some(a);
        }
    }
    all.iter().copied().find(|&a| !s.tried(a))
}

/// A uniformly random candidate of the space (tried or not).
fn any_member(space: Space, rng: &mut dyn rand::RngCore) -> Option<Arch> {
    let all = members(space);
    (!all.is_empty()).then(|| all[rng.random_range(0..all.len())])
}

fn random(cfg: &SearchConfig, s: &mut Session, rng: &mut impl Rng) -> Result<(), SearchError> {
    if matches!(cfg.objective, Objective::Weighted { .. }) {
        s.measure_references()?;
    }
    while s.remaining() > 0 {
        let Some(a) = untried(s, rng) else { break };
        if s.measure(a)? == Answer::Exhausted {
            break;
        }
    }
    Ok(())
}

/// The objective of a measured cell as the search can estimate it.
fn estimate(objective: &Objective, tf: &[f64], probes: &[Measured], m: &Measured) -> f64 {
    let t = tf[m.arch.code().get() as usize];
    match *objective {
        Objective::Weighted { weight } => {
            super::weighted(weight, t, Normaliser::of(probes).map_or(0.0, |n| n.linear(m.latency_ms)))
        }
        Objective::Constraint { max_latency_ms } if m.latency_ms <= max_latency_ms => t,
        Objective::Constraint { max_latency_ms } => -m.latency_ms / max_latency_ms,
    }
}

/// The proxy's favourite among `CHILDREN` draws of `gen` (cells not tried yet).
fn proxy_best(
    s: &Session,
    tf: &[f64],
    rng: &mut impl Rng,
    mut gen: impl FnMut(&mut dyn rand::RngCore) -> Option<Arch>,
) -> Option<Arch> {
    let mut best: Option<Arch> = None;
    for _ in 0..CHILDREN {
        let Some(a) = gen(rng) else { continue };
        if s.tried(a) {
            continue;
        }
        if best.is_none_or(|b| tf[a.code().get() as usize] > tf[b.code().get() as usize]) {
            best = Some(a);
        }
    }
    best
}

fn evolution(cfg: &SearchConfig, ctx: &Context, s: &mut Session, rng: &mut impl Rng) -> Result<(), SearchError> {
    if matches!(cfg.objective, Objective::Weighted { .. }) {
        s.measure_references()?;
    }
    let mut population: Vec<Measured> = s.probes().to_vec();
    let mut stalls = 0;
    while s.remaining() > 0 && stalls < 1000 {
        let child = if population.len() < POPULATION {
            let space = s.space();
            proxy_best(s, ctx.tf, rng, |r| any_member(space, r))
        } else {
            let mut parent: Option<(f64, Arch)> = None;
            for _ in 0..TOURNAMENT {
                let m = population[rng.random_range(0..population.len())];
                let f = estimate(&cfg.objective, ctx.tf, s.probes(), &m);
                if parent.is_none_or(|(pf, _)| f > pf) {
                    parent = Some((f, m.arch));
                }
            }
            let (fitness, parent) = parent.unwrap_or((0.0, super::LO));
            if fitness < 0.0 {
                // Constrained and even the best member is too slow: the lightest mutation.
                lightest(s, rng, |r| mutate(parent, r))
            } else {
                proxy_best(s, ctx.tf, rng, |r| mutate(parent, r))
            }
        };
        let Some(child) = child.or_else(|| untried(s, rng)) else { break };
        match s.measure(child)? {
            Answer::Latency(latency_ms) => {
                let step = s.probes().len();
                population.push(Measured { step, arch: child, latency_ms });
                if population.len() > POPULATION {
                    population.remove(0);
                }
            }
            Answer::Missing => stalls += 1,
            Answer::Exhausted => break,
        }
    }
    Ok(())
}

/// Conv weights per edge (9 for a 3x3, 1 for a 1x1, else 0): the analytic cost FreeREA
/// constrains, used only to steer away from infeasible cells.
fn conv_weight(a: Arch) -> usize {
    9 * a.count(Op::NorConv3x3) + a.count(Op::NorConv1x1)
}

/// The lightest (by [`conv_weight`], then fewest non-`none` edges) of `CHILDREN` draws.
fn lightest(
    s: &Session,
    rng: &mut impl Rng,
    mut gen: impl FnMut(&mut dyn rand::RngCore) -> Option<Arch>,
) -> Option<Arch> {
    let key = |a: Arch| (conv_weight(a), 6 - a.count(Op::None));
    let mut best: Option<Arch> = None;
    for _ in 0..CHILDREN {
        let Some(a) = gen(rng) else { continue };
        if !s.tried(a) && best.is_none_or(|b| key(a) < key(b)) {
            best = Some(a);
        }
    }
    best
}

/// `parent` with one edge set to a different op.
fn mutate(parent: Arch, rng: &mut dyn rand::RngCore) -> Option<Arch> {
    let edge = rng.random_range(0..simnas_shared::NUM_EDGES);
    let current = parent.ops[edge] as usize;
    let op = (current + 1 + rng.random_range(0..Op::ALL.len() - 1)) % Op::ALL.len();
    Action::from_index((edge * Op::ALL.len() + op) as u8).map(|a| parent.apply(a))
}

fn oracle(cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
    let table = ctx.table.ok_or(SearchError::Unavailable {
        strategy: "oracle",
        what: "a table device (it reads the whole table; it is a reference, not a search)".into(),
    })?;
    if let Some(best) = oracle_pick(&cfg.objective, ctx.tf, table.values(), cfg.space) {
        s.measure(best)?;
    }
    Ok(())
}

/// The true optimum of `objective` over the candidates of `space` in a whole table
/// (`values` per code, `None` = not measured): weighted with the latency normalised over
/// the candidates' min and max; constrained: the best-TF candidate within the limit (ties:
/// lower latency).
pub fn oracle_pick(objective: &Objective, tf: &[f64], values: &[Option<f64>], space: Space) -> Option<Arch> {
    let (lo, hi) = space_range(values, space);
    let norm = Normaliser { lo, hi };
    let mut best: Option<(f64, f64, usize)> = None;
    for (code, v) in values.iter().enumerate() {
        let Some(ms) = *v else { continue };
        if !space.contains_code(code) {
            continue;
        }
        let score = match *objective {
            Objective::Weighted { weight } => super::weighted(weight, tf[code], if hi > lo { norm.l(ms) } else { 0.0 }),
            Objective::Constraint { max_latency_ms } if ms <= max_latency_ms => tf[code],
            Objective::Constraint { .. } => continue,
        };
        if best.is_none_or(|(bs, bms, _)| score > bs || (score == bs && ms < bms)) {
            best = Some((score, ms, code));
        }
    }
    best.and_then(|(_, _, code)| ArchCode::new(code as u16)).map(Arch::from_code)
}

/// Min and max of a table's values (per code) over the candidates of `space` (infinite
/// bounds when none has a value).
pub fn space_range(values: &[Option<f64>], space: Space) -> (f64, f64) {
    values
        .iter()
        .enumerate()
        .filter(|&(c, _)| space.contains_code(c))
        .filter_map(|(_, v)| *v)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)))
}
