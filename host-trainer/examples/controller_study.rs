//! Studies of the calibrated controller's choices, leave one family out on the training
//! devices (the figures quoted in `artifacts/controller/README.md`). From the repository
//! root, with the benchmark tables beside it:
//!
//! ```sh
//! cargo run --release -p host-trainer --example controller_study -- picks        # pick rules on the shipped search's probes
//! cargo run --release -p host-trainer --example controller_study -- per-edge     # a per-(edge, op) latency model
//! cargo run --release -p host-trainer --example controller_study -- shortfall    # the grid, scored against the LUT baselines per device
//! cargo run --release -p host-trainer --example controller_study -- on-synthetic # the strategies on 100 `runtime` synthetic devices
//! cargo run --release -p host-trainer --example controller_study -- dead         # the dead-edge probe at 5 probes, per training device
//! cargo run --release -p host-trainer --example controller_study -- paper P.safetensors ...  # controller-paper with each policy (PER=1: per device)
//! ```
//!
//! `SIMNAS_DATA` names the benchmark folder (default `../shared/data`). No validation device
//! is read. `on-synthetic` takes three knobs: `RUNTIMES=help` draws only around the training
//! runtimes whose name starts with that prefix, `CLEAN=1` draws them without noise and
//! outliers, `NODEAD=1` runs the controller without its dead-edge probe, `PAPER=1` draws the paper's per-op Gaussian devices instead (`SKIP0=1`: with free
//! skips), and `NONE=c` adds a cost `c` (units of the all-conv3x3 cell) for every `none` edge
//! of a cell's executed network.

use anyhow::{bail, Context, Result};
use host_trainer::data::NatsMap;
use host_trainer::latency::registry::Split;
use host_trainer::score::table::{Proxy, ScoreTable};
use host_trainer::search::strategies::controller::*;
use std::path::{Path, PathBuf};

fn main() -> Result<()> {
    let study = std::env::args().nth(1).unwrap_or_default();
    let dir = std::env::var_os("SIMNAS_DATA").map_or_else(|| PathBuf::from("../shared/data"), PathBuf::from);
    let map = NatsMap::load(&dir).with_context(|| format!("benchmark tables in {}", dir.display()))?;
    let table =
        ScoreTable::load(Path::new("artifacts/scores/cifar10_scores.csv"))?.with_proxy(Proxy::Freerea)?.executed();
    let tf = host_trainer::search::eval::tf_vector(|a| table.tf(a));
    let all = host_trainer::synth::load_devices(&dir, &map)?;
    let train: Vec<_> = all.iter().filter(|(d, _)| d.split == Split::Train).collect();
    let devices: Vec<TrainDevice> = train.iter().map(|(d, t)| TrainDevice::new(d.name, d.family, t)).collect();
    let file: PriorFile = serde_json::from_slice(&std::fs::read("artifacts/controller/prior.json")?)?;
    let p = file.prior()?;
    let g = GridPoint {
        noise: p.noise,
        range_factor: p.range_factor,
        range_rule: p.range_rule,
        dead_edge_probe: p.dead_edge_probe,
        mean: 0.0,
        worst: 0.0,
    };
    match study.as_str() {
        "picks" => pick_study(&devices, &tf, &g),
        "per-edge" => edge_study(&devices, &tf, &[0.0, 0.5], &[0.02, 0.05], &[1.0, 1.15, 1.3]),
        "shortfall" => shortfall_grid(&devices, &tf, &g),
        "on-synthetic" => on_synth(&tf, &p, 100, &[1.0, 1.15, 1.3]),
        "dead" => dead_study(&devices, &tf, &g, 5),
        "paper" => {
            for path in std::env::args().skip(2) {
                paper_study(&devices, &tf, &g, Path::new(&path))?;
            }
        }
        other => bail!("unknown study {other:?}: picks, per-edge, shortfall, on-synthetic, dead or paper"),
    }
    Ok(())
}

pub struct Run {
    pub name: String,
    pub family: String,
    pub fit: Vec<Option<f64>>,
    pub best: f64,
    pub probes: Vec<(usize, f64)>,
    pub est: f64,
    pub factor: f64,
    pub true_r: f64,
    pub rr: f64,
    pub lo_ms: f64,
}

