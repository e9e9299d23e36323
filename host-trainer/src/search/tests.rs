//! The search's guarantees on synthetic table devices: objective arithmetic checked
//! against hand-computed values, budgets, measured picks, feasibility, gaps and failures.

use super::strategies::oracle_pick;
use super::*;
use crate::device::table::TableDevice;
use crate::device::Probe;
use simnas_shared::{ArchCode, Op};

/// A deterministic stand-in for TF in [0, 1] (SplitMix64 of the code).
pub(super) fn fake_tf() -> Vec<f64> {
    ArchCode::all()
        .map(|c| {
            let mut z = u64::from(c.get()).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as f64 / u64::MAX as f64
        })
        .collect()
}

/// A table from a per-op LUT `[none, skip, conv1x1, conv3x3, pool]` plus a base, with a
/// small deterministic interaction term so the device is not exactly additive.
fn lut_table(base: f64, t: [f64; 5], wobble: f64) -> LatencyTable {
    lut_table_named("synthetic", base, t, wobble)
}

/// [`lut_table`] whose source is `NAME.csv#ms` (table devices are named by their source).
pub(super) fn lut_table_named(name: &str, base: f64, t: [f64; 5], wobble: f64) -> LatencyTable {
    let vals = ArchCode::all()
        .map(|c| {
            let a = Arch::from_code(c);
            let add: f64 = a.ops.iter().map(|&o| t[o as usize]).sum();
            Some(base + add + wobble * ((c.get() % 7) as f64 - 3.0))
        })
        .collect();
    LatencyTable::from_codes(format!("{name}.csv#ms"), vals).unwrap()
}

fn run(strategy: Strategy, budget: usize, objective: Objective, table: &LatencyTable, seed: u64) -> SearchOutcome {
    let tf = fake_tf();
    let prior = crate::synth::lut::Lut { base: 0.3, t: [[0.0, 0.01, 0.05, 0.1, 0.03]; 6] };
    let ctx = Context { tf: &tf, prior: Some(&prior), table: Some(table), policy: None, calib: None };
    let mut dev = TableDevice::new(table.clone());
    search(&SearchConfig { strategy, budget, objective, seed, space: Space::Executed }, &ctx, &mut dev, &mut |_| {})
}

#[test]
fn weighted_objective_by_hand() {
    // w = 0.5, TF = 0.8, lo = 2 ms, hi = 10 ms: 6 ms -> l = 0.5 -> 0.4 + 0.25 = 0.65.
    let n = Normaliser { lo: 2.0, hi: 10.0 };
    assert_eq!(n.l(6.0), 0.5);
    assert!((weighted(0.5, 0.8, n.l(6.0)) - 0.65).abs() < 1e-15);
    // Clamped outside [lo, hi]: 1 ms -> l = 0 -> 0.9; 12 ms -> l = 1 -> 0.4.
    assert!((weighted(0.5, 0.8, n.l(1.0)) - 0.9).abs() < 1e-15);
    assert!((weighted(0.5, 0.8, n.l(12.0)) - 0.4).abs() < 1e-15);
    // w = 0.25, TF = 0.2, l = 0.75: 0.05 + 0.75 * 0.25 = 0.2375.
    assert!((weighted(0.25, 0.2, 0.75) - 0.2375).abs() < 1e-15);
}

#[test]
fn normaliser_uses_references_then_falls_back() {
    let m = |step, arch, latency_ms| Measured { step, arch, latency_ms };
    let mid = Arch::uniform(Op::NorConv1x1);
    let probes = [m(1, LO, 4.0), m(2, HI, 12.0), m(3, mid, 2.0)];
    assert_eq!(Normaliser::of(&probes), Some(Normaliser { lo: 4.0, hi: 12.0 }));
    // Without the hi reference: the measured range 2..4.
    assert_eq!(Normaliser::of(&probes[..1]), None);
    assert_eq!(Normaliser::of(&[probes[0], probes[2]]), Some(Normaliser { lo: 2.0, hi: 4.0 }));
    // hi not above lo: measured range.
    let odd = [m(1, LO, 5.0), m(2, HI, 5.0), m(3, mid, 9.0)];
    assert_eq!(Normaliser::of(&odd), Some(Normaliser { lo: 5.0, hi: 9.0 }));
}

