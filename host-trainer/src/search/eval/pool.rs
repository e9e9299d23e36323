//! Pools of table devices: the multi-device search against searching each device alone.
//!
//! * **Weighted**: the pool fitness of a cell is `F(h) = w TF(h) + (1 - w)(1 - mean_d
//!   (lat_d(h) - min_d) / (max_d - min_d))` with each device's TRUE range over the space; a
//!   run scores `F(pick) / F(pool oracle)`, the oracle being the best cell measured on every
//!   device of the pool. A run without a pick scores 0.
//! * **Constrained**: each device's limit at the same latency percentile of its own table
//!   (10th, 25th, 50th); a run is feasible when its pick is within every limit (by its
//!   measured latencies, which for a table device are the truth). The proxy's ceiling is the
//!   best-TF cell within every limit.
//!
//! Budgets are per device: a pool of `n` devices at budget `b` spends at most `n b` probes
//! in total, whatever the strategy.

use super::{code, percentile_in, EvalDevice, PERCENTILES};
use crate::device::table::TableDevice;
use crate::device::Device;
use crate::latency::registry;
use crate::search::pool::{search_pool, PoolConfig, PoolObjective, PoolOutcome, PoolStrategy};
use crate::search::strategies::controller::fit_prior;
use crate::search::strategies::space_range;
use crate::search::{weighted, Context, Space};
use edge_runtime::calib::Prior;
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// What to run on pools.
pub struct PoolPlan<'a> {
    /// Strategies, in report order.
    pub strategies: Vec<PoolStrategy>,
    /// Budgets per device.
    pub budgets: Vec<usize>,
    /// `w` of the weighted form.
    pub weight: f64,
    /// `TF` per code.
    pub tf: &'a [f64],
    /// Accuracy per code (reporting only).
    pub accuracy: &'a [Option<f64>],
    /// The calibrated controller's prior.
    pub calib: &'a edge_runtime::calib::Prior,
    /// Leave the pool's families out: each pool is searched with the prior refitted (by
    /// [`fit_prior`], the shipped prior's settings kept) on these training tables, less
    /// those of a family in the pool. `None`: every pool uses `calib`.
    pub refit_on: Option<&'a [(String, crate::latency::LatencyTable)]>,
    /// The search space.
    pub space: Space,
}

/// One pool run (weighted: `percentile` is `None`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct PoolRun {
    /// The devices, `+`-joined.
    pub pool: String,
    /// Devices in the pool.
    pub size: usize,
    /// Strategy name.
    pub strategy: &'static str,
    /// Budget per device.
    pub budget_per_device: usize,
    /// Probes spent in total.
    pub probes: usize,
    /// Constrained: the limits' percentile.
    pub percentile: Option<f64>,
    /// Weighted: `F(pick)`; constrained: the pick's TF (0 without a pick).
    pub fitness: f64,
    /// Weighted: `F(pick) / F(oracle)`; constrained: TF over the ceiling's TF.
    pub ratio: f64,
    /// Constrained: the pick exists and is within every limit.
    pub feasible: bool,
    /// The pick.
    pub arch: String,
    /// Its accuracy (reporting only).
    pub accuracy: Option<f64>,
    /// Constrained: the ceiling's accuracy.
    pub ceiling_accuracy: Option<f64>,
    /// The search's error, if any.
    pub error: String,
}

/// Every pool of `size` devices drawn from `devices` with no two from the same family
/// (`family(i)`), in lexicographic order of positions.
pub fn pools(n_devices: usize, size: usize, family: impl Fn(usize) -> String) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    fn rec(
        start: usize,
        n: usize,
        size: usize,
        cur: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
        fam: &dyn Fn(usize) -> String,
    ) {
        if cur.len() == size {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            if cur.iter().any(|&j| fam(j) == fam(i)) {
                continue;
            }
            cur.push(i);
            rec(i + 1, n, size, cur, out, fam);
            cur.pop();
        }
    }
    rec(0, n_devices, size, &mut cur, &mut out, &family);
    out
}