pub fn runs(
    devices: &[TrainDevice],
    tf: &[f64],
    g: &GridPoint,
    budget: usize,
    adjust: &dyn Fn(&mut edge_runtime::calib::Prior),
) -> Vec<Run> {
    use host_trainer::device::table::TableDevice;
    use host_trainer::search::*;
    let lo = simnas_shared::Arch::uniform(simnas_shared::Op::SkipConnect);
    let hi = simnas_shared::Arch::uniform(simnas_shared::Op::NorConv3x3);
    devices
        .iter()
        .map(|d| {
            // The same leave-one-family-out prior the selection uses (fits computed once).
            let mut p = loo_prior(devices, d, g).unwrap();
            adjust(&mut p);
            let fit = eval::true_fitness(d.table, tf, 0.5, Space::Executed);
            let best = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
            let ctx = Context { tf, prior: None, table: None, policy: None, calib: Some(&p) };
            let cfg = SearchConfig {
                strategy: Strategy::Controller,
                budget,
                objective: Objective::Weighted { weight: 0.5 },
                seed: 0,
                space: Space::Executed,
            };
            let out = search(&cfg, &ctx, &mut TableDevice::new(d.table.clone()), &mut |_| {});
            let vals: Vec<f64> =
                (0..15625).filter(|&c| Space::Executed.contains_code(c)).filter_map(|c| d.table.values()[c]).collect();
            let (mn, mx) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            let (l, h) = (d.table.get(lo).unwrap(), d.table.get(hi).unwrap());
            Run {
                name: d.name.to_string(),
                family: d.family.to_string(),
                fit,
                best,
                probes: out.probes.iter().map(|m| (m.arch.code().get() as usize, m.latency_ms)).collect(),
                est: out.range_factor / p.range_factor,
                factor: p.range_factor,
                true_r: (mx - mn) / (h - l),
                rr: h - l,
                lo_ms: l,
            }
        })
        .collect()
}

/// pick index into probes under point range r (ref units).
pub fn pick_point(run: &Run, tf: &[f64], r: f64) -> usize {
    let mut best = (f64::NEG_INFINITY, 0);
    for (i, &(c, ms)) in run.probes.iter().enumerate() {
        let s = 0.5 * tf[c] - 0.5 * (ms - run.lo_ms) / (r * run.rr);
        if s > best.0 {
            best = (s, i);
        }
    }
    best.1
}

pub fn pick_hedged(run: &Run, tf: &[f64], rhos: &[f64]) -> usize {
    let mn = run.probes.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let mut best = (f64::NEG_INFINITY, 0);
    for (i, &(c, ms)) in run.probes.iter().enumerate() {
        let mut s = 0.0;
        for &rho in rhos {
            let r = rho * run.est * run.rr;
            let f = |c: usize, ms: f64| 0.5 * tf[c] + 0.5 * (1.0 - (ms - mn) / r);
            let top = run.probes.iter().map(|&(c2, m2)| f(c2, m2)).fold(f64::NEG_INFINITY, f64::max);
            s += f(c, ms) / top;
        }
        if s > best.0 {
            best = (s, i);
        }
    }
    best.1
}

pub fn score(run: &Run, i: usize) -> f64 {
    run.fit[run.probes[i].0].unwrap_or(0.0) / run.best
}

pub fn pick_study(devices: &[TrainDevice], tf: &[f64], g: &GridPoint) {
    for budget in [5, 10, 20] {
        let rs = runs(devices, tf, g, budget, &|_| {});
        let mut sums = [0.0; 7];
        let mut worst = [f64::INFINITY; 7];
        for r in &rs {
            let rhos: Vec<f64> = rs.iter().filter(|o| o.family != r.family).map(|o| o.true_r / o.est).collect();
            let mut med = rhos.clone();
            med.sort_by(f64::total_cmp);
            let m = med[med.len() / 2];
            let picks = [
                pick_point(r, tf, r.est * 1.15),
                pick_point(r, tf, r.est * 1.0),
                pick_point(r, tf, r.est * 1.3),
                pick_point(r, tf, r.est * m),
                pick_hedged(r, tf, &rhos),
                (0..r.probes.len()).max_by(|&a, &b| score(r, a).total_cmp(&score(r, b))).unwrap(),
                pick_point(r, tf, r.true_r),
            ];
            for (k, &p) in picks.iter().enumerate() {
                let s = score(r, p);
                sums[k] += s;
                worst[k] = worst[k].min(s);
            }
        }
        let n = rs.len() as f64;
        println!("budget {budget}: [x1.15, x1.0, x1.3, xmedian, hedged, probe-best, true-range]");
        println!("  mean  {:?}", sums.iter().map(|s| format!("{:.4}", s / n)).collect::<Vec<_>>());
        println!("  worst {:?}", worst.iter().map(|s| format!("{:.4}", s)).collect::<Vec<_>>());
    }
}

