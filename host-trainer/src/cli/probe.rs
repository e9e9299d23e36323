//! `simnas probe`: measure cells on a device.

use super::device::{DeviceArgs, OpenWith};
use super::NetArgs;
use anyhow::{Context, Result};
use clap::Args;
use host_trainer::data::NatsMap;
use host_trainer::device::DeviceSpec;
use simnas_shared::{Arch, Op};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Cell in NATS-Bench form, e.g. '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~2|'.
    /// Repeat for several; without any, a showcase of four cells is measured.
    #[arg(long = "arch", value_name = "CELL")]
    archs: Vec<String>,
    #[command(flatten)]
    net: NetArgs,
    /// Seed of the network's weights and input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object per cell instead of a table.
    #[arg(long)]
    json: bool,
    /// Which device, and how it measures.
    #[command(flatten)]
    device: DeviceArgs,
}

pub fn run(data: &Option<PathBuf>, args: ProbeArgs) -> Result<ExitCode> {
    args.device.one("probe")?;
    let archs: Vec<Arch> = if args.archs.is_empty() {
        super::SHOWCASE.iter().map(|s| Arch::parse(s)).collect::<Result<_, _>>()?
    } else {
        args.archs.iter().map(|s| Arch::parse(s).with_context(|| format!("--arch {s:?}"))).collect::<Result<_>>()?
    };
    let cfg = args.net.config()?;
    // An `index`-keyed table is read with the data directory's numbering, when there is one.
    let map = args
        .device
        .is_table()
        .then(|| host_trainer::data::data_dir(data.as_deref()).ok().and_then(|d| NatsMap::load(&d).ok()))
        .flatten();
    let with = OpenWith {
        net: cfg,
        weights_seed: args.seed,
        data: data.as_deref(),
        nats: map.as_ref(),
        min_table_coverage: None,
    };
    let mut dev = args.device.open(&with)?.device;
    let (warmup, repeats) = (args.device.warmup, args.device.repeats);
    if !args.json && *args.device.device() != DeviceSpec::Host {
        outln!("device {} | warmup {} repeats {}", dev.name(), warmup, repeats);
        outln!("{:>10} {:>10} {:>8}  cell", "median ms", "min ms", "spread");
    } else if !args.json {
        let arena = edge_runtime::Plan::new(cfg, Arch::uniform(Op::NorConv3x3))?.arena_bytes();
        outln!("device {} | arena {} bytes | warmup {} repeats {}", dev.name(), arena, warmup, repeats);
        outln!("{:>10} {:>10} {:>8}  cell", "median ms", "min ms", "spread");
    }
    for arch in archs {
        let p = dev.probe(arch).with_context(|| format!("measuring {arch}"))?;
        if args.json {
            let v = serde_json::json!({
                "device": dev.name(), "arch": arch.to_string(), "latency_ms": p.latency_ms,
                "min_ms": p.min_ms, "spread": p.spread, "repeats": p.repeats,
                "convs3x3": arch.count(Op::NorConv3x3),
            });
            outln!("{v}");
        } else {
            outln!("{:>10.3} {:>10.3} {:>7.1}%  {arch}", p.latency_ms, p.min_ms, 100.0 * p.spread);
        }
    }
    Ok(ExitCode::SUCCESS)
}