/// Pool fitness per code (`None` where a device has no latency or outside the space).
pub fn pool_fitness(tables: &[&EvalDevice], tf: &[f64], weight: f64, space: Space) -> Vec<Option<f64>> {
    let ranges: Vec<(f64, f64)> = tables.iter().map(|d| space_range(d.table.values(), space)).collect();
    (0..NUM_ARCHS)
        .map(|c| {
            if !space.contains_code(c) {
                return None;
            }
            let mut l = 0.0;
            for (d, &(lo, hi)) in tables.iter().zip(&ranges) {
                let ms = d.table.values()[c]?;
                l += if hi > lo { (ms - lo) / (hi - lo) } else { 0.0 };
            }
            Some(weighted(weight, tf[c], l / tables.len() as f64))
        })
        .collect()
}

/// A device's hardware family (its own name outside the registry).
pub fn family(name: &str) -> &str {
    registry::by_name(name).map_or(name, |d| d.family)
}

fn run_one(cfg: &PoolConfig, ctx: &Context, tables: &[&EvalDevice]) -> PoolOutcome {
    let mut devs: Vec<TableDevice> = tables.iter().map(|d| TableDevice::new(d.table.clone())).collect();
    let mut refs: Vec<&mut dyn Device> = devs.iter_mut().map(|d| d as &mut dyn Device).collect();
    search_pool(cfg, ctx, &mut refs, &mut |_, _| {})
}

/// Evaluate one pool (every strategy and budget, both forms).
pub fn eval_pool(devices: &[&EvalDevice], plan: &PoolPlan) -> Vec<PoolRun> {
    let n = devices.len();
    let name = devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join("+");
    let fit = pool_fitness(devices, plan.tf, plan.weight, plan.space);
    let best = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let refit = plan.refit_on.map(|train| {
        let families: Vec<&str> = devices.iter().map(|d| family(&d.name)).collect();
        let tables: Vec<&crate::latency::LatencyTable> =
            train.iter().filter(|(name, _)| !families.contains(&family(name))).map(|(_, t)| t).collect();
        let c = plan.calib;
        fit_prior(&tables, c.noise, c.range_factor, c.range_rule, c.dead_edge_probe).map(|p| Prior {
            constrained_dead_edge_probe: c.constrained_dead_edge_probe,
            explore: c.explore,
            ..p
        })
    });
    let calib = match refit {
        Some(Some(p)) => p,
        _ => *plan.calib,
    };
    let ctx = Context { tf: plan.tf, prior: None, table: None, policy: None, calib: Some(&calib) };
    let mut runs = Vec::new();
    let error = |o: &PoolOutcome| o.error.as_ref().map(|e| e.message()).unwrap_or_default();
    for &strategy in &plan.strategies {
        for &b in &plan.budgets {
            let base = PoolConfig {
                strategy,
                budget: n * b,
                objective: PoolObjective::Weighted { weight: plan.weight },
                seed: 0,
                space: plan.space,
            };
            let out = run_one(&base, &ctx, devices);
            let f = out.pick.as_ref().map_or(0.0, |p| fit[code(p.arch)].unwrap_or(0.0));
            runs.push(PoolRun {
                pool: name.clone(),
                size: n,
                strategy: strategy.name(),
                budget_per_device: b,
                probes: out.probes.len(),
                percentile: None,
                fitness: f,
                ratio: if best > 0.0 { f / best } else { 0.0 },
                feasible: out.pick.is_some(),
                arch: out.pick.as_ref().map(|p| p.arch.to_string()).unwrap_or_default(),
                accuracy: out.pick.as_ref().and_then(|p| plan.accuracy[code(p.arch)]),
                ceiling_accuracy: None,
                error: error(&out),
            });
            for &p in &PERCENTILES {
                let limits: Vec<f64> = devices.iter().map(|d| percentile_in(&d.table, p, plan.space)).collect();
                let ceiling = ceiling(devices, plan.tf, &limits, plan.space);
                let cfg = PoolConfig {
                    objective: PoolObjective::Constraint { max_latency_ms: limits.clone() },
                    ..base.clone()
                };
                let out = run_one(&cfg, &ctx, devices);
                let pick = out.pick.as_ref();
                let feasible = pick.is_some_and(|p| p.latency_ms.iter().zip(&limits).all(|(ms, l)| ms <= l));
                let t = pick.filter(|_| feasible).map_or(0.0, |p| p.tf);
                runs.push(PoolRun {
                    pool: name.clone(),
                    size: n,
                    strategy: strategy.name(),
                    budget_per_device: b,
                    probes: out.probes.len(),
                    percentile: Some(p),
                    fitness: t,
                    ratio: ceiling.map_or(0.0, |c| t / plan.tf[code(c)]),
                    feasible,
                    arch: pick.map(|p| p.arch.to_string()).unwrap_or_default(),
                    accuracy: pick.filter(|_| feasible).and_then(|p| plan.accuracy[code(p.arch)]),
                    ceiling_accuracy: ceiling.and_then(|c| plan.accuracy[code(c)]),
                    error: error(&out),
                });
            }
        }
    }
    runs
}

