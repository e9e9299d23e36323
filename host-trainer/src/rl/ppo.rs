//! The clipped PPO objective (Schulman et al. 2017) and one update over a rollout.
//!
//! For a minibatch with actions `a`, behaviour log-probabilities `logp_old`, advantages `A`
//! (normalised to zero mean, unit std per minibatch) and value targets `R`:
//!
//! ```text
//! ratio    = exp(logp(a) - logp_old)
//! L_clip   = -mean( min(ratio * A, clamp(ratio, 1 - eps, 1 + eps) * A) )
//! L_value  =  mean( (V(s) - R)^2 )
//! H        = -mean( sum_a p(a) log p(a) )
//! loss     = L_clip + vf_coef * L_value - ent_coef * H
//! ```
//!
//! The update runs `epochs` passes over the rollout in shuffled minibatches (seeded), with
//! Adam and global gradient-norm clipping.

use super::buffer::RolloutBuffer;
use super::net::ActorCritic;
use candle_core::{backprop::GradStore, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use edge_runtime::policy::OBS_DIM;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// PPO settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PpoConfig {
    /// Clip range epsilon (the paper: 0.2).
    pub clip: f64,
    /// Value-loss weight.
    pub vf_coef: f64,
    /// Entropy-bonus weight.
    pub ent_coef: f64,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Minibatch size.
    pub minibatch: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Global gradient-norm limit.
    pub max_grad_norm: f64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        PpoConfig { clip: 0.2, vf_coef: 0.5, ent_coef: 0.01, epochs: 4, minibatch: 256, lr: 3e-4, max_grad_norm: 0.5 }
    }
}

/// The loss and its parts for one minibatch.
pub struct Losses {
    /// The scalar to minimise.
    pub total: Tensor,
    /// Clipped surrogate loss.
    pub policy: f32,
    /// Value loss.
    pub value: f32,
    /// Mean entropy.
    pub entropy: f32,
    /// Fraction of samples whose ratio left [1 - eps, 1 + eps].
    pub clip_frac: f32,
    /// Approximate KL(old || new): mean(logp_old - logp).
    pub approx_kl: f32,
}

/// The PPO loss from logits `[B, A]`, values `[B]`, actions `[B]` (u32), `logp_old`,
/// `adv` (already normalised) and `returns` (all `[B]`).
pub fn ppo_loss(
    cfg: &PpoConfig,
    logits: &Tensor,
    values: &Tensor,
    actions: &Tensor,
    logp_old: &Tensor,
    adv: &Tensor,
    returns: &Tensor,
) -> candle_core::Result<Losses> {
    let logp_all = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    let logp = logp_all.gather(&actions.unsqueeze(1)?, 1)?.squeeze(1)?;
    let ratio = (&logp - logp_old)?.exp()?;
    let unclipped = (&ratio * adv)?;
    let clipped = (ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)? * adv)?;
    let policy = unclipped.minimum(&clipped)?.mean_all()?.neg()?;
    let value = (values - returns)?.sqr()?.mean_all()?;
    let entropy = (logp_all.exp()? * &logp_all)?.sum(D::Minus1)?.mean_all()?.neg()?;
    let total = ((&policy + (&value * cfg.vf_coef)?)? - (&entropy * cfg.ent_coef)?)?;
    let r = ratio.to_vec1::<f32>()?;
    let clip_frac = r.iter().filter(|&&x| (x as f64 - 1.0).abs() > cfg.clip).count() as f32 / r.len().max(1) as f32;
    let approx_kl = (logp_old - &logp)?.mean_all()?.to_scalar::<f32>()?;
    Ok(Losses {
        policy: policy.to_scalar()?,
        value: value.to_scalar()?,
        entropy: entropy.to_scalar()?,
        clip_frac,
        approx_kl,
        total,
    })
}

/// Means of the loss parts over an update.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct UpdateStats {
    /// Clipped surrogate loss.
    pub policy_loss: f32,
    /// Value loss.
    pub value_loss: f32,
    /// Entropy.
    pub entropy: f32,
    /// Clip fraction.
    pub clip_frac: f32,
    /// Approximate KL.
    pub approx_kl: f32,
}