#[test]
fn pick_by_hand() {
    // TF: LO 0.2, HI 0.9, mid 0.6 (a hand-made table of three cells).
    let mid = Arch::uniform(Op::NorConv1x1);
    let mut tf = vec![0.0; NUM_ARCHS];
    tf[LO.code().get() as usize] = 0.2;
    tf[HI.code().get() as usize] = 0.9;
    tf[mid.code().get() as usize] = 0.6;
    let m = |step, arch, latency_ms| Measured { step, arch, latency_ms };
    let probes = [m(1, LO, 2.0), m(2, HI, 10.0), m(3, mid, 4.0)];
    // w = 0.5: LO 0.1 + 0.5 = 0.6; HI 0.45 + 0 = 0.45; mid 0.3 + 0.5 * 0.75 = 0.675.
    let p = pick(&Objective::Weighted { weight: 0.5 }, &tf, &probes).unwrap();
    assert_eq!((p.arch, p.step, p.latency_ms), (mid, 3, 4.0));
    assert!((p.score - 0.675).abs() < 1e-12);
    // w = 0.9: HI 0.81 beats mid 0.54 + 0.025 = 0.565.
    assert_eq!(pick(&Objective::Weighted { weight: 0.9 }, &tf, &probes).unwrap().arch, HI);
    // Constrained: within 5 ms the best TF is mid; within 3 ms only LO; within 1 ms nothing.
    let c = |x| pick(&Objective::Constraint { max_latency_ms: x }, &tf, &probes).map(|p| p.arch);
    assert_eq!(c(5.0), Some(mid));
    assert_eq!(c(3.0), Some(LO));
    assert_eq!(c(10.0), Some(HI));
    assert_eq!(c(1.0), None);
}

#[test]
fn every_strategy_respects_budget_and_picks_a_measured_cell() {
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    let strategies = [Strategy::Random, Strategy::Evolution, Strategy::LutPrior, Strategy::LutProbe, Strategy::Oracle];
    let limit = super::eval::percentile(&table, 0.25);
    for strategy in strategies {
        for budget in [1, 2, 3, 5, 6, 10, 20] {
            for objective in [Objective::Weighted { weight: 0.5 }, Objective::Constraint { max_latency_ms: limit }] {
                let out = run(strategy, budget, objective, &table, 7);
                let what = format!("{strategy:?} budget {budget} {objective:?}");
                assert!(out.error.is_none(), "{what}: {:?}", out.error);
                assert!(out.probes.len() <= budget, "{what}: {} probes", out.probes.len());
                let steps: Vec<usize> = out.probes.iter().map(|p| p.step).collect();
                assert_eq!(steps, (1..=out.probes.len()).collect::<Vec<_>>(), "{what}");
                // Constrained, a small random sample may hold nothing feasible: no pick then.
                let Some(p) = out.pick else {
                    assert!(
                        matches!(objective, Objective::Constraint { .. }) && strategy != Strategy::Oracle,
                        "{what}"
                    );
                    continue;
                };
                let probe = out.probes.iter().find(|m| m.step == p.step).unwrap();
                assert_eq!((probe.arch, probe.latency_ms), (p.arch, p.latency_ms), "{what}");
                assert_eq!(table.get(p.arch), Some(p.latency_ms), "{what}: reported latency is the measurement");
                if let Objective::Constraint { max_latency_ms } = objective {
                    assert!(p.latency_ms <= max_latency_ms, "{what}: infeasible pick");
                }
                // Constrained LUT searches stop once no untried cell can beat the best feasible TF.
                if strategy != Strategy::Oracle && budget >= 10 && matches!(objective, Objective::Weighted { .. }) {
                    assert_eq!(out.probes.len(), budget, "{what}: budget left unspent");
                }
            }
        }
    }
}

