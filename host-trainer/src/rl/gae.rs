//! Generalised advantage estimation (Schulman et al. 2016).
//!
//! For one environment, with `delta_t = r_t + gamma * V(s_{t+1}) * (1 - done_t) - V(s_t)`:
//! `A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}`, and the value target is
//! `R_t = A_t + V(s_t)`. `done_t` marks that the episode ended with step `t` (the next
//! state is a fresh episode's start, so nothing is bootstrapped across it).

/// GAE settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GaeConfig {
    /// Discount (the paper: 0.6).
    pub gamma: f64,
    /// GAE lambda: 1 = Monte-Carlo returns, 0 = one-step TD. 0.95 is the usual choice;
    /// with gamma = 0.6 the horizon is short either way.
    pub lambda: f64,
}

impl Default for GaeConfig {
    fn default() -> Self {
        GaeConfig { gamma: 0.6, lambda: 0.95 }
    }
}

/// Advantages and value targets for a rollout of `steps` x `envs` (step-major: index
/// `t * envs + e`). `last_values[e]` is `V` of the state after the last step.
pub fn gae(
    cfg: GaeConfig,
    rewards: &[f32],
    values: &[f32],
    dones: &[bool],
    last_values: &[f32],
    envs: usize,
) -> (Vec<f32>, Vec<f32>) {
    let steps = rewards.len() / envs.max(1);
    let mut adv = vec![0f32; rewards.len()];
    let mut next_adv = vec![0f64; envs];
    let mut next_value: Vec<f64> = last_values.iter().map(|&v| v as f64).collect();
    for t in (0..steps).rev() {
        for e in 0..envs {
            let i = t * envs + e;
            let live = if dones[i] { 0.0 } else { 1.0 };
            let delta = rewards[i] as f64 + cfg.gamma * next_value[e] * live - values[i] as f64;
            let a = delta + cfg.gamma * cfg.lambda * live * next_adv[e];
            adv[i] = a as f32;
            next_adv[e] = a;
            next_value[e] = values[i] as f64;
        }
    }
    let returns = adv.iter().zip(values).map(|(a, v)| a + v).collect();
    (adv, returns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_three_steps() {
        // One env, gamma 0.5, lambda 0.5, r = [1, 2, 3], V = [0.5, 1, 1.5], no done, V_last = 2.
        // delta_2 = 3 + 0.5*2 - 1.5 = 2.5;  A_2 = 2.5
        // delta_1 = 2 + 0.5*1.5 - 1 = 1.75; A_1 = 1.75 + 0.25*2.5 = 2.375
        // delta_0 = 1 + 0.5*1 - 0.5 = 1.0;  A_0 = 1.0 + 0.25*2.375 = 1.59375
        let cfg = GaeConfig { gamma: 0.5, lambda: 0.5 };
        let (a, r) = gae(cfg, &[1.0, 2.0, 3.0], &[0.5, 1.0, 1.5], &[false; 3], &[2.0], 1);
        assert_eq!(a, vec![1.59375, 2.375, 2.5]);
        assert_eq!(r, vec![2.09375, 3.375, 4.0]);
    }

    #[test]
    fn done_stops_bootstrapping_and_envs_are_independent() {
        // Two envs, step-major. Env 0 ends at t = 0; env 1 never ends.
        // gamma 0.5, lambda 1. Env 0: A_1 = 1 + 0.5*10 - 0 = 6; A_0 = 1 - 0 = 1 (done: no
        // bootstrap, no carry). Env 1: A_1 = 0 + 0.5*4 - 2 = 0; A_0 = 0 + 0.5*2 - 1 + 0.5*0 = 0.
        let cfg = GaeConfig { gamma: 0.5, lambda: 1.0 };
        let (a, _) =
            gae(cfg, &[1.0, 0.0, 1.0, 0.0], &[0.0, 1.0, 0.0, 2.0], &[true, false, false, false], &[10.0, 4.0], 2);
        assert_eq!(a, vec![1.0, 0.0, 6.0, 0.0]);
    }
}
