//! The device flags every command that opens a device shares ([`DeviceArgs`], flattened
//! into `search` and `probe`), their one set of defaults, and the one factory that turns
//! `--device` into a device ([`DeviceArgs::open`]).
//!
//! A new device kind is its implementation (a module under `host_trainer::device`), its
//! [`DeviceSpec`] variant and spelling (registered in `host_trainer::device`), and its arm
//! in [`DeviceArgs::open`]; no command changes.

use anyhow::{bail, Context as _, Result};
use clap::Args;
use edge_runtime::NetConfig;
use host_trainer::board::{qemu, BoardDevice, ProbePolicy, DEFAULT_BAUD};
use host_trainer::data::NatsMap;
use host_trainer::device::command::{self, CommandDevice};
use host_trainer::device::table::TableDevice;
use host_trainer::device::{Clock, Device, DeviceSpec, HostDevice, Timing};
use host_trainer::latency::LatencyTable;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Untimed runs before timing a probe, when `--warmup` is not given.
pub(crate) const WARMUP: usize = 3;
/// Timed runs of a probe, when `--repeats` is not given.
pub(crate) const REPEATS: u32 = 15;
/// A board's allowance per run (warm-up or timed), when `--probe-timeout-s` is not given.
pub(crate) const BOARD_PER_RUN: Duration = Duration::from_secs(10);
/// Attempts after the first at a board probe that got no answer.
pub(crate) const BOARD_RETRIES: u32 = 1;

/// The flags of a device: which one, and how it measures.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Device")]
pub struct DeviceArgs {
    /// Which device: `host` (this CPU, timing the edge-runtime executor), `table:PATH#COLUMN` (a
    /// measured latency table, CSV keyed by `index` or `arch`, column in ms), a benchmark
    /// device name (`simnas devices list`; its table in --data), `qemu` (the firmware booted
    /// in QEMU), `serial:PORT` (a board running the firmware), or `cmd:COMMAND` (your own
    /// runtime: COMMAND runs, without a shell, on each cell exported as ONNX, `{onnx}`
    /// replaced by the model's path and `{arch}` by the cell, and prints the latency in ms,
    /// or `{"latency_ms": X}`, as its last line; use `sh -c '...'` for pipes). Boards
    /// measure their own network (see their Hello); the network flags apply to `host` and
    /// `cmd:`. `search` takes several (`--device A --device B`): one network for the pool.
    #[arg(long = "device", value_name = "DEVICE", default_value = "host", action = clap::ArgAction::Append)]
    pub devices: Vec<DeviceSpec>,
    /// Host and board probes: untimed runs before timing (caches, clocks).
    #[arg(long, default_value_t = WARMUP)]
    pub warmup: usize,
    /// Host and board probes: timed runs (the median is the latency).
    #[arg(long, default_value_t = REPEATS, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub repeats: u32,
    /// Clock for host probes.
    #[arg(long, value_enum, default_value_t = Clock::ThreadCpu)]
    pub clock: Clock,
    /// How host probes turn timings into a latency: `paired` (each sample against the
    /// all-skip reference cell, interleaved; the median ratio times the reference's latency
    /// calibrated when the device opens) or `direct` (the cell's own median).
    #[arg(long, value_enum, default_value_t = Timing::Paired)]
    pub timing: Timing,
    /// Probe timeout. Boards: allowance per run (plus 5 s per attempt)
    /// [default: 10]; `cmd:` devices: time the command has per attempt before it is killed
    /// [default: 120]. More than 0, at most 86400 (one day).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = super::seconds)]
    pub probe_timeout_s: Option<f64>,
    /// Firmware ELF for `--device qemu` [default: target/thumbv7em-none-eabihf/release/firmware-bench,
    /// built by `cargo fw-build`].
    #[arg(long, value_name = "PATH")]
    pub firmware: Option<PathBuf>,
}

