//! The paper walk against LUT devices with the shipped policy through the record, and the
//! pieces against naive references.

use super::paper::*;
use super::*;
use crate::policy::Policy;
use std::vec;
use std::vec::Vec;

/// The shipped policy (`artifacts/policy`), the one the firmware embeds by default.
const POLICY: &[u8] = include_bytes!("../../../artifacts/policy/policy.safetensors");

/// A device whose latency is a LUT; `missing` cells have no value; every request is logged.
struct LutDevice {
    lut: Lut,
    missing: Vec<Arch>,
    asked: Vec<Arch>,
    fail_after: Option<usize>,
}

impl Device for LutDevice {
    type Error = &'static str;
    fn measure(&mut self, arch: Arch, step: usize) -> Result<Answer, &'static str> {
        assert!(step <= EPISODE_LEN);
        if self.fail_after == Some(self.asked.len()) {
            return Err("unplugged");
        }
        self.asked.push(arch);
        if self.missing.contains(&arch) {
            return Ok(Answer::Missing);
        }
        Ok(Answer::Latency(self.lut.latency(arch)))
    }
}

fn lut(seed: u64) -> Lut {
    let mut r = crate::rng::SplitMix64::new(seed);
    let mut t = [[0.0; NUM_OPS]; NUM_EDGES];
    for row in t.iter_mut() {
        for (o, v) in row.iter_mut().enumerate().skip(1) {
            // conv3x3 heaviest, then pool/conv1x1, skip cheap: like every device measured.
            let scale = [0.0, 0.02, 0.3, 1.0, 0.25][o];
            *v = scale * (1.0 + 0.5 * f64::from(r.next_signed()));
        }
    }
    Lut { base: 1.0 + f64::from(r.next_signed()).abs(), t }
}

/// A deterministic stand-in for TF: more convs score higher, with a per-cell wobble.
fn tf(a: Arch) -> f64 {
    let c = f64::from(a.code().get());
    (a.count(Op::NorConv3x3) as f64 + 0.5 * a.count(Op::NorConv1x1) as f64) / 6.0 * 0.8 + 0.2 * (c * 0.618).fract()
}

fn device(seed: u64) -> LutDevice {
    LutDevice { lut: lut(seed), missing: vec![], asked: vec![], fail_after: None }
}

fn walker<'p, 'w>(policy: &'p Policy<'w>) -> Walker<'p, 'w> {
    Walker { policy, obs_tf: true }
}

#[test]
fn walk_spends_at_most_the_budget_on_distinct_cells_references_first() {
    let policy = Policy::from_bytes(POLICY).unwrap();
    let prior = prior_top::<PRIOR_TOP>(Space::Raw, |a| lut(99).latency(a), tf);
    let start: Vec<Arch> = prior.iter().flatten().copied().collect();
    assert_eq!(start.len(), PRIOR_TOP);
    for seed in 0..6 {
        for budget in [1, 2, 3, 5, 10, 20] {
            let mut dev = device(seed);
            let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 20];
            let mut probes = Probes::new::<()>(&mut buf[..], budget).unwrap().in_space(Space::Raw);
            let r = walker(&policy).walk(tf, &start, &mut probes, &mut dev).unwrap();
            let p = probes.probes();
            assert!(p.len() <= budget && !p.is_empty(), "seed {seed} budget {budget}: {} probes", p.len());
            assert_eq!(p.len(), dev.asked.len(), "every request is a probe");
            for (i, m) in p.iter().enumerate() {
                assert_eq!(m.step, i + 1);
                assert_eq!(m.latency_ms, dev.lut.latency(m.arch));
                assert!(p[..i].iter().all(|q| q.arch != m.arch), "cell measured twice");
            }
            if budget >= 2 {
                assert_eq!((p[0].arch, p[1].arch), (LO, HI));
                assert_eq!(r.start, start[0]);
            }
            if budget >= 3 {
                assert_eq!(p[2].arch, start[0]);
                // The walk edits one edge per step.
                for w in p[2..].windows(2) {
                    let diff = (0..NUM_EDGES).filter(|&e| w[0].arch.ops[e] != w[1].arch.ops[e]).count();
                    assert_eq!(diff, 1, "{:?} -> {:?}", w[0].arch, w[1].arch);
                }
            }
            if budget >= 5 {
                assert_eq!((p.len(), r.stop), (budget, Stop::Budget), "seed {seed}");
            }
            let best = pick(&Objective::Weighted { weight: 0.5 }, tf, p).unwrap();
            assert!(p.iter().any(|m| m.arch == best.arch && m.latency_ms == best.latency_ms));
        }
    }
}

