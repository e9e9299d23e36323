//! The LUT baselines: rank the whole space by a latency lookup table and the proxy, then
//! spend the probes verifying the best candidates.
//!
//! * `lut-prior` (zero-shot): the LUT is the mean of the training devices' per-op LUTs (the
//!   paper's LUT, hi-normalised, from the fitted synthetic-device distribution; never fitted
//!   on a validation device). Weighted objective: the two references are measured, then the
//!   cells with the highest predicted `w * TF + (1 - w) * (1 - l_pred)`, with
//!   `l_pred = clamp((lut(h) - lut(lo)) / (lut(hi) - lut(lo)), 0, 1)` (the mean LUT is least
//!   reliable outside the references). Constrained: the LUT is
//!   calibrated to the device in ms by least squares `ms = a + b * lut(h)` over the cells
//!   measured so far (one point: `ms = b * lut(h)`; first probe: `lo`).
//! * `lut-probe`: measures five single-op cells ([`DESIGN`]): all-`skip_connect` (= `lo`),
//!   all-`nor_conv_3x3` (= `hi`), all-`nor_conv_1x1`, all-`avg_pool_3x3`, and the cell whose
//!   only non-`none` edge is a `skip_connect` from input to output (all-`none` is
//!   disconnected, and benchmark tables do not hold it). With `t[none] = 0` these solve the
//!   paper's per-op LUT `lat = base + sum_e t[op_e]` exactly: `t[skip] = (lo - min) / 5`,
//!   `base = min - t[skip]`, `t[op] = (lat(all-op) - base) / 6`. The remaining probes verify
//!   the best predicted cells; after each one the LUT is refitted by least squares over
//!   every measured cell (five unknowns), so it sharpens where the candidates are.
//!
//! Constrained ranking (both): among cells not tried yet whose TF beats the best feasible
//! measurement so far, take the highest TF predicted within the limit; if none is predicted
//! within it, the one predicted fastest. While nothing feasible has been measured, the last
//! probe only considers cells predicted within [`LAST_PROBE_MARGIN`] of the limit.

use super::super::{
    weighted, Answer, Context, Measured, Normaliser, Objective, SearchConfig, SearchError, Session, HI, LO,
};
use crate::synth::stats::solve_spd;
use simnas_shared::{Arch, ArchCode, Op, NUM_ARCHS};

/// The single-op cells `lut-probe` measures first.
pub const DESIGN: [Arch; 5] = [
    LO,
    HI,
    Arch::uniform(Op::NorConv1x1),
    Arch::uniform(Op::AvgPool3x3),
    Arch { ops: [Op::None, Op::None, Op::None, Op::SkipConnect, Op::None, Op::None] },
];

/// With nothing feasible measured yet, the last probe goes to a cell predicted at most this
/// fraction of the limit.
pub const LAST_PROBE_MARGIN: f64 = 0.8;

/// `lut-prior`.
pub fn prior(cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
    let lut = ctx.prior.ok_or(SearchError::Unavailable {
        strategy: "lut-prior",
        what: "the training devices' mean LUT (the fitted device distribution)".into(),
    })?;
    let shape: Vec<f64> = all_archs().map(|a| lut.latency(a)).collect();
    match cfg.objective {
        Objective::Weighted { weight } => {
            s.measure_references()?;
            let (lo, hi) = (lut.latency(LO), lut.latency(HI));
            let norm = Normaliser { lo, hi };
            let predicted: Vec<f64> = shape
                .iter()
                .enumerate()
                .map(|(c, &v)| weighted(weight, ctx.tf[c], if hi > lo { norm.l(v) } else { 0.0 }))
                .collect();
            verify_ranked(s, &predicted)
        }
        Objective::Constraint { max_latency_ms } => {
            s.measure(LO)?;
            constrained(s, ctx.tf, max_latency_ms, |probes| calibrate(&shape, probes))
        }
    }
}

/// `lut-probe`.
pub fn probe(cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
    for a in DESIGN {
        if s.measure(a)? == Answer::Exhausted {
            return Ok(());
        }
    }
    match cfg.objective {
        Objective::Weighted { weight } => {
            let mut fitter = PerOpFitter::default();
            loop {
                let fit = fitter.fit(s.probes());
                let Some(norm) = Normaliser::of(s.probes()) else { return Ok(()) };
                let predicted: Vec<f64> = fitter
                    .latencies(&fit)
                    .into_iter()
                    .enumerate()
                    .map(|(c, v)| weighted(weight, ctx.tf[c], norm.linear(v)))
                    .collect();
                match best_untried(s, &predicted) {
                    Some(a) if s.remaining() > 0 => {
                        if s.measure(a)? == Answer::Exhausted {
                            return Ok(());
                        }
                    }
                    _ => return Ok(()),
                }
            }
        }
        Objective::Constraint { max_latency_ms } => {
            let mut fitter = PerOpFitter::default();
            constrained(s, ctx.tf, max_latency_ms, |probes| {
                let fit = fitter.fit(probes);
                fitter.latencies(&fit)
            })
        }
    }
}