/// The best-TF cell within every limit (ties: the lower code).
fn ceiling(devices: &[&EvalDevice], tf: &[f64], limits: &[f64], space: Space) -> Option<Arch> {
    let mut best: Option<(f64, usize)> = None;
    for (c, &t) in tf.iter().enumerate().take(NUM_ARCHS) {
        if !space.contains_code(c) {
            continue;
        }
        let fits = devices.iter().zip(limits).all(|(d, &l)| d.table.values()[c].is_some_and(|ms| ms <= l));
        if fits && best.is_none_or(|(b, _)| t > b) {
            best = Some((t, c));
        }
    }
    best.and_then(|(_, c)| ArchCode::new(c as u16)).map(Arch::from_code)
}

/// Evaluate every pool, `threads` at a time; `done` is called after each pool.
pub fn evaluate_pools(
    devices: &[EvalDevice],
    pools: &[Vec<usize>],
    plan: &PoolPlan,
    threads: usize,
    done: &(dyn Fn(&str) + Sync),
) -> Vec<PoolRun> {
    let mut slots: Vec<Vec<PoolRun>> = vec![Vec::new(); pools.len()];
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(pool) = pools.get(i) else { break };
                let members: Vec<&EvalDevice> = pool.iter().filter_map(|&j| devices.get(j)).collect();
                let r = eval_pool(&members, plan);
                done(&members.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join("+"));
                if let Ok(mut g) = results.lock() {
                    g[i] = r;
                }
            });
        }
    });
    slots.into_iter().flatten().collect()
}

