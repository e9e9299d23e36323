//! simnas host side: the `simnas` command's library.
//!
//! Features only add: the default build has everything `simnas search` and the other
//! measuring commands need; `train` adds candle and what is computed with it (the candle
//! reference network, scoring, PPO training, the candle bench); `onnx` adds tract, the ONNX
//! engine of the `simnas-onnx-time` measuring program.
//!
//! * [`nb201`] (`train`): the NB201 macro network in candle (reference for the edge
//!   runtime, and the network the training-free scores are computed on).
//! * [`data`]: benchmark files from a user-named data directory.
//! * [`device`]: things that measure latency (this CPU first).
//! * [`board`]: boards over a serial line (and the firmware in QEMU) as devices.
//! * [`mod@bench`] (`train`): the executor against candle on the identical network.
//! * [`export`]: a cell's executed network as ONNX (for the user's own runtime) or PyTorch.
//! * [`rl`] (`train`): the PPO meta-training of the controller, its export and evaluation.
//! * [`synth`]: synthetic devices: LUTs fitted to real devices, their distribution, coverage.
//! * [`latency`]: measured latency tables (CSV) and the benchmark device registry.
//! * [`score`]: training-free scores (FreeREA; computing them needs `train`), the
//!   whole-space score table and its report.
//! * [`search`]: test-time search under a probe budget, its baselines and the evaluation.
//! * [`output`]: the one writer of every file simnas produces, and the check of output
//!   paths before a command starts.
//! * [`stats`]: rank statistics (Spearman, Kendall, Pearson).

#![warn(missing_docs)]

#[cfg(feature = "train")]
pub mod bench;
pub mod board;
pub mod child;
pub mod data;
pub mod device;
pub mod export;
pub mod latency;
#[cfg(feature = "train")]
pub mod nb201;
pub mod output;
#[cfg(feature = "train")]
pub mod rl;
pub mod score;
pub mod search;
pub mod stats;
pub mod synth;
