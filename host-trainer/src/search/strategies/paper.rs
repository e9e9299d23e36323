//! `controller-paper`: the paper's meta-trained RL policy as a search strategy: edge-runtime's no_std walk
//! ([`edge_runtime::search::paper::Walker`]), the very code a board runs in its autonomous
//! mode, on the session's record and device ([`Session::record_and_device`]).
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

use super::super::{Context, SearchConfig, SearchError, Session, LO};
use super::Policy;
use edge_runtime::search::paper::{prior_top, Walker, PRIOR_TOP};
use simnas_shared::Arch;
use std::path::Path;

pub use edge_runtime::search::paper::{EPISODE_LEN, MAX_WALK_PROBES};

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

impl Policy for Controller {
    fn run(&self, cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
        let policy = edge_runtime::policy::Policy::from_bytes(&self.bytes)
            .map_err(|e| SearchError::Policy(format!("{}: {e}", self.source)))?;
        let tf = |a: Arch| ctx.tf[a.code().get() as usize];
        let start: Vec<Arch> = match ctx.prior {
            Some(lut) => prior_top::<PRIOR_TOP>(cfg.space, |a| lut.latency(a), tf).into_iter().flatten().collect(),
            None => vec![LO],
        };
        let walker = Walker { policy: &policy, obs_tf: self.obs_tf };
        let (probes, device) = s.record_and_device();
        match walker.walk(tf, &start, probes, device) {
            Ok(_) => Ok(()),
            Err(edge_runtime::search::SearchError::Device(e)) => Err(e),
            Err(edge_runtime::search::SearchError::Policy(e)) => {
                Err(SearchError::Policy(format!("{}: {e}", self.source)))
            }
            Err(edge_runtime::search::SearchError::ZeroBudget) => Err(SearchError::ZeroBudget),
            Err(e) => Err(SearchError::Policy(format!("{}: the walk refused to start: {e}", self.source))),
        }
    }
}