/// The mean of `f` over the runs that match.
fn mean(runs: &[PoolRun], keep: impl Fn(&PoolRun) -> bool, f: impl Fn(&PoolRun) -> f64) -> f64 {
    let v: Vec<f64> = runs.iter().filter(|r| keep(r)).map(f).collect();
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The weighted fraction of the pool oracle against the budget per device: one line per
/// (strategy, pool size), for [`crate::search::plot::fitness_vs_budget`].
pub fn budget_series(runs: &[PoolRun], plan: &PoolPlan) -> Vec<(String, Vec<(usize, f64)>)> {
    let mut sizes: Vec<usize> = runs.iter().map(|r| r.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut out = Vec::new();
    for &n in &sizes {
        for st in &plan.strategies {
            let pts = plan
                .budgets
                .iter()
                .map(|&b| {
                    let keep = |r: &PoolRun| {
                        r.size == n && r.budget_per_device == b && r.strategy == st.name() && r.percentile.is_none()
                    };
                    (b, mean(runs, keep, |r| r.ratio))
                })
                .collect();
            out.push((format!("{}, {n} devices", st.name()), pts));
        }
    }
    out
}

/// The markdown report: per pool size, budget and strategy, the weighted fraction of the
/// pool oracle (mean and worst pool), and constrained feasibility and accuracy against the
/// ceiling; then the probes the pool search saves.
pub fn markdown(runs: &[PoolRun], plan: &PoolPlan, header: &str) -> String {
    let mut s = String::from(header);
    let mut sizes: Vec<usize> = runs.iter().map(|r| r.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    for &n in &sizes {
        let pools: std::collections::BTreeSet<&str> =
            runs.iter().filter(|r| r.size == n).map(|r| r.pool.as_str()).collect();
        s += &format!("\n## Pools of {n} ({} pools)\n\n", pools.len());
        s += "Weighted (w = 0.5): fitness of the pick / fitness of the pool oracle, mean over pools (worst pool).\n\n";
        s += "| probes per device (total) |";
        for st in &plan.strategies {
            s += &format!(" {} |", st.name());
        }
        s += "\n|---:|";
        for _ in &plan.strategies {
            s += "---:|";
        }
        s += "\n";
        for &b in &plan.budgets {
            s += &format!("| {b} ({}) |", n * b);
            for st in &plan.strategies {
                let keep = |r: &PoolRun| {
                    r.size == n && r.budget_per_device == b && r.strategy == st.name() && r.percentile.is_none()
                };
                let m = mean(runs, keep, |r| r.ratio);
                let worst = runs.iter().filter(|r| keep(r)).map(|r| r.ratio).fold(f64::INFINITY, f64::min);
                s += &format!(" {m:.4} ({worst:.4}) |");
            }
            s += "\n";
        }
        s += "\nConstrained: limits at each device's own percentile; `feasible`: pick within every limit by measurement; `acc - ceiling`: mean accuracy (reporting only) of feasible picks minus that of the best-TF cell within every limit.\n\n";
        s += "| probes per device | strategy | p10 feasible | p10 acc - ceiling | p25 feasible | p25 acc - ceiling | p50 feasible | p50 acc - ceiling |\n|---:|---|---:|---:|---:|---:|---:|---:|\n";
        for &b in &plan.budgets {
            for st in &plan.strategies {
                s += &format!("| {b} | {} |", st.name());
                for &p in &PERCENTILES {
                    let keep = |r: &PoolRun| {
                        r.size == n && r.budget_per_device == b && r.strategy == st.name() && r.percentile == Some(p)
                    };
                    let feas = mean(runs, keep, |r| if r.feasible { 1.0 } else { 0.0 });
                    let gap = mean(
                        runs,
                        |r| keep(r) && r.feasible && r.accuracy.is_some() && r.ceiling_accuracy.is_some(),
                        |r| r.accuracy.unwrap_or(0.0) - r.ceiling_accuracy.unwrap_or(0.0),
                    );
                    s += &format!(" {:.1}% | {gap:+.2} |", 100.0 * feas);
                }
                s += "\n";
            }
        }
        // Probes saved: the smallest evaluated budget at which the pool search's weighted
        // mean reaches the independent searches' mean at each budget.
        let has = |st: PoolStrategy| plan.strategies.contains(&st);
        if has(PoolStrategy::Pool) && has(PoolStrategy::Independent) {
            s += "\nProbes saved (weighted): for each budget of the independent searches, the smallest evaluated budget at which the pool search's mean is at least theirs.\n\n| independent at (total) | its mean | pool reaches it at (total) | probes saved |\n|---:|---:|---:|---:|\n";
            let m = |st: PoolStrategy, b: usize| {
                mean(
                    runs,
                    |r| r.size == n && r.budget_per_device == b && r.strategy == st.name() && r.percentile.is_none(),
                    |r| r.ratio,
                )
            };
            for &b in &plan.budgets {
                let target = m(PoolStrategy::Independent, b);
                let reach = plan.budgets.iter().copied().filter(|&c| m(PoolStrategy::Pool, c) >= target).min();
                match reach {
                    Some(c) => {
                        s += &format!("| {} | {target:.4} | {} | {} |\n", n * b, n * c, (n * b) as i64 - (n * c) as i64)
                    }
                    None => s += &format!("| {} | {target:.4} | not within the budgets evaluated | - |\n", n * b),
                }
            }
        }
    }
    s
}
