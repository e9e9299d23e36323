//! The PPO training loop: collect a rollout from the vectorised environments, compute GAE,
//! run the PPO epochs, log one curve row per update.
//!
//! Deterministic for a seed: every random draw comes from seeded ChaCha8 streams (devices
//! and starts from `seed`, actions from `seed + 1`, minibatch order from `seed + 2`), the
//! network from SplitMix64(`seed`), and the math is single-threaded f32 in a fixed order.
//!
//! A run can be resumed ([`Resume`]): the network's weights and the curves so far come
//! from a checkpoint, the random streams are re-seeded from `seed` and the step count,
//! and the optimiser's moments and the environments start afresh. A resumed run is
//! therefore deterministic too, but not byte-identical to one that was never interrupted.

use super::buffer::{BufferConfig, RolloutBuffer};
use super::env::{DeviceSource, EnvConfig, EpisodeInfo, VecEnv};
use super::gae::{gae, GaeConfig};
use super::net::{ActorCritic, NetConfig};
use super::ppo::{Learner, PpoConfig, UpdateStats};
use super::TfTable;
use crate::synth::DeviceDistribution;
use candle_core::{Device, Tensor};
use edge_runtime::policy::OBS_DIM;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Everything that defines a training run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// Environment steps in total (over all environments).
    pub total_steps: usize,
    /// Seed.
    pub seed: u64,
    /// The MDP.
    pub env: EnvConfig,
    /// Rollout size.
    pub buffer: BufferConfig,
    /// Advantage estimation.
    pub gae: GaeConfig,
    /// PPO.
    pub ppo: PpoConfig,
    /// Networks.
    pub net: NetConfig,
}

impl TrainConfig {
    /// The paper's setting: T = 50, gamma 0.6, eps 0.2, 500k steps, history 5, w 0.5, its
    /// state (cell and latency only, no TF) and its plain Gaussian LUT devices.
    pub fn paper(seed: u64) -> TrainConfig {
        let mut c = TrainConfig::default_with(seed);
        c.env.obs_tf = false;
        c.env.synth = crate::synth::SynthPreset::Paper;
        c
    }

    /// The default setting: TF in the state, devices drawn around the training devices
    /// ([`crate::synth::SynthPreset::Around`], chosen for its coverage of the *training* devices in the
    /// coverage report: closest-draw rho 0.845 vs 0.785 for the paper's Gaussians).
    pub fn default_with(seed: u64) -> TrainConfig {
        TrainConfig {
            total_steps: 500_000,
            seed,
            env: EnvConfig::default(),
            buffer: BufferConfig::default(),
            gae: GaeConfig::default(),
            ppo: PpoConfig::default(),
            net: NetConfig::default(),
        }
    }
}

/// One row of the training curves (means over the episodes that ended in one rollout).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CurveRow {
    /// Environment steps so far.
    pub steps: usize,
    /// Episodes finished in this rollout.
    pub episodes: usize,
    /// TF of the final cell.
    pub final_tf: f64,
    /// Normalised latency of the final cell.
    pub final_latency: f64,
    /// Latency percentile of the final cell on the episode's device.
    pub final_percentile: f64,
    /// Reward of the final cell.
    pub final_reward: f64,
    /// Ground-truth accuracy of the final cell (plots only; NaN without data; JSON writes
    /// NaN as `null`, which reads back as NaN).
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub final_accuracy: f64,
    /// The reference network's latency on the episode's device.
    pub reference_latency: f64,
    /// Sum of rewards over the episode.
    pub episode_return: f64,
    /// Clipped surrogate loss of the update.
    pub policy_loss: f32,
    /// Value loss.
    pub value_loss: f32,
    /// Mean policy entropy.
    pub entropy: f32,
    /// Fraction of clipped ratios.
    pub clip_frac: f32,
    /// Approximate KL between successive policies.
    pub approx_kl: f32,
    /// Environment steps per second so far.
    pub steps_per_second: f64,
}

fn nan() -> f64 {
    f64::NAN
}

fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

fn row(steps: usize, eps: &[EpisodeInfo], accuracy: Option<&[f32]>) -> CurveRow {
    let n = eps.len().max(1) as f64;
    let mean = |f: &dyn Fn(&EpisodeInfo) -> f64| eps.iter().map(f).sum::<f64>() / n;
    CurveRow {
        steps,
        episodes: eps.len(),
        final_tf: mean(&|e| e.tf),
        final_latency: mean(&|e| e.latency),
        final_percentile: mean(&|e| e.percentile),
        final_reward: mean(&|e| e.reward),
        final_accuracy: accuracy.map_or(f64::NAN, |a| mean(&|e| a[e.arch.code().get() as usize] as f64)),
        reference_latency: mean(&|e| e.reference_latency),
        episode_return: mean(&|e| e.ret),
        ..CurveRow::default()
    }
}

