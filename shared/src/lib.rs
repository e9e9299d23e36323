//! Types shared by the host trainer and the board: the NATS-Bench topology search space
//! ([`space`]) and the messages they exchange over a serial line ([`protocol`]).
//!
//! Everything here is `no_std` and allocation-free so the same definitions run on a
//! Cortex-M4 and on the host. Strings exist only at the edges: [`Arch::parse`] reads the
//! exact NATS-Bench cell string and [`Arch`]'s `Display` writes it back.
//!
//! Two numbers name an architecture and they are deliberately different types:
//! * [`ArchCode`]: our compact base-5 code over the six edges (0..15624), computable
//!   anywhere without data;
//! * [`NatsIndex`]: the benchmark's own row index, a permutation of the codes that only
//!   the benchmark's `nb201_archs.csv` defines (mapped on the host).
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![warn(missing_docs)]

pub mod protocol;
pub mod space;

pub use space::{
    Action, Arch, ArchCode, CellNodes, Edge, NatsIndex, Op, ParseError, MAX_STR_LEN, NUM_ARCHS, NUM_CONNECTED_EXECUTED,
    NUM_EDGES, NUM_EXECUTED, NUM_OPS,
};
