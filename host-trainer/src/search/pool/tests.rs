//! The pool search's guarantees on synthetic table devices: the total budget, picks measured
//! on every device, every limit met by measurement, bad pools refused before a probe, and a
//! device failing half-way keeping what was measured.

use super::*;
use crate::device::table::TableDevice;
use crate::device::{DeviceError, Probe};
use crate::latency::LatencyTable;
use simnas_shared::Op;

use crate::search::tests::{fake_tf, lut_table_named as lut_table};

fn prior() -> Prior {
    // Per-edge costs in units of the reference range (all-conv3x3 - all-skip = 6 edges).
    let mut p = Prior::isotropic([0.0, 0.05, 1.0 / 6.0, 0.04, 0.0, 0.0, 0.0, 0.0], 0.01);
    p.range_rule = RangeRule::Model;
    p.range_factor = 1.15;
    p
}

fn tables() -> [LatencyTable; 3] {
    [
        lut_table("cpu", 2.0, [0.0, 0.05, 0.4, 1.6, 0.2], 0.01),
        lut_table("gpu", 1.0, [0.02, 0.02, 0.05, 0.12, 0.15], 0.002),
        lut_table("phone", 5.0, [0.1, 0.1, 1.0, 2.5, 0.9], 0.05),
    ]
}

fn run(cfg: &PoolConfig, tables: &[LatencyTable]) -> PoolOutcome {
    let tf = fake_tf();
    let p = prior();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: Some(&p) };
    let mut devs: Vec<TableDevice> = tables.iter().cloned().map(TableDevice::new).collect();
    let mut refs: Vec<&mut dyn Device> = devs.iter_mut().map(|d| d as &mut dyn Device).collect();
    search_pool(cfg, &ctx, &mut refs, &mut |_, _| {})
}

fn cfg(strategy: PoolStrategy, budget: usize, objective: PoolObjective) -> PoolConfig {
    PoolConfig { strategy, budget, objective, seed: 0, space: Space::Executed }
}

fn check_pick(out: &PoolOutcome, tables: &[LatencyTable]) {
    let pick = out.pick.as_ref().expect("a pick");
    for (d, t) in tables.iter().enumerate() {
        assert_eq!(pick.latency_ms[d], t.get(pick.arch).unwrap(), "device {d}'s latency is its measurement");
        assert!(out.probes.iter().any(|p| p.device == d && p.arch == pick.arch), "the pick was measured on device {d}");
    }
    assert!(pick.arch.is_connected() && pick.arch.is_executed());
}

#[test]
fn weighted_pool_spends_the_total_budget_and_picks_a_cell_measured_everywhere() {
    let t = tables();
    for strategy in [PoolStrategy::Pool, PoolStrategy::Independent] {
        for (n, budget) in [(2, 4), (2, 20), (3, 9), (3, 30)] {
            let out = run(&cfg(strategy, budget, PoolObjective::Weighted { weight: 0.5 }), &t[..n]);
            assert!(out.error.is_none(), "{:?}", out.error);
            assert!(out.probes.len() <= budget);
            if strategy == PoolStrategy::Pool {
                assert_eq!(out.probes.len(), budget, "{strategy:?} spends the whole budget");
            }
            for (i, p) in out.probes.iter().enumerate() {
                assert_eq!(p.step, i + 1);
                assert!(
                    out.probes[..i].iter().all(|q| (q.device, q.arch) != (p.device, p.arch)),
                    "a cell measured twice on one device"
                );
            }
            check_pick(&out, &t[..n]);
        }
    }
}

#[test]
fn constrained_pick_meets_every_limit_by_measurement() {
    let t = tables();
    // Around each device's 25th percentile.
    let limits: Vec<f64> = t
        .iter()
        .map(|tab| {
            let mut v: Vec<f64> = tab.values().iter().flatten().copied().collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 4]
        })
        .collect();
    for strategy in [PoolStrategy::Pool, PoolStrategy::Independent] {
        let out = run(&cfg(strategy, 30, PoolObjective::Constraint { max_latency_ms: limits.clone() }), &t);
        assert!(out.error.is_none(), "{:?}", out.error);
        check_pick(&out, &t);
        let pick = out.pick.unwrap();
        assert!(pick.latency_ms.iter().zip(&limits).all(|(ms, lim)| ms <= lim));
        assert!(out.infeasible_on.is_empty());
    }
}

