//! The evaluation harness: every strategy on every table device, at several budgets and
//! seeds, in both objective forms. Evaluation may read whole tables; searches never do
//! (except the `oracle` reference).
//!
//! * **Weighted** (w = 0.5): the fitness of a cell is `F(h) = w * TF(h) + (1 - w) * (1 -
//!   (lat(h) - min) / (max - min))` with the TRUE min and max of the device's table; a run
//!   scores `F(pick) / F(oracle)`, where the oracle is the best cell of the table under `F`.
//!   A run without a pick scores 0.
//! * **Constrained**: limits at the 10th, 25th and 50th latency percentile of the device
//!   (nearest rank over its measured cells). Per run: whether the pick is feasible (by its
//!   measured latency, which for a table device is the truth), and the ground-truth
//!   CIFAR-10 test accuracy of the pick (reporting only; no strategy ever sees it). For
//!   comparison: the proxy's own ceiling (the best-TF cell that truly satisfies the limit).

pub mod pool;
pub mod report;

use super::strategies::{oracle_pick, space_range, Policy};
use super::{search, Context, Objective, SearchConfig, Space, Strategy};
use crate::device::table::TableDevice;
use crate::latency::LatencyTable;
use crate::synth::lut::Lut;
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// Latency percentiles of the constrained form.
pub const PERCENTILES: [f64; 3] = [0.10, 0.25, 0.50];

/// A device under evaluation.
pub struct EvalDevice {
    /// Registry name.
    pub name: String,
    /// The headline device of its family.
    pub primary: bool,
    /// Its whole table.
    pub table: LatencyTable,
}

/// What to run.
pub struct EvalPlan<'a> {
    /// Strategies, in report order.
    pub strategies: Vec<Strategy>,
    /// Probe budgets.
    pub budgets: Vec<usize>,
    /// Seeds `0..seeds`.
    pub seeds: u64,
    /// `w` of the weighted form.
    pub weight: f64,
    /// `TF` per code.
    pub tf: &'a [f64],
    /// CIFAR-10 test accuracy per code (reporting only).
    pub accuracy: &'a [Option<f64>],
    /// The training devices' mean LUT (`lut-prior`).
    pub prior: Option<&'a Lut>,
    /// The paper's controller (when a policy is given).
    pub policy: Option<&'a (dyn Policy + Sync)>,
    /// The calibrated controller's prior.
    pub calib: Option<&'a edge_runtime::calib::Prior>,
    /// The search space (the oracle and the fitness range are taken over it too).
    pub space: Space,
}

/// One weighted run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WeightedRun {
    /// Device name.
    pub device: String,
    /// Strategy name.
    pub strategy: &'static str,
    /// Budget.
    pub budget: usize,
    /// Seed.
    pub seed: u64,
    /// Probes spent.
    pub probes: usize,
    /// `F(pick)` (0 without a pick).
    pub fitness: f64,
    /// `F(pick) / F(oracle)`.
    pub ratio: f64,
    /// The pick.
    pub arch: String,
    /// Its measured latency.
    pub latency_ms: f64,
    /// Its TF.
    pub tf: f64,
    /// Its CIFAR-10 test accuracy (reporting only; `None` without benchmark data).
    pub accuracy: Option<f64>,
    /// The pick has an edge that cannot reach the output.
    pub dead_branch: bool,
    /// Probes that measured an executed network an earlier probe had measured.
    pub repeated: usize,
    /// The search's error, if any.
    pub error: String,
}

/// One constrained run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConstrainedRun {
    /// Device name.
    pub device: String,
    /// Strategy name.
    pub strategy: &'static str,
    /// Budget.
    pub budget: usize,
    /// Seed.
    pub seed: u64,
    /// Percentile of the limit.
    pub percentile: f64,
    /// The limit, ms.
    pub limit_ms: f64,
    /// Probes spent.
    pub probes: usize,
    /// A pick exists and its measured latency is within the limit.
    pub feasible: bool,
    /// The pick (empty without one).
    pub arch: String,
    /// Its measured latency.
    pub latency_ms: Option<f64>,
    /// Its TF.
    pub tf: Option<f64>,
    /// Its CIFAR-10 test accuracy.
    pub accuracy: Option<f64>,
    /// The proxy's ceiling: best-TF feasible cell.
    pub ceiling_arch: String,
    /// Its TF.
    pub ceiling_tf: f64,
    /// Its accuracy.
    pub ceiling_accuracy: Option<f64>,
    /// The search's error, if any.
    pub error: String,
}

