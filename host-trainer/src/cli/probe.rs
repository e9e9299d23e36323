//! `simnas probe`: measure cells on a device.

use super::NetArgs;
use anyhow::{bail, Context, Result};
use clap::Args;
use host_trainer::board::{qemu, BoardDevice, ProbePolicy, DEFAULT_BAUD};
use host_trainer::data::NatsMap;
use host_trainer::device::command::{self, CommandDevice};
use host_trainer::device::table::TableDevice;
use host_trainer::device::{Clock, Device, DeviceSpec, HostDevice, Timing};
use simnas_shared::{Arch, Op};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// Device to measure on: `host` (this CPU, timing the edge-runtime executor), `qemu`
    /// (the firmware booted in QEMU), `serial:PORT` (a board running the firmware),
    /// `table:PATH#COLUMN` (a measured latency table, CSV keyed by `index` or `arch`, column
    /// in ms), `cmd:COMMAND` (your own runtime: COMMAND runs, without a shell, on each cell
    /// exported as ONNX, `{onnx}` replaced by the model's path and `{arch}` by the cell, and
    /// prints the latency in ms, or `{"latency_ms": X}`, as its last line) or a benchmark
    /// device name (`simnas devices list`). Boards measure their own network (see their
    /// Hello); the network flags apply to `host` and `cmd:`.
    #[arg(long, default_value = "host")]
    device: DeviceSpec,
    /// Cell in NATS-Bench form, e.g. '|nor_conv_3x3~0|+|none~0|skip_connect~1|+|...~2|'.
    /// Repeat for several; without any, a showcase of four cells is measured.
    #[arg(long = "arch", value_name = "CELL")]
    archs: Vec<String>,
    #[command(flatten)]
    net: NetArgs,
    /// Untimed runs before timing (caches, clocks).
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed runs; the median is reported.
    #[arg(long, default_value_t = 31, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeats: u32,
    /// Clock for host probes.
    #[arg(long, value_enum, default_value_t = Clock::ThreadCpu)]
    clock: Clock,
    /// How host probes turn timings into a latency: `paired` (each sample against the
    /// all-skip reference cell, interleaved; the median ratio times the reference's latency
    /// calibrated when the device opens) or `direct` (the cell's own median).
    #[arg(long, value_enum, default_value_t = Timing::Paired)]
    timing: Timing,
    /// Seed of the network's weights and input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object per cell instead of a table.
    #[arg(long)]
    json: bool,
    /// Probe timeout in seconds: `cmd:` devices, per attempt of the command [default: 120];
    /// boards, per run [default: 60].
    #[arg(long, value_name = "SECONDS")]
    probe_timeout_s: Option<f64>,
    /// Firmware ELF for `--device qemu` [default: target/thumbv7em-none-eabihf/release/firmware-bench,
    /// built by `cargo fw-build`].
    #[arg(long, value_name = "PATH")]
    firmware: Option<PathBuf>,
}

pub fn run(_data: &Option<PathBuf>, args: ProbeArgs) -> Result<ExitCode> {
    let archs: Vec<Arch> = if args.archs.is_empty() {
        super::SHOWCASE.iter().map(|s| Arch::parse(s)).collect::<Result<_, _>>()?
    } else {
        args.archs.iter().map(|s| Arch::parse(s).with_context(|| format!("--arch {s:?}"))).collect::<Result<_>>()?
    };
    let cfg = args.net.config()?;
    let policy = ProbePolicy {
        warmup: args.warmup.try_into().unwrap_or(u16::MAX),
        // Saturated: the board's limit is far below u16::MAX, and the check refuses it.
        repeats: args.repeats.try_into().unwrap_or(u16::MAX),
        per_run: super::search::timeout_flag(args.probe_timeout_s, Duration::from_secs(60))?,
        retries: 2,
    };
    let spec = args.device.resolve(_data.as_deref()).map_err(anyhow::Error::msg)?;
    let mut dev: Box<dyn Device> = match &spec {
        DeviceSpec::Host => Box::new(
            HostDevice::new(cfg, args.seed, args.warmup, args.repeats as usize, args.clock)?
                .with_timing(args.timing)?,
        ),
        DeviceSpec::Qemu => {
            Box::new(BoardDevice::qemu(&args.firmware.clone().unwrap_or_else(qemu::default_firmware), policy)?)
        }
        DeviceSpec::Serial(port) => Box::new(BoardDevice::serial(port, DEFAULT_BAUD, policy)?),
        DeviceSpec::Table { path, column } => {
            let map = host_trainer::data::data_dir(_data.as_deref()).ok().and_then(|d| NatsMap::load(&d).ok());
            Box::new(TableDevice::open(path, column, map.as_ref())?)
        }
        DeviceSpec::Command(command) => {
            let timeout = super::search::timeout_flag(args.probe_timeout_s, command::DEFAULT_TIMEOUT)?;
            Box::new(CommandDevice::new(command, cfg, timeout, command::DEFAULT_RETRIES)?)
        }
        DeviceSpec::Bench(d) => bail!("device {}: not resolved to its table", d.name),
    };
    if !args.json && args.device != DeviceSpec::Host {
        outln!("device {} | warmup {} repeats {}", dev.name(), args.warmup, args.repeats);
        outln!("{:>10} {:>10} {:>8}  cell", "median ms", "min ms", "spread");
    } else if !args.json {
        let arena = edge_runtime::Plan::new(cfg, Arch::uniform(Op::NorConv3x3))?.arena_bytes();
        outln!("device {} | arena {} bytes | warmup {} repeats {}", dev.name(), arena, args.warmup, args.repeats);
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
