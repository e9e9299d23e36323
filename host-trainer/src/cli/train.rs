//! `simnas train`: PPO meta-training of the controller on synthetic devices; writes the
//! policy (safetensors), the training curves (CSV, SVG) and, when benchmark data is at hand,
//! the learning evidence on the validation devices' real latency tables.
//!
//! Every `--checkpoint-every` updates the run's state goes to `<out>/checkpoint`
//! ([`host_trainer::rl::checkpoint`]); a rerun with the same flags resumes from it, and a
//! finished run removes it. Output files are written by [`host_trainer::output::write`].

use super::devices::command_line;
use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use host_trainer::data::{data_dir, NatsMap};
use host_trainer::latency::registry::{split, Split};
use host_trainer::latency::{InvalidPolicy, LatencyTable};
use host_trainer::output;
use host_trainer::rl::env::DeviceLatency;
use host_trainer::rl::net::ActorCritic;
use host_trainer::rl::train::{train_resumable, TrainConfig};
use host_trainer::rl::{checkpoint, eval, export, plot, StandInProxy, TfTable};
use host_trainer::score::ScoreTable;
use host_trainer::synth::{DeviceDistribution, DeviceDistributionExt as _, SynthPreset};
use std::path::PathBuf;
use std::process::ExitCode;

/// Training presets.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TrainPreset {
    /// The default setting (TF in the state).
    Default,
    /// The paper: T=50, gamma 0.6, eps 0.2, history 5, w 0.5, state = cell + latency.
    Paper,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Environment steps in total.
    #[arg(long, default_value_t = 500_000)]
    steps: usize,
    /// Seed (same seed, same policy bytes).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Setting preset; flags below override it.
    #[arg(long, value_enum, default_value = "default")]
    preset: TrainPreset,
    /// How synthetic devices are drawn (default: the preset's).
    #[arg(long, value_enum)]
    synth: Option<SynthPreset>,
    /// What an episode is: `walk` (the paper's: 50 edits from a random cell, each step
    /// rewarded with its cell's reward) or `budget` (a search's: the walk from the zero-shot
    /// prior's best cell over executed networks, each step rewarded with its gain in the best
    /// measured reward, so the return is the pick's). Default: the preset's (`walk`).
    #[arg(long, value_enum)]
    episode: Option<host_trainer::rl::env::Episode>,
    /// Steps per episode (default: the preset's, 50). For `--episode budget`, the probes of a
    /// search minus its two references and its start (17 for a budget of 20).
    #[arg(long, value_name = "STEPS", value_parser = clap::value_parser!(u64).range(1..=1000))]
    episode_len: Option<u64>,
    /// Discount of future rewards (default: the preset's, the paper's 0.6).
    #[arg(long, value_parser = super::unit_weight)]
    gamma: Option<f64>,
    /// Weight w of TF in the reward, in [0, 1].
    #[arg(long, allow_negative_numbers = true, value_parser = super::unit_weight)]
    weight: Option<f64>,
    /// Synthetic-device distribution (default: the committed one, built in).
    #[arg(long, value_name = "FILE")]
    dist: Option<PathBuf>,
    /// FreeREA score table giving TF (CSV of `simnas score`, or its quantised form with a
    /// `.bin` extension). Without it a transparent stand-in proxy is used, fit only for
    /// throughput runs: never ship such a policy.
    #[arg(long, value_name = "FILE")]
    scores: Option<PathBuf>,
    /// Episodes per validation device in the learning-evidence report (at least 1).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    eval_episodes: u32,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Save the run's state to <out>/checkpoint every this many updates (0: never). A rerun
    /// with the same flags resumes from the last one.
    #[arg(long, default_value_t = 10, value_name = "UPDATES")]
    checkpoint_every: usize,
    /// Start from scratch even if <out>/checkpoint holds an interrupted run.
    #[arg(long)]
    fresh: bool,
}