/// Everything an evaluation produced.
#[derive(Default)]
pub struct EvalResults {
    /// Device names in order, with the primary flag.
    pub devices: Vec<(String, bool)>,
    /// Per device (same order), the search rule's cap ([`rule_cap`]).
    pub caps: Vec<f64>,
    /// Per device (same order), where its latency range comes from ([`RangeStats`]).
    pub ranges: Vec<RangeStats>,
    /// Weighted runs.
    pub weighted: Vec<WeightedRun>,
    /// Constrained runs.
    pub constrained: Vec<ConstrainedRun>,
}

/// The latency at percentile `p` (nearest rank) of the measured cells.
pub fn percentile(table: &LatencyTable, p: f64) -> f64 {
    percentile_in(table, p, Space::Raw)
}

/// The latency at percentile `p` (nearest rank) of the measured candidates of `space`.
pub fn percentile_in(table: &LatencyTable, p: f64, space: Space) -> f64 {
    let mut v: Vec<f64> = in_space(table, space).flatten().collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// The table's value per code, `None` for codes outside `space`.
fn in_space(table: &LatencyTable, space: Space) -> impl Iterator<Item = Option<f64>> + '_ {
    table.values().iter().enumerate().map(move |(c, v)| if space.contains_code(c) { *v } else { None })
}

/// `F(h)` per code with the true latency range of the table's candidates of `space`
/// (`None` where not measured or not a candidate).
pub fn true_fitness(table: &LatencyTable, tf: &[f64], weight: f64, space: Space) -> Vec<Option<f64>> {
    let vals: Vec<Option<f64>> = in_space(table, space).collect();
    let (lo, hi) = space_range(table.values(), space);
    vals.iter()
        .enumerate()
        .map(|(c, v)| {
            v.map(|ms| {
                let l = if hi > lo { (ms - lo) / (hi - lo) } else { 0.0 };
                super::weighted(weight, tf[c], l)
            })
        })
        .collect()
}

/// What the search's own scoring rule reaches with perfect latency knowledge: the true
/// fitness of the best cell under `w TF + (1 - w) (1 - (lat - lat(lo)) / (lat(hi) -
/// lat(lo)))`, as a fraction of the oracle's. Below 1 where the reference cells misjudge
/// the device's true latency range (e.g. a few extreme outliers stretch the max); no search
/// that scores cells by that rule can do better on that device.
pub fn rule_cap(table: &LatencyTable, tf: &[f64], weight: f64, space: Space) -> f64 {
    let fit = true_fitness(table, tf, weight, space);
    let best = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let probes: Vec<super::Measured> = [super::LO, super::HI]
        .iter()
        .enumerate()
        .filter_map(|(i, &a)| Some(super::Measured { step: i + 1, arch: a, latency_ms: table.get(a)? }))
        .collect();
    let Some(norm) = super::Normaliser::of(&probes) else { return f64::NAN };
    let mut arg: Option<(f64, usize)> = None;
    for (c, v) in in_space(table, space).enumerate() {
        let Some(ms) = v else { continue };
        let s = super::weighted(weight, tf[c], norm.linear(ms));
        if arg.is_none_or(|(b, _)| s > b) {
            arg = Some((s, c));
        }
    }
    arg.and_then(|(_, c)| fit[c]).map_or(f64::NAN, |f| f / best)
}

/// Where a device's true latency range (which normalises the oracle's fitness) comes from,
/// as multiples of other ranges. A search measures the reference cells and, in 10 probes,
/// almost never the device's few most outlying cells: where `model` is well above 1, cells
/// far outside anything the device's own per-op model predicts set the range, and no
/// estimate built from a few probes can know it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RangeStats {
    /// `(max - min) / (lat(all-conv3x3) - lat(all-skip))`.
    pub reference: f64,
    /// `(max - min)` over the range the calibrated controller's latency model spans when
    /// fitted to the whole table (least squares): the best that model could know.
    pub model: f64,
}

impl RangeStats {
    /// The ratios of `table` (NaN where a reference cell is missing or a range is empty).
    pub fn of(table: &LatencyTable) -> RangeStats {
        let (lo, hi) = (percentile(table, 0.0), percentile(table, 1.0));
        let Some(r) = table.get(super::HI).zip(table.get(super::LO)).map(|(b, a)| b - a).filter(|&r| r > 0.0) else {
            return RangeStats { reference: f64::NAN, model: f64::NAN };
        };
        let model = super::strategies::controller::normalised_fit(table).map_or(f64::NAN, |coefs| {
            let mut theta = [0.0; edge_runtime::calib::FEATURES];
            theta[1..].copy_from_slice(&coefs);
            let (a, b) = edge_runtime::calib::predicted_range(&theta);
            (hi - lo) / (r * (b - a))
        });
        RangeStats { reference: (hi - lo) / r, model }
    }
}