fn all_archs() -> impl Iterator<Item = Arch> {
    ArchCode::all().map(Arch::from_code)
}

/// The untried cell with the highest `score` (ties: lower code).
pub(super) fn best_untried(s: &Session, score: &[f64]) -> Option<Arch> {
    let mut best: Option<(f64, usize)> = None;
    for (c, &v) in score.iter().enumerate() {
        let a = Arch::from_code(ArchCode::new(c as u16)?);
        if !s.candidate(a) {
            continue;
        }
        if best.is_none_or(|(bv, _)| v > bv) {
            best = Some((v, c));
        }
    }
    best.and_then(|(_, c)| ArchCode::new(c as u16)).map(Arch::from_code)
}

/// Measure untried cells in decreasing order of a fixed `score` until the budget is spent.
fn verify_ranked(s: &mut Session, score: &[f64]) -> Result<(), SearchError> {
    let mut order: Vec<usize> = (0..NUM_ARCHS).collect();
    order.sort_by(|&a, &b| score[b].total_cmp(&score[a]).then(a.cmp(&b)));
    for c in order {
        if s.remaining() == 0 {
            break;
        }
        let Some(code) = ArchCode::new(c as u16) else { continue };
        let a = Arch::from_code(code);
        if s.candidate(a) && s.measure(a)? == Answer::Exhausted {
            break;
        }
    }
    Ok(())
}

/// The constrained loop shared by both LUT strategies; `predict` maps the probes so far to
/// a predicted latency (ms) per code.
pub(super) fn constrained(
    s: &mut Session,
    tf: &[f64],
    limit: f64,
    mut predict: impl FnMut(&[Measured]) -> Vec<f64>,
) -> Result<(), SearchError> {
    while s.remaining() > 0 {
        let pred = predict(s.probes());
        let best_tf = s
            .probes()
            .iter()
            .filter(|p| p.latency_ms <= limit)
            .map(|p| tf[p.arch.code().get() as usize])
            .fold(f64::NEG_INFINITY, f64::max);
        let cautious = best_tf == f64::NEG_INFINITY && s.remaining() == 1;
        let cap = if cautious { LAST_PROBE_MARGIN * limit } else { limit };
        let (mut within, mut fastest): (Option<usize>, Option<usize>) = (None, None);
        for c in 0..NUM_ARCHS {
            let Some(code) = ArchCode::new(c as u16) else { continue };
            if tf[c] <= best_tf || !s.candidate(Arch::from_code(code)) {
                continue;
            }
            if pred[c] <= cap && within.is_none_or(|w| tf[c] > tf[w]) {
                within = Some(c);
            }
            if fastest.is_none_or(|f| pred[c] < pred[f]) {
                fastest = Some(c);
            }
        }
        let Some(c) = within.or(fastest) else { break };
        let Some(code) = ArchCode::new(c as u16) else { break };
        if s.measure(Arch::from_code(code))? == Answer::Exhausted {
            break;
        }
    }
    Ok(())
}

/// `shape` (a LUT's latency per code) mapped to ms by least squares on the measured cells:
/// `a + b * shape` with two or more points and a positive slope, else `b * shape`.
fn calibrate(shape: &[f64], probes: &[Measured]) -> Vec<f64> {
    let pts: Vec<(f64, f64)> = probes.iter().map(|p| (shape[p.arch.code().get() as usize], p.latency_ms)).collect();
    let n = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), &(x, y)| (a + x, b + y));
    let (mx, my) = (sx / n.max(1.0), sy / n.max(1.0));
    let sxx: f64 = pts.iter().map(|&(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|&(x, y)| (x - mx) * (y - my)).sum();
    let (a, b) = if pts.len() >= 2 && sxx > 0.0 && sxy > 0.0 {
        let b = sxy / sxx;
        (my - b * mx, b)
    } else if mx > 0.0 {
        (0.0, my / mx)
    } else {
        (0.0, 1.0)
    };
    shape.iter().map(|&v| a + b * v).collect()
}

/// A per-op LUT with a cost factor for dead edges: `lat = base + sum over edges of
/// t[op_e] * (1 if the edge is live else alpha)`. An edge is dead when no input reaches
/// its source or its target reaches no output (its work cannot affect the result); some
/// runtimes skip such edges (BRP-NAS's devices: `alpha` near 0), others run everything
/// (HELP, HW-NAS-Bench: `alpha` near 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerOpLut {
    /// `[base, t_skip, t_conv1x1, t_conv3x3, t_pool]` (`t_none = 0`).
    pub t: [f64; 5],
    /// Cost factor of a dead edge.
    pub alpha: f64,
}

