//! The JSON record of a search (`simnas search --json OUT`) and of a search over a pool of
//! devices ([`PoolJson`]).
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
//! The records carry no format version: the fields above are the format, and fields added
//! later are optional. `simnas search` writes them (atomically, rewritten as probes arrive);
//! building a record from a search is the host's (`host_trainer::search::json`).

use serde::{Deserialize, Serialize};

/// What the search maximises.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Objective {
    /// `w * TF + (1 - w) * (1 - l)`.
    Weighted {
        /// `w` in `[0, 1]`.
        weight: f64,
    },
    /// `TF` subject to measured latency `<= max_latency_ms`.
    Constraint {
        /// The limit, ms.
        max_latency_ms: f64,
    },
}

impl Objective {
    /// The same objective as edge-runtime's search takes it.
    pub fn edge(&self) -> edge_runtime::search::Objective {
        match *self {
            Objective::Weighted { weight } => edge_runtime::search::Objective::Weighted { weight },
            Objective::Constraint { max_latency_ms } => edge_runtime::search::Objective::Constraint { max_latency_ms },
        }
    }
}

/// One probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// The record, naming the proxy its TF came from.
    pub fn with_proxy(self, proxy: &str) -> SearchJson {
        SearchJson { proxy: Some(proxy.into()), ..self }
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// One probe of a pool search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolSkippedJson {
    /// 1-based position of the device.
    pub device: usize,
    /// NATS-Bench cell string.
    pub arch: String,
}

/// The pool's pick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

impl PoolJson {
    /// Pretty JSON with a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_read_back_and_optional_fields_stay_out() {
        let rec = SearchJson {
            device: "table:x".into(),
            strategy: "controller".into(),
            budget: 10,
            seed: Some(0),
            objective: Objective::Weighted { weight: 0.5 },
            space: Some("executed".into()),
            proxy: None,
            probes: vec![ProbeJson { step: 1, arch: "|none~0|".into(), index: None, latency_ms: 1.5 }],
            result: None,
            skipped: vec![],
            error: None,
        }
        .with_proxy("freerea");
        let bytes = rec.to_bytes();
        assert_eq!(bytes.last(), Some(&b'\n'));
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.contains("\"kind\": \"weighted\"") && !text.contains("skipped") && !text.contains("error"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<SearchJson>(&text).unwrap(), rec);
        // Records written before seeds, spaces and proxies were recorded still read.
        let old = r#"{"device":"d","strategy":"random","budget":1,"objective":{"kind":"constraint","max_latency_ms":2.0},"probes":[],"result":null}"#;
        let old: SearchJson = serde_json::from_str(old).unwrap();
        assert_eq!((old.seed, old.space, old.proxy), (None, None, None));
        assert_eq!(old.objective.edge(), edge_runtime::search::Objective::Constraint { max_latency_ms: 2.0 });
        let pool = PoolJson {
            devices: vec!["a".into(), "b".into()],
            strategy: "pool".into(),
            budget: 4,
            seed: 1,
            objective: PoolObjectiveJson::Constraint { max_latency_ms: vec![1.0, 2.0] },
            space: "executed".into(),
            proxy: "freerea".into(),
            probes: vec![PoolProbeJson { step: 1, device: 2, arch: "c".into(), index: Some(3), latency_ms: 0.5 }],
            result: Some(PoolResultJson { arch: "c".into(), index: Some(3), latency_ms: vec![0.4, 0.5], tf: 0.9 }),
            skipped: vec![PoolSkippedJson { device: 1, arch: "e".into() }],
            infeasible_on: vec![],
            error: None,
        };
        let text = String::from_utf8(pool.to_bytes()).unwrap();
        assert!(!text.contains("infeasible_on"), "{text}");
        assert_eq!(serde_json::from_str::<PoolJson>(&text).unwrap(), pool);
    }
}
