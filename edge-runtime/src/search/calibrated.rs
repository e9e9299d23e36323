//! The calibrated controller (`controller`, the default): the weighted search a board runs
//! on itself and the host runs through its session's record (the same code), over the
//! per-op latency model of [`crate::calib`].
//!
//! 1. Measure the reference cells all-`skip_connect` and all-`nor_conv_3x3` (when two probes
//!    are left): they fix the units. Then, if the prior says so, the [`DEAD_EDGE_CELL`].
//! 2. Each step: the posterior given every probe, a predicted latency for every cell from
//!    its packed op counts ([`PACKED`], built at compile time), the score
//!    `w TF + (1 - w) (1 - (pred - optimism) / range)`, and a probe of the best cell not
//!    tried yet. Cells with the same op counts share a prediction, so the scan visits
//!    [`Groups`] (a few hundred): in each, the untried cell with the highest TF (ties: the
//!    lower code) is the group's candidate; the best-scoring candidate wins (ties: the
//!    lower code). A step costs a few hundred predictions, not 15,625.
//! 3. Stop when the record's budget is spent or the device says it is exhausted.
//!    [`Calibration::range`] is the final range estimate (reference units) the pick must
//!    use ([`super::pick_with`]).
//!
//! The probes live in the caller's [`Probes`] record; the loop keeps only the probes'
//! normal equations as running sums ([`Calibration`]), brought up to date from the record
//! before each step.
//!
//! The scan runs in `f32` (a Cortex-M4 has a single-precision FPU); the posterior, a 9x9
//! system per step, in `f64`.

use super::{Answer, Device, Measured, Normaliser, Probes, SearchError};
use crate::calib::{Prior, RangeRule, Sums, COEFS, DEAD_EDGE_CELL, FEATURES};
use simnas_shared::{Arch, ArchCode, Op, NUM_ARCHS};

/// Most probes the calibrated controller spends: the length of the record a board keeps
/// for it. The host refuses a larger budget too, so both accept the same budgets.
pub const MAX_BUDGET: usize = 64;

/// What the loop keeps besides the record: the normal equations of the record's probes
/// (running sums, so a step solves the same 9x9 system whatever the number of probes) and
/// its latest estimate of the device's latency range.
#[derive(Clone, Debug)]
pub struct Calibration {
    sums: Sums,
    summed: usize,
    range: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration::new()
    }
}

impl Calibration {
    /// Nothing summed yet, the range at 1 (the probed reference range).
    pub const fn new() -> Calibration {
        Calibration { sums: Sums::new(), summed: 0, range: 1.0 }
    }

    /// The device's latency range estimated last, in units of the probed reference range
    /// (the pick's normalisation).
    pub fn range(&self) -> f64 {
        self.range
    }

    /// Add the probes the sums do not hold yet (the record only grows).
    fn absorb(&mut self, probes: &[Measured]) {
        for p in probes.get(self.summed..).unwrap_or_default() {
            self.sums.add(&p.arch, p.latency_ms);
        }
        self.summed = self.summed.max(probes.len());
    }
}

/// Candidates grouped by [`PACKED`] op counts (groups in increasing packed value), each group's
/// members sorted by TF, highest first (ties: lower code). Built once per score table:
/// `GroupTable::build` (`std` feature) on the host, at build time for a board.
#[derive(Clone, Copy, Debug)]
pub struct Groups<'a> {
    /// Group `g` is `members[starts[g]..starts[g + 1]]`.
    pub starts: &'a [u16],
    /// Compact codes, every candidate once.
    pub members: &'a [u16],
    /// Each group's [`PACKED`] op counts.
    pub packed: &'a [u32],
    /// TF (as `f32`) of each group's first member: the scan reads it instead of calling
    /// `tf` while that member is untried.
    pub tf0: &'a [f32],
}

/// Owned [`Groups`].
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq)]
pub struct GroupTable {
    /// See [`Groups::starts`].
    pub starts: std::vec::Vec<u16>,
    /// See [`Groups::members`].
    pub members: std::vec::Vec<u16>,
    /// See [`Groups::packed`].
    pub packed: std::vec::Vec<u32>,
    /// See [`Groups::tf0`].
    pub tf0: std::vec::Vec<f32>,
}

