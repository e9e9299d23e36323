//! The simnas edge runtime: an NB201 network executor that runs on a microcontroller.
//!
//! * [`layout`]: the macro network's configuration ([`NetConfig`]) and parameter layout.
//! * [`Plan`]: a network for one cell, validated and sized once; [`Executor`] runs it over a
//!   caller-given arena (no allocator), never allocating and never panicking.
//! * [`params`]: where weights come from: a dense vector, or a small shared bank for boards
//!   too small to hold every weight.
//! * [`search`]: the search core both controllers share: the one probe record
//!   ([`search::Probes`]) over a [`search::Device`], the pick, and the controllers' loops
//!   ([`search::calibrated`], the default; [`search::paper`], the paper's RL walk).
//! * [`calib`]: the calibrated controller's latency model, a per-op LUT with a meta-learned
//!   prior updated by each probe.
//! * [`policy`]: the paper controller's actor read from safetensors bytes, and its observation.
//! * [`tf16`]: the quantised proxy-score table read in place.
//! * [`check`]: the conv kernel this target runs, checked against the naive [`reference`](mod@reference)
//!   on seeded data (the board runs it too: `firmware-bench`'s `kernel-check`).
//! * [`timing`]: the [`Timer`] trait and robust in-place measurement (warm-up, repeats,
//!   median, spread).
//!
//! Layout: activations are [`Layout::Hwc`] (channel innermost), conv weights
//! `[kh][kw][cin][cout]`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![warn(missing_docs)]
// Index loops mirror the tensor math (node j, channel co) more plainly than iterator chains.
#![allow(clippy::needless_range_loop)]

pub mod calib;
pub mod check;
mod error;
mod exec;
mod kernels;
pub mod layout;
pub mod params;
mod plan;
pub mod policy;
pub mod rng;
pub mod search;
pub mod tf16;
pub mod timing;

#[cfg(feature = "std")]
pub mod host;
pub mod reference;

pub use error::Error;
pub use exec::Executor;
pub use kernels::ConvGeom;
pub use layout::{NetConfig, ParamLayout, Slot, SlotInfo};
pub use params::{BankParams, DenseParams, Params};
pub use plan::{NodeState, Plan};
pub use timing::{measure, measure_best_of, Measurement, Timer};

/// Activation memory layout used by the executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Height, width, channel (channel innermost). The only layout the executor uses.
    Hwc,
}
