//! The calibrated controller's weighted search, without an allocator: the loop a board runs
//! on itself and the host runs through its budgeted session (the same code).
//!
//! 1. Measure the reference cells all-`skip_connect` and all-`nor_conv_3x3` (when two probes
//!    are left): they fix the units. Then, if the prior says so, the [`DEAD_EDGE_CELL`].
//! 2. Each step: the posterior given every probe, a predicted latency for all 15,625 cells
//!    from their packed op counts ([`PACKED`], built at compile time), the score
//!    `w TF + (1 - w) (1 - (pred - optimism) / range)`, and a probe of the best cell not
//!    tried yet (ties: the lower code).
//! 3. Stop when the budget is spent or the prober says so. [`Walk::range`] is the final
//!    range estimate (reference units) the pick must use.
//!
//! The scan runs in `f32` (a Cortex-M4 has a single-precision FPU); the posterior, a 9x9
//! system per step, in `f64`.

use super::{Prior, RangeRule, COEFS, DEAD_EDGE_CELL, FEATURES};
use simnas_shared::{Arch, ArchCode, Op, NUM_ARCHS};

/// Most probes a walk records.
pub const MAX_BUDGET: usize = 64;

/// What a probe returned.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Probed {
    /// Measured latency, ms.
    Latency(f64),
    /// The device has no measurement of this cell (no budget spent).
    Missing,
    /// No more probes may be spent (nothing was measured).
    Exhausted,
}

/// Measures cells for the walk.
pub trait Prober {
    /// The device's error (ends the walk).
    type Error;
    /// Measure `arch` once.
    fn probe(&mut self, arch: Arch) -> Result<Probed, Self::Error>;
}

/// The walk's state: its probes and the cells it tried.
pub struct Walk {
    probes: [(Arch, f64); MAX_BUDGET],
    len: usize,
    tried: [u32; NUM_ARCHS.div_ceil(32)],
    range: f64,
}

impl Default for Walk {
    fn default() -> Self {
        Walk::new()
    }
}

impl Walk {
    /// An empty walk.
    pub const fn new() -> Walk {
        Walk {
            probes: [(Arch::uniform(Op::None), 0.0); MAX_BUDGET],
            len: 0,
            tried: [0; NUM_ARCHS.div_ceil(32)],
            range: 1.0,
        }
    }

    /// The probes, in order: `(cell, latency ms)`.
    pub fn probes(&self) -> &[(Arch, f64)] {
        &self.probes[..self.len]
    }

    /// The device's latency range estimated at the end, in units of the probed reference
    /// range (the pick's normalisation).
    pub fn range(&self) -> f64 {
        self.range
    }

    fn tried(&self, code: usize) -> bool {
        self.tried[code / 32] & (1 << (code % 32)) != 0
    }

    fn mark(&mut self, code: usize) {
        self.tried[code / 32] |= 1 << (code % 32);
    }

    /// Measure `a` unless tried; `false` when the walk must stop.
    fn measure<P: Prober>(&mut self, p: &mut P, a: Arch, budget: usize) -> Result<bool, P::Error> {
        let code = a.code().get() as usize;
        if self.tried(code) {
            return Ok(true);
        }
        if self.len >= budget.min(MAX_BUDGET) {
            return Ok(false);
        }
        match p.probe(a)? {
            Probed::Latency(ms) => {
                self.mark(code);
                self.probes[self.len] = (a, ms);
                self.len += 1;
                Ok(true)
            }
            Probed::Missing => {
                self.mark(code);
                Ok(true)
            }
            Probed::Exhausted => Ok(false),
        }
    }

    /// `(lo, hi)` of the units: the two reference cells when both were measured and
    /// `hi > lo`, else the min and max of the probes; `None` with fewer than two distinct
    /// latencies.
    pub fn units(&self) -> Option<(f64, f64)> {
        let find = |a: Arch| self.probes().iter().find(|p| p.0 == a).map(|p| p.1);
        if let (Some(lo), Some(hi)) = (find(Arch::uniform(Op::SkipConnect)), find(Arch::uniform(Op::NorConv3x3))) {
            if hi > lo {
                return Some((lo, hi));
            }
        }
        let lo = self.probes().iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = self.probes().iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        (hi > lo).then_some((lo, hi))
    }
}