/// How a host device times its probes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostTiming {
    /// Untimed runs before timing.
    pub warmup: usize,
    /// Timed runs.
    pub repeats: usize,
    /// The clock read.
    pub clock: Clock,
    /// Paired against the reference cell, or direct.
    pub timing: Timing,
}

/// What a command tells the factory beyond the device flags.
pub(crate) struct OpenWith<'a> {
    /// The network `host` and `cmd:` devices run.
    pub net: NetConfig,
    /// Seed of the host network's weights and input.
    pub weights_seed: u64,
    /// `--data` (a benchmark device name's table is found there).
    pub data: Option<&'a Path>,
    /// The benchmark numbering an `index`-keyed latency table is read with.
    pub nats: Option<&'a NatsMap>,
    /// Searches refuse a table holding a latency for less than this share (percent) of the
    /// searchable networks; `None` takes the table as it is.
    pub min_table_coverage: Option<f64>,
}

/// An opened device.
pub(crate) struct Opened {
    /// The device.
    pub device: Box<dyn Device>,
    /// A table device's whole table (`--strategy oracle` reads it; a resumed search checks
    /// its record against it).
    pub table: Option<LatencyTable>,
}

impl DeviceArgs {
    /// The device (the first `--device`; [`DeviceArgs::one`] refuses more).
    pub fn device(&self) -> &DeviceSpec {
        self.devices.first().unwrap_or(&DeviceSpec::Host)
    }

    /// Refuse several `--device` flags, for a command that measures one device.
    pub fn one(&self, command: &str) -> Result<()> {
        if self.devices.len() > 1 {
            bail!("simnas {command} measures one device; {} were given with --device", self.devices.len());
        }
        Ok(())
    }

    /// Whether `--device` names a latency table (a path or a benchmark device).
    pub fn is_table(&self) -> bool {
        is_table(self.device())
    }

    /// Whether `--device` names a board running the firmware (QEMU or a serial port),
    /// whose network is the firmware's (ImageNet16-120), whatever `--net` says.
    pub fn is_board(&self) -> bool {
        is_board(self.device())
    }

    /// How host probes are timed.
    pub fn host_timing(&self) -> HostTiming {
        HostTiming { warmup: self.warmup, repeats: self.repeats as usize, clock: self.clock, timing: self.timing }
    }

    /// The board's probe policy: checked (repeats within what a board keeps) before any
    /// board is opened or booted.
    pub fn board_policy(&self) -> Result<ProbePolicy> {
        let policy = ProbePolicy {
            warmup: self.warmup.try_into().unwrap_or(u16::MAX),
            // Saturated: the board's limit is far below u16::MAX, and the check refuses it.
            repeats: self.repeats.try_into().unwrap_or(u16::MAX),
            per_run: timeout(self.probe_timeout_s, BOARD_PER_RUN),
            retries: BOARD_RETRIES,
        };
        policy.check()?;
        Ok(policy)
    }

    /// Open the device `--device` names.
    pub fn open(&self, with: &OpenWith<'_>) -> Result<Opened> {
        self.open_spec(self.device(), with)
    }

