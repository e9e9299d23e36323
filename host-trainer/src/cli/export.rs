//! `simnas export`: write a cell's executed network as ONNX (seeded inference weights, to
//! measure it with any runtime) or as PyTorch source (to train it).

use super::NetArgs;
use anyhow::{Context as _, Result};
use clap::Args;
use host_trainer::export::{ExportSpec, Format};
use host_trainer::output;
use simnas_shared::Arch;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Cell in NATS-Bench form; its executed network (dead edges removed) is written. A
    /// disconnected cell is refused.
    #[arg(long, value_name = "CELL")]
    arch: String,
    #[command(flatten)]
    net: NetArgs,
    /// Images per inference: the ONNX input is `input` [N, 3, R, R] (NCHW), the output
    /// `logits` [N, classes].
    #[arg(long, default_value_t = 1, value_name = "N")]
    batch: usize,
    /// Seed of the ONNX model's weights (the host device's weights for the same seed; the
    /// same seed writes the same bytes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// File format [default: pytorch for a `.py` file, else onnx].
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Output file.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub fn run(args: ExportArgs) -> Result<ExitCode> {
    let arch = Arch::parse(&args.arch).with_context(|| format!("--arch {:?}", args.arch))?;
    let cfg = args.net.config()?;
    let format = args.format.unwrap_or_else(|| Format::of_path(&args.out));
    output::prepare(&args.out)?;
    let spec = ExportSpec { arch, cfg, batch: args.batch, seed: args.seed };
    let executed = spec.executed()?;
    spec.write(&args.out, format)?;
    let what = match format {
        Format::Onnx => "ONNX",
        Format::Pytorch => "PyTorch",
    };
    outln!("wrote {} ({what}): executed network {executed}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