#[test]
fn lut_probe_finds_the_optimum_of_an_additive_device() {
    // skip costs nothing, so all-skip is the fastest cell and the probed range equals the
    // true range; the five single-op cells then determine the device exactly.
    let table = lut_table(2.0, [0.0, 0.0, 0.5, 1.5, 0.25], 0.0);
    let tf = fake_tf();
    let obj = Objective::Weighted { weight: 0.5 };
    let best = oracle_pick(&obj, &tf, table.values(), Space::Executed).unwrap();
    let out = run(Strategy::LutProbe, 6, obj, &table, 0);
    assert_eq!(out.probes.len(), 6);
    assert_eq!(out.probes[5].arch, best, "first verified cell is the optimum");
    assert_eq!(out.pick.unwrap().arch, best);
    let lut = strategies::lut::per_op_fit(&out.probes[..5]);
    assert_eq!(lut.alpha, 1.0, "no dead edge among the single-op cells: the paper's LUT");
    for (got, want) in lut.t.iter().zip([2.0, 0.0, 0.5, 1.5, 0.25]) {
        assert!((got - want).abs() < 1e-9, "{lut:?}");
    }
}

#[test]
fn constrained_without_feasible_cells_has_no_pick() {
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.0);
    for s in [Strategy::Random, Strategy::Evolution, Strategy::LutPrior, Strategy::LutProbe, Strategy::Oracle] {
        let out = run(s, 10, Objective::Constraint { max_latency_ms: 1.0 }, &table, 1);
        assert!(out.pick.is_none() && out.error.is_none(), "{s:?}");
        assert!(out.probes.len() <= 10);
    }
}

#[test]
fn cells_missing_from_a_table_cost_no_budget() {
    // Every cell with a `none` edge is missing (far more than BRP-NAS's gaps).
    let full = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    let vals =
        ArchCode::all().map(|c| if Arch::from_code(c).count(Op::None) > 0 { None } else { full.get_code(c) }).collect();
    let table = LatencyTable::from_codes("gappy.csv#ms", vals).unwrap();
    for s in [Strategy::Random, Strategy::Evolution, Strategy::LutProbe] {
        let out = run(s, 10, Objective::Weighted { weight: 0.5 }, &table, 3);
        assert!(out.error.is_none(), "{s:?}: {:?}", out.error);
        assert_eq!(out.probes.len(), 10, "{s:?}: skipped cells must not use budget");
        assert!(out.probes.iter().all(|p| table.get(p.arch).is_some()));
        assert!(out.skipped.iter().all(|a| table.get(*a).is_none()));
    }
    assert!(!run(Strategy::Random, 10, Objective::Weighted { weight: 0.5 }, &table, 3).skipped.is_empty());
}

#[test]
fn same_seed_same_search_other_seed_other_search() {
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    for s in [Strategy::Random, Strategy::Evolution] {
        let obj = Objective::Weighted { weight: 0.5 };
        let a = run(s, 10, obj, &table, 11);
        let b = run(s, 10, obj, &table, 11);
        let c = run(s, 10, obj, &table, 12);
        assert_eq!(a.probes, b.probes, "{s:?}");
        assert_ne!(a.probes, c.probes, "{s:?}");
    }
}

/// A device that measures `ok` cells and then fails (the search's tests and the pool's).
pub(super) struct Flaky {
    /// Probes left before it fails.
    pub(super) ok: usize,
}

impl Device for Flaky {
    fn name(&self) -> String {
        "flaky".into()
    }
    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        if self.ok == 0 {
            return Err(DeviceError::Runtime(edge_runtime::Error::NoRepeats));
        }
        self.ok -= 1;
        let ms = 1.0 + arch.count(Op::NorConv3x3) as f64;
        Ok(Probe { latency_ms: ms, min_ms: ms, spread: 0.0, repeats: 1 })
    }
}

#[test]
fn a_failing_probe_ends_the_search_and_keeps_the_measurements() {
    let tf = fake_tf();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: None };
    let cfg = SearchConfig {
        strategy: Strategy::Random,
        budget: 10,
        objective: Objective::Weighted { weight: 0.5 },
        seed: 0,
        space: Space::Executed,
    };
    let mut seen = 0;
    let out = search(&cfg, &ctx, &mut Flaky { ok: 3 }, &mut |e| seen += usize::from(matches!(e, Event::Probe(_))));
    assert_eq!(out.probes.len(), 3);
    assert_eq!(seen, 3);
    assert!(matches!(out.error, Some(SearchError::Probe { step: 4, .. })), "{:?}", out.error);
    assert!(out.pick.is_some(), "the best of what was measured is still known");
}

