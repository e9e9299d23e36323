//! Devices: anything that can measure the latency of a cell.
//!
//! Every probe is a real measurement. The host CPU is the first device: it times the
//! edge-runtime executor natively (warm-up, repeats, median), exactly as a board does.
//! A measured latency table replays a published device ([`table::TableDevice`]). The
//! user's own runtime is a device through a command it runs on each exported candidate
//! ([`command::CommandDevice`]).

use edge_runtime::host::{HostProbe, StdTimer};
use edge_runtime::{Measurement, NetConfig, Timer};
use simnas_shared::Arch;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub mod command;
pub mod table;

/// How a device is named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// This CPU, running the edge-runtime executor.
    Host,
    /// The firmware booted in QEMU (mps2-an386).
    Qemu,
    /// A board running the firmware on this serial port.
    Serial(String),
    /// A measured latency table: `table:PATH#COLUMN` (CSV keyed by `index` or `arch`, the
    /// column in ms); every lookup is one probe.
    Table {
        /// The CSV file.
        path: PathBuf,
        /// The latency column.
        column: String,
    },
    /// A benchmark device by its registry name (`simnas devices list`), e.g.
    /// `hw-c10-pixel3`: its table in the data directory ([`DeviceSpec::resolve`]).
    Bench(&'static crate::latency::registry::BenchDevice),
    /// The user's own runtime: `cmd:COMMAND`, run on each candidate exported as ONNX
    /// ([`command`]; `{onnx}` is the model's path, `{arch}` the cell), printing its latency
    /// in ms on its last line.
    Command(String),
}

/// A device named on the command line that cannot be used as it is named.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// A benchmark device without a data directory to find its table in.
    #[error("device {name} is a benchmark table: pass --data DIR (or set SIMNAS_DATA) to the folder holding {file}")]
    NoDataDir {
        /// The benchmark device's name.
        name: &'static str,
        /// Its table's file name.
        file: &'static str,
    },
}

impl DeviceSpec {
    /// A benchmark name as its `table:` device in the data directory (`--data DIR` or
    /// `$SIMNAS_DATA`); every other device as it is.
    pub fn resolve(&self, data: Option<&std::path::Path>) -> Result<DeviceSpec, SpecError> {
        match self {
            DeviceSpec::Bench(d) => {
                let dir =
                    crate::data::data_dir(data).map_err(|_| SpecError::NoDataDir { name: d.name, file: d.file })?;
                Ok(DeviceSpec::Table { path: d.path(&dir), column: d.column.to_string() })
            }
            other => Ok(other.clone()),
        }
    }
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(DeviceSpec::Host),
            "qemu" => Ok(DeviceSpec::Qemu),
            other => {
                if let Some(rest) = other.strip_prefix("table:") {
                    // The column follows the last `#` not written `\#` (a column name with a
                    // `#` in it is written with `\#`).
                    let split = rest.char_indices().rev().find(|&(i, c)| c == '#' && !rest[..i].ends_with('\\'));
                    return match split.map(|(i, _)| (&rest[..i], &rest[i + 1..])) {
                        Some((path, column)) if !path.is_empty() && !column.is_empty() => {
                            Ok(DeviceSpec::Table { path: path.into(), column: column.replace("\\#", "#") })
                        }
                        _ => Err(format!(
                            "device {other:?}: a table device is table:PATH#COLUMN (CSV file, latency column in ms)"
                        )),
                    };
                }
                if let Some(command) = other.strip_prefix("cmd:") {
                    command::check(command).map_err(|why| format!("device {other:?}: {why}"))?;
                    return Ok(DeviceSpec::Command(command.into()));
                }
                if let Some(d) = crate::latency::registry::by_name(other) {
                    return Ok(DeviceSpec::Bench(d));
                }
                match other.strip_prefix("serial:") {
                    Some(port) if !port.is_empty() => Ok(DeviceSpec::Serial(port.into())),
                    _ => Err(format!(
                        "unknown device {other:?}; supported: host (this CPU), qemu (the firmware in QEMU), serial:PORT (a board), table:PATH#COLUMN (a measured latency table), cmd:COMMAND (your runtime, run on each candidate exported as ONNX: {{onnx}} is its path), or a benchmark device name (`simnas devices list`)"
                    )),
                }
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Host => f.write_str("host"),
            DeviceSpec::Qemu => f.write_str("qemu"),
            DeviceSpec::Serial(port) => write!(f, "serial:{port}"),
            DeviceSpec::Table { path, column } => write!(f, "table:{}#{}", path.display(), column.replace('#', "\\#")),
            DeviceSpec::Bench(d) => f.write_str(d.name),
            DeviceSpec::Command(c) => write!(f, "cmd:{c}"),
        }
    }
}