/// Sample an action from logits; returns (action, log-probability).
pub fn sample_action(logits: &[f32], rng: &mut ChaCha8Rng) -> (usize, f32) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let u: f64 = rng.random::<f64>() * z;
    let mut acc = 0.0;
    let mut pick = logits.len() - 1;
    for (i, &l) in logits.iter().enumerate() {
        acc += (l as f64 - max).exp();
        if u < acc {
            pick = i;
            break;
        }
    }
    (pick, (logits[pick] as f64 - max - z.ln()) as f32)
}

/// Where an interrupted run picks up: the steps it had done, its curves, and the weights
/// it had then (a safetensors file of [`ActorCritic::varmap`]).
#[derive(Clone, Debug)]
pub struct Resume {
    /// Environment steps done.
    pub steps: usize,
    /// Curve rows so far.
    pub curves: Vec<CurveRow>,
    /// The weights file.
    pub weights: std::path::PathBuf,
}

/// Train; `progress(steps, row)` is called after every update.
pub fn train(
    cfg: &TrainConfig,
    dist: &DeviceDistribution,
    tf: &TfTable,
    accuracy: Option<&[f32]>,
    mut progress: impl FnMut(usize, &CurveRow),
) -> candle_core::Result<(ActorCritic, Vec<CurveRow>)> {
    train_resumable(cfg, dist, tf, accuracy, None, |steps, rows, _| {
        if let Some(r) = rows.last() {
            progress(steps, r);
        }
        Ok(())
    })
}

