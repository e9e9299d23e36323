//! `simnas prior`: meta-fit the calibrated controller on the training devices.

use super::artifacts::{load_scores, SHIPPED_SCORES};
use anyhow::{anyhow, Context, Result};
use clap::Args;
use host_trainer::data::{data_dir, NatsMap};
use host_trainer::latency::registry::Split;
use host_trainer::output;
use host_trainer::search::strategies::controller::{
    by_budget, fit_prior, per_device, prior_of_fits, select, select_constrained, select_explore, synthetic_fits,
    with_synthetic_priors, MetaDevices, PriorFile, PriorOf, TrainDevice, SELECT_BUDGET,
};
use host_trainer::synth::{load_devices, DeviceDistribution, DeviceDistributionExt as _, SynthPreset};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct PriorArgs {
    /// Where to write the prior (JSON).
    /// The shipped prior is regenerated only by passing `--out artifacts/controller/prior.json`.
    #[arg(long, value_name = "FILE", default_value = "simnas-out/controller/prior.json")]
    out: PathBuf,
    /// Score table the selection searches with (CSV from `simnas score --all`, or its
    /// quantised `.tf16`). The prior is selected over the executed networks.
    #[arg(long, value_name = "FILE", default_value = SHIPPED_SCORES)]
    scores: PathBuf,
    #[command(flatten)]
    proxy: super::artifacts::ProxyArgs,
    /// What the prior is meta-fitted on: `real` (default: each training device's own table
    /// is one sample) or `synthetic` (devices of `--synth` drawn around the training
    /// devices' runtimes; in the leave-one-family-out selection, drawn without the held-out
    /// family). Either way the choices are selected on the real training devices.
    #[arg(long, value_enum, default_value_t = MetaDevices::Real)]
    meta_devices: MetaDevices,
    /// Synthetic-device preset for `--meta-devices synthetic`.
    #[arg(long, value_enum, default_value_t = SynthPreset::Runtime)]
    synth: SynthPreset,
    /// Synthetic devices per prior for `--meta-devices synthetic`.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u64).range(2..=100_000))]
    draws: u64,
    /// Seed of the synthetic draws.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The synthetic-device distribution the draws come from.
    #[arg(long, value_name = "FILE", default_value = "artifacts/devices/distribution.json")]
    distribution: PathBuf,
}