pub fn on_synth(tf: &[f64], p: &edge_runtime::calib::Prior, n: usize, factors: &[f64]) {
    use host_trainer::device::table::TableDevice;
    use host_trainer::search::*;
    use host_trainer::synth::DeviceDistributionExt as _;
    use rand::SeedableRng;
    let dist = host_trainer::synth::DeviceDistribution::embedded();
    let mut fits = dist.runtimes.clone();
    if let Ok(prefix) = std::env::var("RUNTIMES") {
        fits.retain(|f| f.name.starts_with(&prefix));
    }
    if std::env::var_os("CLEAN").is_some() {
        for f in &mut fits {
            f.sigma = 0.0;
            f.outlier_fraction = 0.0;
        }
    }
    let gen = host_trainer::synth::runtime::RuntimeGenerator::new(&fits).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mean_lut = dist.per_op.mean();
    // NONE=c: every `none` edge of a cell's executed network costs c (units of hi).
    let none_cost: f64 = std::env::var("NONE").ok().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let none_edges = |c: usize| {
        let a = simnas_shared::Arch::from_code(simnas_shared::ArchCode::new(c as u16).unwrap()).executed();
        a.count(simnas_shared::Op::None) as f64
    };
    let tables: Vec<_> = (0..n)
        .map(|_| {
            host_trainer::latency::LatencyTable::from_codes(
                "s",
                (if std::env::var_os("PAPER").is_some() {
                    let mut d = dist.sample(host_trainer::synth::SynthPreset::Paper, &mut rng);
                    if std::env::var_os("SKIP0").is_some() {
                        for row in &mut d.lut.t {
                            row[simnas_shared::Op::SkipConnect as usize] = 0.0;
                        }
                        d.latency = d.lut.table();
                    }
                    d
                } else {
                    gen.sample(&mut rng)
                })
                .latency
                .into_iter()
                .enumerate()
                .map(|(c, v)| Some(v + none_cost * none_edges(c)))
                .collect(),
            )
            .unwrap()
        })
        .collect();
    for budget in [5, 10, 20] {
        let mut line = format!("budget {budget}:");
        let mut cases: Vec<(String, Strategy, Option<f64>)> =
            factors.iter().map(|f| (format!("ctl x{f}"), Strategy::Controller, Some(*f))).collect();
        cases.push(("lut-probe".into(), Strategy::LutProbe, None));
        cases.push(("lut-prior".into(), Strategy::LutPrior, None));
        for (name, st, f) in cases {
            let mut q = *p;
            if let Some(f) = f {
                q.range_factor = f;
                if std::env::var_os("NODEAD").is_some() {
                    q.dead_edge_probe = false;
                }
            }
            let mut s = 0.0;
            let mut w = f64::INFINITY;
            for t in &tables {
                let fit = eval::true_fitness(t, tf, 0.5, Space::Executed);
                let best = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
                let ctx = Context { tf, prior: Some(&mean_lut), table: None, policy: None, calib: Some(&q) };
                let cfg = SearchConfig {
                    strategy: st,
                    budget,
                    objective: Objective::Weighted { weight: 0.5 },
                    seed: 0,
                    space: Space::Executed,
                };
                let out = search(&cfg, &ctx, &mut TableDevice::new(t.clone()), &mut |_| {});
                let r = out.pick.map_or(0.0, |p| fit[p.arch.code().get() as usize].unwrap_or(0.0)) / best;
                s += r;
                w = w.min(r);
            }
            line += &format!("  {name} {:.4}/{:.3}", s / n as f64, w);
        }
        println!("{line}");
    }
}

