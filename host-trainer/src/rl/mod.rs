//! Meta-training the history-based controller with PPO on synthetic devices.
//!
//! * [`mod@env`]: the MDP (state = cell + normalised latency, 30 edit actions, reward
//!   `w * TF + (1 - w) * (1 - l)`), vectorised, a fresh synthetic device at every reset.
//! * [`net`]: the actor-critic MLPs in candle (the actor is what the board runs).
//! * [`buffer`], [`gae`], [`ppo`]: the rollout buffer, generalised advantage estimation and
//!   the clipped PPO objective, each with its own config and hand-computed tests.
//! * [`train`]: the training loop and its curves; [`checkpoint`]: an interrupted run's
//!   saved state; [`export`]: the safetensors policy file; [`eval`]: trained vs untrained
//!   vs random walk on real latency tables.
//!
//! The observation layout and the latency normalisation live in
//! [`edge_runtime::policy::obs`], shared with the board, so both sides encode states the
//! same way by construction.

pub mod buffer;
pub mod checkpoint;
pub mod env;
pub mod eval;
pub mod export;
pub mod gae;
pub mod net;
pub mod plot;
pub mod ppo;
pub mod train;

use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// A training-free accuracy proxy in [0, 1] (the scoring issue's `ScoreTable`).
pub trait Proxy {
    /// TF of `arch`, in [0, 1].
    fn tf(&self, arch: Arch) -> f64;
}

impl Proxy for crate::score::ScoreTable {
    fn tf(&self, arch: Arch) -> f64 {
        crate::score::ScoreTable::tf(self, &arch)
    }
}

/// A proxy materialised for every cell, indexed by [`ArchCode`].
#[derive(Clone, Debug)]
pub struct TfTable {
    /// Where the values came from.
    pub source: String,
    vals: Vec<f32>,
}

impl TfTable {
    /// Evaluate `proxy` on every cell.
    pub fn from_proxy(proxy: &dyn Proxy, source: impl Into<String>) -> TfTable {
        let vals = ArchCode::all().map(|c| proxy.tf(Arch::from_code(c)).clamp(0.0, 1.0) as f32).collect();
        TfTable { source: source.into(), vals }
    }

    /// TF by code.
    pub fn get(&self, code: ArchCode) -> f32 {
        self.vals[code.get() as usize]
    }

    /// All values by code.
    pub fn values(&self) -> &[f32] {
        &self.vals
    }
}

/// A transparent stand-in proxy for tests and throughput runs: rewards convolutions on
/// live edges (what training-free scores broadly favour), zero for disconnected cells.
/// Never used for the shipped policy.
#[derive(Clone, Copy, Debug, Default)]
pub struct StandInProxy;

impl Proxy for StandInProxy {
    fn tf(&self, arch: Arch) -> f64 {
        use simnas_shared::Op;
        if !arch.is_connected() {
            return 0.0;
        }
        let s = 2.0 * arch.count(Op::NorConv3x3) as f64
            + 1.5 * arch.count(Op::NorConv1x1) as f64
            + 0.5 * arch.count(Op::SkipConnect) as f64
            + 0.25 * arch.count(Op::AvgPool3x3) as f64;
        // Diminishing returns, so a trade-off with latency exists.
        (s / 12.0).sqrt().min(1.0)
    }
}

const _: () = assert!(NUM_ARCHS == 15_625);