    /// Open `device` with these flags (each device of a pool).
    pub fn open_spec(&self, device: &DeviceSpec, with: &OpenWith<'_>) -> Result<Opened> {
        let spec = device.resolve(with.data)?;
        let device: Box<dyn Device> = match &spec {
            DeviceSpec::Host => Box::new(open_host(with.net, with.weights_seed, self.host_timing())?),
            DeviceSpec::Table { path, column } => {
                if let Some(w) = TableDevice::column_warning(column) {
                    eprintln!("warning: {w}");
                }
                let table = TableDevice::open(path, column, with.nats)
                    .and_then(|t| match with.min_table_coverage {
                        Some(percent) => t.searchable(path, column, percent),
                        None => Ok(t),
                    })
                    .with_context(|| format!("device {device}"))?;
                let whole = table.table().clone();
                return Ok(Opened { device: Box::new(table), table: Some(whole) });
            }
            DeviceSpec::Command(cmd) => {
                let timeout = timeout(self.probe_timeout_s, command::DEFAULT_TIMEOUT);
                Box::new(CommandDevice::new(cmd, with.net, timeout, command::DEFAULT_RETRIES)?)
            }
            DeviceSpec::Qemu | DeviceSpec::Serial(_) => {
                let policy = self.board_policy()?;
                eprintln!(
                    "board probes wait up to {:.0} s per attempt (5 s + --probe-timeout-s {} x {} runs), {} attempts, before giving up on a silent board",
                    policy.timeout().as_secs_f64(),
                    policy.per_run.as_secs_f64(),
                    u32::from(policy.warmup) + u32::from(policy.repeats),
                    policy.retries + 1
                );
                match &spec {
                    DeviceSpec::Serial(port) => Box::new(BoardDevice::serial(port, DEFAULT_BAUD, policy)?),
                    _ => Box::new(BoardDevice::qemu(
                        &self.firmware.clone().unwrap_or_else(qemu::default_firmware),
                        policy,
                    )?),
                }
            }
            DeviceSpec::Bench(d) => bail!("device {}: not resolved to its table", d.name),
        };
        Ok(Opened { device, table: None })
    }
}

/// Whether `spec` names a latency table (a path or a benchmark device).
pub(crate) fn is_table(spec: &DeviceSpec) -> bool {
    matches!(spec, DeviceSpec::Table { .. } | DeviceSpec::Bench(_))
}

/// Whether `spec` names a board running the firmware (QEMU or a serial port).
pub(crate) fn is_board(spec: &DeviceSpec) -> bool {
    matches!(spec, DeviceSpec::Qemu | DeviceSpec::Serial(_))
}

/// This CPU, timing the executor on `net` with weights and input seeded by `seed`.
pub(crate) fn open_host(net: NetConfig, seed: u64, t: HostTiming) -> Result<HostDevice> {
    Ok(HostDevice::new(net, seed, t.warmup, t.repeats, t.clock)?.with_timing(t.timing)?)
}

/// `--probe-timeout-s` (already checked to be in (0, 86400] when parsed), or `default`.
fn timeout(flag: Option<f64>, default: Duration) -> Duration {
    flag.map_or(default, Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        device: DeviceArgs,
    }

    fn parse(args: &[&str]) -> DeviceArgs {
        Flags::try_parse_from([&["simnas"][..], args].concat()).map(|f| f.device).unwrap()
    }

    #[test]
    fn one_set_of_defaults() {
        let d = parse(&[]);
        assert_eq!(d.devices, vec![DeviceSpec::Host]);
        assert_eq!((d.warmup, d.repeats, d.clock, d.timing), (3, 15, Clock::ThreadCpu, Timing::Paired));
        let board = d.board_policy().unwrap();
        assert_eq!((board.warmup, board.repeats, board.per_run, board.retries), (3, 15, Duration::from_secs(10), 1));
        // 5 s + 10 s for each of the 18 runs.
        assert_eq!(board.timeout(), Duration::from_secs(185));
    }

    #[test]
    fn board_flags_reach_the_policy_and_are_checked_first() {
        let d = parse(&["--device", "qemu", "--warmup", "0", "--repeats", "2", "--probe-timeout-s", "0.5"]);
        let board = d.board_policy().unwrap();
        assert_eq!((board.warmup, board.repeats, board.per_run), (0, 2, Duration::from_millis(500)));
        assert!(parse(&["--repeats", "1000"]).board_policy().is_err(), "more repeats than a board keeps");
        assert!(Flags::try_parse_from(["simnas", "--probe-timeout-s", "-1"]).is_err());
    }

    #[test]
    fn tables_are_told_apart() {
        assert!(parse(&["--device", "table:t.csv#ms"]).is_table());
        assert!(parse(&["--device", "hw-c10-pixel3"]).is_table());
        assert!(!parse(&["--device", "serial:/dev/ttyACM0"]).is_table());
    }
}
