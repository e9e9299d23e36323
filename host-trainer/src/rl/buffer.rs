//! Rollout storage: `steps` x `envs` transitions, step-major (index `t * envs + e`).

use edge_runtime::policy::OBS_DIM;

/// Rollout settings.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BufferConfig {
    /// Environments stepped together.
    pub envs: usize,
    /// Steps per environment per rollout.
    pub steps: usize,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig { envs: 16, steps: 128 }
    }
}

/// One rollout.
#[derive(Clone, Debug, Default)]
pub struct RolloutBuffer {
    /// Observations, `len * OBS_DIM`.
    pub obs: Vec<f32>,
    /// Action indices.
    pub actions: Vec<u32>,
    /// Log-probabilities of the actions under the behaviour policy.
    pub logp: Vec<f32>,
    /// Critic values.
    pub values: Vec<f32>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// Episode ended with this step.
    pub dones: Vec<bool>,
}

impl RolloutBuffer {
    /// An empty buffer sized for `cfg`.
    pub fn new(cfg: BufferConfig) -> RolloutBuffer {
        let n = cfg.envs * cfg.steps;
        RolloutBuffer {
            obs: Vec::with_capacity(n * OBS_DIM),
            actions: Vec::with_capacity(n),
            logp: Vec::with_capacity(n),
            values: Vec::with_capacity(n),
            rewards: Vec::with_capacity(n),
            dones: Vec::with_capacity(n),
        }
    }

    /// Forget the previous rollout.
    pub fn clear(&mut self) {
        self.obs.clear();
        self.actions.clear();
        self.logp.clear();
        self.values.clear();
        self.rewards.clear();
        self.dones.clear();
    }

    /// Transitions stored.
    pub fn len(&self) -> usize {
        self.actions.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}