impl PerOpLut {
    /// Predicted latency of `a`.
    pub fn latency(&self, a: Arch) -> f64 {
        features(a, self.alpha).iter().zip(&self.t).map(|(f, t)| f * t).sum()
    }
}

/// Per-op LUT by least squares over the measured cells (an op no measured cell uses gets
/// 0). `alpha` is chosen from `0, 0.1, ..., 1` by the smallest squared error; without
/// evidence (no measured cell with a dead edge, as the five single-op cells) it stays 1,
/// the paper's LUT.
pub fn per_op_fit(probes: &[Measured]) -> PerOpLut {
    let mut f = PerOpFitter::default();
    f.fit(probes)
}

/// Dead-edge cost factors [`per_op_fit`] tries, from 1 down (ties keep the larger).
const ALPHAS: usize = 11;

/// [`per_op_fit`] over a growing list of probes, keeping each factor's normal equations
/// and each probe's features, so that refitting after one more probe costs one pass over
/// the probes' errors rather than rebuilding everything (a search that refits after every
/// probe stays fast at thousands of probes).
#[derive(Default)]
pub struct PerOpFitter {
    /// Per probe folded in so far: its latency and its features under each factor.
    rows: Vec<(f64, [[f64; 5]; ALPHAS])>,
    /// Per factor: `X^T X` and `X^T y`.
    sums: Vec<([f64; 25], [f64; 5])>,
    /// Every cell's features under each factor, by code (built on first use).
    cells: Vec<[[f64; 5]; ALPHAS]>,
}

impl PerOpFitter {
    /// The fit over `probes`, which must extend the probes of the previous call (a list
    /// that does not is refolded from the start).
    pub fn fit(&mut self, probes: &[Measured]) -> PerOpLut {
        if probes.len() < self.rows.len() || self.sums.len() != ALPHAS {
            (self.rows, self.sums) = (Vec::new(), vec![([0.0; 25], [0.0; 5]); ALPHAS]);
        }
        for p in &probes[self.rows.len()..] {
            let feats: [[f64; 5]; ALPHAS] = core::array::from_fn(|k| features(p.arch, alpha_of(k)));
            for (f, (ata, atb)) in feats.iter().zip(self.sums.iter_mut()) {
                for i in 0..5 {
                    atb[i] += f[i] * p.latency_ms;
                    for j in 0..5 {
                        ata[i * 5 + j] += f[i] * f[j];
                    }
                }
            }
            self.rows.push((p.latency_ms, feats));
        }
        let mut best: Option<(f64, PerOpLut)> = None;
        for k in 0..ALPHAS {
            let (ata, atb) = &self.sums[k];
            let x = solve_spd(ata, atb);
            let lut = PerOpLut { t: [x[0], x[1], x[2], x[3], x[4]], alpha: alpha_of(k) };
            let err: f64 = self
                .rows
                .iter()
                .map(|(y, f)| (f[k].iter().zip(&lut.t).map(|(a, b)| a * b).sum::<f64>() - y).powi(2))
                .sum();
            // Strictly better only (relative margin against round-off), so ties keep alpha = 1.
            if best.is_none_or(|(e, _)| err < e * (1.0 - 1e-9) - 1e-12) {
                best = Some((err, lut));
            }
        }
        best.map_or(PerOpLut { t: [0.0; 5], alpha: 1.0 }, |b| b.1)
    }

    /// [`PerOpLut::latency`] of every cell, by code, from features computed once.
    pub fn latencies(&mut self, lut: &PerOpLut) -> Vec<f64> {
        if self.cells.is_empty() {
            self.cells = all_archs().map(|a| core::array::from_fn(|k| features(a, alpha_of(k)))).collect();
        }
        match (0..ALPHAS).find(|&k| alpha_of(k) == lut.alpha) {
            Some(k) => self.cells.iter().map(|f| f[k].iter().zip(&lut.t).map(|(f, t)| f * t).sum()).collect(),
            None => all_archs().map(|a| lut.latency(a)).collect(),
        }
    }
}

/// The `k`-th factor tried: 1, 0.9, ..., 0.
fn alpha_of(k: usize) -> f64 {
    f64::from((ALPHAS - 1 - k) as u32) / 10.0
}

/// `[1, n_skip, n_conv1x1, n_conv3x3, n_pool]`, a dead edge counting `alpha`.
fn features(a: Arch, alpha: f64) -> [f64; 5] {
    let live = a.live_edges();
    let mut f = [1.0, 0.0, 0.0, 0.0, 0.0];
    for (e, &op) in a.ops.iter().enumerate() {
        if op != Op::None {
            f[op as usize] += if live[e] { 1.0 } else { alpha };
        }
    }
    f
}