#[test]
fn executed_space_walk_measures_distinct_connected_executed_networks() {
    let policy = Policy::from_bytes(POLICY).unwrap();
    let prior = prior_top::<PRIOR_TOP>(Space::Executed, |a| lut(99).latency(a), tf);
    let start: Vec<Arch> = prior.iter().flatten().copied().collect();
    assert!(start.iter().all(|a| a.is_connected() && a.is_executed()));
    // A start with dead branches is measured as the network it runs.
    let dead = Arch::parse("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|").unwrap();
    for (seed, first) in [(0, start[0]), (1, dead), (2, Arch::uniform(Op::None))] {
        let mut dev = device(seed);
        let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 20];
        let mut probes = Probes::new::<()>(&mut buf[..], 20).unwrap();
        walker(&policy).walk(tf, &[first], &mut probes, &mut dev).unwrap();
        let p = probes.probes();
        assert_eq!(p.len(), dev.asked.len(), "every request is a probe");
        for (i, m) in p.iter().enumerate() {
            assert!(m.arch.is_connected() && m.arch.is_executed(), "seed {seed}: {} runs dead branches", m.arch);
            assert!(p[..i].iter().all(|q| q.arch != m.arch), "executed network measured twice");
        }
        if first == dead {
            assert_eq!(p[2].arch, dead.executed());
        }
    }
}

#[test]
fn budget_one_measures_the_start_alone() {
    let policy = Policy::from_bytes(POLICY).unwrap();
    let start = [HI, Arch::uniform(Op::NorConv1x1)];
    let mut dev = device(1);
    let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 1];
    let mut probes = Probes::new::<()>(&mut buf[..], 1).unwrap();
    let r = walker(&policy).walk(tf, &start, &mut probes, &mut dev).unwrap();
    assert_eq!((probes.probes().len(), probes.probes()[0].arch, r.steps, r.stop), (1, HI, 0, Stop::Budget));
    // Budget 2: both references, the start never measured.
    let mut dev = device(1);
    let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 2];
    let mut probes = Probes::new::<()>(&mut buf[..], 2).unwrap();
    let r = walker(&policy).walk(tf, &start, &mut probes, &mut dev).unwrap();
    assert_eq!((r.start, r.stop), (Arch::uniform(Op::NorConv1x1), Stop::NoStart));
    assert_eq!(dev.asked, vec![LO, HI]);
}

#[test]
fn missing_cells_cost_nothing_and_are_not_asked_again() {
    let policy = Policy::from_bytes(POLICY).unwrap();
    // First run: see where the walk goes; then hide its third and fourth cells.
    let mut dev = device(3);
    let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 8];
    let mut probes = Probes::new::<()>(&mut buf[..], 8).unwrap();
    walker(&policy).walk(tf, &[], &mut probes, &mut dev).unwrap();
    let hidden = vec![probes.probes()[2].arch, probes.probes()[3].arch];
    let mut dev = LutDevice { missing: hidden.clone(), ..device(3) };
    let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 8];
    let mut probes = Probes::new::<()>(&mut buf[..], 8).unwrap();
    walker(&policy).walk(tf, &[], &mut probes, &mut dev).unwrap();
    assert_eq!(probes.probes().len(), 8);
    assert!(probes.probes().iter().all(|m| !hidden.contains(&m.arch)));
    for h in &hidden {
        assert!(dev.asked.iter().filter(|&a| a == h).count() <= 1);
        assert!(probes.tried(*h) && probes.known(*h).is_none());
    }
    assert!(dev.asked.len() > 8);
}

#[test]
fn a_device_error_ends_the_walk_and_keeps_the_probes() {
    let policy = Policy::from_bytes(POLICY).unwrap();
    let mut dev = LutDevice { fail_after: Some(4), ..device(2) };
    let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 10];
    let mut probes = Probes::new::<()>(&mut buf[..], 10).unwrap();
    let err = walker(&policy).walk(tf, &[], &mut probes, &mut dev).unwrap_err();
    assert_eq!(err, SearchError::Device("unplugged"));
    assert_eq!(probes.probes().len(), 4);
}

#[test]
fn refuses_a_short_buffer_and_a_zero_budget() {
    let mut buf = [Measured { step: 0, arch: LO, latency_ms: 0.0 }; 3];
    assert_eq!(Probes::new::<()>(&mut buf[..], 4).err(), Some(SearchError::Buffer { budget: 4, got: 3 }));
    assert_eq!(Probes::new::<()>(&mut buf[..], 0).err(), Some(SearchError::ZeroBudget));
}

