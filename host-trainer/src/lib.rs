//! simnas host side: the `simnas` command's library.
//!
//! * [`nb201`]: the NB201 macro network in candle (reference for the edge runtime, and the
//!   network the training-free scores are computed on).
//! * [`data`]: benchmark files from a user-named data directory.
//! * [`device`]: things that measure latency (this CPU first).
//! * [`bench`]: side-by-side benchmarks.

pub mod bench;
pub mod data;
pub mod device;
pub mod nb201;