#[test]
fn an_impossible_limit_names_its_device() {
    let t = tables();
    // The gpu's limit is below its fastest cell.
    let limits = vec![100.0, 0.1, 100.0];
    let out = run(&cfg(PoolStrategy::Pool, 12, PoolObjective::Constraint { max_latency_ms: limits }), &t);
    assert!(out.error.is_none());
    assert!(out.pick.is_none());
    assert_eq!(out.infeasible_on, vec![1]);
}

#[test]
fn bad_pools_are_refused_before_any_probe() {
    let t = tables();
    let w = PoolObjective::Weighted { weight: 0.5 };
    let twice = [t[0].clone(), t[1].clone(), t[0].clone()];
    let out = run(&cfg(PoolStrategy::Pool, 10, w.clone()), &twice);
    assert!(matches!(out.error, Some(PoolError::Duplicate { first: 1, second: 3, .. })), "{:?}", out.error);
    assert!(out.probes.is_empty());
    let limits = PoolObjective::Constraint { max_latency_ms: vec![1.0, 2.0] };
    let out = run(&cfg(PoolStrategy::Pool, 10, limits), &t);
    assert!(matches!(out.error, Some(PoolError::LimitCount { limits: 2, devices: 3 })));
    let out = run(&cfg(PoolStrategy::Pool, 10, w.clone()), &t[..1]);
    assert!(matches!(out.error, Some(PoolError::TooFew(1))));
    let out = run(&cfg(PoolStrategy::Independent, 8, w.clone()), &t);
    assert!(matches!(out.error, Some(PoolError::BudgetTooSmall { least: 9, .. })));
    let out = run(&cfg(PoolStrategy::Pool, 2, w), &t);
    assert!(matches!(out.error, Some(PoolError::BudgetTooSmall { least: 3, .. })));
    assert!(out.probes.is_empty());
}

#[test]
fn a_device_failing_half_way_keeps_what_was_measured() {
    let t = tables();
    let tf = fake_tf();
    let p = prior();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: Some(&p) };
    let mut a = TableDevice::new(t[0].clone());
    let mut b = crate::search::tests::Flaky { ok: 4 };
    let mut seen = Vec::new();
    let out = {
        let mut devs: Vec<&mut dyn Device> = vec![&mut a, &mut b];
        let mut obs = |d: usize, e: Event| {
            if let Event::Probe(m) = e {
                seen.push((d, m.arch));
            }
        };
        search_pool(&cfg(PoolStrategy::Pool, 20, PoolObjective::Weighted { weight: 0.5 }), &ctx, &mut devs, &mut obs)
    };
    let err = out.error.as_ref().expect("the failure is reported");
    assert!(matches!(err, PoolError::Device { device: 2, .. }), "{err:?}");
    assert!(err.message().contains("flaky"), "{}", err.message());
    assert_eq!(out.probes.iter().filter(|p| p.device == 1).count(), 4, "the failing device's 4 probes are kept");
    assert_eq!(out.probes.iter().map(|p| (p.device, p.arch)).collect::<Vec<_>>(), seen);
    // The references were measured on both: the all-skip cell is a pick.
    assert!(out.pick.is_some());
}

#[test]
fn same_seed_same_probes() {
    let t = tables();
    let c = cfg(PoolStrategy::Pool, 15, PoolObjective::Weighted { weight: 0.5 });
    let a = run(&c, &t);
    let b = run(&c, &t);
    assert_eq!(a.probes, b.probes);
    assert_eq!(a.pick, b.pick);
}