/// Adam over the actor-critic.
pub struct Learner {
    opt: AdamW,
    vars: Vec<Var>,
    cfg: PpoConfig,
}

impl Learner {
    /// An optimiser for `net`'s parameters (plain Adam: no weight decay).
    pub fn new(net: &ActorCritic, cfg: PpoConfig) -> candle_core::Result<Learner> {
        let vars: Vec<Var> = net.named_vars().into_iter().map(|(_, v)| v).collect();
        let opt = AdamW::new(vars.clone(), ParamsAdamW { lr: cfg.lr, weight_decay: 0.0, ..Default::default() })?;
        Ok(Learner { opt, vars, cfg })
    }

    fn clip_grads(&self, grads: &mut GradStore) -> candle_core::Result<()> {
        let mut sq = 0f64;
        for v in &self.vars {
            if let Some(g) = grads.get(v) {
                sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
            }
        }
        let norm = sq.sqrt();
        if norm > self.cfg.max_grad_norm {
            let s = self.cfg.max_grad_norm / (norm + 1e-6);
            for v in &self.vars {
                if let Some(g) = grads.remove(v) {
                    grads.insert(v, (g * s)?);
                }
            }
        }
        Ok(())
    }

    /// PPO epochs over `buf` with advantages `adv` and targets `ret`.
    pub fn update(
        &mut self,
        net: &ActorCritic,
        buf: &RolloutBuffer,
        adv: &[f32],
        ret: &[f32],
        rng: &mut ChaCha8Rng,
    ) -> candle_core::Result<UpdateStats> {
        let n = buf.len();
        let mut idx: Vec<usize> = (0..n).collect();
        let mut stats = UpdateStats::default();
        let mut batches = 0f32;
        let dev = Device::Cpu;
        for _ in 0..self.cfg.epochs {
            idx.shuffle(rng);
            for mb in idx.chunks(self.cfg.minibatch) {
                let b = mb.len();
                let mut obs = Vec::with_capacity(b * OBS_DIM);
                for &i in mb {
                    obs.extend_from_slice(&buf.obs[i * OBS_DIM..(i + 1) * OBS_DIM]);
                }
                let a: Vec<f32> = mb.iter().map(|&i| adv[i]).collect();
                let mean = a.iter().sum::<f32>() / b as f32;
                let std = (a.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / b as f32).sqrt();
                let a: Vec<f32> = a.iter().map(|x| (x - mean) / (std + 1e-8)).collect();
                let obs = Tensor::from_vec(obs, (b, OBS_DIM), &dev)?;
                let actions = Tensor::from_vec(mb.iter().map(|&i| buf.actions[i]).collect::<Vec<u32>>(), b, &dev)?;
                let logp_old = Tensor::from_vec(mb.iter().map(|&i| buf.logp[i]).collect::<Vec<f32>>(), b, &dev)?;
                let adv_t = Tensor::from_vec(a, b, &dev)?;
                let ret_t = Tensor::from_vec(mb.iter().map(|&i| ret[i]).collect::<Vec<f32>>(), b, &dev)?;
                let l =
                    ppo_loss(&self.cfg, &net.logits(&obs)?, &net.value(&obs)?, &actions, &logp_old, &adv_t, &ret_t)?;
                let mut grads = l.total.backward()?;
                self.clip_grads(&mut grads)?;
                self.opt.step(&grads)?;
                stats.policy_loss += l.policy;
                stats.value_loss += l.value;
                stats.entropy += l.entropy;
                stats.clip_frac += l.clip_frac;
                stats.approx_kl += l.approx_kl;
                batches += 1.0;
            }
        }
        let d = batches.max(1.0);
        Ok(UpdateStats {
            policy_loss: stats.policy_loss / d,
            value_loss: stats.value_loss / d,
            entropy: stats.entropy / d,
            clip_frac: stats.clip_frac / d,
            approx_kl: stats.approx_kl / d,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, v.len(), &Device::Cpu).unwrap()
    }

    /// Two samples, two actions. Logits [0, ln 3]: p = [1/4, 3/4], log p = [-1.386294, -0.287682].
    /// Sample 0 takes action 1 with logp_old = ln(0.5) = -0.693147: ratio = 0.75/0.5 = 1.5,
    ///   A = +1: min(1.5 * 1, clamp(1.5, 0.8, 1.2) * 1) = 1.2 (clipped).
    /// Sample 1 takes action 0 with logp_old = ln(0.5): ratio = 0.25/0.5 = 0.5,
    ///   A = -2: min(0.5 * -2, 0.8 * -2) = min(-1, -1.6) = -1.6 (clipped, pessimistic side).
    /// L_clip = -(1.2 - 1.6)/2 = 0.2. Without the clip it would be -(1.5 - 1.0)/2 = -0.25.
    /// Value: V = [1, 0], R = [0, 2]: mean((1)^2, (-2)^2) = 2.5.
    /// Entropy per sample: -(0.25 ln 0.25 + 0.75 ln 0.75) = 0.562335.
    /// total = 0.2 + 0.5 * 2.5 - 0.01 * 0.562335 = 1.444377.
    #[test]
    fn clipped_objective_by_hand() {
        let cfg = PpoConfig::default();
        let l3 = 3f32.ln();
        let logits = Tensor::from_slice(&[0.0, l3, 0.0, l3], (2, 2), &Device::Cpu).unwrap();
        let actions = Tensor::from_slice(&[1u32, 0], 2, &Device::Cpu).unwrap();
        let half = 0.5f32.ln();
        let l =
            ppo_loss(&cfg, &logits, &t(&[1.0, 0.0]), &actions, &t(&[half, half]), &t(&[1.0, -2.0]), &t(&[0.0, 2.0]))
                .unwrap();
        assert!((l.policy - 0.2).abs() < 1e-5, "{}", l.policy);
        assert!((l.value - 2.5).abs() < 1e-6);
        assert!((l.entropy - 0.562335).abs() < 1e-5);
        assert_eq!(l.clip_frac, 1.0);
        assert!((l.total.to_scalar::<f32>().unwrap() - 1.444377).abs() < 1e-5);
        // approx KL = mean(logp_old - logp) = (-0.693147 + 0.287682 - 0.693147 + 1.386294)/2 = 0.143841.
        assert!((l.approx_kl - 0.143841).abs() < 1e-5);
    }

    /// Inside the clip range the surrogate is the plain ratio-weighted advantage, and its
    /// gradient flows; outside, on the clipped side, the gradient is zero.
    #[test]
    fn gradient_vanishes_only_when_clipped() {
        let cfg = PpoConfig { vf_coef: 0.0, ent_coef: 0.0, ..PpoConfig::default() };
        let actions = Tensor::from_slice(&[0u32], 1, &Device::Cpu).unwrap();
        let grad_of = |logp_old: f32, adv: f32| {
            let x = Var::from_slice(&[0.0f32, 0.0], (1, 2), &Device::Cpu).unwrap();
            let l =
                ppo_loss(&cfg, x.as_tensor(), &t(&[0.0]), &actions, &t(&[logp_old]), &t(&[adv]), &t(&[0.0])).unwrap();
            let g = l.total.backward().unwrap();
            let v: Vec<f32> = g.get(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
            (l.policy, v[0])
        };
        // p(a) = 0.5. logp_old = ln 0.5: ratio 1, L = -A = -1; dL/dlogit0 = -A * p(1 - p)/p * ... = -0.5.
        let (loss, g) = grad_of(0.5f32.ln(), 1.0);
        assert!((loss + 1.0).abs() < 1e-6 && (g + 0.5).abs() < 1e-6, "{loss} {g}");
        // logp_old = ln 0.25: ratio 2 > 1.2 with A > 0: clipped, L = -1.2, no gradient.
        let (loss, g) = grad_of(0.25f32.ln(), 1.0);
        assert!((loss + 1.2).abs() < 1e-6 && g.abs() < 1e-7, "{loss} {g}");
        // ratio 2 with A < 0: the unclipped term is the minimum, gradient flows: L = 2.
        let (loss, g) = grad_of(0.25f32.ln(), -1.0);
        assert!((loss - 2.0).abs() < 1e-5 && g.abs() > 0.1, "{loss} {g}");
    }
}
