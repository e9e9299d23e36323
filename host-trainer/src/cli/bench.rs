//! `simnas bench`: executor vs candle on the same network and weights, and probe spread;
//! `--serve` times the executor for an outside benchmark (`scripts/bench-vs-ort.py`).

use super::device::{open_host, HostTiming};
use super::{NetArgs, SHOWCASE};
use anyhow::{bail, Context, Result};
use clap::Args;
use edge_runtime::{DenseParams, Executor, NetConfig, ParamLayout, Plan};
use host_trainer::bench::executor_vs_candle;
use host_trainer::device::{Clock, Device, Timing};
use host_trainer::export::{seeded_params, ExportSpec};
use simnas_shared::Arch;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// How many times `bench` repeats each probe to measure run-to-run reproducibility.
const PROBE_RUNS: usize = 5;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    net: NetArgs,
    /// Untimed runs of each implementation before timing.
    #[arg(long, default_value_t = 5)]
    warmup: usize,
    /// Timed repeats of each implementation (interleaved); medians are reported.
    #[arg(long, default_value_t = 31, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    repeats: u32,
    /// Seed of weights and input.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write every figure as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Serve executor timings to another program instead of comparing with candle: the
    /// executed network of --arch with the weights `simnas export --seed` writes, on the
    /// image in --input. Prints `{"arch", "logits"}` once, then for each line `N` read
    /// from stdin runs N forward passes and prints `{"ms": [...]}` (one thread).
    #[arg(long, requires_all = ["arch", "input"])]
    serve: bool,
    /// The cell to serve (NATS-Bench form).
    #[arg(long, value_name = "CELL", requires = "serve")]
    arch: Option<String>,
    /// The image to serve: `R x R x 3` little-endian f32, HWC.
    #[arg(long, value_name = "FILE", requires = "serve")]
    input: Option<PathBuf>,
}

/// Most forward passes one `--serve` request may ask for.
const MAX_SERVE_RUNS: usize = 100_000;