#[test]
fn pool_pick_by_hand() {
    let m = |step, arch, latency_ms| Measured { step, arch, latency_ms };
    let mid = Arch::uniform(Op::NorConv1x1);
    let mut tf = vec![0.0; NUM_ARCHS];
    tf[code(LO)] = 0.2;
    tf[code(HI)] = 0.9;
    tf[code(mid)] = 0.6;
    // Device 0: lo 1, hi 11; device 1: lo 2, hi 4 (mid not measured there).
    let per = vec![vec![m(1, LO, 1.0), m(2, HI, 11.0), m(3, mid, 3.0)], vec![m(1, LO, 2.0), m(2, HI, 4.0)]];
    let w = PoolObjective::Weighted { weight: 0.5 };
    // LO: 0.1 + 0.5 (1 - 0) = 0.6; HI: 0.45 + 0.5 (1 - 1) = 0.45; mid is not on device 1.
    let p = pool_pick(&w, &tf, &per, &[1.0, 1.0]).unwrap();
    assert_eq!((p.arch, p.latency_ms.clone()), (LO, vec![1.0, 2.0]));
    assert!((p.score - 0.6).abs() < 1e-12);
    // With mid measured on device 1 at 2.5 ms: l = (0.2 + 0.25) / 2 = 0.225, 0.3 + 0.3875.
    let mut per2 = per.clone();
    per2[1].push(m(3, mid, 2.5));
    let p = pool_pick(&w, &tf, &per2, &[1.0, 1.0]).unwrap();
    assert_eq!(p.arch, mid);
    assert!((p.score - 0.6875).abs() < 1e-12);
    // Constrained: mid is over device 1's 2.4 ms limit; HI is over device 0's 10 ms.
    let c = PoolObjective::Constraint { max_latency_ms: vec![10.0, 2.4] };
    assert_eq!(pool_pick(&c, &tf, &per2, &[1.0, 1.0]).unwrap().arch, LO);
}

/// A table device that notes when each probe ran and takes a while over it.
struct Slow {
    inner: TableDevice,
    name: String,
    spans: std::sync::Arc<std::sync::Mutex<Vec<(usize, std::time::Instant, std::time::Instant)>>>,
    id: usize,
    fail_first: bool,
}

impl Device for Slow {
    fn name(&self) -> String {
        self.name.clone()
    }
    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        let t0 = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(50));
        if std::mem::take(&mut self.fail_first) {
            return Err(DeviceError::Runtime(edge_runtime::Error::NoRepeats));
        }
        let r = self.inner.probe(arch);
        if let Ok(mut g) = self.spans.lock() {
            g.push((self.id, t0, std::time::Instant::now()));
        }
        r
    }
}

fn slow_pool(fail_first: bool) -> (PoolOutcome, Vec<(usize, std::time::Instant, std::time::Instant)>) {
    let t = tables();
    let tf = fake_tf();
    let p = prior();
    let ctx = Context { tf: &tf, prior: None, table: None, policy: None, calib: Some(&p) };
    let spans = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut devs: Vec<Slow> = t
        .iter()
        .enumerate()
        .map(|(id, tab)| Slow {
            inner: TableDevice::new(tab.clone()),
            name: format!("slow{id}"),
            spans: spans.clone(),
            id,
            fail_first: fail_first && id == 0,
        })
        .collect();
    let out = {
        let mut refs: Vec<&mut dyn Device> = devs.iter_mut().map(|d| d as &mut dyn Device).collect();
        search_pool(
            &cfg(PoolStrategy::Pool, 9, PoolObjective::Weighted { weight: 0.5 }),
            &ctx,
            &mut refs,
            &mut |_, _| {},
        )
    };
    let spans = spans.lock().map(|g| g.clone()).unwrap_or_default();
    (out, spans)
}

#[test]
fn the_opening_probes_run_on_every_device_at_once_and_are_recorded_in_order() {
    let (out, spans) = slow_pool(false);
    assert!(out.error.is_none(), "{:?}", out.error);
    // Some probes of different devices overlap in time.
    let overlap = spans.iter().any(|a| spans.iter().any(|b| a.0 != b.0 && a.1 < b.2 && b.1 < a.2));
    assert!(overlap, "the references were measured one device after another");
    // The record is the sequential order: both references of device 0, then device 1, ...
    let head: Vec<(usize, Arch)> = out.probes.iter().take(6).map(|p| (p.device, p.arch)).collect();
    assert_eq!(head, vec![(0, LO), (0, HI), (1, LO), (1, HI), (2, LO), (2, HI)]);
    // The same record as one device at a time would give.
    let t = tables();
    let one_by_one = run(&cfg(PoolStrategy::Pool, 9, PoolObjective::Weighted { weight: 0.5 }), &t);
    assert_eq!(out.probes, one_by_one.probes);
}

#[test]
fn what_other_devices_measured_in_parallel_is_kept_when_one_fails() {
    let (out, _) = slow_pool(true);
    assert!(matches!(out.error, Some(PoolError::Device { device: 1, .. })), "{:?}", out.error);
    let kept: Vec<(usize, Arch)> = out.probes.iter().map(|p| (p.device, p.arch)).collect();
    assert_eq!(kept, vec![(1, LO), (1, HI), (2, LO), (2, HI)], "devices 2 and 3 measured their references");
}
