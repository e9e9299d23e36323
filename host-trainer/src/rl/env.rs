//! The HW-NAS MDP, vectorised.
//!
//! * State: the current cell, its normalised latency `l` and (optionally) its TF; the
//!   policy sees the last [`HISTORY`] states with the action into each
//!   ([`edge_runtime::policy::obs`]).
//! * Action: `edge * 5 + op`, put `op` on `edge` (30 actions; re-choosing the current op
//!   is allowed and leaves the cell unchanged).
//! * Reward after every step: `r(h) = w * TF(h) + (1 - w) * (1 - l(h))`.
//! * Latency normalisation: `l(h) = clamp((lat(h) - lat(lo)) / (lat(hi) - lat(lo)), 0, 1)`
//!   with `lo` = all-`skip_connect`, `hi` = all-`nor_conv_3x3`, the two reference cells a
//!   controller measures on a real device before it starts.
//! * Episodes: `episode_len` steps from a uniformly random cell; at every reset a new device
//!   is drawn from the [`DeviceSource`].

use super::TfTable;
use crate::latency::LatencyTable;
use crate::synth::{DeviceDistribution, DeviceDistributionExt as _, SynthPreset};
use edge_runtime::policy::obs::{normalise_latency, History, Step, HISTORY, OBS_DIM};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simnas_shared::{Action, Arch, ArchCode, Op, NUM_ARCHS};

/// Environment settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnvConfig {
    /// Steps per episode (T).
    pub episode_len: usize,
    /// Weight `w` of TF in the reward.
    pub weight: f64,
    /// Put TF in the observation (the paper's state has only the cell and its latency).
    pub obs_tf: bool,
    /// How synthetic devices are drawn.
    pub synth: SynthPreset,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig { episode_len: 50, weight: 0.5, obs_tf: true, synth: SynthPreset::Around }
    }
}

/// The reference network whose latency the curves track (the paper's Figure 5).
pub const REFERENCE_ARCH: &str =
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

/// A device as the environment sees it: a latency for every cell and the two references.
#[derive(Clone, Debug)]
pub struct DeviceLatency {
    /// Latency by [`ArchCode`] (device units: ms, or fractions of `hi` for synthetic ones).
    pub lat: Vec<f64>,
    /// Latency of all-`skip_connect`.
    pub lo: f64,
    /// Latency of all-`nor_conv_3x3`.
    pub hi: f64,
}

impl DeviceLatency {
    /// From a full latency vector.
    pub fn new(lat: Vec<f64>) -> DeviceLatency {
        let at = |op| lat[Arch::uniform(op).code().get() as usize];
        let (lo, hi) = (at(Op::SkipConnect), at(Op::NorConv3x3));
        DeviceLatency { lat, lo, hi }
    }

    /// From a measured table; unmeasured cells (BRP-NAS has none for the 341 disconnected
    /// cells) get the table's smallest measured latency. Returns `None` when either
    /// reference cell is unmeasured.
    pub fn from_table(t: &LatencyTable) -> Option<DeviceLatency> {
        let min = t.values().iter().flatten().copied().fold(f64::INFINITY, f64::min);
        t.get(Arch::uniform(Op::SkipConnect))?;
        t.get(Arch::uniform(Op::NorConv3x3))?;
        Some(DeviceLatency::new(t.values().iter().map(|v| v.unwrap_or(min)).collect()))
    }

    /// Normalised latency of a cell.
    pub fn norm(&self, code: ArchCode) -> f32 {
        normalise_latency(self.lat[code.get() as usize], self.lo, self.hi)
    }

    /// Fraction of cells strictly faster than `code` on this device.
    pub fn percentile(&self, code: ArchCode) -> f64 {
        let v = self.lat[code.get() as usize];
        self.lat.iter().filter(|&&x| x < v).count() as f64 / NUM_ARCHS as f64
    }
}

/// Where devices come from at each reset.
pub enum DeviceSource<'a> {
    /// A new synthetic device every episode.
    Synthetic(&'a DeviceDistribution, SynthPreset),
    /// Real devices, cycled in order.
    Fixed(&'a [DeviceLatency]),
}

/// What a finished episode reports.
#[derive(Clone, Debug, PartialEq)]
pub struct EpisodeInfo {
    /// The final cell.
    pub arch: Arch,
    /// Its TF.
    pub tf: f64,
    /// Its normalised latency.
    pub latency: f64,
    /// Its reward.
    pub reward: f64,
    /// Its latency percentile on the episode's device.
    pub percentile: f64,
    /// The reference network's latency on the episode's device (device units).
    pub reference_latency: f64,
    /// Sum of rewards.
    pub ret: f64,
}

struct Slot {
    device: DeviceLatency,
    arch: Arch,
    t: usize,
    ret: f64,
    history: History,
}

/// `n` environments stepped together.
pub struct VecEnv<'a> {
    cfg: EnvConfig,
    tf: &'a TfTable,
    source: DeviceSource<'a>,
    rng: ChaCha8Rng,
    slots: Vec<Slot>,
    next_fixed: usize,
    reference: ArchCode,
}