fn serve(cfg: NetConfig, arch: &str, input: &Path, seed: u64) -> Result<ExitCode> {
    let arch = Arch::parse(arch).with_context(|| format!("--arch {arch:?}"))?;
    let executed = ExportSpec { arch, cfg, batch: 1, seed }.executed()?;
    let bytes = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    if bytes.len() != 4 * cfg.input_len() {
        bail!("{}: {} bytes, expected {} (R x R x 3 f32)", input.display(), bytes.len(), 4 * cfg.input_len());
    }
    let image: Vec<f32> = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    let layout = ParamLayout::new(cfg)?;
    let dense = seeded_params(cfg, seed)?;
    let params = DenseParams::new(&layout, &dense)?;
    let plan = Plan::new(cfg, executed)?;
    let mut arena = vec![0f32; plan.arena_len()];
    let mut exec = Executor::new(&plan, &mut arena)?;
    let mut logits = vec![0f32; cfg.classes];
    exec.run(&params, &image, &mut logits)?;
    outln!("{}", serde_json::json!({ "arch": executed.to_string(), "logits": logits }));
    for line in std::io::stdin().lines() {
        let line = line.context("reading stdin")?;
        let n: usize = line.trim().parse().with_context(|| format!("request {line:?} is not a count"))?;
        if n == 0 || n > MAX_SERVE_RUNS {
            bail!("request {n}: ask for 1 to {MAX_SERVE_RUNS} runs");
        }
        let mut ms = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            exec.run(&params, black_box(&image), &mut logits)?;
            black_box(&logits);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        outln!("{}", serde_json::json!({ "ms": ms }));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let cfg = args.net.config()?;
    if let (true, Some(arch), Some(input)) = (args.serve, &args.arch, &args.input) {
        return serve(cfg, arch, input, args.seed);
    }
    if let Some(path) = &args.json {
        host_trainer::output::prepare(path)?;
    }
    let archs: Vec<Arch> = SHOWCASE.iter().map(|s| Arch::parse(s)).collect::<Result<_, _>>()?;
    let repeats = args.repeats as usize;
    outln!(
        "executor (1 thread) vs candle, batch 1, C={} N={} {}x{}: {} interleaved repeats, medians",
        cfg.channels,
        cfg.cells_per_stage,
        cfg.resolution,
        cfg.resolution,
        repeats
    );
    let rows = executor_vs_candle(cfg, &archs, args.warmup, repeats, args.seed)?;
    outln!(
        "{:>11} {:>9} {:>9} {:>8} {:>8} {:>7} {:>6}  cell",
        "executor ms",
        "candle ms",
        "ratio",
        "ex.sprd",
        "ca.sprd",
        "threads",
        "pruned"
    );
    for r in &rows {
        outln!(
            "{:>11.3} {:>9.3} {:>9.3} {:>7.1}% {:>7.1}% {:>7} {:>6}  {}",
            r.executor_ms,
            r.candle_ms,
            r.ratio,
            100.0 * r.executor_spread,
            100.0 * r.candle_spread,
            r.candle_threads,
            r.pruned_ops,
            r.arch
        );
    }
    let worst_ratio = rows.iter().map(|r| r.ratio).fold(0.0, f64::max);
    outln!("worst ratio executor/candle: {worst_ratio:.3}");

    outln!(
        "\nprobe reproducibility: each cell probed {PROBE_RUNS} times ({repeats} repeats, warm-up {} each);\n\
         within = median IQR/median of one probe, across = (max-min)/median of the {PROBE_RUNS} reported medians",
        args.warmup
    );
    outln!("{:>10} {:>7} {:>10} {:>8} {:>8}  cell", "clock", "timing", "median ms", "within", "across");
    let mut probes = Vec::new();
    let settings = 4 * archs.len() * PROBE_RUNS;
    let bar = indicatif::ProgressBar::new(settings as u64).with_message("probing");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} probes, {elapsed} elapsed, ~{eta} left")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    for (clock, timing) in [
        (Clock::ThreadCpu, Timing::Paired),
        (Clock::ThreadCpu, Timing::Direct),
        (Clock::Wall, Timing::Paired),
        (Clock::Wall, Timing::Direct),
    ] {
        let mut dev = open_host(cfg, args.seed, HostTiming { warmup: args.warmup, repeats, clock, timing })?;
        for &arch in &archs {
            let runs = (0..PROBE_RUNS)
                .map(|_| {
                    let p = dev.probe(arch).with_context(|| format!("probing {arch}"));
                    bar.inc(1);
                    p
                })
                .collect::<Result<Vec<_>>>()?;
            let mut medians: Vec<f64> = runs.iter().map(|p| p.latency_ms).collect();
            medians.sort_by(f64::total_cmp);
            let mid = medians[PROBE_RUNS / 2];
            let across = (medians[PROBE_RUNS - 1] - medians[0]) / mid;
            let mut within: Vec<f64> = runs.iter().map(|p| p.spread).collect();
            within.sort_by(f64::total_cmp);
            let within = within[PROBE_RUNS / 2];
            bar.suspend(|| -> Result<()> {
                outln!(
                    "{:>10} {:>7} {mid:>10.3} {:>7.2}% {:>7.2}%  {arch}",
                    clock.name(),
                    format!("{timing:?}").to_lowercase(),
                    100.0 * within,
                    100.0 * across
                );
                Ok(())
            })?;
            probes.push(serde_json::json!({
                "arch": arch.to_string(), "clock": clock, "timing": timing, "median_ms": mid,
                "within_spread": within, "across_spread": across, "medians_ms": medians,
            }));
        }
    }
    bar.finish_and_clear();
    if let Some(path) = &args.json {
        let v = serde_json::json!({"config": format!("{cfg:?}"), "rows": rows, "probes": probes});
        host_trainer::output::write(path, &serde_json::to_vec_pretty(&v)?)?;
    }
    Ok(ExitCode::SUCCESS)
}
