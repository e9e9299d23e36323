//! The JSON record of a search (`simnas search --json OUT`), written atomically.
//!
//! ```text
//! {"device": str, "strategy": str, "budget": int, "seed": int,
//!  "objective": {"kind": "weighted", "weight": f} | {"kind": "constraint", "max_latency_ms": f},
//!  "space": "executed" | "raw", "proxy": "freerea" | "meco-rank",
//!  "probes": [{"step": int, "arch": str, "index": int, "latency_ms": f}],
//!  "result": {"arch": str, "index": int, "latency_ms": f, "tf": f}}
//! ```
//!
//! * `seed` is absent only in records written before it was recorded; `proxy` (how the
//!   score table made TF, `simnas search --proxy`) in records written before proxies, which
//!   used `freerea`.
//! * `index` is the NATS-Bench index; it is `null` only when no index map was available
//!   (no `--data` directory and a score table without indices).
//! * `result` is `null` when there is no pick: constrained, no measured cell satisfied the
//!   limit; or the search failed before measuring anything.
//! * Two keys appear only when they have something to say: `"skipped"` (cells the table
//!   device had no measurement of; no budget was spent on them) and `"error"` (why the
//!   search stopped early; `probes` then holds everything measured until then).
//!
//! The file is rewritten as probes arrive (after the 1st, 2nd, 4th, ... probe and whenever half a second has passed since the last write) through [`crate::output::write`] (temporary
//! file, sync, rename), so an interrupted search still leaves a complete record of what it
//! measured.

use super::pool::{PoolConfig, PoolObjective, PoolPick, PoolProbe};
use super::{Measured, Objective, Pick, SearchConfig, SearchError, SearchOutcome};
use simnas_shared::Arch;

/// One probe.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeJson {
    /// 1-based probe number.
    pub step: usize,
    /// NATS-Bench cell string.
    pub arch: String,
    /// NATS-Bench index.
    pub index: Option<u16>,
    /// Measured latency, ms.
    pub latency_ms: f64,
}

/// The pick.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ResultJson {
    /// NATS-Bench cell string.
    pub arch: String,
    /// NATS-Bench index.
    pub index: Option<u16>,
    /// Measured latency, ms.
    pub latency_ms: f64,
    /// Proxy score.
    pub tf: f64,
}

/// The whole record.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SearchJson {
    /// Device name.
    pub device: String,
    /// Strategy name.
    pub strategy: String,
    /// Probe budget.
    pub budget: usize,
    /// Seed of the search (`None` in records written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The objective.
    pub objective: Objective,
    /// The search space (`executed` or `raw`; `None` in records written before spaces
    /// existed, which searched the raw cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space: Option<String>,
    /// The proxy TF came from (`None` in records written before proxies: `freerea`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Probes in order.
    pub probes: Vec<ProbeJson>,
    /// The pick, or `null`.
    pub result: Option<ResultJson>,
    /// Cells the device had no measurement of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Why the search stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl SearchJson {
    /// The record of a (possibly unfinished) search.
    pub fn new(
        device: &str,
        cfg: &SearchConfig,
        probes: &[Measured],
        skipped: &[Arch],
        pick: Option<&Pick>,
        error: Option<String>,
        index: &dyn Fn(Arch) -> Option<u16>,
    ) -> SearchJson {
        SearchJson {
            device: device.into(),
            strategy: cfg.strategy.name().into(),
            budget: cfg.budget,
            seed: Some(cfg.seed),
            objective: cfg.objective,
            space: Some(cfg.space.name().into()),
            proxy: None,
            probes: probes
                .iter()
                .map(|p| ProbeJson {
                    step: p.step,
                    arch: p.arch.to_string(),
                    index: index(p.arch),
                    latency_ms: p.latency_ms,
                })
                .collect(),
            result: pick.map(|p| ResultJson {
                arch: p.arch.to_string(),
                index: index(p.arch),
                latency_ms: p.latency_ms,
                tf: p.tf,
            }),
            skipped: skipped.iter().map(|a| a.to_string()).collect(),
            error,
        }
    }

    /// The record, naming the proxy its TF came from.
    pub fn with_proxy(self, proxy: &str) -> SearchJson {
        SearchJson { proxy: Some(proxy.into()), ..self }
    }

    /// The record of a finished search.
    pub fn of(
        device: &str,
        cfg: &SearchConfig,
        outcome: &SearchOutcome,
        index: &dyn Fn(Arch) -> Option<u16>,
    ) -> SearchJson {
        let error = outcome.error.as_ref().map(SearchError::message);
        SearchJson::new(device, cfg, &outcome.probes, &outcome.skipped, outcome.pick.as_ref(), error, index)
    }

    /// Pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

