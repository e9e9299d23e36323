//! The reference board: the firmware booted in `qemu-system-arm -machine mps2-an386`.
//!
//! The serial line is a pty pair made here (`serialport::TTYPort::pair`): QEMU opens the
//! slave as its UART0, we keep the master. Holding both ends from before QEMU starts means
//! nothing the board sends is lost, its boot `Hello` included (a `-serial pty` made by
//! QEMU drops output until someone opens it). QEMU runs with
//! `-icount shift=0,align=off,sleep=off`: its clock advances 1 ns per instruction, so
//! tick counts are repeatable. It is killed when the [`Qemu`] is dropped, and it ends with
//! simnas however simnas ends ([`crate::child`]): a signal or `kill -9` leaves no QEMU
//! running. Launch it from the thread that will talk to it (on Linux the kernel ends it
//! with the thread that started it).

use super::BoardError;
use crate::child::{self, OwnedChild};
use serialport::{SerialPort, TTYPort};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where `cargo fw-build` puts the firmware, relative to the workspace root.
pub const DEFAULT_FIRMWARE: &str = "target/thumbv7em-none-eabihf/release/firmware-bench";

/// The firmware to boot when none is named: [`DEFAULT_FIRMWARE`] under the current
/// directory, else under the workspace this simnas was built from.
pub fn default_firmware() -> PathBuf {
    let here = PathBuf::from(DEFAULT_FIRMWARE);
    if here.is_file() {
        return here;
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(DEFAULT_FIRMWARE);
    if built.is_file() {
        built
    } else {
        here
    }
}

/// QEMU's arguments before `-serial` (the same as the runner in `.cargo/config.toml`).
pub const QEMU_ARGS: [&str; 12] = [
    "-machine",
    "mps2-an386",
    "-cpu",
    "cortex-m4",
    "-icount",
    "shift=0,align=off,sleep=off",
    "-display",
    "none",
    "-monitor",
    "none",
    "-semihosting-config",
    "enable=on,target=native",
];

/// The board's code memory: 4 MiB at address 0 (`memory/mps2-an386.x`).
const CODE_END: u32 = 0x0040_0000;

/// Refuse what QEMU would boot into a fault and a register dump: anything but a 32-bit
/// little-endian ARM executable whose entry point lies in the board's code memory (a
/// NUCLEO build links at 0x0800_0000, a host binary is not ARM at all).
pub fn check_firmware(path: &Path) -> Result<(), BoardError> {
    let invalid = |why: String| BoardError::FirmwareInvalid { path: path.to_path_buf(), why };
    // The ELF32 header: 52 bytes (fewer for a shorter file).
    let mut head = Vec::with_capacity(52);
    std::fs::File::open(path)?.take(52).read_to_end(&mut head)?;
    let n = head.len();
    head.resize(52, 0);
    if n < 4 || head[..4] != *b"\x7fELF" {
        return Err(invalid("not an ELF file".into()));
    }
    if head[4] == 2 {
        return Err(invalid("a 64-bit program, not ARM firmware".into()));
    }
    if n < 52 || head[4] != 1 || head[5] != 1 {
        return Err(invalid("not a 32-bit little-endian ELF".into()));
    }
    let half = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
    const EM_ARM: u16 = 40;
    const ET_EXEC: u16 = 2;
    if half(18) != EM_ARM {
        return Err(invalid(format!("built for ELF machine {}, not ARM", half(18))));
    }
    if half(16) != ET_EXEC {
        return Err(invalid("not an executable".into()));
    }
    let entry = u32::from_le_bytes([head[24], head[25], head[26], head[27]]);
    if entry >= CODE_END {
        return Err(invalid(format!(
            "its entry point {entry:#010x} lies outside the board's code memory (0x0 to {CODE_END:#x}): firmware for another board?"
        )));
    }
    Ok(())
}

/// The QEMU program: `$SIMNAS_QEMU`, or `qemu-system-arm` from `PATH`.
pub fn program() -> String {
    std::env::var("SIMNAS_QEMU").unwrap_or_else(|_| "qemu-system-arm".to_string())
}

/// A running QEMU board.
pub struct Qemu {
    child: OwnedChild,
    // QEMU's end of the pty, held open so the line never hangs up.
    _slave: TTYPort,
    firmware: PathBuf,
}

impl Qemu {
    /// Boot `firmware`; returns the board and our end of its serial line.
    pub fn launch(firmware: &Path) -> Result<(Qemu, Box<dyn SerialPort>), BoardError> {
        if !firmware.is_file() {
            return Err(BoardError::FirmwareMissing { path: firmware.to_path_buf() });
        }
        check_firmware(firmware)?;
        let (master, slave) = TTYPort::pair()?;
        // QEMU opens the slave by its path; neither end is for it to hold.
        child::keep_from_children(&master)?;
        child::keep_from_children(&slave)?;
        let pty = slave.name().ok_or_else(|| {
            BoardError::Io(std::io::Error::new(std::io::ErrorKind::NotFound, "the pty has no slave path"))
        })?;
        let program = program();
        let mut cmd = Command::new(&program);
        cmd.args(QEMU_ARGS)
            .arg("-serial")
            .arg(&pty)
            .arg("-kernel")
            .arg(firmware)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = child::spawn(&mut cmd).map_err(|source| BoardError::QemuMissing { program, source })?;
        Ok((Qemu { child, _slave: slave, firmware: firmware.to_path_buf() }, Box::new(master)))
    }

    /// The firmware it runs.
    pub fn firmware(&self) -> &Path {
        &self.firmware
    }

    /// Its exit status, if it has ended.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// `error`, or the reason behind it when QEMU has ended (a firmware panic or fault
    /// exits with status 1 through semihosting).
    pub fn explain(&mut self, error: BoardError) -> BoardError {
        let Some(status) = self.exited() else { return error };
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let stderr = if stderr.trim().is_empty() { String::new() } else { format!(": {}", stderr.trim()) };
        BoardError::QemuExited { status: status.to_string(), stderr }
    }
}
