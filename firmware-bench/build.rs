//! Build script: picks the board's `memory.x`, and generates what the firmware needs to
//! know about its network at compile time (from `src/config.rs`): the arena size and the
//! shared weight bank, written as little-endian `f32` bytes that the firmware keeps in
//! flash.

#[path = "src/config.rs"]
#[allow(dead_code)]
mod config;

use edge_runtime::layout::ParamLayout;
use edge_runtime::rng::{fill_uniform, SplitMix64};
use edge_runtime::Plan;
use simnas_shared::{Arch, Op};
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = if env::var_os("CARGO_FEATURE_BOARD_NUCLEO_F411").is_some() { "nucleo-f411" } else { "mps2-an386" };
    let memory = format!("memory/{board}.x");
    fs::copy(&memory, out.join("memory.x")).unwrap_or_else(|e| panic!("copying {memory}: {e}"));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed={memory}");
    println!("cargo:rerun-if-changed=src/config.rs");
    println!("cargo:rerun-if-changed=build.rs");
    // Link the firmware only for the board; on the host the bin is a stub.
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=-Tlink.x");
    }

    let net = config::NET;
    let layout = ParamLayout::new(net).expect("config::NET is a valid network");
    // The arena does not depend on the cell; size it once for the full cell.
    let plan = Plan::new(net, Arch::uniform(Op::NorConv3x3)).expect("plan for config::NET");
    let bank_len = layout.max_slot_len();
    let mut bank = vec![0f32; bank_len];
    // He-uniform over the largest fan-in, scaled like the runtime's cell convs.
    fill_uniform(&mut SplitMix64::new(config::SEED), &mut bank, 9 * net.final_channels(), 0.8);
    let bytes: Vec<u8> = bank.iter().flat_map(|v| v.to_le_bytes()).collect();
    fs::write(out.join("bank.bin"), bytes).expect("writing bank.bin");
    let sizes = format!(
        "/// Floats of activation arena the network needs.\npub const ARENA_LEN: usize = {};\n\
         /// Floats of the shared weight bank (the largest parameter slot).\npub const BANK_LEN: usize = {};\n\
         /// Floats of the input image.\npub const INPUT_LEN: usize = {};\n",
        plan.arena_len(),
        bank_len,
        net.input_len()
    );
    fs::write(out.join("sizes.rs"), sizes).expect("writing sizes.rs");
}
