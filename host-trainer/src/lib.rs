//! simnas host side: the `simnas` command's library.
//!
//! * [`data`]: benchmark files from a user-named data directory.
//! * [`device`]: things that measure latency (this CPU first).

pub mod data;
pub mod device;
