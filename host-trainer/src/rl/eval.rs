//! Learning evidence: the final-cell reward of the trained policy, the untrained policy and a
//! random walk of the same length, on real devices' measured latency tables.
//!
//! Every walker starts from the same random cells (seeded) and takes `episode_len` steps;
//! the latency it observes at each step is the table's (a real measurement), normalised by
//! the same two reference cells as in training. The oracle is the best reward over the
//! whole table (for reference only).

use super::env::{DeviceLatency, DeviceSource, EnvConfig, EpisodeInfo, VecEnv};
use super::net::ActorCritic;
use super::train::sample_action;
use super::TfTable;
use candle_core::{Device, Tensor};
use edge_runtime::policy::{ACTIONS, OBS_DIM};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simnas_shared::{Arch, ArchCode};

/// Who chooses the actions.
pub enum Walker<'a> {
    /// A policy, sampling from its softmax.
    Policy(&'a ActorCritic),
    /// A policy, always its most likely action.
    Greedy(&'a ActorCritic),
    /// Uniformly random actions.
    Random,
}

/// Run `episodes` episodes on `device`; returns their final-cell reports.
pub fn run(
    cfg: &EnvConfig,
    walker: &Walker<'_>,
    device: &DeviceLatency,
    tf: &TfTable,
    episodes: usize,
    seed: u64,
) -> candle_core::Result<Vec<EpisodeInfo>> {
    let devs = [device.clone()];
    let mut env = VecEnv::new(cfg.clone(), episodes, tf, DeviceSource::Fixed(&devs), seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let (mut obs, mut r, mut d, mut fin) = (Vec::new(), vec![0f32; episodes], vec![false; episodes], Vec::new());
    let mut actions = vec![0usize; episodes];
    for _ in 0..cfg.episode_len {
        match walker {
            Walker::Random => actions.iter_mut().for_each(|a| *a = rng.random_range(0..ACTIONS)),
            Walker::Policy(net) | Walker::Greedy(net) => {
                env.observe(&mut obs);
                let logits: Vec<Vec<f32>> =
                    net.logits(&Tensor::from_slice(&obs, (episodes, OBS_DIM), &Device::Cpu)?)?.to_vec2()?;
                for (a, l) in actions.iter_mut().zip(&logits) {
                    *a = match walker {
                        Walker::Greedy(_) => (0..ACTIONS).max_by(|&x, &y| l[x].total_cmp(&l[y])).unwrap_or(0),
                        _ => sample_action(l, &mut rng).0,
                    };
                }
            }
        }
        env.step(&actions, &mut r, &mut d, &mut fin);
    }
    Ok(fin)
}

/// The best reward over every cell of `device`.
pub fn oracle(cfg: &EnvConfig, device: &DeviceLatency, tf: &TfTable) -> (Arch, f64) {
    let w = cfg.weight;
    ArchCode::all()
        .map(|c| (Arch::from_code(c), w * tf.get(c) as f64 + (1.0 - w) * (1.0 - device.norm(c) as f64)))
        .fold(
            (Arch::from_code(ArchCode::new(0).expect("0 < 15625")), f64::NEG_INFINITY),
            |b, x| if x.1 > b.1 { x } else { b },
        )
}

/// Mean final reward of a set of episodes.
pub fn mean_reward(eps: &[EpisodeInfo]) -> f64 {
    eps.iter().map(|e| e.reward).sum::<f64>() / eps.len().max(1) as f64
}

/// One device's comparison.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EvidenceRow {
    /// Device name.
    pub device: String,
    /// Best reward over the table.
    pub oracle: f64,
    /// Trained policy, sampling.
    pub trained: f64,
    /// Trained policy, greedy.
    pub trained_greedy: f64,
    /// The same network at initialisation.
    pub untrained: f64,
    /// Random walk.
    pub random_walk: f64,
}

/// Compare trained, untrained and random walkers on each `(name, device)`.
pub fn evidence(
    cfg: &EnvConfig,
    trained: &ActorCritic,
    untrained: &ActorCritic,
    devices: &[(String, DeviceLatency)],
    tf: &TfTable,
    episodes: usize,
    seed: u64,
) -> candle_core::Result<Vec<EvidenceRow>> {
    devices
        .iter()
        .map(|(name, dev)| {
            let m = |w: Walker<'_>| run(cfg, &w, dev, tf, episodes, seed).map(|e| mean_reward(&e));
            Ok(EvidenceRow {
                device: name.clone(),
                oracle: oracle(cfg, dev, tf).1,
                trained: m(Walker::Policy(trained))?,
                trained_greedy: m(Walker::Greedy(trained))?,
                untrained: m(Walker::Policy(untrained))?,
                random_walk: m(Walker::Random)?,
            })
        })
        .collect()
}

/// The comparison as a markdown table (rewards and fractions of the oracle).
pub fn markdown(rows: &[EvidenceRow]) -> String {
    let mut s = String::from(
        "| device | oracle | trained (sampled) | trained (greedy) | untrained | random walk |\n|---|---:|---:|---:|---:|---:|\n",
    );
    let f = |v: f64, o: f64| format!("{v:.4} ({:.3})", v / o);
    let mut sums = [0.0; 5];
    for r in rows {
        s += &format!(
            "| {} | {:.4} | {} | {} | {} | {} |\n",
            r.device,
            r.oracle,
            f(r.trained, r.oracle),
            f(r.trained_greedy, r.oracle),
            f(r.untrained, r.oracle),
            f(r.random_walk, r.oracle)
        );
        for (k, v) in [r.trained, r.trained_greedy, r.untrained, r.random_walk].iter().enumerate() {
            sums[k] += v / r.oracle;
        }
        sums[4] += 1.0;
    }
    let n = sums[4].max(1.0);
    s += &format!(
        "| **mean fraction of oracle** | 1 | {:.3} | {:.3} | {:.3} | {:.3} |\n",
        sums[0] / n,
        sums[1] / n,
        sums[2] / n,
        sums[3] / n
    );
    s
}
