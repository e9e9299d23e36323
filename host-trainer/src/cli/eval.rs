//! `simnas eval`: every strategy on every table device, at several budgets and seeds;
//! markdown report, per-run CSVs and plots (see `host_trainer::search::eval`).

use super::artifacts::{load_calib, load_policy, load_prior, load_scores, locate, SearchInputs, SHIPPED_POLICY};
use anyhow::{bail, Context as _, Result};
use clap::Args;
use host_trainer::data::{data_dir, NatsMap};
use host_trainer::device::table::TableDevice;
use host_trainer::device::DeviceSpec;
use host_trainer::latency::registry::{self, Split};
use host_trainer::latency::{InvalidPolicy, LatencyTable};
use host_trainer::search::eval::pool::{self, PoolPlan};
use host_trainer::search::eval::{evaluate, load_accuracy, report, EvalDevice, EvalPlan};
use host_trainer::search::plot::{trajectories, Trajectory};
use host_trainer::search::pool::PoolStrategy;
use host_trainer::search::strategies::Policy;
use host_trainer::search::{search, Context, Objective, SearchConfig, Space, Strategy};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The files `eval` writes into --out.
const OUTPUTS: [&str; 5] =
    ["report.md", "weighted.csv", "constrained.csv", "fitness_vs_budget.svg", "trajectories.svg"];

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Devices, comma-separated: registry names (`simnas devices fit` lists them, e.g.
    /// `hw-c10-pixel3`) or `table:PATH#COLUMN` specs [default: the validation split].
    #[arg(long, value_delimiter = ',')]
    devices: Vec<String>,
    /// Probe budgets.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
    budgets: Vec<usize>,
    /// Seeds per (device, strategy, budget): 0..N.
    #[arg(long, default_value_t = 10)]
    seeds: u64,
    /// Strategies [default: every baseline and the oracle, and the controller when a policy
    /// is given or shipped].
    #[arg(long, value_enum, value_delimiter = ',')]
    strategies: Vec<Strategy>,
    /// The controller's policy file (safetensors) [default: the shipped one, if present].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Weight of the proxy in the weighted objective.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true, value_parser = super::unit_weight)]
    weight: f64,
    /// Output directory (report.md, weighted.csv, constrained.csv, SVG plots).
    /// The shipped report is regenerated only by passing `--out artifacts/eval`.
    #[arg(long, default_value = "simnas-out/eval")]
    out: PathBuf,
    /// Strategy whose trajectories are drawn (Figure 6) [default: controller with a
    /// policy, else lut-probe].
    #[arg(long, value_enum)]
    trajectory: Option<Strategy>,
    /// Worker threads [default: every core].
    #[arg(long)]
    jobs: Option<usize>,
    /// Evaluate pools of devices instead (multi-device search): the sizes, e.g. `2,3`. Every
    /// pool of that many --devices [default: the validation split's primary devices] from
    /// different families; `pool` against `independent`, --budgets per device. Writes
    /// report.md, pools.csv and fitness_vs_budget.svg (x: probes per device).
    #[arg(long, value_delimiter = ',', value_name = "SIZES")]
    pools: Vec<usize>,
    /// With --pools: search each pool with the calibrated prior refitted on the training
    /// devices of the families not in the pool (the honest test when the pools are made of
    /// training devices).
    #[arg(long, requires = "pools")]
    leave_pool_families_out: bool,
    #[command(flatten)]
    inputs: SearchInputs,
}

/// The files `eval --pools` writes into --out.
const POOL_OUTPUTS: [&str; 3] = ["report.md", "pools.csv", "fitness_vs_budget.svg"];