/// The record of a search over a pool of devices (`simnas search --device A --device B
/// --json OUT`):
///
/// ```text
/// {"devices": [str], "strategy": "pool" | "independent", "budget": int (total), "seed": int,
///  "objective": {"kind": "weighted", "weight": f} | {"kind": "constraint", "max_latency_ms": [f]},
///  "space": str, "proxy": str,
///  "probes": [{"step": int, "device": int (1-based), "arch": str, "index": int, "latency_ms": f}],
///  "result": {"arch": str, "index": int, "latency_ms": [f] (per device), "tf": f}}
/// ```
///
/// `skipped` (`[{"device": int, "arch": str}]`), `infeasible_on` (constrained without a pick:
/// the devices, 1-based, on which no measured cell is within the limit) and `error` appear
/// only when they have something to say.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolJson {
    /// Device names, in the pool's order.
    pub devices: Vec<String>,
    /// Strategy name.
    pub strategy: String,
    /// Total probe budget.
    pub budget: usize,
    /// Seed.
    pub seed: u64,
    /// The objective.
    pub objective: PoolObjectiveJson,
    /// The search space.
    pub space: String,
    /// The proxy TF came from.
    pub proxy: String,
    /// Probes in order.
    pub probes: Vec<PoolProbeJson>,
    /// The pick, or `null`.
    pub result: Option<PoolResultJson>,
    /// Cells a device had no measurement of.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<PoolSkippedJson>,
    /// Constrained without a pick: devices (1-based) with no measured cell within the limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub infeasible_on: Vec<usize>,
    /// Why the search stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A pool objective as recorded.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PoolObjectiveJson {
    /// The weighted objective averaged over the pool.
    Weighted {
        /// `w`.
        weight: f64,
    },
    /// One limit per device.
    Constraint {
        /// Limits, ms, in the pool's order.
        max_latency_ms: Vec<f64>,
    },
}

impl From<&PoolObjective> for PoolObjectiveJson {
    fn from(o: &PoolObjective) -> PoolObjectiveJson {
        match o {
            PoolObjective::Weighted { weight } => PoolObjectiveJson::Weighted { weight: *weight },
            PoolObjective::Constraint { max_latency_ms } => {
                PoolObjectiveJson::Constraint { max_latency_ms: max_latency_ms.clone() }
            }
        }
    }
}

/// One probe of a pool search.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolProbeJson {
    /// 1-based probe number over the pool.
    pub step: usize,
    /// 1-based position of the device in `devices`.
    pub device: usize,
    /// NATS-Bench cell string.
    pub arch: String,
    /// NATS-Bench index.
    pub index: Option<u16>,
    /// Measured latency, ms.
    pub latency_ms: f64,
}

/// A cell a device of the pool had no measurement of.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolSkippedJson {
    /// 1-based position of the device.
    pub device: usize,
    /// NATS-Bench cell string.
    pub arch: String,
}

/// The pool's pick.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PoolResultJson {
    /// NATS-Bench cell string.
    pub arch: String,
    /// NATS-Bench index.
    pub index: Option<u16>,
    /// Measured latency on each device, ms, in the pool's order.
    pub latency_ms: Vec<f64>,
    /// Proxy score.
    pub tf: f64,
}

/// What a pool record is made of.
pub struct PoolRecord<'a> {
    /// Device names.
    pub devices: &'a [String],
    /// The settings.
    pub cfg: &'a PoolConfig,
    /// The proxy's name.
    pub proxy: &'a str,
    /// Probes so far.
    pub probes: &'a [PoolProbe],
    /// Skipped cells.
    pub skipped: &'a [(usize, Arch)],
    /// The pick.
    pub pick: Option<&'a PoolPick>,
    /// Devices without a feasible measured cell (0-based).
    pub infeasible_on: &'a [usize],
    /// Why it stopped.
    pub error: Option<String>,
}

impl PoolJson {
    /// The record.
    pub fn new(r: &PoolRecord<'_>, index: &dyn Fn(Arch) -> Option<u16>) -> PoolJson {
        PoolJson {
            devices: r.devices.to_vec(),
            strategy: r.cfg.strategy.name().into(),
            budget: r.cfg.budget,
            seed: r.cfg.seed,
            objective: (&r.cfg.objective).into(),
            space: r.cfg.space.name().into(),
            proxy: r.proxy.into(),
            probes: r
                .probes
                .iter()
                .map(|p| PoolProbeJson {
                    step: p.step,
                    device: p.device + 1,
                    arch: p.arch.to_string(),
                    index: index(p.arch),
                    latency_ms: p.latency_ms,
                })
                .collect(),
            result: r.pick.map(|p| PoolResultJson {
                arch: p.arch.to_string(),
                index: index(p.arch),
                latency_ms: p.latency_ms.clone(),
                tf: p.tf,
            }),
            skipped: r.skipped.iter().map(|&(d, a)| PoolSkippedJson { device: d + 1, arch: a.to_string() }).collect(),
            infeasible_on: r.infeasible_on.iter().map(|d| d + 1).collect(),
            error: r.error.clone(),
        }
    }

    /// Pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}