/// The calibrated controller runs on the session's record and device: a failing probe
/// keeps what was measured, numbered as the session numbers it, and the observer saw each
/// probe once.
#[test]
fn a_failing_probe_ends_the_calibrated_controller_with_the_session_s_numbering() {
    let tf = fake_tf();
    let prior = calib_prior();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: Some(&prior) };
    let cfg = SearchConfig {
        strategy: Strategy::Controller,
        budget: 10,
        objective: Objective::Weighted { weight: 0.5 },
        seed: 0,
        space: Space::Executed,
    };
    let mut seen = Vec::new();
    let out = search(&cfg, &ctx, &mut Flaky { ok: 3 }, &mut |e| {
        if let Event::Probe(m) = e {
            seen.push(*m);
        }
    });
    assert_eq!(out.probes, seen);
    assert_eq!(out.probes.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!((out.probes[0].arch, out.probes[1].arch), (LO, HI));
    assert!(matches!(out.error, Some(SearchError::Probe { step: 4, .. })), "{:?}", out.error);
    assert!(out.pick.is_some());
}

/// After `MAX_ASKS` requests a session answers what it knows and nothing new.
#[test]
fn the_session_stops_measuring_after_its_request_bound() {
    let mut dev = Flaky { ok: 100 };
    let mut observe = |_: Event| {};
    let mut s = Session::new(&mut dev, 5, Space::Executed, &mut observe).unwrap();
    assert_eq!(s.measure(LO).unwrap(), Answer::Latency(1.0));
    for _ in 1..MAX_ASKS - 1 {
        assert_eq!(s.measure(LO).unwrap(), Answer::Latency(1.0));
    }
    assert_eq!(s.remaining(), 4);
    assert_eq!(s.measure(HI).unwrap(), Answer::Exhausted);
    assert_eq!((s.remaining(), s.probes().len()), (0, 1));
    assert_eq!(s.measure(LO).unwrap(), Answer::Latency(1.0), "what was measured is still answered");
    assert!(Session::new(&mut Flaky { ok: 1 }, 0, Space::Executed, &mut observe).is_err());
}

#[test]
fn refusals_before_any_probe() {
    let tf = fake_tf();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: None };
    let mut dev = Flaky { ok: 100 };
    let go = |strategy, budget, objective, dev: &mut Flaky| {
        search(&SearchConfig { strategy, budget, objective, seed: 0, space: Space::Executed }, &ctx, dev, &mut |_| {})
    };
    let w = Objective::Weighted { weight: 0.5 };
    assert!(matches!(go(Strategy::Random, 0, w, &mut dev).error, Some(SearchError::ZeroBudget)));
    let bad = Objective::Weighted { weight: 1.5 };
    assert!(matches!(go(Strategy::Random, 5, bad, &mut dev).error, Some(SearchError::Objective(_))));
    let bad = Objective::Constraint { max_latency_ms: f64::NAN };
    assert!(matches!(go(Strategy::Random, 5, bad, &mut dev).error, Some(SearchError::Objective(_))));
    for s in [Strategy::Oracle, Strategy::LutPrior, Strategy::Controller, Strategy::ControllerPaper] {
        let out = go(s, 5, w, &mut dev);
        assert!(matches!(out.error, Some(SearchError::Unavailable { .. })), "{s:?}");
        assert!(out.probes.is_empty());
    }
    assert_eq!(dev.ok, 100, "nothing was measured");
}