/// One latency measurement.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Probe {
    /// Median latency, ms.
    pub latency_ms: f64,
    /// Fastest repeat, ms.
    pub min_ms: f64,
    /// Interquartile range over median.
    pub spread: f64,
    /// Timed repeats.
    pub repeats: u32,
}

impl From<Measurement> for Probe {
    fn from(m: Measurement) -> Probe {
        Probe { latency_ms: m.median_ms(), min_ms: m.min_ms(), spread: m.spread(), repeats: m.repeats }
    }
}

/// Errors a device reports.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The executor refused the network or the measurement.
    #[error("executor: {0}")]
    Runtime(#[from] edge_runtime::Error),
    /// A device answered with a latency that cannot be one.
    #[error("the device reported a latency of {latency_ms} ms, not a positive finite number")]
    BadLatency {
        /// What it reported.
        latency_ms: f64,
    },
    /// The network's parameters would not fit the host's parameter budget.
    #[error("this network has {bytes} bytes of parameters ({params} floats); the host device allocates at most {max} bytes: choose fewer --channels or --cells")]
    TooLarge {
        /// Parameter floats of the network.
        params: usize,
        /// Their bytes.
        bytes: usize,
        /// The most allowed.
        max: usize,
    },
    /// A board (serial or QEMU) failed to measure.
    #[error(transparent)]
    Board(#[from] crate::board::BoardError),
    /// A latency table could not serve as a device.
    #[error(transparent)]
    Table(#[from] crate::latency::LatencyError),
    /// The user's command failed to measure (boxed: it carries the command and its output).
    #[error(transparent)]
    Command(Box<command::CommandError>),
    /// A table device has no measurement of this cell (e.g. BRP-NAS never measured the
    /// 341 disconnected cells). Nothing was measured: a search skips the cell and does not
    /// count it against its budget.
    #[error("{table} has no measurement of cell {arch}")]
    NotMeasured {
        /// The table (`path#column`).
        table: String,
        /// The cell.
        arch: String,
    },
}

impl From<command::CommandError> for DeviceError {
    fn from(e: command::CommandError) -> DeviceError {
        DeviceError::Command(Box::new(e))
    }
}

/// The most parameter memory a host device allocates (1 GiB).
pub const MAX_PARAM_BYTES: usize = 1 << 30;

/// Something that measures cells.
pub trait Device: Send {
    /// Short name for reports.
    fn name(&self) -> String;
    /// Measure `arch` once (one probe).
    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError>;
}

/// Which clock times host probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Clock {
    /// CPU time of the measuring thread: excludes the time the OS gives to other processes,
    /// so a busy shared machine disturbs it far less. Equals wall time on an idle machine
    /// (the executor is single-threaded).
    #[default]
    ThreadCpu,
    /// Wall-clock time.
    Wall,
}

impl Clock {
    /// The clock as `--clock` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Clock::ThreadCpu => "thread-cpu",
            Clock::Wall => "wall",
        }
    }
}

/// How host probes turn timings into a latency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Timing {
    /// Each sample times the cell and the all-skip reference cell back to back; the latency
    /// is the median ratio times the reference's latency calibrated once when the device
    /// opens (the fastest of 3 probes of it). A slow phase of the machine slows both cells
    /// of a pair alike and cancels, so repeated probes agree far better than raw medians.
    #[default]
    Paired,
    /// The median of the cell's own samples.
    Direct,
}

/// CPU time consumed by the calling thread, in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadCpuTimer;

