//! Command-line interface: flags are parsed here and resolved into typed settings; each
//! subcommand lives in its own module. Without the `train` feature, the candle commands
//! (`score`, `train`, `bench`) are stand-ins (`unbuilt.rs`): listed, and refused with the rebuild
//! command.

/// `println!` that reports a failed write (closed pipe, full disk) as a [`StdoutError`]
/// instead of panicking; `main` treats a closed stdout as a normal end.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::cli::StdoutError)?
    }};
}

/// A write to stdout failed. Its own type, so that only a closed stdout (`simnas ... |
/// head`) ends a command quietly: a serial line that hangs up reports the same
/// `BrokenPipe` and is an error.
#[derive(Debug, thiserror::Error)]
#[error("writing to stdout")]
pub struct StdoutError(#[source] pub std::io::Error);

impl StdoutError {
    /// The reader of stdout has gone (a closed pipe).
    pub fn reader_left(&self) -> bool {
        self.0.kind() == std::io::ErrorKind::BrokenPipe
    }
}

mod artifacts;
#[cfg(feature = "train")]
mod bench;
mod device;
mod devices;
mod eval;
mod export;
mod monitor;
mod prior;
mod probe;
#[cfg(feature = "train")]
mod score;
mod search;
#[cfg(feature = "train")]
mod train;
#[cfg(not(feature = "train"))]
mod unbuilt;
#[cfg(not(feature = "train"))]
use unbuilt::{bench, score, train};

/// The cells measured when no --arch is given: both extremes and two mixed cells.
pub(crate) const SHOWCASE: [&str; 4] = [
    "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
];

use anyhow::Result;
use clap::{Args, Parser, Subcommand, ValueEnum};
use edge_runtime::NetConfig;
use std::path::PathBuf;
use std::process::ExitCode;

/// Hardware-aware neural architecture search over the NATS-Bench topology space, with a
/// controller meta-trained on synthetic devices and no latency predictor.
#[derive(Parser, Debug)]
#[command(name = "simnas", version, propagate_version = true)]
pub struct Cli {
    /// Directory holding the benchmark tables (nb201_archs.csv, latency_*.csv, ...).
    /// Defaults to $SIMNAS_DATA. Only commands that need benchmark data read it.
    #[arg(long, global = true, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Measure the latency of cells on a device (every number is a real measurement).
    Probe(probe::ProbeArgs),
    /// Benchmark the edge-runtime executor against candle on the identical network, and
    /// the repeat-to-repeat spread of host probes.
    Bench(bench::BenchArgs),
    /// Fit the synthetic-device distribution to real devices and report its coverage.
    Devices(devices::DevicesArgs),
    /// Meta-train the controller with PPO on synthetic devices; write the policy, curves and
    /// the learning evidence.
    Train(train::TrainArgs),
    /// Meta-fit the calibrated controller (the default `search` strategy) on the training
    /// devices: its latency prior, noise level and range factor.
    Prior(prior::PriorArgs),
    /// Print a board's records live (hello, probes, bench, final) and append them to a JSONL log.
    Monitor(monitor::MonitorArgs),
    /// Training-free scores (FreeREA): one cell, the whole space (resumable), report, bench.
    Score(score::ScoreArgs),
    /// Find the best cell for a device within a budget of latency probes.
    Search(search::SearchArgs),
    /// Run every search strategy on table devices; write a report with CSVs and plots.
    Eval(eval::EvalArgs),
    /// Write a cell's executed network as ONNX (to measure it with your own runtime) or as
    /// PyTorch source (to train it).
    Export(export::ExportArgs),
}

/// The longest wait a flag in seconds accepts: one day.
pub(crate) const MAX_SECONDS: f64 = 86_400.0;

/// A flag in seconds: a number in (0, 86400] (a wait longer than a day is a typo, and
/// past ~1e10 s the clock cannot even represent the deadline).
pub(crate) fn seconds(s: &str) -> Result<f64, String> {
    let t: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !(t > 0.0 && t <= MAX_SECONDS) {
        return Err(format!("{s} s is outside (0, {MAX_SECONDS}]: give a positive number of seconds, at most one day"));
    }
    Ok(t)
}

/// A weight in [0, 1].
pub(crate) fn unit_weight(s: &str) -> Result<f64, String> {
    let w: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    if !(0.0..=1.0).contains(&w) {
        return Err(format!("{s} is outside [0, 1]"));
    }
    Ok(w)
}

/// A latency limit in ms: positive and finite.
pub(crate) fn positive_ms(s: &str) -> Result<f64, String> {
    let ms: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of ms"))?;
    if !(ms.is_finite() && ms > 0.0) {
        return Err(format!("{s} ms is not a positive number of milliseconds"));
    }
    Ok(ms)
}

/// Network presets: the NB201 macro network as trained on each dataset.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Preset {
    /// 32x32 input, 10 classes.
    Cifar10,
    /// 32x32 input, 100 classes.
    Cifar100,
    /// 16x16 input, 120 classes (ImageNet16-120).
    Imagenet16,
}

/// Shape of the network to run (preset, then overrides).
#[derive(Args, Debug, Clone)]
pub struct NetArgs {
    /// Network preset.
    #[arg(long, value_enum, default_value = "cifar10")]
    pub net: Preset,
    /// Override the base channel count C (stages use C, 2C, 4C).
    #[arg(long)]
    pub channels: Option<usize>,
    /// Override the cells per stage N.
    #[arg(long)]
    pub cells: Option<usize>,
    /// Override the input side (a multiple of 4).
    #[arg(long)]
    pub resolution: Option<usize>,
    /// Override the number of classes.
    #[arg(long)]
    pub classes: Option<usize>,
}

impl NetArgs {
    /// The validated configuration.
    pub fn config(&self) -> Result<NetConfig> {
        let base = match self.net {
            Preset::Cifar10 => NetConfig::CIFAR10,
            Preset::Cifar100 => NetConfig::CIFAR100,
            Preset::Imagenet16 => NetConfig::IMAGENET16_120,
        };
        let cfg = NetConfig {
            channels: self.channels.unwrap_or(base.channels),
            cells_per_stage: self.cells.unwrap_or(base.cells_per_stage),
            resolution: self.resolution.unwrap_or(base.resolution),
            classes: self.classes.unwrap_or(base.classes),
        };
        cfg.validate().map_err(|e| anyhow::anyhow!("invalid network: {e}"))?;
        Ok(cfg)
    }
}

pub fn run() -> Result<ExitCode> {
    let cli = Cli::parse();
    if let Some(d) = cli.data.as_deref().filter(|d| !d.is_dir()) {
        eprintln!(
            "warning: --data {}: not a directory; commands that need benchmark data will fail, others ignore it",
            d.display()
        );
    }
    match cli.command {
        Command::Probe(args) => probe::run(&cli.data, args),
        Command::Bench(args) => bench::run(args),
        Command::Devices(args) => devices::run(&cli.data, args),
        Command::Train(args) => train::run(&cli.data, args),
        Command::Monitor(args) => monitor::run(args),
        Command::Prior(args) => prior::run(&cli.data, args),
        Command::Score(args) => score::run(&cli.data, args),
        Command::Search(args) => search::run(&cli.data, args),
        Command::Eval(args) => eval::run(&cli.data, args),
        Command::Export(args) => export::run(args),
    }
}
