//! The saved state of a training run, so a killed `simnas train` resumes instead of
//! starting over.
//!
//! A checkpoint is a directory holding `state.json` and the weights file it names
//! (`weights-<steps>.safetensors`, every parameter of the actor-critic):
//! ```text
//! {"format_version": 1, "config": "<TrainConfig as JSON>", "tf_source": str,
//!  "steps": int, "weights": "weights-<steps>.safetensors", "curves": [CurveRow, ...]}
//! ```
//! Saving writes the weights under a new name, then `state.json` through a temporary file
//! and a rename (the commit point), then removes older weights. A kill at any moment
//! leaves the previous checkpoint or the new one, whole. A checkpoint resumes only a run
//! with the identical configuration (compared as the exact JSON text) and TF source.

use super::net::ActorCritic;
use super::train::{CurveRow, Resume};
use crate::output::{self, OutputError};
use std::path::{Path, PathBuf};

/// Version of `state.json`.
pub const CHECKPOINT_VERSION: u32 = 1;
const STATE: &str = "state.json";

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    format_version: u32,
    config: String,
    tf_source: String,
    steps: usize,
    weights: String,
    curves: Vec<CurveRow>,
}

/// Problems saving or reading a checkpoint.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `state.json` is not a checkpoint this simnas reads.
    #[error("{path}: not a usable checkpoint ({msg}); delete it or pass --fresh")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The checkpoint belongs to a run with other settings.
    #[error("{path} is from a run with another {what}: rerun with the same flags, or pass --fresh to start over")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        what: &'static str,
    },
    /// The weights could not be read off the network.
    #[error("saving the weights to {path}: {source}")]
    Weights {
        /// The file.
        path: PathBuf,
        /// Why.
        source: candle_core::Error,
    },
    /// A checkpoint file could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// Save the run's state after `steps` steps into `dir` (created if needed).
pub fn save(
    dir: &Path,
    config: &str,
    tf_source: &str,
    steps: usize,
    curves: &[CurveRow],
    net: &ActorCritic,
) -> Result<(), CheckpointError> {
    output::prepare_dir(dir, &[])?;
    let weights = format!("weights-{steps}.safetensors");
    let final_path = dir.join(&weights);
    // Every parameter (actor and critic), in the safetensors layout `VarMap::load` reads.
    let tensors = net
        .named_vars()
        .into_iter()
        .map(|(n, v)| Ok((n, v.dims().to_vec(), v.flatten_all()?.to_vec1::<f32>()?)))
        .collect::<candle_core::Result<Vec<_>>>()
        .map_err(|source| CheckpointError::Weights { path: final_path.clone(), source })?;
    output::write(&final_path, &super::export::to_bytes(&tensors, &Default::default()))?;
    let state = State {
        format_version: CHECKPOINT_VERSION,
        config: config.to_string(),
        tf_source: tf_source.to_string(),
        steps,
        weights: weights.clone(),
        curves: curves.to_vec(),
    };
    let path = dir.join(STATE);
    let bytes = serde_json::to_vec(&state)
        .map_err(|e| CheckpointError::Malformed { path: path.clone(), msg: e.to_string() })?;
    output::write(&path, &bytes)?;
    // Older weights are no longer named by the state: remove them.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("weights-") && *name != *weights {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The checkpoint in `dir` for a run with `config` and `tf_source`; `None` when there is
/// none. A checkpoint of a different run is an error, never silently ignored or used.
pub fn load(dir: &Path, config: &str, tf_source: &str) -> Result<Option<Resume>, CheckpointError> {
    let path = dir.join(STATE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = crate::data::read_capped(&path, crate::data::MAX_READ_BYTES)
        .map_err(|source| CheckpointError::Io { path: path.clone(), source })?;
    let bad = |msg: String| CheckpointError::Malformed { path: path.clone(), msg };
    let state: State = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if state.format_version != CHECKPOINT_VERSION {
        return Err(bad(format!("format version {}, this simnas reads {CHECKPOINT_VERSION}", state.format_version)));
    }
    if state.config != config {
        return Err(CheckpointError::Mismatch { path, what: "training configuration" });
    }
    if state.tf_source != tf_source {
        return Err(CheckpointError::Mismatch { path, what: "score table" });
    }
    if state.weights.contains(['/', '\\']) {
        return Err(bad(format!("weights file {:?} is not a plain file name", state.weights)));
    }
    let weights = dir.join(&state.weights);
    if !weights.is_file() {
        return Err(bad(format!("its weights file {} is missing", weights.display())));
    }
    Ok(Some(Resume { steps: state.steps, curves: state.curves, weights }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::net::NetConfig;

    #[test]
    fn saved_weights_load_back_bit_for_bit() {
        let dir = std::env::temp_dir().join(format!("simnas-checkpoint-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let net = ActorCritic::new(NetConfig::default(), 7).unwrap();
        save(&dir, "{}", "stand-in", 64, &[], &net).unwrap();
        let r = load(&dir, "{}", "stand-in").unwrap().expect("a checkpoint");
        assert_eq!(r.steps, 64);
        let mut back = ActorCritic::new(NetConfig::default(), 8).unwrap();
        back.varmap.load(&r.weights).unwrap();
        let all = |n: &ActorCritic| {
            n.named_vars()
                .into_iter()
                .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(all(&back), all(&net), "actor and critic restored");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