pub mod edgemodel {
    use simnas_shared::{Arch, ArchCode, Op};
    pub const F: usize = 25;
    pub fn feats(a: &Arch) -> [f64; F] {
        let mut f = [0.0; F];
        f[0] = 1.0;
        for (e, &op) in a.ops.iter().enumerate() {
            if op != Op::None {
                f[1 + e * 4 + (op as usize - 1)] = 1.0;
            }
        }
        f
    }
    pub fn dot(t: &[f64; F], f: &[f64; F]) -> f64 {
        t.iter().zip(f).map(|(a, b)| a * b).sum()
    }
    /// per-edge fit of executed cells, in reference units
    pub fn fit(table: &host_trainer::latency::LatencyTable) -> Option<[f64; F]> {
        let lo = table.get(Arch::uniform(Op::SkipConnect))?;
        let hi = table.get(Arch::uniform(Op::NorConv3x3))?;
        let mut ata = [[0.0; F]; F];
        let mut atb = [0.0; F];
        for c in ArchCode::all() {
            let a = Arch::from_code(c);
            if !a.is_executed() || !a.is_connected() {
                continue;
            }
            let Some(y) = table.get_code(c) else { continue };
            let y = (y - lo) / (hi - lo);
            let f = feats(&a);
            for i in 0..F {
                atb[i] += f[i] * y;
                for j in 0..F {
                    ata[i][j] += f[i] * f[j];
                }
            }
        }
        for (i, row) in ata.iter_mut().enumerate() {
            row[i] += 1e-9;
        }
        let l = edge_runtime::calib::cholesky(&mut ata)?;
        Some(edge_runtime::calib::cholesky_solve(&l, &atb))
    }
    #[derive(Clone)]
    pub struct EPrior {
        pub prec: [[f64; F]; F],
        pub pmu: [f64; F],
        pub noise: f64,
        pub factor: f64,
    }
    pub fn prior(fits: &[[f64; F]], shrink: f64, noise: f64, factor: f64) -> EPrior {
        let n = fits.len() as f64;
        let mut mean = [0.0; F];
        for f in fits {
            for i in 0..F {
                mean[i] += f[i] / n;
            }
        }
        let mut cov = [[0.0; F]; F];
        for f in fits {
            for i in 1..F {
                for j in 1..F {
                    cov[i][j] += (f[i] - mean[i]) * (f[j] - mean[j]) / (n - 1.0);
                }
            }
        }
        let mut c2 = [[0.0; F]; F];
        for i in 1..F {
            for j in 1..F {
                c2[i][j] = if i == j { cov[i][j] + 1e-6 } else { (1.0 - shrink) * cov[i][j] };
            }
        }
        c2[0][0] = 1e9; // flat base
        let l = edge_runtime::calib::cholesky(&mut c2).unwrap();
        let mut prec = [[0.0; F]; F];
        for j in 0..F {
            let mut e = [0.0; F];
            e[j] = 1.0;
            let col = edge_runtime::calib::cholesky_solve(&l, &e);
            for i in 0..F {
                prec[i][j] = col[i];
            }
        }
        let mut pmu = [0.0; F];
        for i in 0..F {
            for j in 0..F {
                pmu[i] += prec[i][j] * mean[j];
            }
        }
        EPrior { prec, pmu, noise, factor }
    }
    /// Run the per-edge calibrated search on a table; returns probes (code, ms) and range (ref units)
    pub fn search(
        p: &EPrior,
        table: &host_trainer::latency::LatencyTable,
        tf: &[f64],
        budget: usize,
        dead: bool,
    ) -> (Vec<(usize, f64)>, f64) {
        let lo_a = Arch::uniform(Op::SkipConnect);
        let hi_a = Arch::uniform(Op::NorConv3x3);
        let mut probes: Vec<(usize, f64)> = vec![];
        let mut tried = vec![false; 15625];
        let meas = |a: Arch, probes: &mut Vec<(usize, f64)>, tried: &mut Vec<bool>| {
            let c = a.code().get() as usize;
            tried[c] = true;
            if let Some(v) = table.get(a) {
                probes.push((c, v));
            }
        };
        meas(lo_a, &mut probes, &mut tried);
        meas(hi_a, &mut probes, &mut tried);
        let dead_cell = edge_runtime::calib::DEAD_EDGE_CELL.executed();
        if dead {
            meas(dead_cell, &mut probes, &mut tried);
        }
        let cands: Vec<usize> = (0..15625)
            .filter(|&c| {
                let a = Arch::from_code(ArchCode::new(c as u16).unwrap());
                a.is_executed() && a.is_connected()
            })
            .collect();
        let cf: Vec<[f64; F]> =
            cands.iter().map(|&c| feats(&Arch::from_code(ArchCode::new(c as u16).unwrap()))).collect();
        let (lo, hi) = (probes[0].1, probes[1].1);
        let mut range;
        loop {
            let w = 1.0 / (p.noise * p.noise);
            let mut a = p.prec;
            let mut b = p.pmu;
            for &(c, ms) in &probes {
                let f = feats(&Arch::from_code(ArchCode::new(c as u16).unwrap()));
                let y = (ms - lo) / (hi - lo);
                for i in 0..F {
                    b[i] += w * f[i] * y;
                    for j in 0..F {
                        a[i][j] += w * f[i] * f[j];
                    }
                }
            }
            let l = edge_runtime::calib::cholesky(&mut a).unwrap();
            let th = edge_runtime::calib::cholesky_solve(&l, &b);
            let preds: Vec<f64> = cf.iter().map(|f| dot(&th, f)).collect();
            let (mn, mx) = preds.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
            range = p.factor * (mx - mn).max(1e-9);
            if probes.len() >= budget {
                break;
            }
            let mut best = (f64::NEG_INFINITY, usize::MAX);
            for (k, &c) in cands.iter().enumerate() {
                if tried[c] {
                    continue;
                }
                let s = 0.5 * tf[c] - 0.5 * preds[k] / range;
                if s > best.0 {
                    best = (s, c);
                }
            }
            if best.1 == usize::MAX {
                break;
            }
            meas(Arch::from_code(ArchCode::new(best.1 as u16).unwrap()), &mut probes, &mut tried);
        }
        (probes, range)
    }
}