fn code(a: Arch) -> usize {
    a.code().get() as usize
}

/// Probes whose executed network an earlier probe of the run already measured.
pub fn repeats_executed(probes: &[super::Measured]) -> usize {
    let mut seen = std::collections::HashSet::new();
    probes.iter().filter(|p| !seen.insert(p.arch.executed())).count()
}

/// Evaluate one device (all strategies, budgets, seeds, both forms).
pub fn eval_device(dev: &EvalDevice, plan: &EvalPlan) -> (Vec<WeightedRun>, Vec<ConstrainedRun>) {
    let fit = true_fitness(&dev.table, plan.tf, plan.weight, plan.space);
    let best = fit.iter().flatten().copied().fold(f64::NEG_INFINITY, f64::max);
    let limits: Vec<(f64, f64)> = PERCENTILES.iter().map(|&p| (p, percentile_in(&dev.table, p, plan.space))).collect();
    let ceilings: Vec<Option<Arch>> = limits
        .iter()
        .map(|&(_, x)| {
            oracle_pick(&Objective::Constraint { max_latency_ms: x }, plan.tf, dev.table.values(), plan.space)
        })
        .collect();
    let (mut weighted, mut constrained) = (Vec::new(), Vec::new());
    let policy = plan.policy.map(|p| p as &dyn Policy);
    let ctx = Context { tf: plan.tf, prior: plan.prior, table: Some(&dev.table), policy, calib: plan.calib };
    for &strategy in &plan.strategies {
        for &budget in &plan.budgets {
            for seed in 0..plan.seeds {
                let mut device = TableDevice::new(dev.table.clone());
                let cfg = SearchConfig {
                    strategy,
                    budget,
                    objective: Objective::Weighted { weight: plan.weight },
                    seed,
                    space: plan.space,
                };
                let out = search(&cfg, &ctx, &mut device, &mut |_| {});
                let f = out.pick.map_or(0.0, |p| fit[code(p.arch)].unwrap_or(0.0));
                weighted.push(WeightedRun {
                    device: dev.name.clone(),
                    strategy: strategy.name(),
                    budget,
                    seed,
                    probes: out.probes.len(),
                    fitness: f,
                    ratio: if best > 0.0 { f / best } else { 0.0 },
                    arch: out.pick.map(|p| p.arch.to_string()).unwrap_or_default(),
                    latency_ms: out.pick.map_or(f64::NAN, |p| p.latency_ms),
                    tf: out.pick.map_or(f64::NAN, |p| p.tf),
                    accuracy: out.pick.and_then(|p| plan.accuracy[code(p.arch)]),
                    dead_branch: out.pick.is_some_and(|p| !p.arch.is_executed()),
                    repeated: repeats_executed(&out.probes),
                    error: out.error.map(|e| e.message()).unwrap_or_default(),
                });
                for (k, &(p, x)) in limits.iter().enumerate() {
                    let mut device = TableDevice::new(dev.table.clone());
                    let cfg = SearchConfig { objective: Objective::Constraint { max_latency_ms: x }, ..cfg };
                    let out = search(&cfg, &ctx, &mut device, &mut |_| {});
                    let ceiling = ceilings[k];
                    constrained.push(ConstrainedRun {
                        device: dev.name.clone(),
                        strategy: strategy.name(),
                        budget,
                        seed,
                        percentile: p,
                        limit_ms: x,
                        probes: out.probes.len(),
                        feasible: out.pick.is_some_and(|p| p.latency_ms <= x),
                        arch: out.pick.map(|p| p.arch.to_string()).unwrap_or_default(),
                        latency_ms: out.pick.map(|p| p.latency_ms),
                        tf: out.pick.map(|p| p.tf),
                        accuracy: out.pick.and_then(|p| plan.accuracy[code(p.arch)]),
                        ceiling_arch: ceiling.map(|a| a.to_string()).unwrap_or_default(),
                        ceiling_tf: ceiling.map_or(f64::NAN, |a| plan.tf[code(a)]),
                        ceiling_accuracy: ceiling.and_then(|a| plan.accuracy[code(a)]),
                        error: out.error.map(|e| e.message()).unwrap_or_default(),
                    });
                }
            }
        }
    }
    (weighted, constrained)
}