impl<'a> VecEnv<'a> {
    /// `n` environments, reset, seeded.
    pub fn new(cfg: EnvConfig, n: usize, tf: &'a TfTable, source: DeviceSource<'a>, seed: u64) -> VecEnv<'a> {
        let reference = Arch::parse(REFERENCE_ARCH).expect("REFERENCE_ARCH is a valid cell string").code();
        let mut env = VecEnv {
            cfg,
            tf,
            source,
            rng: ChaCha8Rng::seed_from_u64(seed),
            slots: Vec::with_capacity(n),
            next_fixed: 0,
            reference,
        };
        for _ in 0..n {
            let s = env.fresh();
            env.slots.push(s);
        }
        env
    }

    /// Number of environments.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no environments.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn device(&mut self) -> DeviceLatency {
        match &self.source {
            DeviceSource::Synthetic(d, p) => DeviceLatency::new(d.sample(*p, &mut self.rng).latency),
            DeviceSource::Fixed(list) => {
                let d = list[self.next_fixed % list.len()].clone();
                self.next_fixed += 1;
                d
            }
        }
    }

    fn step_of(&self, device: &DeviceLatency, arch: Arch, action: Option<Action>) -> Step {
        let code = arch.code();
        let tf = if self.cfg.obs_tf { self.tf.get(code) } else { 0.0 };
        Step { arch, latency: device.norm(code), tf, action }
    }

    fn fresh(&mut self) -> Slot {
        let device = self.device();
        let code = ArchCode::new(self.rng.random_range(0..NUM_ARCHS as u16)).expect("code < 15625");
        let arch = Arch::from_code(code);
        let mut history = History::new();
        history.push(self.step_of(&device, arch, None));
        Slot { device, arch, t: 0, ret: 0.0, history }
    }

    /// Reward of `arch` on `device`.
    pub fn reward(&self, device: &DeviceLatency, arch: Arch) -> f64 {
        let code = arch.code();
        let w = self.cfg.weight;
        w * self.tf.get(code) as f64 + (1.0 - w) * (1.0 - device.norm(code) as f64)
    }

    /// Observations of every environment, `n * OBS_DIM` values.
    pub fn observe(&self, out: &mut Vec<f32>) {
        out.resize(self.slots.len() * OBS_DIM, 0.0);
        let mut buf = [0f32; OBS_DIM];
        for (i, s) in self.slots.iter().enumerate() {
            s.history.encode(&mut buf);
            out[i * OBS_DIM..(i + 1) * OBS_DIM].copy_from_slice(&buf);
        }
    }

    /// Apply one action per environment. Returns per-environment (reward, done); finished
    /// episodes are reported through `finished` and reset.
    pub fn step(
        &mut self,
        actions: &[usize],
        rewards: &mut [f32],
        dones: &mut [bool],
        finished: &mut Vec<EpisodeInfo>,
    ) {
        for i in 0..self.slots.len() {
            let action = Action::from_index(actions[i] as u8).expect("action index < 30");
            let arch = self.slots[i].arch.apply(action);
            let r = self.reward(&self.slots[i].device, arch);
            let step = self.step_of(&self.slots[i].device, arch, Some(action));
            let s = &mut self.slots[i];
            s.arch = arch;
            s.t += 1;
            s.ret += r;
            s.history.push(step);
            rewards[i] = r as f32;
            dones[i] = s.t >= self.cfg.episode_len;
            if dones[i] {
                let code = arch.code();
                finished.push(EpisodeInfo {
                    arch,
                    tf: self.tf.get(code) as f64,
                    latency: s.device.norm(code) as f64,
                    reward: r,
                    percentile: s.device.percentile(code),
                    reference_latency: s.device.lat[self.reference.get() as usize],
                    ret: s.ret,
                });
                self.slots[i] = self.fresh();
            }
        }
    }

    /// History length the observation carries.
    pub const HISTORY: usize = HISTORY;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::StandInProxy;

    #[test]
    fn reward_and_reset_on_a_fixed_device() {
        let tf = TfTable::from_proxy(&StandInProxy, "stand-in");
        // Latency = number of conv3x3 edges + 1: lo = 1, hi = 7.
        let lat: Vec<f64> = ArchCode::all().map(|c| 1.0 + Arch::from_code(c).count(Op::NorConv3x3) as f64).collect();
        let devs = [DeviceLatency::new(lat)];
        let cfg = EnvConfig { episode_len: 2, ..EnvConfig::default() };
        let mut env = VecEnv::new(cfg, 1, &tf, DeviceSource::Fixed(&devs), 1);
        let start = env.slots[0].arch;
        let conv_all = Arch::uniform(Op::NorConv3x3);
        // Hand value: TF(all conv3x3) = sqrt(12/12) = 1, l = 1: r = 0.5 * 1 + 0.5 * 0 = 0.5.
        assert!((env.reward(&devs[0], conv_all) - 0.5).abs() < 1e-6);
        let (mut r, mut d, mut fin) = ([0f32; 1], [false; 1], vec![]);
        env.step(&[3], &mut r, &mut d, &mut fin); // edge 0 -> conv3x3
        let a1 = start.apply(Action::from_index(3).unwrap());
        assert!(!d[0] && fin.is_empty());
        assert!((r[0] as f64 - env.reward(&devs[0], a1)).abs() < 1e-6);
        let mut obs = vec![];
        env.observe(&mut obs);
        assert_eq!(obs.len(), OBS_DIM);
        assert_eq!(obs[3], 1.0); // slot 0, edge 0 = conv3x3
        env.step(&[5 * 5 + 1], &mut r, &mut d, &mut fin); // edge 5 -> skip
        assert!(d[0] && fin.len() == 1);
        let a2 = a1.apply(Action::from_index(26).unwrap());
        assert_eq!(fin[0].arch, a2);
        assert_eq!(env.slots[0].t, 0); // reset
    }
}