#[cfg(feature = "train")]
#[test]
fn paper_controller_walks_new_cells_within_budget() {
    use crate::rl::export::policy_bytes;
    use crate::rl::net::{ActorCritic, NetConfig};
    let bytes = policy_bytes(&ActorCritic::new(NetConfig::default(), 5).unwrap(), &[]).unwrap();
    let ctrl = super::strategies::paper::Controller::from_bytes(bytes, "untrained".into()).unwrap();
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    let tf = fake_tf();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: Some(&ctrl), calib: None };
    for (space, budget) in [Space::Raw, Space::Executed].into_iter().flat_map(|s| [1, 2, 3, 10].map(|b| (s, b))) {
        let cfg = SearchConfig {
            strategy: Strategy::ControllerPaper,
            budget,
            objective: Objective::Weighted { weight: 0.5 },
            seed: 0,
            space,
        };
        let out = search(&cfg, &ctx, &mut TableDevice::new(table.clone()), &mut |_| {});
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.probes.len(), budget, "budget {budget}");
        assert!(out.pick.is_some());
        let mut cells: Vec<Arch> = out.probes.iter().map(|p| p.arch).collect();
        if budget >= 2 {
            assert_eq!(&cells[..2], &[LO, HI]);
            // Raw: each walk step edits one edge of the previous walk cell (the walk starts
            // at lo). Executed: each step measures the executed network of such an edit.
            let mut prev = LO;
            for a in &cells[2..] {
                match space {
                    Space::Raw => {
                        assert_eq!(a.ops.iter().zip(prev.ops).filter(|(x, y)| **x != *y).count(), 1, "{prev} -> {a}")
                    }
                    Space::Executed => assert!(a.is_connected() && a.is_executed(), "{a}"),
                }
                prev = *a;
            }
        }
        cells.sort();
        cells.dedup();
        assert_eq!(cells.len(), out.probes.len(), "no cell probed twice");
    }
    let garbage = super::strategies::paper::Controller::from_bytes(vec![1, 2, 3], "junk".into()).unwrap_err();
    assert!(garbage.to_string().contains("junk"), "{garbage}");
}

#[test]
fn evaluation_percentiles_fitness_and_report() {
    use super::eval::{eval_device, percentile, report, true_fitness, EvalDevice, EvalPlan, EvalResults, RangeStats};
    // Latency = code / 1000 + 1 ms: percentiles by nearest rank over 15,625 values.
    let vals: Vec<Option<f64>> = (0..NUM_ARCHS).map(|c| Some(1.0 + c as f64 / 1000.0)).collect();
    let table = LatencyTable::from_codes("ramp.csv#ms", vals).unwrap();
    // 10%: rank ceil(1562.5) = 1563 -> code 1562 -> 2.562 ms; 50%: rank 7813 -> 8.812 ms.
    assert!((percentile(&table, 0.10) - 2.562).abs() < 1e-12);
    assert!((percentile(&table, 0.50) - 8.812).abs() < 1e-12);
    // F = 0.5 TF + 0.5 (1 - (lat - 1) / 15.624): code 0 with TF 0.3 -> 0.65.
    let mut tf = fake_tf();
    tf[0] = 0.3;
    let f = true_fitness(&table, &tf, 0.5, Space::Raw);
    assert!((f[0].unwrap() - 0.65).abs() < 1e-12);
    assert!((f[NUM_ARCHS - 1].unwrap() - 0.5 * tf[NUM_ARCHS - 1]).abs() < 1e-12);

    let acc: Vec<Option<f64>> = tf.iter().map(|t| Some(80.0 + 10.0 * t)).collect();
    let prior = crate::synth::lut::Lut { base: 0.3, t: [[0.0, 0.01, 0.05, 0.1, 0.03]; 6] };
    let plan = EvalPlan {
        strategies: vec![Strategy::Random, Strategy::LutProbe, Strategy::Oracle],
        budgets: vec![10],
        seeds: 2,
        weight: 0.5,
        tf: &tf,
        accuracy: &acc,
        prior: Some(&prior),
        policy: None,
        calib: None,
        space: Space::Executed,
    };
    let dev = EvalDevice { name: "ramp".into(), primary: true, table };
    let (w, c) = eval_device(&dev, &plan);
    assert_eq!((w.len(), c.len()), (3 * 2, 3 * 2 * 3));
    for run in w.iter().filter(|r| r.strategy == "oracle") {
        assert_eq!(run.ratio, 1.0);
    }
    assert!(w.iter().all(|r| r.ratio <= 1.0 + 1e-12 && r.probes <= 10));
    for run in c.iter().filter(|r| r.strategy == "oracle") {
        assert!(run.feasible && run.arch == run.ceiling_arch, "{run:?}");
    }
    assert!(c.iter().all(|r| !r.feasible || r.latency_ms.unwrap() <= r.limit_ms));
    let results = EvalResults {
        devices: vec![("ramp".into(), true)],
        caps: vec![1.0],
        ranges: vec![RangeStats { reference: 1.2, model: 1.1 }],
        weighted: w,
        constrained: c,
    };
    let md = report::markdown(&results, "# test\n");
    // The rule's range (lat(hi) - lat(lo) = 7.812 ms) is half the true one (15.624 ms).
    let cap = super::eval::rule_cap(&dev.table, &tf, 0.5, Space::Executed);
    assert!(cap > 0.0 && cap <= 1.0, "{cap}");
    assert!(
        md.contains("| ramp * | 1.0000 |")
            && md.contains("| **mean (primary)** |")
            && md.contains("| *proxy ceiling* |")
    );
}

