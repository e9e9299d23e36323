//! Export of a candidate's network for the user's own runtime: ONNX (to measure it) and a
//! PyTorch module (to train it).
//!
//! What is exported is the cell's **executed network** ([`Arch::executed`]: dead edges
//! removed, the network the search measures and picks); a disconnected cell has none and is
//! refused with [`ExportError::Disconnected`].
//!
//! The ONNX model ([`onnx`]) computes the function the edge-runtime executor computes on the
//! same dense parameters: the NB201 macro network in inference form (every BN folded into
//! the conv before it, the final BN as a per-channel affine), NCHW, input `input`
//! `[N, 3, R, R]`, output `logits` `[N, classes]`. Its weights are
//! [`edge_runtime::rng::fill_params`] of the seed, the numbers the host device times with:
//! the same seed gives the same bytes.
//!
//! The PyTorch source ([`pytorch`]) is the same macro network in training form (BN
//! modules, no weights): a starting point for training the pick.

pub mod onnx;
pub mod pytorch;

use crate::output::{self, OutputError};
use edge_runtime::layout::{NetConfig, ParamLayout};
use simnas_shared::Arch;
use std::path::Path;

/// The file formats a network is exported as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// ONNX model with seeded inference weights.
    Onnx,
    /// A self-contained PyTorch `nn.Module` source file (no weights).
    Pytorch,
}

impl Format {
    /// The format a file name implies: `.py` is PyTorch source, anything else ONNX.
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("py") => Format::Pytorch,
            _ => Format::Onnx,
        }
    }
}

/// Largest batch an exported model takes (the input tensor must stay addressable).
pub const MAX_BATCH: usize = 4096;

/// Why a network cannot be exported.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// No path from the input to the output: the network computes a constant.
    #[error("cell {arch} is disconnected (no path carries the input to the output): it has no network to export")]
    Disconnected {
        /// The cell as given.
        arch: String,
    },
    /// The network configuration is invalid.
    #[error("invalid network: {0}")]
    Config(#[from] edge_runtime::Error),
    /// A batch outside `1..=MAX_BATCH`.
    #[error("batch {batch}: an exported model takes 1 to {MAX_BATCH} images")]
    Batch {
        /// The batch asked for.
        batch: usize,
    },
    /// The parameter vector does not fit the configuration's layout.
    #[error("parameters: expected {expected} floats for this network, got {got}")]
    Params {
        /// Floats of the layout.
        expected: usize,
        /// Floats given.
        got: usize,
    },
    /// The file could not be written.
    #[error(transparent)]
    Output(#[from] OutputError),
}

/// What to export: a cell on one network configuration, a batch size and a weight seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportSpec {
    /// The cell (exported as its executed network).
    pub arch: Arch,
    /// The macro network.
    pub cfg: NetConfig,
    /// Images per inference (the input's first dimension).
    pub batch: usize,
    /// Seed of the weights ([`edge_runtime::rng::fill_params`]).
    pub seed: u64,
}

impl ExportSpec {
    /// Check the configuration and batch, and resolve the executed network.
    pub fn executed(&self) -> Result<Arch, ExportError> {
        ParamLayout::new(self.cfg)?;
        if self.batch == 0 || self.batch > MAX_BATCH {
            return Err(ExportError::Batch { batch: self.batch });
        }
        executed_network(self.arch)
    }

    /// The encoded ONNX model with seeded weights.
    pub fn onnx_bytes(&self) -> Result<Vec<u8>, ExportError> {
        let params = seeded_params(self.cfg, self.seed)?;
        onnx::encode(&onnx::model(self.cfg, self.arch, self.batch, &params, self.seed)?)
    }

    /// The PyTorch source.
    pub fn pytorch_source(&self) -> Result<String, ExportError> {
        self.executed()?;
        Ok(pytorch::source(self.cfg, self.arch))
    }

    /// The file's bytes in `format`.
    pub fn bytes(&self, format: Format) -> Result<Vec<u8>, ExportError> {
        match format {
            Format::Onnx => self.onnx_bytes(),
            Format::Pytorch => Ok(self.pytorch_source()?.into_bytes()),
        }
    }

    /// Write the network to `path` in `format` ([`output::write`]: what was there is
    /// replaced only by a complete file).
    pub fn write(&self, path: &Path, format: Format) -> Result<(), ExportError> {
        let bytes = self.bytes(format)?;
        output::write(path, &bytes)?;
        Ok(())
    }
}

/// The executed network of `arch`, or [`ExportError::Disconnected`].
pub fn executed_network(arch: Arch) -> Result<Arch, ExportError> {
    if !arch.is_connected() {
        return Err(ExportError::Disconnected { arch: arch.to_string() });
    }
    Ok(arch.executed())
}

/// The dense inference parameters of `cfg` seeded with `seed`: the host device's weights.
pub fn seeded_params(cfg: NetConfig, seed: u64) -> Result<Vec<f32>, ExportError> {
    let layout = ParamLayout::new(cfg)?;
    let mut params = vec![0.0; layout.total_len()];
    edge_runtime::rng::fill_params(&layout, seed, &mut params);
    Ok(params)
}