/// Why the walk stopped early.
#[derive(Debug, PartialEq)]
pub enum WalkError<E> {
    /// The prober failed.
    Probe(E),
    /// The prior or the posterior is unusable.
    Calib(super::CalibError),
}

/// Run the weighted search (`w = weight`) with at most `budget` probes. `tf(code)` is the
/// proxy score of a cell.
pub fn search<P: Prober>(
    prior: &Prior,
    weight: f64,
    budget: usize,
    tf: impl Fn(usize) -> f64,
    prober: &mut P,
    walk: &mut Walk,
) -> Result<(), WalkError<P::Error>> {
    let m = |w: &mut Walk, p: &mut P, a: Arch| w.measure(p, a, budget).map_err(WalkError::Probe);
    if budget.saturating_sub(walk.len) >= 2
        && (!m(walk, prober, Arch::uniform(Op::SkipConnect))? || !m(walk, prober, Arch::uniform(Op::NorConv3x3))?)
    {
        return Ok(());
    }
    if prior.dead_edge_probe && walk.len < budget && !m(walk, prober, DEAD_EDGE_CELL)? {
        return Ok(());
    }
    loop {
        let post = match walk.units() {
            Some((lo, hi)) => prior.posterior_full(walk.probes().iter().map(|p| (p.0, (p.1 - lo) / (hi - lo)))),
            None => prior.posterior_full(core::iter::empty()),
        }
        .map_err(WalkError::Calib)?;
        let theta: [f32; FEATURES] = core::array::from_fn(|i| post.theta[i] as f32);
        let range = match prior.range_rule {
            RangeRule::Reference => prior.range_factor,
            RangeRule::Model => {
                let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
                for &packed in PACKED.iter() {
                    let p = predict_packed(&theta, packed);
                    lo = lo.min(p);
                    hi = hi.max(p);
                }
                let r = hi - lo;
                prior.range_factor * if r > 0.0 && r.is_finite() { f64::from(r) } else { 1.0 }
            }
        }
        .max(1e-9);
        walk.range = range;
        if walk.len >= budget.min(MAX_BUDGET) {
            return Ok(());
        }
        let (w, inv) = (weight as f32, (1.0 / range) as f32);
        let mut best: Option<(f32, usize)> = None;
        for (code, &packed) in PACKED.iter().enumerate() {
            if walk.tried(code) {
                continue;
            }
            let mut pred = predict_packed(&theta, packed);
            if prior.explore > 0.0 {
                if let Some(a) = ArchCode::new(code as u16).map(Arch::from_code) {
                    pred -= (prior.explore * crate::calib::sqrt(post.variance(&a))) as f32;
                }
            }
            let score = w * tf(code) as f32 + (1.0 - w) * (1.0 - pred * inv);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, code));
            }
        }
        let Some(a) = best.and_then(|(_, c)| ArchCode::new(c as u16)).map(Arch::from_code) else { return Ok(()) };
        if !m(walk, prober, a)? {
            return Ok(());
        }
    }
}

/// `theta . features` from a packed cell.
fn predict_packed(theta: &[f32; FEATURES], packed: u32) -> f32 {
    let mut p = theta[0];
    for k in 0..COEFS {
        p += theta[k + 1] * ((packed >> (4 * k)) & 0xf) as f32;
    }
    p
}

/// Every cell's [`super::features`] counts, 4 bits each (`n_skip` in the low nibble ...
/// `m_pool` in the high one), indexed by compact code. Built at compile time.
pub static PACKED: [u32; NUM_ARCHS] = pack_all();

const fn pack_all() -> [u32; NUM_ARCHS] {
    let mut out = [0u32; NUM_ARCHS];
    let mut code = 0;
    while code < NUM_ARCHS {
        out[code] = pack(code);
        code += 1;
    }
    out
}

/// Edges as `(from, to)`, in NATS-Bench order.
const EDGES: [(usize, usize); 6] = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)];