#[cfg(feature = "std")]
impl GroupTable {
    /// Group every candidate of `space`; `tf(code)` is the proxy score.
    pub fn build(space: super::Space, tf: impl Fn(usize) -> f64) -> GroupTable {
        let mut codes: std::vec::Vec<u16> =
            (0..NUM_ARCHS as u16).filter(|&c| space.contains_code(usize::from(c))).collect();
        codes.sort_by(|&a, &b| {
            let (a, b) = (usize::from(a), usize::from(b));
            PACKED[a].cmp(&PACKED[b]).then(tf(b).total_cmp(&tf(a))).then(a.cmp(&b))
        });
        let mut starts = std::vec![0u16];
        for i in 1..codes.len() {
            if PACKED[usize::from(codes[i])] != PACKED[usize::from(codes[i - 1])] {
                starts.push(i as u16);
            }
        }
        starts.push(codes.len() as u16);
        let first = |w: &[u16]| usize::from(codes[usize::from(w[0])]);
        let packed = starts.windows(2).map(|w| PACKED[first(w)]).collect();
        let tf0 = starts.windows(2).map(|w| tf(first(w)) as f32).collect();
        GroupTable { starts, members: codes, packed, tf0 }
    }

    /// Borrowed.
    pub fn groups(&self) -> Groups<'_> {
        Groups { starts: &self.starts, members: &self.members, packed: &self.packed, tf0: &self.tf0 }
    }
}

