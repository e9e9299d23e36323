//! The score table's JSON sidecar (`<table stem>.json`, e.g.
//! `artifacts/scores/cifar10_scores.json`, written by `simnas score --all` next to the CSV):
//! what produced the table, and the settings a resumed run keeps beside its partial file.
//!
//! The scoring and the table itself (CSV rows, quantised `.tf16` files) are the host's
//! (`host_trainer::score`).

use serde::{Deserialize, Serialize};

/// Version of the CSV + sidecar format (2: the `meco` column).
pub const FORMAT_VERSION: u32 = 2;
/// The sidecar's `format` field.
pub const FORMAT_NAME: &str = "simnas-score-table";

/// The synthetic NASWOT batch's distribution (both zero-mean, unit-variance Gaussian per
/// value; they differ in spatial correlation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// Every value an independent `N(0, 1)` (white noise).
    Gaussian,
    /// Per image and channel a Gaussian random field with power spectrum `1 / f^2` (the
    /// classic second-order model of natural images), normalised to unit variance per
    /// channel over the batch. The default: the NASWOT batch stands in for a batch of
    /// natural images.
    #[default]
    Pink,
}

/// `(min, max)` of each metric: the normalisation of `TF`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranges {
    /// NASWOT.
    pub naswot: (f64, f64),
    /// LogSynflow.
    pub logsynflow: (f64, f64),
    /// SkipScore.
    pub skip: (f64, f64),
}

/// Settings and bookkeeping of a run, stored beside its partial file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Base channels.
    pub channels: usize,
    /// Cells per stage.
    pub cells_per_stage: usize,
    /// Input side.
    pub resolution: usize,
    /// Classes.
    pub classes: usize,
    /// Scoring seed.
    pub seed: u64,
    /// NASWOT batch.
    pub batch: usize,
    /// Initialisations.
    pub inits: usize,
    /// Distribution of the NASWOT batch.
    #[serde(default)]
    pub input: InputKind,
    /// Cells to score: `None` for the whole space, else a seeded random sample size.
    pub sample: Option<usize>,
    /// Seed of the sample.
    pub sample_seed: u64,
    /// Wall-clock seconds spent so far (summed over resumed sessions).
    pub wall_time_s: f64,
    /// Metrics copied from another table instead of computed (`score --all --reuse`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse: Option<Reuse>,
}

impl RunMeta {
    /// The same run: equal in everything but the wall time spent.
    pub fn same_run(&self, other: &RunMeta) -> bool {
        RunMeta { wall_time_s: 0.0, ..self.clone() } == RunMeta { wall_time_s: 0.0, ..other.clone() }
    }
}

/// Metrics a run copies from another table whose settings fix them identically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reuse {
    /// The table they come from, as given.
    pub table: String,
    /// The metrics copied (`naswot`, `logsynflow`, `skip`, `meco`).
    pub metrics: Vec<String>,
}

/// The sidecar of a finished table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sidecar {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Version of simnas that wrote it.
    pub simnas_version: String,
    /// The exact command line.
    pub command: String,
    /// Settings of the run.
    pub run: RunMeta,
    /// How the NASWOT batch is drawn.
    pub input: String,
    /// How the networks are initialised.
    pub init: String,
    /// Rows in the table.
    pub rows: usize,
    /// NASWOT stored for degenerate cells (minimum over the other rows).
    pub naswot_floor: f64,
    /// Number of degenerate cells (floored).
    pub degenerate_cells: usize,
    /// Min and max of each metric over the rows.
    pub ranges: Ranges,
    /// Worker threads of the last session.
    pub threads: usize,
}

/// Why a sidecar cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SidecarError {
    /// Not JSON, or not a sidecar.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Another kind of file.
    #[error("format {found:?}, expected {FORMAT_NAME:?}")]
    Format {
        /// The file's `format`.
        found: String,
    },
    /// Written by a newer version of the format (tables of every version up to
    /// [`FORMAT_VERSION`] are read).
    #[error("format version {found} (this build reads versions 1 to {FORMAT_VERSION})")]
    Version {
        /// The file's version.
        found: u32,
    },
}

impl Sidecar {
    /// Parse a sidecar, checking its format name and version.
    pub fn from_json(text: &str) -> Result<Sidecar, SidecarError> {
        let s: Sidecar = serde_json::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    /// The format name and version are ones this build reads.
    pub fn validate(&self) -> Result<(), SidecarError> {
        if self.format != FORMAT_NAME {
            return Err(SidecarError::Format { found: self.format.clone() });
        }
        if !(1..=FORMAT_VERSION).contains(&self.format_version) {
            return Err(SidecarError::Version { found: self.format_version });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sidecar() -> Sidecar {
        Sidecar {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            simnas_version: "0.1.0".into(),
            command: "simnas score --all".into(),
            run: RunMeta {
                channels: 16,
                cells_per_stage: 5,
                resolution: 32,
                classes: 10,
                seed: 0,
                batch: 64,
                inits: 3,
                input: InputKind::Pink,
                sample: None,
                sample_seed: 0,
                wall_time_s: 1.5,
                reuse: None,
            },
            input: "a pink batch".into(),
            init: "kaiming".into(),
            rows: 15625,
            naswot_floor: 1.0,
            degenerate_cells: 2,
            ranges: Ranges { naswot: (1.0, 2.0), logsynflow: (0.0, 3.0), skip: (0.5, 0.7) },
            threads: 2,
        }
    }

    #[test]
    fn a_sidecar_reads_back() {
        let text = serde_json::to_string_pretty(&sidecar()).unwrap();
        let back = Sidecar::from_json(&text).unwrap();
        assert_eq!((back.run.clone(), back.ranges), (sidecar().run, sidecar().ranges));
        assert!(text.contains("\"input\": \"pink\""), "{text}");
        assert!(!text.contains("reuse"), "{text}");
        assert!(back.run.same_run(&RunMeta { wall_time_s: 9.0, ..sidecar().run }));
        assert!(!back.run.same_run(&RunMeta { seed: 9, ..sidecar().run }));
    }

    #[test]
    fn other_formats_and_newer_versions_are_refused() {
        let text = serde_json::to_string(&sidecar()).unwrap();
        let v1 = text.replace("\"format_version\":2", "\"format_version\":1");
        assert!(Sidecar::from_json(&v1).is_ok());
        let v3 = text.replace("\"format_version\":2", "\"format_version\":3");
        assert!(matches!(Sidecar::from_json(&v3), Err(SidecarError::Version { found: 3 })));
        let other = text.replace(FORMAT_NAME, "simnas-other");
        assert!(matches!(Sidecar::from_json(&other), Err(SidecarError::Format { .. })));
        assert!(matches!(Sidecar::from_json("{}"), Err(SidecarError::Json(_))));
        // Written before the input kind was recorded: the default.
        let old = text.replace("\"input\":\"pink\",", "");
        assert_eq!(Sidecar::from_json(&old).unwrap().run.input, InputKind::Pink);
    }
}