impl Timer for ThreadCpuTimer {
    #[cfg(unix)]
    fn ticks(&mut self) -> u64 {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime only writes the timespec we own; CLOCK_THREAD_CPUTIME_ID is
        // supported on every Linux and macOS.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        if rc != 0 {
            return 0;
        }
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
    #[cfg(not(unix))]
    fn ticks(&mut self) -> u64 {
        StdTimer::default().ticks()
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

/// This CPU.
pub struct HostDevice {
    probe: HostProbe,
    warmup: usize,
    repeats: usize,
    clock: Clock,
    /// Paired timing: the reference cell and its calibrated latency (ms).
    reference: Option<(Arch, f64)>,
}

/// The reference cell of paired host timing (all `skip_connect`).
pub const REFERENCE: Arch = Arch::uniform(simnas_shared::Op::SkipConnect);

/// Direct probes of the reference when a paired device opens (the fastest is kept).
pub const REFERENCE_CALIBRATION: usize = 3;

impl HostDevice {
    /// A host device timing networks of `cfg` with weights from `seed`.
    pub fn new(
        cfg: NetConfig,
        seed: u64,
        warmup: usize,
        repeats: usize,
        clock: Clock,
    ) -> Result<HostDevice, DeviceError> {
        // Sized at plan time, like the arena: a network within the flags' ranges can still
        // need more memory than a machine has (C = 256, N = 32: 10.6 GB).
        let params = edge_runtime::ParamLayout::new(cfg)?.total_len();
        let bytes = params.saturating_mul(std::mem::size_of::<f32>());
        if bytes > MAX_PARAM_BYTES {
            return Err(DeviceError::TooLarge { params, bytes, max: MAX_PARAM_BYTES });
        }
        Ok(HostDevice { probe: HostProbe::new(cfg, seed)?, warmup, repeats, clock, reference: None })
    }

    /// Switch to `timing`; [`Timing::Paired`] calibrates the reference cell now.
    pub fn with_timing(mut self, timing: Timing) -> Result<HostDevice, DeviceError> {
        self.reference = match timing {
            Timing::Direct => None,
            Timing::Paired => {
                let mut best = f64::INFINITY;
                for _ in 0..REFERENCE_CALIBRATION {
                    best = best.min(self.direct(REFERENCE)?.median_ms());
                }
                Some((REFERENCE, best))
            }
        };
        Ok(self)
    }

    /// The calibrated latency of the paired reference cell (ms), if paired.
    pub fn reference_ms(&self) -> Option<f64> {
        self.reference.map(|r| r.1)
    }

    fn direct(&mut self, arch: Arch) -> Result<Measurement, DeviceError> {
        Ok(match self.clock {
            Clock::ThreadCpu => self.probe.measure_with(&mut ThreadCpuTimer, arch, self.warmup, self.repeats)?,
            Clock::Wall => self.probe.measure_with(&mut StdTimer::default(), arch, self.warmup, self.repeats)?,
        })
    }
}

impl Device for HostDevice {
    /// `host` and what it times, e.g. `host (C=16 N=5 32x32 10 classes, thread-cpu clock, paired)`:
    /// latencies of different networks or clocks are different devices.
    fn name(&self) -> String {
        let c = self.probe.config();
        let clock = self.clock.name();
        let timing = if self.reference.is_some() { "paired" } else { "direct" };
        format!(
            "host (C={} N={} {}x{} {} classes, {clock} clock, {timing})",
            c.channels, c.cells_per_stage, c.resolution, c.resolution, c.classes
        )
    }
    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        let Some((reference, ref_ms)) = self.reference else { return Ok(self.direct(arch)?.into()) };
        let (w, n) = (self.warmup, self.repeats);
        let r = match self.clock {
            Clock::ThreadCpu => self.probe.measure_paired_with(&mut ThreadCpuTimer, arch, reference, w, n)?,
            Clock::Wall => self.probe.measure_paired_with(&mut StdTimer::default(), arch, reference, w, n)?,
        };
        Ok(Probe { latency_ms: r.median * ref_ms, min_ms: r.min * ref_ms, spread: r.spread(), repeats: r.repeats })
    }
}

/// A device that first answers from probes recorded by an earlier run on the same device,
/// then measures: `simnas search --resume` replays an interrupted search this way. A
/// seeded strategy asks for the same cells again and gets their recorded latencies without
/// re-measuring; any cell without a record (the first one the interrupted run never
/// reached, or all of them if the run took another path) is measured by the real device.
/// Each record answers once.
pub struct Replay<'a> {
    inner: &'a mut dyn Device,
    recorded: std::collections::HashMap<Arch, f64>,
    replayed: usize,
}

impl<'a> Replay<'a> {
    /// `inner`, with `recorded` (cell, latency in ms) measured earlier on it.
    pub fn new(inner: &'a mut dyn Device, recorded: impl IntoIterator<Item = (Arch, f64)>) -> Replay<'a> {
        Replay { inner, recorded: recorded.into_iter().collect(), replayed: 0 }
    }

    /// Probes answered from the record so far.
    pub fn replayed(&self) -> usize {
        self.replayed
    }
}

impl Device for Replay<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        match self.recorded.remove(&arch) {
            Some(ms) => {
                self.replayed += 1;
                Ok(Probe { latency_ms: ms, min_ms: ms, spread: 0.0, repeats: 0 })
            }
            None => self.inner.probe(arch),
        }
    }
}
