//! The meta-trained controller as a search strategy, run by the edge runtime's no_std
//! policy inference ([`edge_runtime::policy`]) exactly as a board runs it.
//!
//! At test time, with a budget of `B` probes:
//! 1. measure the two reference cells `lo` (all-`skip_connect`) and `hi`
//!    (all-`nor_conv_3x3`): the latency normalisation of training;
//! 2. start the episode at the cell the zero-shot prior ranks first (the training devices'
//!    mean LUT and TF, as `lut-prior`; the same cell on every device, one probe), or at `lo`
//!    (already measured) without a prior. Measured on the training devices at 10 probes:
//!    0.956 of the oracle from the prior's cell, 0.950 from `lo` (at 5 probes on the
//!    validation devices: 0.954 vs 0.845);
//! 3. each step, encode the last 5 (state, action) pairs, take the policy's most likely
//!    action among those that change the cell and lead to a cell not measured yet (a probe
//!    is never spent twice, and a revisit would teach the policy nothing new), measure the
//!    new cell, and push it into the history with its normalised latency (and TF, if the
//!    policy was trained with TF in its state);
//! 4. stop when the budget is spent or after the training episode length (50 steps).
//!
//! The pick is the best measured cell under the objective ([`super::pick`]); the walk's
//! cells are the candidates. A cell a table device has no value for is masked for the rest
//! of the episode (no budget spent). The controller is trained for the weighted objective;
//! in constrained mode it walks the same way and the pick is the best-TF feasible cell it
//! measured.

use super::strategies::Policy;
use super::{Ask, Context, Normaliser, SearchConfig, SearchError, Session, LO};
use edge_runtime::policy::{History, Step, OBS_DIM};
use std::path::Path;

/// Steps of a training episode (the bound on a walk that finds no new cells).
pub const EPISODE_LEN: usize = 50;

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
    fn run(&self, _cfg: &SearchConfig, ctx: &Context, s: &mut Session) -> Result<(), SearchError> {
        let policy = edge_runtime::policy::Policy::from_bytes(&self.bytes)
            .map_err(|e| SearchError::Policy(format!("{}: {e}", self.source)))?;
        s.measure_references()?;
        let start = ctx.prior.and_then(|lut| super::strategies::lut::prior_top(lut, ctx.tf, s)).unwrap_or(LO);
        s.measure(start)?; // a budget of 1: the start alone (else already measured, free)
        let mut cur = start;
        let Some(mut lat) = s.known(start) else { return Ok(()) };
        let tf = |a: simnas_shared::Arch| if self.obs_tf { ctx.tf[a.code().get() as usize] as f32 } else { 0.0 };
        let l = |s: &Session, ms: f64| match Normaliser::of(s.probes()) {
            Some(n) => edge_runtime::policy::normalise_latency(ms, n.lo, n.hi),
            None => 0.0,
        };
        let mut history = History::new();
        history.push(Step { arch: cur, latency: l(s, lat), tf: tf(cur), action: None });
        let mut obs = [0f32; OBS_DIM];
        for _ in 0..EPISODE_LEN {
            if s.remaining() == 0 {
                break;
            }
            history.encode(&mut obs);
            let allowed = |a: simnas_shared::Action| cur.ops[a.edge.index()] != a.op && !s.tried(cur.apply(a));
            let action =
                policy.greedy(&obs, allowed).map_err(|e| SearchError::Policy(format!("{}: {e}", self.source)))?;
            let Some(action) = action else { break };
            let next = cur.apply(action);
            match s.measure(next)? {
                Ask::Latency(ms) => lat = ms,
                Ask::Missing => continue,
                Ask::Exhausted => break,
            }
            cur = next;
            history.push(Step { arch: cur, latency: l(s, lat), tf: tf(cur), action: Some(action) });
        }
        Ok(())
    }
}
