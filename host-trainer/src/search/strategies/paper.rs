//! `controller-paper`: the paper's meta-trained RL policy as a search strategy: edge-runtime's no_std walk
//! ([`edge_runtime::search::Walker`]), the very code a board runs in its autonomous mode,
//! with the host's [`Session`] as the device.
//!
//! At test time, with a budget of `B` probes:
//! 1. measure the two reference cells `lo` (all-`skip_connect`) and `hi`
//!    (all-`nor_conv_3x3`): the latency normalisation of training;
//! 2. start the episode at the cell the zero-shot prior ranks first (the training devices'
//!    mean LUT and TF, as `lut-prior`; the same cell on every device, one probe), or at `lo`
//!    (already measured) without a prior (the choice and its evidence:
//!    `artifacts/policy/README.md`);
//! 3. each step, encode the last 5 (state, action) pairs, take the policy's most likely
//!    action among those that change the cell and lead to a cell not measured yet (a probe
//!    is never spent twice, and a revisit would teach the policy nothing new), measure the
//!    new cell, and push it into the history with its normalised latency (and TF, if the
//!    policy was trained with TF in its state);
//! 4. stop when the budget is spent or after the training episode length (50 steps).
//!
//! The pick is the best measured cell under the objective ([`crate::search::pick`], edge-runtime's
//! too); the walk's cells are the candidates. A cell a table device has no value for is
//! masked for the rest of the episode (no budget spent). The controller is trained for the
//! weighted objective; in constrained mode it walks the same way and the pick is the
//! best-TF feasible cell it measured.

use super::super::{Ask, Context, Measured, SearchConfig, SearchError, Session, LO};
use super::Policy;
use edge_runtime::search::{prior_top, Answer, Probes, WalkError, Walker, PRIOR_TOP};
use simnas_shared::Arch;
use std::path::Path;

pub use edge_runtime::search::{EPISODE_LEN, MAX_WALK_PROBES};

/// A policy file, validated.
#[derive(Clone, Debug)]
pub struct Controller {
    bytes: Vec<u8>,
    /// TF was part of the training state (the metadata's `train_config.env.obs_tf`).
    pub obs_tf: bool,
    /// Where it came from.
    pub source: String,
}

impl Controller {
    /// Read and validate a policy file.
    pub fn load(path: &Path) -> Result<Controller, SearchError> {
        let bytes = crate::data::read_capped(path, crate::data::MAX_READ_BYTES)
            .map_err(|e| SearchError::Policy(format!("{}: {e}", path.display())))?;
        Controller::from_bytes(bytes, path.display().to_string())
    }

    /// Validate policy bytes (`source` names them in messages).
    pub fn from_bytes(bytes: Vec<u8>, source: String) -> Result<Controller, SearchError> {
        edge_runtime::policy::Policy::from_bytes(&bytes).map_err(|e| SearchError::Policy(format!("{source}: {e}")))?;
        let obs_tf = train_config(&bytes)
            .and_then(|c| c.pointer("/env/obs_tf").and_then(serde_json::Value::as_bool))
            .unwrap_or(true);
        Ok(Controller { bytes, obs_tf, source })
    }
}

/// The `train_config` metadata entry, parsed (`None` if absent).
fn train_config(bytes: &[u8]) -> Option<serde_json::Value> {
    let len = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(bytes.get(8..8usize.checked_add(len)?)?).ok()?;
    serde_json::from_str(header.pointer("/__metadata__/train_config")?.as_str()?).ok()
}

/// The session as the walk's device.
struct SessionDevice<'s, 'a>(&'s mut Session<'a>);

impl edge_runtime::search::Device for SessionDevice<'_, '_> {
    type Error = SearchError;
    fn measure(&mut self, arch: Arch, _step: usize) -> Result<Answer, SearchError> {
        Ok(match self.0.measure(arch)? {
            Ask::Latency(ms) => Answer::Latency(ms),
            Ask::Missing => Answer::Missing,
            Ask::Exhausted => Answer::Exhausted,
        })
    }
}

impl Policy for Controller {
    fn run(&self, cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
        let policy = edge_runtime::policy::Policy::from_bytes(&self.bytes)
            .map_err(|e| SearchError::Policy(format!("{}: {e}", self.source)))?;
        let tf = |a: Arch| ctx.tf[a.code().get() as usize];
        let start: Vec<Arch> = match ctx.prior {
            Some(lut) => prior_top::<PRIOR_TOP>(cfg.space, |a| lut.latency(a), tf).into_iter().flatten().collect(),
            None => vec![LO],
        };
        // A walk measures at most the references, the start and one cell per step.
        let budget = cfg.budget.min(MAX_WALK_PROBES);
        let mut buf = vec![Measured { step: 0, arch: LO, latency_ms: 0.0 }; budget];
        let walker = Walker { policy: &policy, obs_tf: self.obs_tf };
        let walk = Probes::new(&mut buf, budget)
            .map(|p| p.in_space(cfg.space))
            .and_then(|mut probes| walker.walk(tf, &start, &mut probes, &mut SessionDevice(s)));
        match walk {
            Ok(_) => Ok(()),
            Err(WalkError::Device(e)) => Err(e),
            Err(WalkError::Policy(e)) => Err(SearchError::Policy(format!("{}: {e}", self.source))),
            Err(WalkError::ZeroBudget) => Err(SearchError::ZeroBudget),
            Err(e) => Err(SearchError::Policy(format!("{}: the walk refused to start: {e}", self.source))),
        }
    }
}