pub fn run(data: &Option<PathBuf>, args: EvalArgs) -> Result<ExitCode> {
    if args.budgets.is_empty() || args.budgets.contains(&0) {
        bail!("--budgets: every budget must be at least 1");
    }
    if args.seeds == 0 {
        bail!("--seeds must be at least 1");
    }
    if !args.pools.is_empty() {
        return run_pools(data, &args);
    }
    host_trainer::output::prepare_dir(&args.out, &OUTPUTS)?;
    // controller-paper joins when asked for, given a policy, or when the shipped one exists;
    // the controller when asked for or when its prior exists.
    let shipped = locate(std::path::Path::new(SHIPPED_POLICY)).exists();
    let with_paper = args.strategies.contains(&Strategy::ControllerPaper)
        || (args.strategies.is_empty() && (args.policy.is_some() || shipped));
    let controller = if with_paper { Some(load_policy(args.policy.as_deref())?) } else { None };
    let with_calib = args.strategies.contains(&Strategy::Controller)
        || (args.strategies.is_empty() && locate(&args.inputs.controller_prior).exists());
    let calib = if with_calib { Some(load_calib(&args.inputs.controller_prior)?) } else { None };
    let dir = data_dir(data.as_deref())?;
    let nats = NatsMap::load(&dir)?;
    let space = Space::from(args.inputs.space);
    let scores = args.inputs.scores_for(super::Preset::Cifar10);
    let (tf, _) = load_scores(&scores, space, args.inputs.proxy)?;
    let prior = load_prior(&args.inputs.prior)?;
    let accuracy = load_accuracy(&dir.join("nb201_accuracy.csv"), &nats)?;

    let devices = eval_devices(&args.devices, &dir, &nats, false)?;
    let strategies = if args.strategies.is_empty() {
        calib
            .iter()
            .map(|_| Strategy::Controller)
            .chain(controller.iter().map(|_| Strategy::ControllerPaper))
            .chain(Strategy::BASELINES)
            .collect()
    } else {
        args.strategies.clone()
    };
    // Every (strategy, budget) is checked before the first search.
    for s in &strategies {
        for &budget in &args.budgets {
            let objective = Objective::Weighted { weight: args.weight };
            SearchConfig { strategy: *s, budget, objective, seed: 0, space }.validate()?;
        }
    }
    let plan = EvalPlan {
        strategies: strategies.clone(),
        budgets: args.budgets.clone(),
        seeds: args.seeds,
        weight: args.weight,
        tf: &tf,
        accuracy: &accuracy,
        prior: Some(&prior),
        policy: controller.as_ref().map(|c| c as &(dyn Policy + Sync)),
        calib: calib.as_ref(),
        space,
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = indicatif::ProgressBar::new(devices.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} devices {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let results = evaluate(&devices, &plan, jobs, &|name| {
        bar.set_message(name.to_string());
        bar.inc(1);
    });
    bar.finish_and_clear();

    let header = format!(
        "# Search evaluation\n\nProduced by:\n\n```sh\n{}\n```\n\n* devices: {} ({} primary)\n* strategies: {}\n* budgets: {:?}; seeds 0..{}; w = {}\n* proxy: {}\n* lut-prior: mean per-op LUT of the training devices in {}\n* accuracy: `nb201_accuracy.csv` column `cifar10_test` (reporting only)\n",
        super::devices::command_line(),
        devices.len(),
        devices.iter().filter(|d| d.primary).count(),
        strategies.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
        args.budgets,
        args.seeds,
        args.weight,
        locate(&scores).display(),
        locate(&args.inputs.prior).display(),
    );
    report::write_all(&results, &header, &args.out)?;

    figure6(&args, &devices, &plan)?;

    outln!("{}", std::fs::read_to_string(args.out.join("report.md")).unwrap_or_default());
    outln!(
        "wrote {}/{{report.md, weighted.csv, constrained.csv, fitness_vs_budget.svg, trajectories.svg}}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The devices `--devices` names (registry devices or `table:PATH#COLUMN`), else the
/// validation split, with their whole tables; a training device is warned about unless
/// `refit` (its prior is refitted without its family).
fn eval_devices(names: &[String], dir: &Path, nats: &NatsMap, refit: bool) -> Result<Vec<EvalDevice>> {
    let names: Vec<String> = if names.is_empty() {
        registry::split(Split::Validation).map(|d| d.name.to_string()).collect()
    } else {
        names.to_vec()
    };
    let mut devices = Vec::new();
    for name in &names {
        let (table, primary) = if let Some(d) = registry::by_name(name) {
            if d.split == Split::Train && !refit {
                eprintln!("warning: {name} is a training device (lut-prior and both controllers were fitted on it)");
            }
            (LatencyTable::load(&d.path(dir), d.column, Some(nats), InvalidPolicy::Reject), d.primary)
        } else {
            match name.parse::<DeviceSpec>() {
                Ok(DeviceSpec::Table { path, column }) => {
                    (TableDevice::open(&path, &column, Some(nats)).map(|t| t.table().clone()), false)
                }
                _ => bail!("--devices: {name:?} is neither a registry device nor table:PATH#COLUMN"),
            }
        };
        devices.push(EvalDevice {
            name: name.clone(),
            primary,
            table: table.with_context(|| format!("device {name}"))?,
        });
    }
    Ok(devices)
}

/// Figure 6: one strategy's trajectories on several devices (the primary ones, else the
/// first six), the same seed, at budget 10 when it is evaluated.
fn figure6(args: &EvalArgs, devices: &[EvalDevice], plan: &EvalPlan<'_>) -> Result<()> {
    let (tf, space) = (plan.tf, plan.space);
    let traj = args.trajectory.unwrap_or(if plan.calib.is_some() { Strategy::Controller } else { Strategy::LutProbe });
    let budget = if args.budgets.contains(&10) { 10 } else { args.budgets[0] };
    let shown: Vec<&EvalDevice> = {
        let p: Vec<&EvalDevice> = devices.iter().filter(|d| d.primary).collect();
        if p.is_empty() {
            devices.iter().take(6).collect()
        } else {
            p
        }
    };
    let mut runs = Vec::new();
    for d in &shown {
        let policy = plan.policy.map(|c| c as &dyn Policy);
        let ctx = Context { tf, prior: plan.prior, table: Some(&d.table), policy, calib: plan.calib };
        let cfg = SearchConfig {
            strategy: traj,
            budget,
            objective: Objective::Weighted { weight: args.weight },
            seed: 0,
            space,
        };
        let out = search(&cfg, &ctx, &mut TableDevice::new(d.table.clone()), &mut |_| {});
        runs.push((d.name.clone(), out));
    }
    let series: Vec<Trajectory> =
        runs.iter().map(|(n, o)| Trajectory { label: n.clone(), probes: &o.probes, pick: o.pick }).collect();
    let svg = args.out.join("trajectories.svg");
    trajectories(
        &series,
        &|a| tf[a.code().get() as usize],
        &format!("{} trajectories, {budget} probes, seed 0", traj.name()),
        &svg,
    )?;
    Ok(())
}

/// `eval --pools`: the multi-device search against independent searches on pools of table
/// devices from different families.
fn run_pools(data: &Option<PathBuf>, args: &EvalArgs) -> Result<ExitCode> {
    if args.pools.iter().any(|&n| n < 2) {
        bail!("--pools: a pool has at least 2 devices");
    }
    if !args.strategies.is_empty() || args.policy.is_some() || args.trajectory.is_some() {
        bail!("--pools compares the pool search with independent searches: --strategies, --policy and --trajectory do not apply");
    }
    host_trainer::output::prepare_dir(&args.out, &POOL_OUTPUTS)?;
    let calib = load_calib(&args.inputs.controller_prior)?;
    let dir = data_dir(data.as_deref())?;
    let nats = NatsMap::load(&dir)?;
    let space = Space::from(args.inputs.space);
    let scores = args.inputs.scores_for(super::Preset::Cifar10);
    let (tf, _) = load_scores(&scores, space, args.inputs.proxy)?;
    let accuracy = load_accuracy(&dir.join("nb201_accuracy.csv"), &nats)?;
    let names: Vec<String> = if args.devices.is_empty() {
        registry::split(Split::Validation).filter(|d| d.primary).map(|d| d.name.to_string()).collect()
    } else {
        args.devices.clone()
    };
    let devices = eval_devices(&names, &dir, &nats, args.leave_pool_families_out)?;
    let family = |i: usize| pool::family(&devices[i].name).to_string();
    let mut pools = Vec::new();
    for &n in &args.pools {
        let of_n = pool::pools(devices.len(), n, family);
        if of_n.is_empty() {
            bail!("--pools {n}: the {} devices do not hold {n} from different families", devices.len());
        }
        pools.extend(of_n);
    }
    let train: Vec<(String, LatencyTable)> = if args.leave_pool_families_out {
        let mut v = Vec::new();
        for d in registry::split(Split::Train) {
            let t = LatencyTable::load(&d.path(&dir), d.column, Some(&nats), InvalidPolicy::Skip)
                .with_context(|| format!("device {}", d.name))?;
            v.push((d.name.to_string(), t));
        }
        v
    } else {
        Vec::new()
    };
    let plan = PoolPlan {
        refit_on: args.leave_pool_families_out.then_some(&train[..]),
        strategies: vec![PoolStrategy::Pool, PoolStrategy::Independent],
        budgets: args.budgets.clone(),
        weight: args.weight,
        tf: &tf,
        accuracy: &accuracy,
        calib: &calib,
        space,
    };
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = indicatif::ProgressBar::new(pools.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} pools {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let runs = pool::evaluate_pools(&devices, &pools, &plan, jobs, &|name| {
        bar.set_message(name.to_string());
        bar.inc(1);
    });
    bar.finish_and_clear();
    let header = format!(
        "# Multi-device search evaluation\n\nProduced by:\n\n```sh\n{}\n```\n\n* devices: {}\n* pools: every pool of {:?} devices from different families ({} pools)\n* strategies: pool (one decision over the pool), independent (each device alone with an equal share, then every pick measured on every device)\n* budgets per device: {:?} (a pool of n devices spends n times that in total)\n* proxy: {}; w = {}\n* calibrated prior: {}\n* accuracy: `nb201_accuracy.csv` column `cifar10_test` (reporting only)\n",
        super::devices::command_line(),
        names.join(", "),
        args.pools,
        pools.len(),
        args.budgets,
        locate(&scores).display(),
        args.weight,
        locate(&args.inputs.controller_prior).display(),
    );
    let md = pool::markdown(&runs, &plan, &header);
    host_trainer::output::write(&args.out.join("report.md"), md.as_bytes())?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    for r in &runs {
        csv.serialize(r)?;
    }
    let bytes = csv.into_inner().map_err(|e| anyhow::anyhow!("pools.csv: {e}"))?;
    host_trainer::output::write(&args.out.join("pools.csv"), &bytes)?;
    let series = pool::budget_series(&runs, &plan);
    host_trainer::search::plot::fitness_vs_budget(
        &series,
        &format!("pool vs independent, weighted (w = {}), mean over pools; x: probes per device", args.weight),
        &args.out.join("fitness_vs_budget.svg"),
    )?;
    outln!("{md}");
    outln!("wrote {}/{{report.md, pools.csv, fitness_vs_budget.svg}}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