#[test]
fn dead_edges_and_their_cost_factor() {
    use strategies::lut::per_op_fit;
    let c3 = Op::NorConv3x3;
    // Node 1 has no input: 1->2 and 1->3 are dead; 0->1 is `none`.
    let a = Arch { ops: [Op::None, c3, c3, c3, c3, c3] };
    assert_eq!(a.live_edges(), [false, true, false, true, false, true]);
    // Node 2 reaches no output: 0->2 and 1->2 are dead.
    let b = Arch { ops: [c3, c3, c3, c3, c3, Op::None] };
    assert_eq!(b.live_edges(), [true, false, false, true, true, false]);
    assert_eq!(HI.live_edges(), [true; 6]);
    // A device that skips dead edges: base 2, conv3x3 1.5, skip 0.1, conv1x1 0.5, pool 0.3.
    let t = [0.0, 0.1, 0.5, 1.5, 0.3];
    let lat = |x: Arch| -> f64 {
        2.0 + x.ops.iter().zip(x.live_edges()).filter(|(_, l)| *l).map(|(o, _)| t[*o as usize]).sum::<f64>()
    };
    let mut probes: Vec<Measured> = strategies::lut::DESIGN
        .iter()
        .enumerate()
        .map(|(i, &arch)| Measured { step: i + 1, arch, latency_ms: lat(arch) })
        .collect();
    assert_eq!(per_op_fit(&probes).alpha, 1.0);
    probes.push(Measured { step: 6, arch: a, latency_ms: lat(a) });
    let fit = per_op_fit(&probes);
    assert_eq!(fit.alpha, 0.0);
    // 2 + 3 * 1.5 = 6.5 for `a`; `b` has three live convs too.
    assert!((fit.latency(a) - 6.5).abs() < 1e-9 && (fit.latency(b) - 6.5).abs() < 1e-9, "{fit:?}");
}

/// The incremental fit `lut-probe` refits with after every probe is the from-scratch fit,
/// bit for bit, at every length of a probe list with live and dead edges; a list that does
/// not extend the previous one is refolded.
#[test]
fn the_incremental_per_op_fit_is_the_full_fit() {
    use rand::{Rng, SeedableRng};
    use strategies::lut::{per_op_fit, PerOpFitter};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let probes: Vec<Measured> = (0..60)
        .map(|i| {
            let arch = Arch::from_code(ArchCode::new(rng.random_range(0..NUM_ARCHS as u16)).unwrap());
            let live = arch.live_edges();
            let ms = 1.0
                + arch.ops.iter().zip(live).map(|(o, l)| (*o as usize as f64) * if l { 0.7 } else { 0.2 }).sum::<f64>();
            Measured { step: i + 1, arch, latency_ms: ms + rng.random_range(0.0..0.01) }
        })
        .collect();
    let mut fitter = PerOpFitter::default();
    for n in 1..=probes.len() {
        let (inc, full) = (fitter.fit(&probes[..n]), per_op_fit(&probes[..n]));
        assert_eq!(inc, full, "after {n} probes");
        let all: Vec<f64> = ArchCode::all().map(|c| full.latency(Arch::from_code(c))).collect();
        assert_eq!(fitter.latencies(&full), all);
    }
    assert_eq!(fitter.fit(&probes[..3]), per_op_fit(&probes[..3]));
}

/// The calibrated controller with `calib_prior()` on `table`.
fn run_calibrated(budget: usize, objective: Objective, table: &LatencyTable) -> SearchOutcome {
    let tf = fake_tf();
    let prior = calib_prior();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: Some(&prior) };
    let cfg = SearchConfig { strategy: Strategy::Controller, budget, objective, seed: 0, space: Space::Executed };
    search(&cfg, &ctx, &mut TableDevice::new(table.clone()), &mut |_| {})
}

