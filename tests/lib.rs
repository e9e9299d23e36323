//! Helpers for the workspace integration tests: where the workspace's build outputs are,
//! building them when missing, and reading an ELF's section sizes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The target directory: `$CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// `cargo` as the test runner was started with.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace());
    c
}

/// `cargo build` of the firmware for the board's target with `extra` flags, checking that
/// it produced `elf`.
fn build_firmware(extra: &[&str], elf: &Path) -> PathBuf {
    let mut args = vec!["build", "-q", "-p", "firmware-bench", "--release", "--target", "thumbv7em-none-eabihf"];
    args.extend_from_slice(extra);
    build(&args, elf)
}

fn build(args: &[&str], what: &Path) -> PathBuf {
    let status = cargo().args(args).status().expect("running cargo");
    assert!(status.success(), "cargo {} failed", args.join(" "));
    assert!(what.is_file(), "{} missing after cargo {}", what.display(), args.join(" "));
    what.to_path_buf()
}

/// The QEMU firmware ELF, brought up to date (`cargo fw-build`; a no-op when it is).
pub fn firmware() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let elf = target_dir().join("thumbv7em-none-eabihf/release/firmware-bench");
        build_firmware(&[], &elf)
    })
    .clone()
}

/// The board's kernel check (`firmware-bench`'s `kernel-check` binary for QEMU
/// mps2-an386), brought up to date (`cargo fw-build` builds it too; a no-op when it is).
pub fn kernel_check() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let elf = target_dir().join("thumbv7em-none-eabihf/release/kernel-check");
        build_firmware(&["--bin", "kernel-check"], &elf)
    })
    .clone()
}

/// The QEMU firmware built with `--features autonomous` (it runs the search at boot), in
/// its own target directory (`cargo fw-build-autonomous`; a no-op when up to date).
pub fn firmware_autonomous() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = target_dir().join("fw-autonomous");
        let elf = dir.join("thumbv7em-none-eabihf/release/firmware-bench");
        let dir = dir.to_string_lossy().into_owned();
        build_firmware(&["--features", "autonomous", "--target-dir", &dir], &elf)
    })
    .clone()
}

/// The release `simnas` binary, built if it is missing. `cargo test --release --workspace`
/// builds it fresh (host-trainer's own integration tests need it); building it here again
/// with another feature set would only cost time.
pub fn simnas() -> PathBuf {
    static ONCE: OnceLock<PathBuf> = OnceLock::new();
    ONCE.get_or_init(|| {
        let bin = target_dir().join("release/simnas");
        if bin.is_file() {
            return bin;
        }
        build(&["build", "-q", "--release", "-p", "host-trainer", "--bin", "simnas"], &bin)
    })
    .clone()
}

/// Bytes an ELF32 image occupies in flash and in RAM, from its section headers:
/// flash holds every allocated section with contents (code, read-only data, the initial
/// values of `.data`), RAM every allocated writable section (`.data`, `.bss`, `.uninit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageSize {
    /// Flash bytes.
    pub flash: u64,
    /// Static RAM bytes (the stack comes on top).
    pub ram: u64,
}

/// Read an ELF32 little-endian image's sizes; `None` if it is not one.
pub fn elf32_size(bytes: &[u8]) -> Option<ImageSize> {
    const SHF_WRITE: u32 = 1;
    const SHF_ALLOC: u32 = 2;
    const SHT_NOBITS: u32 = 8;
    let u16_at = |o: usize| Some(u16::from_le_bytes(bytes.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(bytes.get(o..o + 4)?.try_into().ok()?));
    if bytes.get(..5)? != b"\x7fELF\x01" || bytes.get(5)? != &1 {
        return None;
    }
    let (shoff, shentsize, shnum) = (u32_at(0x20)? as usize, u16_at(0x2e)? as usize, u16_at(0x30)? as usize);
    let mut size = ImageSize { flash: 0, ram: 0 };
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        let (kind, flags, len) = (u32_at(h + 4)?, u32_at(h + 8)?, u32_at(h + 20)? as u64);
        if flags & SHF_ALLOC == 0 {
            continue;
        }
        if kind != SHT_NOBITS {
            size.flash += len;
        }
        if flags & SHF_WRITE != 0 {
            size.ram += len;
        }
    }
    Some(size)
}