pub fn run(data: &Option<PathBuf>, args: PriorArgs) -> Result<ExitCode> {
    output::prepare(&args.out)?;
    let dir = data_dir(data.as_deref())?;
    let map = NatsMap::load(&dir)?;
    let (tf, _) = load_scores(&args.scores, host_trainer::search::Space::Executed, args.proxy)?;
    let all = load_devices(&dir, &map)?;
    let train: Vec<_> = all.iter().filter(|(d, _)| d.split == Split::Train).collect();
    let mut devices: Vec<TrainDevice> = train.iter().map(|(d, t)| TrainDevice::new(d.name, d.family, t)).collect();
    let dist = match args.meta_devices {
        MetaDevices::Real => None,
        MetaDevices::Synthetic => {
            let path = super::artifacts::locate(&args.distribution);
            let dist = DeviceDistribution::load(&path).with_context(|| {
                format!("device distribution {} (make one with `simnas devices fit`)", path.display())
            })?;
            outln!(
                "meta-fitting on {} synthetic devices ({}) per prior, seed {}",
                args.draws,
                preset_name(args.synth),
                args.seed
            );
            with_synthetic_priors(&mut devices, &dist, args.synth, args.draws as usize, args.seed);
            Some(dist)
        }
    };
    outln!(
        "selecting noise and range factor on {} training devices (leave one family out, {SELECT_BUDGET} probes)",
        devices.len()
    );
    let (grid, best) = select(&devices, &tf).ok_or_else(|| anyhow!("too few usable training tables"))?;
    outln!("{:>5} {:>10} {:>6} {:>6} {:>8} {:>8}", "dead", "rule", "noise", "factor", "mean", "worst");
    for (i, g) in grid.iter().enumerate() {
        let mark = if i == best { "  <- chosen" } else { "" };
        let rule = format!("{:?}", g.range_rule).to_lowercase();
        let dead = if g.dead_edge_probe { "yes" } else { "no" };
        outln!("{dead:>5} {rule:>10} {:>6} {:>6} {:>8.4} {:>8.4}{mark}", g.noise, g.range_factor, g.mean, g.worst);
    }
    let g = grid[best];
    outln!("constrained objective (limits at each device's p10/p25/p50 latency): TF of the pick / TF ceiling");
    let cgrid = select_constrained(&devices, &tf, &g).ok_or_else(|| anyhow!("too few usable training tables"))?;
    let cbest = if cgrid[1].mean > cgrid[0].mean { 1 } else { 0 };
    for (i, c) in cgrid.iter().enumerate() {
        let mark = if i == cbest { "  <- chosen" } else { "" };
        let dead = if c.dead_edge_probe { "yes" } else { "no" };
        outln!("{dead:>5} {:>8.4} feasible {:>6.1}%{mark}", c.mean, 100.0 * c.feasible);
    }
    outln!("optimism of the weighted search (latency ranked this many posterior sd below the mean)");
    let egrid = select_explore(&devices, &tf, &g).ok_or_else(|| anyhow!("too few usable training tables"))?;
    let mut ebest = 0;
    for (i, e) in egrid.iter().enumerate() {
        if e.mean > egrid[ebest].mean {
            ebest = i;
        }
    }
    for (i, e) in egrid.iter().enumerate() {
        let mark = if i == ebest { "  <- chosen" } else { "" };
        outln!("{:>5} {:>8.4} {:>8.4}{mark}", e.explore, e.mean, e.worst);
    }
    let explore = egrid[ebest].explore;
    let per = |of: PriorOf| {
        per_device(&devices, &tf, &g, of, |p| p.explore = explore).ok_or_else(|| anyhow!("a training table has no fit"))
    };
    let (per, own) = (per(PriorOf::OtherFamilies)?, per(PriorOf::OwnFit)?);
    outln!("chosen setting, per training device: F(pick) / F(oracle) with the leave-one-family-out prior,");
    outln!("and with the device's own whole-table fit as the prior (the best a prior could be):");
    for ((d, r), o) in devices.iter().zip(&per).zip(&own) {
        outln!("  {:<28} {r:.4} {o:.4}", d.name);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    outln!("  {:<28} {:.4} {:.4}", "mean", mean(&per), mean(&own));
    outln!("the chosen setting against the LUT baselines, leave one family out (w = 0.5): F(pick) / F(oracle)");
    let rows = by_budget(&devices, &tf, &g, explore).ok_or_else(|| anyhow!("too few usable training tables"))?;
    outln!("{:>12} {:>6} {:>8} {:>8}  worst device", "strategy", "probes", "mean", "worst");
    for r in &rows {
        outln!("{:>12} {:>6} {:>8.4} {:>8.4}  {}", r.strategy, r.budget, r.mean, r.worst, r.worst_device);
    }
    let tables: Vec<_> = train.iter().map(|(_, t)| t).collect();
    let mut prior = match &dist {
        None => fit_prior(&tables, g.noise, g.range_factor, g.range_rule, g.dead_edge_probe),
        Some(dist) => prior_of_fits(&synthetic_fits(dist, args.synth, |_| true, args.draws as usize, args.seed), &g),
    }
    .ok_or_else(|| anyhow!("too few usable training tables"))?;
    prior.constrained_dead_edge_probe = cgrid[cbest].dead_edge_probe;
    prior.explore = explore;
    let command = match args.meta_devices {
        MetaDevices::Real => format!("simnas prior --out {}", args.out.display()),
        MetaDevices::Synthetic => format!(
            "simnas prior --meta-devices synthetic --synth {} --draws {} --seed {} --out {}",
            preset_name(args.synth),
            args.draws,
            args.seed,
            args.out.display()
        ),
    };
    let file = PriorFile::new(
        &prior,
        command,
        train.iter().map(|(d, _)| d.name.to_string()).collect(),
        grid,
        cgrid,
        egrid,
        rows,
    );
    let json = serde_json::to_string_pretty(&file)? + "\n";
    output::write(&args.out, json.as_bytes())?;
    outln!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn preset_name(p: SynthPreset) -> String {
    serde_json::to_value(p).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| format!("{p:?}"))
}