/// [`train`] from a checkpoint (or from scratch with `None`); `after_update(steps, curves,
/// net)` is called after every update and may save a checkpoint (an error stops the run).
pub fn train_resumable(
    cfg: &TrainConfig,
    dist: &DeviceDistribution,
    tf: &TfTable,
    accuracy: Option<&[f32]>,
    resume: Option<Resume>,
    mut after_update: impl FnMut(usize, &[CurveRow], &ActorCritic) -> candle_core::Result<()>,
) -> candle_core::Result<(ActorCritic, Vec<CurveRow>)> {
    let mut net = ActorCritic::new(cfg.net.clone(), cfg.seed)?;
    let (mut steps, mut curves) = (0, Vec::new());
    if let Some(r) = resume {
        net.varmap.load(&r.weights)?;
        (steps, curves) = (r.steps, r.curves);
    }
    // From scratch the streams are the documented ones; a resumed run gets streams of its
    // own, fixed by the seed and the step it resumed at.
    let stream = cfg.seed.wrapping_add((steps as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut learner = Learner::new(&net, cfg.ppo)?;
    let envs = cfg.buffer.envs;
    let mut env = VecEnv::new(cfg.env.clone(), envs, tf, DeviceSource::Synthetic(dist, cfg.env.synth), stream);
    if cfg.env.episode == super::env::Episode::Budget {
        env = env.with_start(super::env::budget_start(dist, tf));
    }
    let mut act_rng = ChaCha8Rng::seed_from_u64(stream.wrapping_add(1));
    let mut mb_rng = ChaCha8Rng::seed_from_u64(stream.wrapping_add(2));
    let mut buf = RolloutBuffer::new(cfg.buffer);
    let (mut obs, mut rewards, mut dones) = (Vec::new(), vec![0f32; envs], vec![false; envs]);
    let mut actions = vec![0usize; envs];
    let first_step = steps;
    let start = std::time::Instant::now();
    while steps < cfg.total_steps {
        buf.clear();
        let mut finished = Vec::new();
        for _ in 0..cfg.buffer.steps {
            env.observe(&mut obs);
            let t = Tensor::from_slice(&obs, (envs, OBS_DIM), &Device::Cpu)?;
            let logits: Vec<Vec<f32>> = net.logits(&t)?.to_vec2()?;
            let values: Vec<f32> = net.value(&t)?.to_vec1()?;
            buf.obs.extend_from_slice(&obs);
            for e in 0..envs {
                let (a, lp) = sample_action(&logits[e], &mut act_rng);
                actions[e] = a;
                buf.actions.push(a as u32);
                buf.logp.push(lp);
                buf.values.push(values[e]);
            }
            env.step(&actions, &mut rewards, &mut dones, &mut finished);
            buf.rewards.extend_from_slice(&rewards);
            buf.dones.extend_from_slice(&dones);
            steps += envs;
        }
        env.observe(&mut obs);
        let last: Vec<f32> = net.value(&Tensor::from_slice(&obs, (envs, OBS_DIM), &Device::Cpu)?)?.to_vec1()?;
        let (adv, ret) = gae(cfg.gae, &buf.rewards, &buf.values, &buf.dones, &last, envs);
        let stats = learner.update(&net, &buf, &adv, &ret, &mut mb_rng)?;
        let mut r = row(steps, &finished, accuracy);
        let UpdateStats { policy_loss, value_loss, entropy, clip_frac, approx_kl } = stats;
        (r.policy_loss, r.value_loss, r.entropy, r.clip_frac, r.approx_kl) =
            (policy_loss, value_loss, entropy, clip_frac, approx_kl);
        r.steps_per_second = (steps - first_step) as f64 / start.elapsed().as_secs_f64().max(1e-9);
        curves.push(r);
        after_update(steps, &curves, &net)?;
    }
    Ok((net, curves))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::DeviceDistributionExt as _;

    #[test]
    fn same_seed_same_policy_bytes() {
        let dist = DeviceDistribution::embedded();
        let tf = TfTable::from_proxy(&crate::rl::StandInProxy, "stand-in");
        let mut cfg = TrainConfig::default_with(9);
        cfg.total_steps = 2 * 8 * 32;
        cfg.buffer = BufferConfig { envs: 8, steps: 32 };
        cfg.ppo.minibatch = 64;
        let bytes = |c: &TrainConfig| {
            let (net, curves) = train(c, &dist, &tf, None, |_, _| {}).unwrap();
            assert_eq!(curves.len(), 2);
            crate::rl::export::policy_bytes(&net, &[]).unwrap()
        };
        let a = bytes(&cfg);
        assert_eq!(a, bytes(&cfg));
        let init = crate::rl::export::policy_bytes(&ActorCritic::new(cfg.net.clone(), 9).unwrap(), &[]).unwrap();
        assert_ne!(a, init, "training changed nothing");
        cfg.seed = 10;
        assert_ne!(a, bytes(&cfg));
    }

    #[test]
    fn a_resumed_run_keeps_the_checkpoint_and_finishes_the_steps() {
        let dist = DeviceDistribution::embedded();
        let tf = TfTable::from_proxy(&crate::rl::StandInProxy, "stand-in");
        let mut cfg = TrainConfig::default_with(3);
        cfg.total_steps = 4 * 8 * 16;
        cfg.buffer = BufferConfig { envs: 8, steps: 16 };
        cfg.ppo.minibatch = 64;
        let dir = std::env::temp_dir().join(format!("simnas-resume-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let at = |k: usize| dir.join(format!("w{k}.safetensors"));
        let bytes = |net: &ActorCritic| crate::rl::export::policy_bytes(net, &[]).unwrap();
        let mut saved = Vec::new();
        let (full, curves) = train_resumable(&cfg, &dist, &tf, None, None, |steps, rows, net| {
            net.varmap.save(at(rows.len()))?;
            saved.push((steps, rows.to_vec()));
            Ok(())
        })
        .unwrap();
        assert_eq!(curves.len(), 4);
        // Resumed at the very end: nothing left to do, the saved weights are the result.
        let (steps, rows) = saved[3].clone();
        let end = Resume { steps, curves: rows, weights: at(4) };
        let (net, c) = train_resumable(&cfg, &dist, &tf, None, Some(end), |_, _, _| Ok(())).unwrap();
        assert_eq!((bytes(&net), c.len()), (bytes(&full), 4));
        // Resumed half-way: the first two rows are kept, two more updates run from there.
        let (steps, rows) = saved[1].clone();
        let half = Resume { steps, curves: rows.clone(), weights: at(2) };
        let mut updates = 0;
        let (net, c) = train_resumable(&cfg, &dist, &tf, None, Some(half), |_, _, _| {
            updates += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((updates, c.len(), c[1].steps, c[3].steps), (2, 4, rows[1].steps, cfg.total_steps));
        assert_eq!(c[0].final_reward.to_bits(), rows[0].final_reward.to_bits());
        let mut two = ActorCritic::new(cfg.net.clone(), cfg.seed).unwrap();
        two.varmap.load(at(2)).unwrap();
        assert_ne!(bytes(&net), bytes(&two), "the resumed run trained on");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn sampling_follows_the_softmax() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let logits = [0.0f32, 3f32.ln()];
        let n = 20_000;
        let ones = (0..n).filter(|_| sample_action(&logits, &mut rng).0 == 1).count();
        assert!((ones as f64 / n as f64 - 0.75).abs() < 0.015);
        let (a, lp) = sample_action(&logits, &mut rng);
        let want = if a == 1 { 0.75f32.ln() } else { 0.25f32.ln() };
        assert!((lp - want).abs() < 1e-6);
    }
}