const fn pack(code: usize) -> u32 {
    let mut ops = [0usize; 6];
    let mut rest = code;
    let mut e = 6;
    while e > 0 {
        e -= 1;
        ops[e] = rest % 5;
        rest /= 5;
    }
    let mut from_in = [true, false, false, false];
    let mut i = 0;
    while i < 6 {
        if ops[i] != 0 && from_in[EDGES[i].0] {
            from_in[EDGES[i].1] = true;
        }
        i += 1;
    }
    let mut to_out = [false, false, false, true];
    let mut i = 6;
    while i > 0 {
        i -= 1;
        if ops[i] != 0 && to_out[EDGES[i].1] {
            to_out[EDGES[i].0] = true;
        }
    }
    let mut packed = 0u32;
    let mut i = 0;
    while i < 6 {
        let op = ops[i];
        if op != 0 {
            packed += 1 << (4 * (op - 1));
            if from_in[EDGES[i].0] && to_out[EDGES[i].1] {
                packed += 1 << (4 * (op + 3));
            }
        }
        i += 1;
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::{features, predict};

    #[test]
    fn packed_counts_are_the_features() {
        for c in (0..NUM_ARCHS as u16).step_by(7) {
            let a = Arch::from_code(ArchCode::new(c).unwrap());
            let f = features(&a);
            for k in 0..COEFS {
                assert_eq!(((PACKED[c as usize] >> (4 * k)) & 0xf) as f64, f[k + 1], "{a} feature {k}");
            }
            let theta = [0.5, 0.01, 0.2, 0.4, 0.05, 0.03, 0.0, 0.1, 0.25];
            let t32: [f32; FEATURES] = core::array::from_fn(|i| theta[i] as f32);
            assert!((f64::from(predict_packed(&t32, PACKED[c as usize])) - predict(&theta, &a)).abs() < 1e-5);
        }
    }

    /// A device whose latency is an exact per-op model; every lookup is one probe.
    struct Exact {
        theta: [f64; FEATURES],
        calls: usize,
    }
    impl Prober for Exact {
        type Error = ();
        fn probe(&mut self, a: Arch) -> Result<Probed, ()> {
            self.calls += 1;
            Ok(Probed::Latency(10.0 * predict(&self.theta, &a)))
        }
    }

    fn prior() -> Prior {
        let mut cov = [[0.0; COEFS]; COEFS];
        for (i, row) in cov.iter_mut().enumerate() {
            row[i] = 0.002;
        }
        Prior {
            mean: [0.01, 0.05, 0.1, 0.03, 0.01, 0.03, 0.06, 0.04],
            cov,
            noise: 0.05,
            range_factor: 1.0,
            range_rule: RangeRule::Reference,
            dead_edge_probe: true,
            constrained_dead_edge_probe: false,
            explore: 0.0,
        }
    }

    #[test]
    fn walk_spends_its_budget_on_distinct_cells_references_first() {
        let mut dev = Exact { theta: [1.0, 0.01, 0.1, 0.3, 0.05, 0.0, 0.0, 0.0, 0.0], calls: 0 };
        let mut walk = Walk::new();
        let tf = |c: usize| (c % 97) as f64 / 97.0;
        search(&prior(), 0.5, 10, tf, &mut dev, &mut walk).unwrap();
        assert_eq!(dev.calls, 10);
        let p = walk.probes();
        assert_eq!(p.len(), 10);
        assert_eq!(
            (p[0].0, p[1].0, p[2].0),
            (Arch::uniform(Op::SkipConnect), Arch::uniform(Op::NorConv3x3), DEAD_EDGE_CELL)
        );
        for i in 0..p.len() {
            for j in 0..i {
                assert_ne!(p[i].0, p[j].0);
            }
        }
        assert_eq!(walk.range(), 1.0);
    }

    #[test]
    fn small_budgets_and_a_failing_prober() {
        for budget in [0, 1, 2, 3] {
            let mut dev = Exact { theta: [1.0, 0.01, 0.1, 0.3, 0.05, 0.0, 0.0, 0.0, 0.0], calls: 0 };
            let mut walk = Walk::new();
            search(&prior(), 0.5, budget, |_| 0.5, &mut dev, &mut walk).unwrap();
            assert_eq!(walk.probes().len(), budget);
        }
        struct Broken;
        impl Prober for Broken {
            type Error = &'static str;
            fn probe(&mut self, _: Arch) -> Result<Probed, &'static str> {
                Err("unplugged")
            }
        }
        let mut walk = Walk::new();
        assert_eq!(search(&prior(), 0.5, 10, |_| 0.5, &mut Broken, &mut walk), Err(WalkError::Probe("unplugged")));
    }
}
