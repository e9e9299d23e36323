//! Board implementations; a cargo feature picks one as [`Selected`].

mod mmio;

#[cfg(feature = "board-mps2-an386")]
mod mps2_an386;
#[cfg(feature = "board-mps2-an386")]
pub use mps2_an386::{fail, Mps2An386 as Selected};

#[cfg(feature = "board-nucleo-f411")]
mod nucleo_f411;
#[cfg(feature = "board-nucleo-f411")]
pub use nucleo_f411::{fail, NucleoF411 as Selected};

#[cfg(not(any(feature = "board-mps2-an386", feature = "board-nucleo-f411")))]
compile_error!("no board selected: enable `board-mps2-an386` (default) or `board-nucleo-f411`");
