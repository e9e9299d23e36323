//! Devices: anything that can measure the latency of a cell.
//!
//! Every probe is a real measurement. The host CPU is the first device: it times the
//! edge-runtime executor natively (warm-up, repeats, median), exactly as a board does.

use edge_runtime::host::HostProbe;
use edge_runtime::{Measurement, NetConfig};
use simnas_shared::Arch;
use std::fmt;
use std::str::FromStr;

/// How a device is named on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// This CPU, running the edge-runtime executor.
    Host,
}

impl FromStr for DeviceSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(DeviceSpec::Host),
            other => Err(format!("unknown device {other:?}; supported: host (this CPU)")),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Host => f.write_str("host"),
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
}

/// Something that measures cells.
pub trait Device {
    /// Short name for reports.
    fn name(&self) -> String;
    /// Measure `arch` once (one probe).
    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError>;
}

/// This CPU.
pub struct HostDevice {
    probe: HostProbe,
    warmup: usize,
    repeats: usize,
}

impl HostDevice {
    /// A host device timing networks of `cfg` with weights from `seed`.
    pub fn new(cfg: NetConfig, seed: u64, warmup: usize, repeats: usize) -> Result<HostDevice, DeviceError> {
        Ok(HostDevice { probe: HostProbe::new(cfg, seed)?, warmup, repeats })
    }
}

impl Device for HostDevice {
    fn name(&self) -> String {
        "host".into()
    }
    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        Ok(self.probe.measure(arch, self.warmup, self.repeats)?.into())
    }
}