fn calib_prior() -> edge_runtime::calib::Prior {
    edge_runtime::calib::Prior {
        range_factor: 1.15,
        ..edge_runtime::calib::Prior::isotropic([0.01, 0.05, 0.1, 0.03, 0.01, 0.03, 0.06, 0.04], 0.002)
    }
}

#[test]
fn calibrated_controller_references_first_measured_pick_within_budget() {
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    for budget in [1, 2, 3, 10] {
        let out = run_calibrated(budget, Objective::Weighted { weight: 0.5 }, &table);
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.probes.len(), budget, "budget {budget}");
        let cells: Vec<Arch> = out.probes.iter().map(|p| p.arch).collect();
        if budget >= 2 {
            assert_eq!(&cells[..2], &[LO, HI]);
        }
        let mut uniq = cells.clone();
        uniq.sort_by_key(|a| a.code().get());
        uniq.dedup();
        assert_eq!(uniq.len(), cells.len(), "a cell was probed twice");
        let pick = out.pick.unwrap();
        assert!(out.probes.iter().any(|p| p.arch == pick.arch && p.latency_ms == pick.latency_ms));
    }
}

#[test]
fn calibrated_controller_finds_the_optimum_of_an_additive_device() {
    // An exactly additive device: the calibrated model becomes exact after a few probes,
    // so 10 probes find the best cell under the search's own rule.
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.0);
    let (tf, prior) = (fake_tf(), calib_prior());
    let out = run_calibrated(10, Objective::Weighted { weight: 0.5 }, &table);
    let (lo, hi) = (table.get(LO).unwrap(), table.get(HI).unwrap());
    let n = Normaliser { lo, hi }.widened(prior.range_factor);
    let best = ArchCode::all()
        .filter(|&c| Space::Executed.contains(Arch::from_code(c)))
        .map(|c| weighted(0.5, tf[c.get() as usize], n.linear(table.get_code(c).unwrap())))
        .fold(f64::NEG_INFINITY, f64::max);
    let got = out.pick.unwrap();
    assert!((weighted(0.5, got.tf, n.linear(got.latency_ms)) - best).abs() < 1e-12, "{got:?}");
}

#[test]
fn calibrated_controller_constrained_picks_are_feasible() {
    let table = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    for limit in [4.0, 6.0, 9.0] {
        let out = run_calibrated(10, Objective::Constraint { max_latency_ms: limit }, &table);
        let pick = out.pick.expect("a feasible pick");
        assert!(pick.latency_ms <= limit, "{limit}: {pick:?}");
    }
}

#[test]
fn range_stats_see_outliers_beyond_the_model() {
    use super::eval::RangeStats;
    // An additive device (all edges run, so the live-edge features are not needed): the
    // model spans the whole range, and all-conv3x3 is the slowest cell.
    let exact = lut_table(1.0, [0.0, 0.1, 0.5, 2.0, 0.3], 0.0);
    let s = RangeStats::of(&exact);
    // max - min = 6 * 2.0 - 6 * 0.0 (all-none) = 12; reference 6 * (2.0 - 0.1) = 11.4.
    assert!((s.reference - 12.0 / 11.4).abs() < 1e-9, "{s:?}");
    assert!((s.model - 1.0).abs() < 1e-6, "{s:?}");
    // One cell measured at three times the slowest: the model cannot follow it.
    let mut vals = exact.values().to_vec();
    vals[1234] = Some(3.0 * 13.0);
    let spiked = LatencyTable::from_codes("spiked.csv#ms", vals).unwrap();
    let s = RangeStats::of(&spiked);
    assert!(s.model > 3.0 && s.reference > 3.0, "{s:?}");
}

