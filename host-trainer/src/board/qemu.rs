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