pub fn edge_study(devices: &[TrainDevice], tf: &[f64], shrinks: &[f64], noises: &[f64], factors: &[f64]) {
    use host_trainer::search::*;
    let fits: Vec<Option<[f64; edgemodel::F]>> = devices.iter().map(|d| edgemodel::fit(d.table)).collect();
    let truth: Vec<(Vec<Option<f64>>, f64)> = devices
        .iter()
        .map(|d| {
            let fit = eval::true_fitness(d.table, tf, 0.5, Space::Executed);
            let b = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
            (fit, b)
        })
        .collect();
    for &shrink in shrinks {
        for &noise in noises {
            for &factor in factors {
                let mut line = format!("shrink {shrink} noise {noise} factor {factor}:");
                for budget in [5, 10, 20] {
                    let mut s = 0.0;
                    let mut w = f64::INFINITY;
                    let mut per = vec![];
                    for (i, d) in devices.iter().enumerate() {
                        let others: Vec<_> = devices
                            .iter()
                            .zip(&fits)
                            .filter(|(o, _)| o.family != d.family)
                            .filter_map(|(_, f)| *f)
                            .collect();
                        let p = edgemodel::prior(&others, shrink, noise, factor);
                        let (probes, range) = edgemodel::search(&p, d.table, tf, budget, true);
                        let (lo, hi) = (probes[0].1, probes[1].1);
                        let pick = probes
                            .iter()
                            .max_by(|a, b| {
                                let sa = 0.5 * tf[a.0] - 0.5 * (a.1 - lo) / ((hi - lo) * range);
                                let sb = 0.5 * tf[b.0] - 0.5 * (b.1 - lo) / ((hi - lo) * range);
                                sa.total_cmp(&sb)
                            })
                            .unwrap();
                        let r = truth[i].0[pick.0].unwrap_or(0.0) / truth[i].1;
                        s += r;
                        w = w.min(r);
                        per.push(r);
                    }
                    line += &format!("  b{budget} {:.4}/{:.3}", s / devices.len() as f64, w);
                    if std::env::var("PER").is_ok() && budget == 10 {
                        for (d, r) in devices.iter().zip(&per) {
                            print!("{}:{:.3} ", d.name, r);
                        }
                        println!();
                    }
                }
                println!("{line}");
            }
        }
    }
}

