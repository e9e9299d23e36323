//! simnas firmware: a Cortex-M4 board that measures NB201 networks in place and talks to
//! the host in postcard frames (`simnas_shared::protocol`).
//!
//! This library is the board-independent part and is `no_std`-clean, so it builds (and is
//! unit-tested) on the host too:
//! * [`board`]: the [`board::Board`] trait a board implements (serial line, timer, clock);
//! * [`net`]: the measured network's memory: arena size, the weight bank kept in flash,
//!   the input;
//! * [`server`]: `Hello` on boot, then probes, pings, the bench and the on-board search
//!   (on the host's `Search`, or at boot with the `autonomous` feature);
//! * [`embedded`]: the policy, score table and settings the search runs with;
//! * [`mod@bench`]: what the benchmark measures.
//!
//! The binary (`src/main.rs`) holds the board implementations and the entry point, for
//! `thumbv7em-none-eabihf` only.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

#[cfg(all(feature = "board-mps2-an386", feature = "board-nucleo-f411"))]
compile_error!("choose one board: `--no-default-features --features board-nucleo-f411` for the NUCLEO-F411RE");

pub mod bench;
pub mod board;
pub mod config;
pub mod embedded;
pub mod net;
pub mod server;