#[test]
fn prior_top_matches_a_full_sort() {
    for seed in [5, 6] {
        let l = lut(seed);
        let (lo, hi) = (l.latency(LO), l.latency(HI));
        let mut all: Vec<(f64, u16)> = ArchCode::all()
            .map(|c| {
                let a = Arch::from_code(c);
                let lp = ((l.latency(a) - lo) / (hi - lo)).clamp(0.0, 1.0);
                (0.5 * tf(a) + 0.5 * (1.0 - lp), c.get())
            })
            .collect();
        all.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
        let top = prior_top::<4>(Space::Raw, |a| l.latency(a), tf);
        let want: Vec<Option<Arch>> =
            all[..4].iter().map(|&(_, c)| Some(Arch::from_code(ArchCode::new(c).unwrap()))).collect();
        assert_eq!(top.to_vec(), want);
    }
    // Ties go to the lower code: a constant score ranks codes 0, 1, 2.
    let top = prior_top::<3>(Space::Raw, |_| 1.0, |_| 0.5);
    assert_eq!(top.map(|a| a.map(|a| a.code().get())), [Some(0), Some(1), Some(2)]);
}

#[test]
fn pick_weighted_and_constrained_by_hand() {
    let m = |step, op, ms| Measured { step, arch: Arch::uniform(op), latency_ms: ms };
    let probes =
        [m(1, Op::SkipConnect, 2.0), m(2, Op::NorConv3x3, 10.0), m(3, Op::NorConv1x1, 4.0), m(4, Op::AvgPool3x3, 6.0)];
    let tf = |a: Arch| match a.ops[0] {
        Op::SkipConnect => 0.2,
        Op::NorConv3x3 => 0.9,
        Op::NorConv1x1 => 0.6,
        _ => 0.6,
    };
    // l: 0, 1, 0.25, 0.5; w = 0.5: 0.6, 0.45, 0.675, 0.55.
    let p = pick(&Objective::Weighted { weight: 0.5 }, tf, &probes).unwrap();
    assert_eq!((p.arch, p.step, p.score), (Arch::uniform(Op::NorConv1x1), 3, 0.675));
    // Constrained at 6 ms: conv1x1 and pool tie on TF 0.6, the faster wins.
    let p = pick(&Objective::Constraint { max_latency_ms: 6.0 }, tf, &probes).unwrap();
    assert_eq!((p.arch, p.latency_ms), (Arch::uniform(Op::NorConv1x1), 4.0));
    assert_eq!(pick(&Objective::Constraint { max_latency_ms: 1.0 }, tf, &probes), None);
    // Unclamped normalisation: a cell faster than LO gets l < 0 (here -0.25).
    let faster = [probes[0], probes[1], m(3, Op::None, 0.0)];
    let p = pick(&Objective::Weighted { weight: 0.0 }, |_| 0.0, &faster).unwrap();
    assert_eq!((p.arch, p.score), (Arch::uniform(Op::None), 1.25));
}

#[test]
fn cell_set_holds_every_code() {
    let mut s = CellSet::new();
    for c in (0..NUM_ARCHS as u16).step_by(7) {
        s.insert(Arch::from_code(ArchCode::new(c).unwrap()));
    }
    for c in ArchCode::all() {
        assert_eq!(s.contains(Arch::from_code(c)), c.get() % 7 == 0);
    }
}

#[test]
fn search_errors_say_what_went_wrong() {
    let e: SearchError<&str> = SearchError::Buffer { budget: 4, got: 3 };
    assert_eq!(e.to_string(), "a probe buffer of 3 slots cannot hold a budget of 4 probes");
    assert_eq!(SearchError::Device("unplugged").to_string(), "device: unplugged");
    let e: SearchError<&str> = SearchError::Calib(crate::calib::CalibError::NotPositiveDefinite);
    assert!(e.to_string().starts_with("calibrated model: "), "{e}");
}

#[test]
fn a_vec_record_takes_the_budget_and_hands_back_the_probes() {
    let mut probes = Probes::with_budget::<()>(3).unwrap().in_space(Space::Raw);
    let mut dev = LutDevice { missing: vec![HI], ..device(4) };
    for a in [LO, HI, LO, Arch::uniform(Op::NorConv1x1), Arch::uniform(Op::AvgPool3x3), Arch::uniform(Op::None)] {
        probes.measure(&mut dev, a, 0).unwrap();
    }
    // HI is missing (no budget), LO asked twice is one probe; the third probe spends the budget.
    assert_eq!(dev.asked, vec![LO, HI, Arch::uniform(Op::NorConv1x1), Arch::uniform(Op::AvgPool3x3)]);
    assert_eq!(probes.remaining(), 0);
    assert_eq!(probes.probes().len(), 3);
    let code = |a: Arch| usize::from(a.code().get());
    assert!(probes.tried_code(code(HI)) && !probes.tried_code(code(Arch::uniform(Op::None))));
    let v = probes.into_vec();
    assert_eq!(v.iter().map(|m| m.step).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(v[2].arch, Arch::uniform(Op::AvgPool3x3));
}