pub fn run(data: &Option<PathBuf>, args: TrainArgs) -> Result<ExitCode> {
    let mut cfg = match args.preset {
        TrainPreset::Default => TrainConfig::default_with(args.seed),
        TrainPreset::Paper => TrainConfig::paper(args.seed),
    };
    cfg.total_steps = args.steps;
    if let Some(s) = args.synth {
        cfg.env.synth = s;
    }
    if let Some(e) = args.episode {
        cfg.env.episode = e;
    }
    if let Some(n) = args.episode_len {
        cfg.env.episode_len = n as usize;
    }
    if let Some(g) = args.gamma {
        cfg.gae.gamma = g;
    }
    if let Some(w) = args.weight {
        anyhow::ensure!((0.0..=1.0).contains(&w), "--weight must be in [0, 1]");
        cfg.env.weight = w;
    }
    anyhow::ensure!(cfg.total_steps > 0, "--steps must be positive");
    output::prepare_dir(&args.out, &["policy.safetensors", "curves.csv", "curves.svg", "train.json", "evidence.md"])?;
    let dist = match &args.dist {
        Some(p) => DeviceDistribution::load(p)?,
        None => DeviceDistribution::embedded(),
    };
    let tf = match &args.scores {
        Some(p) => {
            let table = if p.extension().is_some_and(|e| e == "tf16" || e == "bin") {
                ScoreTable::load_quantised(p)
            } else {
                ScoreTable::load(p)
            }
            .with_context(|| format!("reading the score table {}", p.display()))?;
            // Every cell scores as the network it runs (its executed network).
            TfTable::from_proxy(&table.executed(), format!("score table {} (executed networks)", p.display()))
        }
        None => {
            eprintln!("warning: no --scores: TF comes from a stand-in proxy; do not ship this policy");
            TfTable::from_proxy(&StandInProxy, "stand-in proxy (not FreeREA)")
        }
    };
    // Benchmark data is optional: only the accuracy panel and the evidence report need it.
    let bench = data_dir(data.as_deref()).ok().and_then(|d| NatsMap::load(&d).ok().map(|m| (d, m)));
    let accuracy: Option<Vec<f32>> = bench.as_ref().and_then(|(d, m)| {
        // The accuracy table has the shape of a latency table (index + positive values).
        LatencyTable::load(&d.join("nb201_accuracy.csv"), "cifar10_test", Some(m), InvalidPolicy::Skip)
            .ok()
            .map(|t| t.values().iter().map(|v| v.unwrap_or(f64::NAN) as f32).collect())
    });
    let bar =
        if args.quiet { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(cfg.total_steps as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} steps {per_sec} eta {eta} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let ck_dir = args.out.join("checkpoint");
    let config_json = serde_json::to_string(&cfg)?;
    let resume = if args.fresh { None } else { checkpoint::load(&ck_dir, &config_json, &tf.source)? };
    if let Some(r) = &resume {
        eprintln!("resuming from step {} of {} ({})", r.steps, cfg.total_steps, ck_dir.display());
    }
    let start = std::time::Instant::now();
    let mut updates = 0usize;
    let (net, curves) = train_resumable(&cfg, &dist, &tf, accuracy.as_deref(), resume, |steps, rows, net| {
        bar.set_position(steps as u64);
        if let Some(r) = rows.last() {
            bar.set_message(format!(
                "final reward {:.3} tf {:.3} lat {:.3}",
                r.final_reward, r.final_tf, r.final_latency
            ));
        }
        updates += 1;
        if args.checkpoint_every > 0 && updates % args.checkpoint_every == 0 && steps < cfg.total_steps {
            checkpoint::save(&ck_dir, &config_json, &tf.source, steps, rows, net).map_err(candle_core::Error::msg)?;
        }
        Ok(())
    })?;
    bar.finish();
    let secs = start.elapsed().as_secs_f64();
    let command = command_line();
    let meta = [
        ("command", command.clone()),
        ("seed", cfg.seed.to_string()),
        ("train_config", serde_json::to_string(&cfg)?),
        ("tf_source", tf.source.clone()),
        ("synthetic_devices", format!("{} ({:?})", dist.command, cfg.env.synth)),
    ];
    let bytes = export::policy_bytes(&net, &meta)?;
    let out = |name: &str| args.out.join(name);
    output::write(&out("policy.safetensors"), &bytes)?;
    output::write(&out("curves.csv"), plot::csv(&curves)?.as_bytes())?;
    plot::figure5(&curves, &args.out.join("curves.svg")).context("plot")?;
    let summary = serde_json::json!({
        "command": command, "config": cfg, "seconds": secs,
        "steps_per_second": cfg.total_steps as f64 / secs,
        "actor_parameters": net.actor_parameters(), "policy_bytes": bytes.len(),
        "tf_source": tf.source,
    });
    output::write(&out("train.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    // The outputs are complete: the checkpoint has done its job.
    if ck_dir.exists() {
        std::fs::remove_dir_all(&ck_dir).with_context(|| format!("removing {}", ck_dir.display()))?;
    }
    outln!(
        "{} steps in {secs:.1} s ({:.0} steps/s); actor {} parameters, policy file {} bytes",
        cfg.total_steps,
        cfg.total_steps as f64 / secs,
        net.actor_parameters(),
        bytes.len()
    );
    if let Some((dir, map)) = &bench {
        let mut devices = Vec::new();
        for d in split(Split::Validation) {
            let t = LatencyTable::load(&d.path(dir), d.column, Some(map), InvalidPolicy::Reject)?;
            let dev =
                DeviceLatency::from_table(&t).with_context(|| format!("{}: reference cells unmeasured", d.name))?;
            devices.push((d.name.to_string(), dev));
        }
        let untrained = ActorCritic::new(cfg.net.clone(), cfg.seed)?;
        let rows = eval::evidence(&cfg.env, &net, &untrained, &devices, &tf, args.eval_episodes as usize, 12345)?;
        let md = format!(
            "# Learning evidence\n\nProduced by `{command}`.\n\nFinal-cell reward after T = {} steps on the validation devices' real latency tables (never trained on), mean over {} episodes from the same random starts; in brackets, the fraction of the oracle (the best reward over the whole table). TF source: {}.\n\n{}",
            cfg.env.episode_len,
            args.eval_episodes,
            tf.source,
            eval::markdown(&rows)
        );
        output::write(&out("evidence.md"), md.as_bytes())?;
        outln!("{md}");
    } else {
        outln!("no benchmark data (--data / SIMNAS_DATA): learning-evidence report skipped");
    }
    outln!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