/// Every strategy, weighted and constrained, on a runtime that computes dead branches (so
/// dead-branch cells are strictly slower than their executed networks) and one that
/// prunes them: every probe is a connected executed network, none measured twice, and the
/// pick is one of them.
#[cfg(feature = "train")]
#[test]
fn every_strategy_searches_distinct_connected_executed_networks() {
    use crate::rl::export::policy_bytes;
    use crate::rl::net::{ActorCritic, NetConfig};
    let bytes = policy_bytes(&ActorCritic::new(NetConfig::default(), 5).unwrap(), &[]).unwrap();
    let ctrl = super::strategies::paper::Controller::from_bytes(bytes, "untrained".into()).unwrap();
    let computes_all = lut_table(3.0, [0.0, 0.1, 0.6, 2.0, 0.4], 0.05);
    let pruned: Vec<Option<f64>> =
        ArchCode::all().map(|c| computes_all.get(Arch::from_code(c).executed()).map(|v| v + 0.01)).collect();
    let pruned = LatencyTable::from_codes("pruned.csv#ms", pruned).unwrap();
    let tf = fake_tf();
    let prior = crate::synth::lut::Lut { base: 0.3, t: [[0.0, 0.01, 0.05, 0.1, 0.03]; 6] };
    let calib = calib_prior();
    let strategies = [
        Strategy::Controller,
        Strategy::ControllerPaper,
        Strategy::Random,
        Strategy::Evolution,
        Strategy::LutPrior,
        Strategy::LutProbe,
        Strategy::Oracle,
    ];
    for table in [&computes_all, &pruned] {
        let ctx =
            Context { tf: &tf, prior: Some(&prior), table: Some(table), policy: Some(&ctrl), calib: Some(&calib) };
        let limit = super::eval::percentile_in(table, 0.25, Space::Executed);
        for objective in [Objective::Weighted { weight: 0.5 }, Objective::Constraint { max_latency_ms: limit }] {
            for strategy in strategies {
                for (budget, seed) in [(5, 0), (10, 1), (20, 2)] {
                    let cfg = SearchConfig { strategy, budget, objective, seed, space: Space::Executed };
                    let out = search(&cfg, &ctx, &mut TableDevice::new(table.clone()), &mut |_| {});
                    let what = format!("{} {objective:?} budget {budget}", strategy.name());
                    assert!(out.error.is_none(), "{what}: {:?}", out.error);
                    for (i, p) in out.probes.iter().enumerate() {
                        assert!(p.arch.is_connected() && p.arch.is_executed(), "{what}: probed {}", p.arch);
                        assert!(out.probes[..i].iter().all(|q| q.arch != p.arch), "{what}: {} twice", p.arch);
                    }
                    assert_eq!(super::eval::repeats_executed(&out.probes), 0, "{what}");
                    if let Some(p) = out.pick {
                        assert!(p.arch.is_connected() && p.arch.is_executed(), "{what}: pick {}", p.arch);
                    }
                }
            }
        }
    }
}

/// The executed space's refusals: a table without any connected executed network has
/// nothing to measure; a limit below every connected network's latency has no feasible
/// pick, although disconnected and dead-branch cells fit it.
#[test]
fn executed_space_edge_cases() {
    let tf = fake_tf();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: None };
    // Only dead-branch cells have values: every request is answered "missing".
    let dead_only: Vec<Option<f64>> =
        ArchCode::all().map(|c| (!Arch::from_code(c).is_executed()).then_some(1.0)).collect();
    let dead_only = LatencyTable::from_codes("dead.csv#ms", dead_only).unwrap();
    let cfg = SearchConfig {
        strategy: Strategy::Random,
        budget: 10,
        objective: Objective::Weighted { weight: 0.5 },
        seed: 0,
        space: Space::Executed,
    };
    let out = search(&cfg, &ctx, &mut TableDevice::new(dead_only), &mut |_| {});
    assert!(out.probes.is_empty() && out.pick.is_none(), "{:?}", out.probes);
    // Connected executed networks take 5 ms or more; everything else 0.1 ms.
    let slow: Vec<Option<f64>> = ArchCode::all()
        .map(|c| Some(if Space::Executed.contains(Arch::from_code(c)) { 5.0 + c.get() as f64 * 1e-4 } else { 0.1 }))
        .collect();
    let slow = LatencyTable::from_codes("slow.csv#ms", slow).unwrap();
    for strategy in [Strategy::Random, Strategy::Evolution, Strategy::LutProbe, Strategy::Oracle] {
        let cfg = SearchConfig { strategy, objective: Objective::Constraint { max_latency_ms: 1.0 }, ..cfg };
        let ctx = Context { table: Some(&slow), ..ctx };
        let out = search(&cfg, &ctx, &mut TableDevice::new(slow.clone()), &mut |_| {});
        assert!(out.pick.is_none(), "{}: {:?}", strategy.name(), out.pick);
        assert!(out.probes.iter().all(|p| p.latency_ms >= 5.0));
    }
}