pub fn shortfall_grid(devices: &[TrainDevice], tf: &[f64], g0: &GridPoint) {
    use edge_runtime::calib::RangeRule;
    use host_trainer::search::Strategy;
    let budgets = [5, 10, 20];
    let base = lofo_runs(devices, tf, g0, |_| {}, &[Strategy::LutProbe, Strategy::LutPrior], &budgets).unwrap();
    let best_base: Vec<Vec<f64>> =
        (0..3).map(|bi| (0..devices.len()).map(|i| base[bi].ratios[i].max(base[3 + bi].ratios[i])).collect()).collect();
    let base_mean: Vec<f64> = (0..6).map(|k| base[k].ratios.iter().sum::<f64>() / devices.len() as f64).collect();
    println!(
        "baselines mean: probe {:.4} {:.4} {:.4} prior {:.4} {:.4} {:.4}",
        base_mean[0], base_mean[1], base_mean[2], base_mean[3], base_mean[4], base_mean[5]
    );
    for dead in [false, true] {
        for rule in [RangeRule::Reference, RangeRule::Model] {
            for noise in [0.02, 0.05, 0.15] {
                for factor in [1.0, 1.05, 1.15, 1.3] {
                    let g = GridPoint {
                        noise,
                        range_factor: factor,
                        range_rule: rule,
                        dead_edge_probe: dead,
                        mean: 0.0,
                        worst: 0.0,
                    };
                    let runs = lofo_runs(devices, tf, &g, |_| {}, &[Strategy::Controller], &budgets).unwrap();
                    let mut line = format!("dead {dead:>5} {rule:?} noise {noise} factor {factor}:");
                    let mut total = 0.0;
                    for (bi, r) in runs.iter().enumerate() {
                        let n = devices.len() as f64;
                        let mean = r.ratios.iter().sum::<f64>() / n;
                        let short =
                            r.ratios.iter().zip(&best_base[bi]).map(|(c, b)| (b - c - 0.002).max(0.0)).sum::<f64>() / n;
                        let losers = r.ratios.iter().zip(&best_base[bi]).filter(|(c, b)| **b - **c > 0.002).count();
                        total += mean - short;
                        line += &format!("  b{} {:.4} short {:.4} ({losers})", r.budget, mean, short);
                    }
                    println!("{line}  score {:.4}", total / 3.0);
                }
            }
        }
    }
}

/// The dead-edge probe at `budget` probes, per training device (leave one family out).
pub fn dead_study(devices: &[TrainDevice], tf: &[f64], g: &GridPoint, budget: usize) {
    use host_trainer::search::Strategy;
    let with = lofo_runs(devices, tf, g, |_| {}, &[Strategy::Controller], &[budget]).unwrap();
    let without = lofo_runs(devices, tf, g, |p| p.dead_edge_probe = false, &[Strategy::Controller], &[budget]).unwrap();
    for (i, d) in devices.iter().enumerate() {
        let (a, b) = (with[0].ratios[i], without[0].ratios[i]);
        if (a - b).abs() > 1e-9 {
            println!("{:<26} with {a:.4} without {b:.4} ({:+.4})", d.name, a - b);
        }
    }
}

/// `controller-paper` with the policy at `path` on the training devices at 5, 10 and 20
/// probes (its zero-shot start from the other families' mean LUT).
pub fn paper_study(devices: &[TrainDevice], tf: &[f64], g: &GridPoint, path: &Path) -> Result<()> {
    use host_trainer::search::strategies::paper::Controller;
    use host_trainer::search::Strategy;
    let policy = Controller::load(path)?;
    let runs = lofo_runs_with(devices, tf, g, |_| {}, Some(&policy), &[Strategy::ControllerPaper], &[5, 10, 20])
        .context("a training table has no fit")?;
    let mut line = format!("{}:", path.display());
    for r in &runs {
        let mean = r.ratios.iter().sum::<f64>() / r.ratios.len() as f64;
        let worst = r.ratios.iter().copied().fold(f64::INFINITY, f64::min);
        line += &format!("  b{} {mean:.4}/{worst:.3}", r.budget);
    }
    println!("{line}");
    if std::env::var_os("PER").is_some() {
        for (i, d) in devices.iter().enumerate() {
            println!("  {:<26} {:.4} {:.4} {:.4}", d.name, runs[0].ratios[i], runs[1].ratios[i], runs[2].ratios[i]);
        }
    }
    Ok(())
}
