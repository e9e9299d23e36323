//! `simnas-onnx-time MODEL.onnx`: time an ONNX model with tract on this CPU and print
//! `{"latency_ms": X}` (the median of the timed runs) as the last line of stdout, the
//! contract of simnas's `cmd:` device:
//!
//! ```text
//! simnas search --device 'cmd:simnas-onnx-time {onnx}'
//! ```
//!
//! The model's input shapes must be fixed (simnas export writes them so); inputs are
//! zeros. The model is optimised once, run `--warmup` times untimed, then `--repeats` times.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tract_onnx::prelude::*;

/// Time an ONNX model with tract and print its median latency as JSON.
#[derive(Parser, Debug)]
#[command(name = "simnas-onnx-time", version)]
struct Args {
    /// The ONNX model (fixed input shapes).
    model: PathBuf,
    /// Untimed runs before timing.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Timed runs; the median is the latency.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeats: u32,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(ms) => {
            println!("{}", serde_json::json!({ "latency_ms": ms }));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<f64> {
    let model = tract_onnx::onnx()
        .model_for_path(&args.model)
        .and_then(|m| m.into_optimized())
        .and_then(|m| m.into_runnable())
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("loading {}", args.model.display()))?;
    let mut inputs = TVec::new();
    for i in 0..model.model().inputs.len() {
        let fact = model.model().input_fact(i).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let Some(shape) = fact.shape.as_concrete() else {
            bail!("{}: input {i} has no fixed shape ({:?})", args.model.display(), fact.shape);
        };
        let t = Tensor::zero_dt(fact.datum_type, shape).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        inputs.push(t.into_tvalue());
    }
    for _ in 0..args.warmup {
        model.run(inputs.clone()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    }
    let mut samples = Vec::with_capacity(args.repeats as usize);
    for _ in 0..args.repeats {
        let t0 = Instant::now();
        model.run(inputs.clone()).map_err(|e| anyhow::anyhow!("{e:#}"))?;
        samples.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    Ok(if n % 2 == 1 { samples[n / 2] } else { 0.5 * (samples[n / 2 - 1] + samples[n / 2]) })
}
