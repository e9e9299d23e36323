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
use super::{Measured, Pick, SearchConfig, SearchError, SearchOutcome};
use simnas_shared::Arch;

/// The records' types ([`simnas_formats::search`]).
pub use simnas_formats::search::{
    PoolJson, PoolObjectiveJson, PoolProbeJson, PoolResultJson, PoolSkippedJson, ProbeJson, ResultJson, SearchJson,
};

/// Building a [`SearchJson`] from a search.
pub trait SearchJsonExt: Sized {
    /// The record of a (possibly unfinished) search.
    fn new(
        device: &str,
        cfg: &SearchConfig,
        probes: &[Measured],
        skipped: &[Arch],
        pick: Option<&Pick>,
        error: Option<String>,
        index: &dyn Fn(Arch) -> Option<u16>,
    ) -> Self;

    /// The record of a finished search.
    fn of(device: &str, cfg: &SearchConfig, outcome: &SearchOutcome, index: &dyn Fn(Arch) -> Option<u16>) -> Self;
}

impl SearchJsonExt for SearchJson {
    fn new(
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

    fn of(
        device: &str,
        cfg: &SearchConfig,
        outcome: &SearchOutcome,
        index: &dyn Fn(Arch) -> Option<u16>,
    ) -> SearchJson {
        let error = outcome.error.as_ref().map(SearchError::message);
        SearchJson::new(device, cfg, &outcome.probes, &outcome.skipped, outcome.pick.as_ref(), error, index)
    }
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

/// Building a [`PoolJson`] from a pool search.
pub trait PoolJsonExt: Sized {
    /// The record.
    fn new(r: &PoolRecord<'_>, index: &dyn Fn(Arch) -> Option<u16>) -> Self;
}

impl PoolJsonExt for PoolJson {
    fn new(r: &PoolRecord<'_>, index: &dyn Fn(Arch) -> Option<u16>) -> PoolJson {
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
}
