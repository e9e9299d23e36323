//! The paper's controller (`controller-paper`): the meta-trained RL policy's walk over the
//! space, one edge edited per step, through the [`Probes`] record on a [`Device`].
//!
//! With a budget of `B` probes ([`Walker::walk`]):
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
//! The pick is then [`super::pick`] over the record's probes.

use super::{weighted, Answer, Device, Normaliser, Probes, SearchError, Space, HI, LO};
use crate::policy::{normalise_latency, History, Policy, Step, OBS_DIM};
use simnas_shared::{Action, Arch, ArchCode};

/// Steps of a training episode (the bound on a walk that finds no new cells).
pub const EPISODE_LEN: usize = 50;
/// Most probes a walk makes: the two references, the start and one cell per step.
pub const MAX_WALK_PROBES: usize = EPISODE_LEN + 3;
/// Length of the prior's ranking a walk needs: at most the two references are tried when
/// the start is chosen, so the third cell is always available.
pub const PRIOR_TOP: usize = 3;

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
    pub fn walk<B, D>(
        &self,
        tf: impl Fn(Arch) -> f64,
        start: &[Arch],
        probes: &mut Probes<B>,
        dev: &mut D,
    ) -> Result<WalkReport, SearchError<D::Error>>
    where
        B: AsRef<[super::Measured]> + AsMut<[super::Measured]>,
        D: Device + ?Sized,
    {
        if probes.remaining() >= 2 {
            probes.measure(dev, LO, 0).map_err(SearchError::Device)?;
            probes.measure(dev, HI, 0).map_err(SearchError::Device)?;
        }
        let first = start.iter().copied().find(|&a| !probes.tried(a)).unwrap_or(LO);
        // The walk's state is the network that runs (the cell itself in the raw space).
        let first = probes.space().member(first).unwrap_or(LO);
        let mut report = WalkReport { start: first, steps: 0, stop: Stop::NoStart };
        probes.measure(dev, first, 0).map_err(SearchError::Device)?; // free if it was `LO`
        let Some(mut lat) = probes.known(first) else { return Ok(report) };
        let mut cur = first;
        let tf_obs = |a: Arch| if self.obs_tf { tf(a) as f32 } else { 0.0 };
        let l = |p: &Probes<B>, ms: f64| match Normaliser::of(p.probes()) {
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
            let action = self.policy.greedy(&obs, allowed).map_err(SearchError::Policy)?;
            report.steps += 1;
            let Some(action) = action else {
                report.stop = Stop::NoAction;
                break;
            };
            let next = cur.apply(action);
            let next = probes.space().member(next).unwrap_or(next);
            match probes.measure(dev, next, report.steps).map_err(SearchError::Device)? {
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