/// Run the weighted search (`w = weight`) until the record's budget is spent, recording
/// into `probes`; `tf(code)` is the proxy score of a cell. `cal` keeps the loop's sums and
/// range estimate (also when a probe fails).
pub fn search<B, D>(
    prior: &Prior,
    weight: f64,
    tf: impl Fn(usize) -> f64,
    groups: Groups,
    probes: &mut Probes<B>,
    dev: &mut D,
    cal: &mut Calibration,
) -> Result<(), SearchError<D::Error>>
where
    B: AsRef<[Measured]> + AsMut<[Measured]>,
    D: Device + ?Sized,
{
    let group = |g: usize| -> &[u16] {
        let (a, b) = (groups.starts[g], groups.starts.get(g + 1).copied().unwrap_or(groups.starts[g]));
        groups.members.get(usize::from(a)..usize::from(b)).unwrap_or(&[])
    };
    let n_groups = groups.starts.len().saturating_sub(1).min(groups.packed.len()).min(groups.tf0.len());
    let precision = prior.precision().map_err(SearchError::Calib)?;
    // One probe unless tried; `false` when the record or the device says stop. The step a
    // board reports is the number of probes before this one.
    let m = |p: &mut Probes<B>, d: &mut D, a: Arch| -> Result<bool, SearchError<D::Error>> {
        let step = p.probes().len();
        match p.measure(d, a, step).map_err(SearchError::Device)? {
            Answer::Exhausted => Ok(false),
            Answer::Latency(_) | Answer::Missing => Ok(true),
        }
    };
    if probes.remaining() >= 2
        && (!m(probes, dev, Arch::uniform(Op::SkipConnect))? || !m(probes, dev, Arch::uniform(Op::NorConv3x3))?)
    {
        return Ok(());
    }
    if prior.dead_edge_probe && probes.remaining() > 0 && !m(probes, dev, DEAD_EDGE_CELL)? {
        return Ok(());
    }
    loop {
        cal.absorb(probes.probes());
        let post = match Normaliser::of(probes.probes()) {
            Some(n) => prior.posterior_from_sums(&precision, &cal.sums, n.lo, n.hi),
            None => prior.posterior_from_sums(&precision, &Sums::new(), 0.0, 1.0),
        }
        .map_err(SearchError::Calib)?;
        let theta: [f32; FEATURES] = core::array::from_fn(|i| post.theta[i] as f32);
        let range = match prior.range_rule {
            RangeRule::Reference => prior.range_factor,
            RangeRule::Model => {
                let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
                for &packed in &groups.packed[..n_groups] {
                    let p = predict_packed(&theta, packed);
                    lo = lo.min(p);
                    hi = hi.max(p);
                }
                let r = hi - lo;
                prior.range_factor * if r > 0.0 && r.is_finite() { f64::from(r) } else { 1.0 }
            }
        }
        .max(1e-9);
        cal.range = range;
        if probes.remaining() == 0 {
            return Ok(());
        }
        let (w, inv) = (weight as f32, (1.0 / range) as f32);
        let mut best: Option<(f32, usize)> = None;
        for g in 0..n_groups {
            let members = group(g);
            let Some(i) = members.iter().position(|&c| !probes.tried_code(usize::from(c))) else { continue };
            let code = usize::from(members[i]);
            let t = if i == 0 { groups.tf0[g] } else { tf(code) as f32 };
            let mut pred = predict_packed(&theta, groups.packed[g]);
            if prior.explore > 0.0 {
                if let Some(a) = ArchCode::new(code as u16).map(Arch::from_code) {
                    pred -= (prior.explore * crate::calib::sqrt(post.variance(&a))) as f32;
                }
            }
            let score = w * t + (1.0 - w) * (1.0 - pred * inv);
            if best.is_none_or(|(b, bc)| score > b || (score == b && code < bc)) {
                best = Some((score, code));
            }
        }
        let Some(a) = best.and_then(|(_, c)| ArchCode::new(c as u16)).map(Arch::from_code) else { return Ok(()) };
        if !m(probes, dev, a)? {
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

/// Every cell's [`crate::calib::features`] counts, 4 bits each (`n_skip` in the low nibble ...
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

const fn pack(code: usize) -> u32 {
    let mut arch = Arch::uniform(Op::None);
    let mut rest = code;
    let mut e = 6;
    while e > 0 {
        e -= 1;
        arch.ops[e] = match Op::from_index((rest % 5) as u8) {
            Some(op) => op,
            None => Op::None,
        };
        rest /= 5;
    }
    let live = arch.live_edges();
    let mut packed = 0u32;
    let mut i = 0;
    while i < 6 {
        let op = arch.ops[i] as usize;
        if op != 0 {
            packed += 1 << (4 * (op - 1));
            if live[i] {
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
    use crate::search::Space;

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
    impl Device for Exact {
        type Error = ();
        fn measure(&mut self, a: Arch, step: usize) -> Result<Answer, ()> {
            assert_eq!(step, self.calls, "the step is the number of probes so far");
            self.calls += 1;
            Ok(Answer::Latency(10.0 * predict(&self.theta, &a)))
        }
    }

    /// A record of `budget` probes in a buffer of its own.
    fn record(budget: usize, space: Space) -> Probes<std::vec::Vec<Measured>> {
        Probes::with_budget::<()>(budget).unwrap().in_space(space)
    }

    fn prior() -> Prior {
        Prior { dead_edge_probe: true, ..Prior::isotropic([0.01, 0.05, 0.1, 0.03, 0.01, 0.03, 0.06, 0.04], 0.002) }
    }

    #[test]
    fn search_spends_its_budget_on_distinct_cells_references_first() {
        let mut dev = Exact { theta: [1.0, 0.01, 0.1, 0.3, 0.05, 0.0, 0.0, 0.0, 0.0], calls: 0 };
        let mut probes = record(10, Space::Raw);
        let mut cal = Calibration::new();
        let tf = |c: usize| (c % 97) as f64 / 97.0;
        let groups = GroupTable::build(Space::Raw, tf);
        search(&prior(), 0.5, tf, groups.groups(), &mut probes, &mut dev, &mut cal).unwrap();
        assert_eq!(dev.calls, 10);
        let p = probes.probes();
        assert_eq!(p.len(), 10);
        assert_eq!(
            (p[0].arch, p[1].arch, p[2].arch),
            (Arch::uniform(Op::SkipConnect), Arch::uniform(Op::NorConv3x3), DEAD_EDGE_CELL)
        );
        for i in 0..p.len() {
            for j in 0..i {
                assert_ne!(p[i].arch, p[j].arch);
            }
        }
        assert_eq!(cal.range(), 1.0);
    }

    #[test]
    fn executed_space_search_probes_distinct_connected_executed_networks() {
        let mut dev = Exact { theta: [1.0, 0.01, 0.1, 0.3, 0.05, 0.0, 0.0, 0.0, 0.0], calls: 0 };
        let mut probes = record(20, Space::Executed);
        let tf = |c: usize| (c % 97) as f64 / 97.0;
        let groups = GroupTable::build(Space::Executed, tf);
        assert_eq!(groups.members.len(), simnas_shared::NUM_CONNECTED_EXECUTED);
        search(&prior(), 0.5, tf, groups.groups(), &mut probes, &mut dev, &mut Calibration::new()).unwrap();
        let p = probes.probes();
        assert_eq!((p.len(), dev.calls), (20, 20));
        // The dead-edge cell is measured as the network it runs: one skip, input to output.
        assert_eq!(p[2].arch, DEAD_EDGE_CELL.executed());
        for i in 0..p.len() {
            assert!(p[i].arch.is_connected() && p[i].arch.is_executed(), "{}", p[i].arch);
            for j in 0..i {
                assert_ne!(p[i].arch, p[j].arch);
            }
        }
    }

    #[test]
    fn small_budgets_and_a_failing_device() {
        for budget in [1, 2, 3] {
            let mut dev = Exact { theta: [1.0, 0.01, 0.1, 0.3, 0.05, 0.0, 0.0, 0.0, 0.0], calls: 0 };
            let mut probes = record(budget, Space::Raw);
            let groups = GroupTable::build(Space::Raw, |_| 0.5);
            search(&prior(), 0.5, |_| 0.5, groups.groups(), &mut probes, &mut dev, &mut Calibration::new()).unwrap();
            assert_eq!(probes.probes().len(), budget);
        }
        struct Broken;
        impl Device for Broken {
            type Error = &'static str;
            fn measure(&mut self, _: Arch, _: usize) -> Result<Answer, &'static str> {
                Err("unplugged")
            }
        }
        let mut probes = record(10, Space::Raw);
        let groups = GroupTable::build(Space::Raw, |_| 0.5);
        let r = search(&prior(), 0.5, |_| 0.5, groups.groups(), &mut probes, &mut Broken, &mut Calibration::new());
        assert_eq!(r, Err(SearchError::Device("unplugged")));
        assert!(probes.probes().is_empty());
    }

    #[test]
    fn grouped_scan_finds_the_best_cell_of_a_full_scan() {
        // With no probe tried, the group candidates' best is the best cell of the space.
        let tf = |c: usize| ((c * 7919) % 1000) as f64 / 1000.0;
        let table = GroupTable::build(Space::Raw, tf);
        let g = table.groups();
        assert_eq!(g.members.len(), NUM_ARCHS);
        assert!(g.starts.len() > 10 && g.starts.len() < 2000, "{} groups", g.starts.len() - 1);
        let theta: [f32; FEATURES] = [0.2, 0.01, 0.1, 0.3, 0.05, 0.02, 0.05, 0.1, 0.04];
        let score = |c: usize| 0.5 * tf(c) as f32 + 0.5 * (1.0 - predict_packed(&theta, PACKED[c]));
        let mut full = (f32::NEG_INFINITY, 0);
        for c in 0..NUM_ARCHS {
            if score(c) > full.0 {
                full = (score(c), c);
            }
        }
        let mut grouped = (f32::NEG_INFINITY, 0);
        for (k, w) in g.starts.windows(2).enumerate() {
            let c = usize::from(g.members[usize::from(w[0])]);
            assert_eq!((g.packed[k], g.tf0[k]), (PACKED[c], tf(c) as f32));
            if score(c) > grouped.0 || (score(c) == grouped.0 && c < grouped.1) {
                grouped = (score(c), c);
            }
        }
        assert_eq!(grouped.0, full.0);
    }
}