/// Evaluate every device, `threads` at a time; `done` is called after each device.
pub fn evaluate(devices: &[EvalDevice], plan: &EvalPlan, threads: usize, done: &(dyn Fn(&str) + Sync)) -> EvalResults {
    let mut slots: Vec<Option<(Vec<WeightedRun>, Vec<ConstrainedRun>)>> = (0..devices.len()).map(|_| None).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(&mut slots);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(dev) = devices.get(i) else { break };
                let r = eval_device(dev, plan);
                done(&dev.name);
                if let Ok(mut g) = results.lock() {
                    g[i] = Some(r);
                }
            });
        }
    });
    let mut out = EvalResults {
        devices: devices.iter().map(|d| (d.name.clone(), d.primary)).collect(),
        caps: devices.iter().map(|d| rule_cap(&d.table, plan.tf, plan.weight, plan.space)).collect(),
        ranges: devices.iter().map(|d| RangeStats::of(&d.table)).collect(),
        ..Default::default()
    };
    for (w, c) in slots.into_iter().flatten() {
        out.weighted.extend(w);
        out.constrained.extend(c);
    }
    out
}

/// Why `nb201_accuracy.csv` could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccuracyError {
    /// The file could not be opened or its header read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: csv::Error,
    },
    /// A column the reader needs is missing.
    #[error("{path}: no column {column}")]
    NoColumn {
        /// The file.
        path: std::path::PathBuf,
        /// The column.
        column: &'static str,
    },
    /// A record could not be read.
    #[error("{path}, line {line}: {source}")]
    Record {
        /// The file.
        path: std::path::PathBuf,
        /// Its line (the header is line 1).
        line: usize,
        /// Why.
        source: csv::Error,
    },
    /// A record's index is not a benchmark index.
    #[error("{path}, line {line}: bad index")]
    BadIndex {
        /// The file.
        path: std::path::PathBuf,
        /// Its line (the header is line 1).
        line: usize,
    },
}

/// CIFAR-10 test accuracy per code from `nb201_accuracy.csv` (`index` keyed).
pub fn load_accuracy(path: &std::path::Path, map: &crate::data::NatsMap) -> Result<Vec<Option<f64>>, AccuracyError> {
    let read = |source| AccuracyError::Read { path: path.to_path_buf(), source };
    let mut rdr = csv::Reader::from_path(path).map_err(read)?;
    let headers = rdr.headers().map_err(read)?.clone();
    let col = |column: &'static str| {
        headers
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| AccuracyError::NoColumn { path: path.to_path_buf(), column })
    };
    let (ci, ca) = (col("index")?, col("cifar10_test")?);
    let mut acc = vec![None; NUM_ARCHS];
    for (row, rec) in rdr.records().enumerate() {
        let line = row + 2;
        let rec = rec.map_err(|source| AccuracyError::Record { path: path.to_path_buf(), line, source })?;
        let idx = rec
            .get(ci)
            .and_then(|s| s.trim().parse::<u16>().ok())
            .and_then(simnas_shared::NatsIndex::new)
            .ok_or_else(|| AccuracyError::BadIndex { path: path.to_path_buf(), line })?;
        let v = rec.get(ca).and_then(|s| s.trim().parse::<f64>().ok()).filter(|v| v.is_finite());
        acc[code(map.arch(idx))] = v;
    }
    Ok(acc)
}

/// Under the limits at [`PERCENTILES`] of `table` (over the executed space): the accuracy of
/// the proxy's ceiling (the best-TF candidate that truly fits, ties to the faster) and of
/// the most accurate candidate that fits, per percentile; `accuracy` per code. `None` where
/// nothing fits or an accuracy is missing.
pub fn proxy_ceiling(table: &LatencyTable, tf: &[f64], accuracy: &[Option<f64>]) -> [Option<(f64, f64)>; 3] {
    std::array::from_fn(|k| {
        let limit = percentile_in(table, PERCENTILES[k], Space::Executed);
        let objective = Objective::Constraint { max_latency_ms: limit };
        let ceiling = oracle_pick(&objective, tf, table.values(), Space::Executed)?;
        let best = in_space(table, Space::Executed)
            .enumerate()
            .filter(|(_, v)| v.is_some_and(|ms| ms <= limit))
            .filter_map(|(c, _)| accuracy[c])
            .fold(f64::NEG_INFINITY, f64::max);
        Some((accuracy[code(ceiling)]?, best)).filter(|_| best.is_finite())
    })
}

/// TF per code from any `tf(&Arch)` source.
pub fn tf_vector(tf: impl Fn(&Arch) -> f64) -> Vec<f64> {
    ArchCode::all().map(|c| tf(&Arch::from_code(c))).collect()
}
