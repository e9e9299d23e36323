//! `simnas devices fit|report`: fit the synthetic-device distribution to the benchmark's
//! real devices, and report how well it covers them.

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use host_trainer::data::{data_dir, NatsMap};
use host_trainer::synth::{coverage, load_devices, DeviceDistribution, DeviceDistributionExt as _, SynthPreset};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct DevicesArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand, Debug)]
enum Action {
    /// List the device names every command accepts (`--device NAME`, `eval --devices`):
    /// the device kinds, and the benchmark devices with their split, family, file and
    /// column. Writes nothing and needs no data directory.
    List,
    /// Fit per-device LUTs and the Gaussians over the training devices; write the
    /// distribution file (JSON).
    Fit {
        /// Output file (the shipped one is artifacts/devices/distribution.json: pass it to
        /// regenerate it deliberately).
        #[arg(long, default_value = "simnas-out/devices/distribution.json")]
        out: PathBuf,
    },
    /// Coverage report: rank correlation of every real device with its own LUT and with the
    /// closest synthetic device of each preset (markdown, CSV and an SVG plot).
    Report {
        /// Distribution file written by `devices fit`.
        #[arg(long, default_value = "artifacts/devices/distribution.json")]
        dist: PathBuf,
        /// Output directory.
        #[arg(long, default_value = "simnas-out/devices")]
        out: PathBuf,
        /// Synthetic devices drawn per preset.
        #[arg(long, default_value_t = 300)]
        samples: usize,
        /// Seed of the draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

/// `devices list`.
fn list() -> Result<ExitCode> {
    outln!("device kinds (--device):");
    outln!("  host                this CPU, timing the edge-runtime executor");
    outln!("  qemu                the firmware booted in QEMU (mps2-an386)");
    outln!("  serial:PORT         a board running the firmware on PORT");
    outln!("  table:PATH#COLUMN   a measured latency table (CSV keyed by index or arch, COLUMN in ms)");
    outln!("  NAME                a benchmark device below: its table in --data DIR / $SIMNAS_DATA");
    outln!("");
    outln!("{:<26} {:<10} {:<8} {:<20} {:<34} column", "benchmark device", "split", "primary", "family", "file");
    for d in &host_trainer::latency::registry::DEVICES {
        let split = format!("{:?}", d.split).to_lowercase();
        let primary = if d.primary { "yes" } else { "" };
        outln!("{:<26} {:<10} {:<8} {:<20} {:<34} {}", d.name, split, primary, d.family, d.file, d.column);
    }
    Ok(ExitCode::SUCCESS)
}

/// The command line as run, for the record (`simnas` plus the arguments).
pub(crate) fn command_line() -> String {
    std::iter::once("simnas".to_string()).chain(std::env::args().skip(1)).collect::<Vec<_>>().join(" ")
}

pub fn run(data: &Option<PathBuf>, args: DevicesArgs) -> Result<ExitCode> {
    match &args.action {
        Action::List => return list(),
        Action::Fit { out } => host_trainer::output::prepare(out)?,
        Action::Report { out, .. } => {
            host_trainer::output::prepare_dir(out, &["coverage.md", "coverage.csv", "coverage.svg"])?
        }
    }
    let dir = data_dir(data.as_deref())?;
    let map = NatsMap::load(&dir)?;
    let tables = load_devices(&dir, &map)?;
    for (d, t) in &tables {
        if t.skipped() > 0 {
            eprintln!("warning: {}: {} non-positive latencies skipped (unmeasurable cells)", d.name, t.skipped());
        }
    }
    match args.action {
        Action::Fit { out } => {
            let dist = DeviceDistribution::fit(&tables, command_line());
            write(&out, &serde_json::to_string_pretty(&dist)?)?;
            outln!(
                "{:<24} {:>6} {:>7} {:>8} {:>8} {:>8} {:>9}",
                "device",
                "split",
                "cells",
                "op R2",
                "op rho",
                "edge R2",
                "edge rho"
            );
            for r in &dist.devices {
                outln!(
                    "{:<24} {:>6} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>9.3}",
                    r.name,
                    format!("{:?}", r.split).to_lowercase().chars().take(5).collect::<String>(),
                    r.cells,
                    r.per_op.r2,
                    r.per_op.spearman,
                    r.per_edge_op.r2,
                    r.per_edge_op.spearman
                );
            }
            outln!("noise sigma (median log-residual std, train): {:.4}", dist.noise_sigma);
            outln!("wrote {}", out.display());
        }
        Action::List => {}
        Action::Report { dist, out, samples, seed } => {
            let d = DeviceDistribution::load(&dist)?;
            let presets = SynthPreset::ALL;
            let rows = coverage::coverage(&d, &tables, &presets, samples, seed);
            let md = coverage::markdown(&rows, samples, &command_line());
            write(&out.join("coverage.md"), &md)?;
            let mut csv = String::from("device,family,split,cells,own_op_r2,own_op_rho,own_edge_r2,own_edge_rho");
            for p in &presets {
                let n = serde_json::to_value(p)?.as_str().unwrap_or("?").to_string();
                csv += &format!(",{n}_closest,{n}_median");
            }
            csv.push('\n');
            for r in &rows {
                csv += &format!(
                    "{},{},{:?},{},{},{},{},{}",
                    r.name, r.family, r.split, r.cells, r.own_op.0, r.own_op.1, r.own_edge.0, r.own_edge.1
                );
                for p in &r.presets {
                    csv += &format!(",{},{}", p.1, p.2);
                }
                csv.push('\n');
            }
            write(&out.join("coverage.csv"), &csv)?;
            coverage::plot(&rows, &out.join("coverage.svg")).context("plot")?;
            outln!("{md}");
            outln!("wrote {}/coverage.{{md,csv,svg}}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<()> {
    Ok(host_trainer::output::write(path, text.as_bytes())?)
}
