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
//!
//! **Budget episodes** ([`Episode::Budget`]): the episode a search poses. The state is the
//! executed network (what a search measures), the two reference cells count as measured,
//! the walk starts at [`VecEnv::with_start`]'s cell (the zero-shot prior's best, as at test
//! time; a random cell without one), and the reward of a step is how much it raises the
//! best reward among the distinct connected executed networks measured so far, so an
//! episode's return is its pick's reward minus the best of the references and the start:
//! the fitness of what the search would pick. A step to a network already measured, or to
//! a disconnected cell, earns nothing (a search does not spend a probe on it).

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
    /// What an episode is and what it rewards.
    #[serde(default)]
    pub episode: Episode,
}

impl Default for EnvConfig {
    fn default() -> Self {
        EnvConfig { episode_len: 50, weight: 0.5, obs_tf: true, synth: SynthPreset::Around, episode: Episode::Walk }
    }
}

/// What an episode is (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Episode {
    /// The paper's: `episode_len` edits from a random cell, each rewarded with its cell's reward.
    #[default]
    Walk,
    /// A search's: each step rewarded with its gain in the best measured reward.
    Budget,
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

/// Where a budget episode starts: the zero-shot prior's best executed network (the
/// training devices' mean per-op LUT in `dist`), as `controller-paper` starts a search.
pub fn budget_start(dist: &DeviceDistribution, tf: &TfTable) -> Arch {
    let lut = dist.per_op.mean();
    let top = edge_runtime::search::paper::prior_top::<1>(
        edge_runtime::search::Space::Executed,
        |a| lut.latency(a),
        |a| f64::from(tf.get(a.code())),
    );
    top[0].unwrap_or(Arch::uniform(Op::SkipConnect))
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
    /// Budget episodes: the best reward measured so far, the cell holding it, and the
    /// networks measured (compact codes).
    best: f64,
    best_arch: Arch,
    seen: Vec<u16>,
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
    start: Option<Arch>,
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
            start: None,
        };
        for _ in 0..n {
            let s = env.fresh();
            env.slots.push(s);
        }
        env
    }

    /// Budget episodes start at `start` (the zero-shot prior's best cell, as a search
    /// does); every environment is reset.
    pub fn with_start(mut self, start: Arch) -> VecEnv<'a> {
        self.start = Some(start);
        for i in 0..self.slots.len() {
            self.slots[i] = self.fresh();
        }
        self
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
        let arch = self.state_of(arch);
        let code = arch.code();
        let tf = if self.cfg.obs_tf { self.tf.get(code) } else { 0.0 };
        Step { arch, latency: device.norm(code), tf, action }
    }

    /// The state a cell puts the walk in: itself, or (budget episodes) its executed network.
    fn state_of(&self, arch: Arch) -> Arch {
        match self.cfg.episode {
            Episode::Walk => arch,
            Episode::Budget if arch.is_connected() => arch.executed(),
            Episode::Budget => arch,
        }
    }

    fn fresh(&mut self) -> Slot {
        let device = self.device();
        let code = ArchCode::new(self.rng.random_range(0..NUM_ARCHS as u16)).expect("code < 15625");
        let arch = match (self.cfg.episode, self.start) {
            (Episode::Budget, Some(a)) => a,
            _ => Arch::from_code(code),
        };
        let arch = self.state_of(arch);
        let mut history = History::new();
        history.push(self.step_of(&device, arch, None));
        let (mut best, mut best_arch, mut seen) = (f64::NEG_INFINITY, arch, Vec::new());
        if self.cfg.episode == Episode::Budget {
            for a in [Arch::uniform(Op::SkipConnect), Arch::uniform(Op::NorConv3x3), arch] {
                if !a.is_connected() || seen.contains(&a.code().get()) {
                    continue;
                }
                seen.push(a.code().get());
                let r = self.reward(&device, a);
                if r > best {
                    (best, best_arch) = (r, a);
                }
            }
        }
        Slot { device, arch, t: 0, ret: 0.0, history, best, best_arch, seen }
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
            let moved = self.slots[i].arch.apply(action);
            let arch = self.state_of(moved);
            let mut r = self.reward(&self.slots[i].device, arch);
            let step = self.step_of(&self.slots[i].device, arch, Some(action));
            let budget = self.cfg.episode == Episode::Budget;
            let s = &mut self.slots[i];
            if budget {
                // A search measures only new connected networks; the reward is the gain in
                // the best measured one.
                let code = arch.code().get();
                let new = arch.is_connected() && !s.seen.contains(&code);
                let gain = if new && r > s.best { r - s.best } else { 0.0 };
                if new {
                    s.seen.push(code);
                    if r > s.best {
                        (s.best, s.best_arch) = (r, arch);
                    }
                    s.arch = arch;
                    s.history.push(step);
                }
                r = gain;
            } else {
                s.arch = arch;
                s.history.push(step);
            }
            s.t += 1;
            s.ret += r;
            rewards[i] = r as f32;
            dones[i] = s.t >= self.cfg.episode_len;
            if dones[i] {
                // A budget episode reports its pick (the best measured network).
                let arch = if budget { s.best_arch } else { arch };
                let r = if budget { s.best } else { r };
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

    #[test]
    fn a_budget_episode_returns_its_picks_gain() {
        let tf = TfTable::from_proxy(&StandInProxy, "stand-in");
        let lat: Vec<f64> = ArchCode::all().map(|c| 1.0 + Arch::from_code(c).count(Op::NorConv3x3) as f64).collect();
        let devs = [DeviceLatency::new(lat)];
        let cfg = EnvConfig { episode_len: 4, episode: Episode::Budget, ..EnvConfig::default() };
        // A start with a dead edge: the state is its executed network.
        let start: Arch = "|nor_conv_1x1~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|none~2|".parse().unwrap();
        let mut env = VecEnv::new(cfg, 1, &tf, DeviceSource::Fixed(&devs), 1).with_start(start);
        assert_eq!(env.slots[0].arch, start.executed());
        let r0 = [Arch::uniform(Op::SkipConnect), Arch::uniform(Op::NorConv3x3), start.executed()]
            .iter()
            .map(|&a| env.reward(&devs[0], a))
            .fold(f64::NEG_INFINITY, f64::max);
        let (mut r, mut d, mut fin) = ([0f32; 1], [false; 1], vec![]);
        let mut total = 0.0;
        // From the start's executed network (one skip 0->3): edge 3 -> conv3x3 (new), back to
        // skip (measured: no gain, no move), edge 3 -> conv1x1 (new), edge 5 -> skip (dead:
        // the same network again).
        let mut moves = 0;
        for (k, a) in [3 * 5 + 3, 3 * 5 + 1, 3 * 5 + 2, 5 * 5 + 1].into_iter().enumerate() {
            let before = env.slots[0].arch;
            env.step(&[a], &mut r, &mut d, &mut fin);
            assert!(r[0] >= 0.0, "a gain is never negative");
            if k == 1 || k == 3 {
                assert_eq!(r[0], 0.0, "back to a measured network");
                // (after the last step the slot is reset to the start)
                assert!(d[0] || env.slots[0].arch == before, "no probe, no move");
            } else {
                assert_ne!(env.slots[0].arch, before);
                moves += 1;
            }
            total += f64::from(r[0]);
        }
        assert!(d[0] && fin.len() == 1);
        assert_eq!(moves, 2);
        // The return is the pick's reward minus the best of the references and the start.
        assert!((fin[0].reward - r0 - total).abs() < 1e-5, "{} vs {r0} + {total}", fin[0].reward);
        assert!((fin[0].reward - env.reward(&devs[0], fin[0].arch)).abs() < 1e-9);
    }
}
