//! `simnas bench`: executor vs candle on the same network and weights, and probe spread.

use super::{NetArgs, SHOWCASE};
use anyhow::{Context, Result};
use clap::Args;
use host_trainer::bench::executor_vs_candle;
use host_trainer::device::{Clock, Device, HostDevice, Timing};
use simnas_shared::Arch;
use std::path::PathBuf;
use std::process::ExitCode;

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
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let cfg = args.net.config()?;
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
        let mut dev = HostDevice::new(cfg, args.seed, args.warmup, repeats, clock)?.with_timing(timing)?;
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
