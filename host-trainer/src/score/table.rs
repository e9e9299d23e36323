//! The score table: one row per cell, `index,arch,naswot,logsynflow,skip,meco` (index = the
//! NATS-Bench index; tables written before MeCo have no `meco` column and still load),
//! sorted by index, with a JSON sidecar saying what produced it; the
//! loader later code uses ([`ScoreTable`]); and the resumable writer behind
//! `simnas score --all` ([`PartialTable`]).
//!
//! A run appends finished rows to `<out>.partial` (flushed row by row, any order), with
//! its settings in `<out>.partial.json`. A rerun with the same settings keeps those rows and
//! scores the rest; a last line cut short by a kill is detected (no final newline) and
//! dropped. When every cell is scored, [`PartialTable::finish`] writes the sorted table with
//! [`crate::output::write`] (temporary file, rename: `<out>` is never half-written), writes the
//! sidecar `<out stem>.json` the same way, and, for the whole space, the quantised table
//! `<out stem>.tf16` ([`super::quant`]).
//!
//! In the partial file a degenerate cell's NASWOT is an empty field; the final table holds
//! the floor instead (the minimum over the other rows, recorded in the sidecar), so every
//! value of a finished table is finite. `TF(h)` is the mean of the three metrics, each
//! min-max normalised over the table's rows ([`Ranges`]).

use super::quant::{self, QuantMeta, Tf16Error};
use super::ScoreSettings;
use serde::{Deserialize, Serialize};
use simnas_shared::{Arch, ArchCode, NatsIndex, NUM_ARCHS};
use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// Version of the CSV + sidecar format (2: the `meco` column).
pub use simnas_formats::score_table::FORMAT_VERSION as TABLE_FORMAT_VERSION;
/// The sidecar's types ([`simnas_formats::score_table`]).
pub use simnas_formats::score_table::{Ranges, Reuse, RunMeta, Sidecar, SidecarError, FORMAT_NAME};
/// The CSV header.
pub const HEADER: [&str; 6] = ["index", "arch", "naswot", "logsynflow", "skip", "meco"];
/// The header of version-1 tables (no MeCo), still read.
pub const HEADER_V1: [&str; 5] = ["index", "arch", "naswot", "logsynflow", "skip"];

/// Problems reading or writing score tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A file could not be read or written.
    #[error("{path}: {err}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// A malformed line.
    #[error("{path}, line {line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// Not one row per cell.
    #[error("{path} has {got} rows; a score table of the whole space has {expected}{hint}")]
    RowCount {
        /// The file.
        path: PathBuf,
        /// Rows expected.
        expected: usize,
        /// Rows found.
        got: usize,
        /// Extra context (e.g. a missing final newline).
        hint: String,
    },
    /// A partial file from a run with other settings.
    #[error("{path} was written with other settings ({msg}); rerun with the same flags or delete it")]
    Mismatch {
        /// The file.
        path: PathBuf,
        /// What differs.
        msg: String,
    },
    /// A bad quantised table.
    #[error("{path}: {err}")]
    Quant {
        /// The file (or `<embedded>`).
        path: PathBuf,
        /// What is wrong.
        err: Tf16Error,
    },
    /// The table has no row for a cell.
    #[error("no score for cell {0}")]
    MissingCell(String),
    /// The proxy cannot be computed from this table.
    #[error("the {} proxy {msg}", proxy.name())]
    Proxy {
        /// The proxy asked for.
        proxy: Proxy,
        /// Why not.
        msg: String,
    },
    /// An output file could not be written.
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
}

/// Result of this module.
pub type Result<T> = std::result::Result<T, TableError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TableError + '_ {
    move |err| TableError::Io { path: path.to_path_buf(), err }
}

/// One cell's scores.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRow {
    /// NATS-Bench index.
    pub index: NatsIndex,
    /// The cell.
    pub arch: Arch,
    /// NASWOT (the floor for a degenerate cell).
    pub naswot: f64,
    /// LogSynflow.
    pub logsynflow: f64,
    /// SkipScore.
    pub skip: f64,
    /// MeCo (`None` in a table written before MeCo, or for a cell not scored for it).
    pub meco: Option<f64>,
}

/// The ranges of a table's rows ([`Ranges`] is the sidecar's type).
pub trait RangesExt: Sized {
    /// Ranges over `rows` (`None` if empty).
    fn of(rows: &[ScoreRow]) -> Option<Self>;
}

impl RangesExt for Ranges {
    fn of(rows: &[ScoreRow]) -> Option<Ranges> {
        let mm = |f: &dyn Fn(&ScoreRow) -> f64| {
            rows.iter().map(f).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
        };
        (!rows.is_empty()).then(|| Ranges {
            naswot: mm(&|r| r.naswot),
            logsynflow: mm(&|r| r.logsynflow),
            skip: mm(&|r| r.skip),
        })
    }
}

/// `(v - lo) / (hi - lo)`, 0 when the range is empty.
pub fn normalise(v: f64, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo {
        ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// `TF = mean of the three min-max normalised metrics`.
pub fn tf_of(r: &Ranges, naswot: f64, logsynflow: f64, skip: f64) -> f64 {
    (normalise(naswot, r.naswot) + normalise(logsynflow, r.logsynflow) + normalise(skip, r.skip)) / 3.0
}

/// How a table's metrics combine into `TF(h)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proxy {
    /// FreeREA's: the mean of NASWOT, LogSynflow and SkipScore, each min-max normalised over
    /// the space (the paper's proxy).
    #[default]
    Freerea,
    /// The rank aggregate of MeCo, NASWOT and LogSynflow: `A(h) = sum_m ln(rank_m(h) / N)`
    /// over the three metrics (ranks over the `N` cells of the space, ties averaged), then
    /// `A` min-max normalised over the space. No weights: every metric counts the same, and
    /// a cell is high only if it ranks high on all three (the log punishes a low rank).
    MecoRank,
}

impl Proxy {
    /// Every proxy.
    pub const ALL: [Proxy; 2] = [Proxy::Freerea, Proxy::MecoRank];

    /// Its name on the command line and in files.
    pub fn name(self) -> &'static str {
        match self {
            Proxy::Freerea => "freerea",
            Proxy::MecoRank => "meco-rank",
        }
    }

    /// Its id in a quantised table's header.
    pub fn id(self) -> u8 {
        match self {
            Proxy::Freerea => 0,
            Proxy::MecoRank => 1,
        }
    }

    /// The proxy of header id `id`.
    pub fn from_id(id: u8) -> Option<Proxy> {
        Proxy::ALL.into_iter().find(|p| p.id() == id)
    }
}

/// `ln(rank / n)` of `v` among `sorted` (ascending, `n` values): rank = the number of values
/// below `v` plus half of `1 +` the number equal to it (the average rank of a tie; a value
/// outside the set ranks between its neighbours).
fn log_rank(sorted: &[f64], v: f64) -> f64 {
    let below = sorted.partition_point(|&x| x < v);
    let equal = sorted[below..].partition_point(|&x| x <= v);
    let rank = below as f64 + (equal as f64 + 1.0) / 2.0;
    (rank / sorted.len().max(1) as f64).ln()
}

/// `TF` of every row of `rows` under `proxy`, normalised over all of them (`None` when
/// `proxy` needs a metric some row lacks).
pub fn proxy_tf(rows: &[ScoreRow], proxy: Proxy) -> Option<Vec<f64>> {
    combine(rows, |_| true, proxy).map(|(tf, _)| tf)
}

/// `TF` of every row under `proxy`, normalised over the rows `in_space` selects, with the
/// min-max ranges of the metrics over those rows. `None` when `proxy` needs a metric some
/// row of the space lacks (MeCo in a table written before it).
fn combine(rows: &[ScoreRow], in_space: impl Fn(&ScoreRow) -> bool, proxy: Proxy) -> Option<(Vec<f64>, Ranges)> {
    let space: Vec<ScoreRow> = rows.iter().filter(|r| in_space(r)).cloned().collect();
    let ranges = Ranges::of(&space).unwrap_or(Ranges { naswot: (0.0, 0.0), logsynflow: (0.0, 0.0), skip: (0.0, 0.0) });
    match proxy {
        Proxy::Freerea => Some((rows.iter().map(|r| tf_of(&ranges, r.naswot, r.logsynflow, r.skip)).collect(), ranges)),
        Proxy::MecoRank => {
            let sorted = |f: &dyn Fn(&ScoreRow) -> Option<f64>| -> Option<Vec<f64>> {
                let mut v = space.iter().map(f).collect::<Option<Vec<f64>>>()?;
                v.sort_by(f64::total_cmp);
                Some(v)
            };
            let naswot = sorted(&|r| Some(r.naswot))?;
            let logsynflow = sorted(&|r| Some(r.logsynflow))?;
            let meco = sorted(&|r| r.meco)?;
            let agg = |r: &ScoreRow| {
                Some(log_rank(&naswot, r.naswot) + log_rank(&logsynflow, r.logsynflow) + log_rank(&meco, r.meco?))
            };
            let (lo, hi) = space
                .iter()
                .filter_map(agg)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), a| (lo.min(a), hi.max(a)));
            let tf = rows.iter().map(|r| agg(r).map_or(0.0, |a| normalise(a, (lo, hi)))).collect();
            Some((tf, ranges))
        }
    }
}

/// One parsed CSV line.
type Line = (NatsIndex, Arch, Option<f64>, f64, f64, Option<f64>);

/// Parse one CSV line `index,arch,naswot,logsynflow,skip[,meco]` of a table with `fields`
/// columns; an empty `naswot` is allowed only when `allow_degenerate` (partial files), an
/// empty `meco` always (not scored). `Err` holds the message.
fn parse_line(line: &str, fields: usize, allow_degenerate: bool) -> std::result::Result<Line, String> {
    let f: Vec<&str> = line.trim_end_matches(['\r', '\n']).split(',').collect();
    if f.len() != fields {
        return Err(format!("expected {fields} fields, found {}", f.len()));
    }
    let index = f[0]
        .trim()
        .parse::<u16>()
        .ok()
        .and_then(NatsIndex::new)
        .ok_or_else(|| format!("index {:?} is not in 0..{NUM_ARCHS}", f[0]))?;
    let arch = Arch::parse(f[1].trim()).map_err(|e| format!("cell {:?}: {e}", f[1]))?;
    let num = |i: usize| -> std::result::Result<f64, String> {
        let v: f64 = f[i].trim().parse().map_err(|_| format!("{} {:?} is not a number", HEADER[i], f[i]))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("{} is {v} (scores must be finite)", HEADER[i]))
        }
    };
    let naswot = if allow_degenerate && f[2].trim().is_empty() { None } else { Some(num(2)?) };
    let (logsynflow, skip) = (num(3)?, num(4)?);
    if !(0.0..=2.0).contains(&skip) {
        return Err(format!("skip {skip} outside [0, 2]"));
    }
    let meco = if fields < HEADER.len() || f[5].trim().is_empty() { None } else { Some(num(5)?) };
    Ok((index, arch, naswot, logsynflow, skip, meco))
}

/// Check the header line; returns the number of columns (version 2, or 1 without MeCo).
fn check_header(line: &str, path: &Path) -> Result<usize> {
    let got: Vec<&str> = line.trim_end_matches(['\r', '\n']).split(',').map(str::trim).collect();
    if got == HEADER {
        return Ok(HEADER.len());
    }
    if got == HEADER_V1 {
        return Ok(HEADER_V1.len());
    }
    Err(TableError::Malformed {
        path: path.to_path_buf(),
        line: 1,
        msg: format!("header {}; expected {}", crate::data::quote_capped(line, 120), HEADER.join(",")),
    })
}

/// A CSV line of a row.
fn csv_line(
    index: NatsIndex,
    arch: &Arch,
    naswot: Option<f64>,
    logsynflow: f64,
    skip: f64,
    meco: Option<f64>,
) -> String {
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    format!("{index},{arch},{},{logsynflow},{skip},{}\n", opt(naswot), opt(meco))
}

/// Read the rows of a finished table (any subset of cells; see [`ScoreTable::load`] for
/// the whole space). Every value must be finite, every index and cell distinct.
pub fn read_rows(path: &Path) -> Result<Vec<ScoreRow>> {
    let bytes = crate::data::read_capped(path, crate::data::MAX_READ_BYTES).map_err(io_err(path))?;
    parse_rows(&bytes, path)
}

/// [`read_rows`] on bytes; `path` is only used in messages.
pub fn parse_rows(bytes: &[u8], path: &Path) -> Result<Vec<ScoreRow>> {
    let bad = |line: u64, msg: String| TableError::Malformed { path: path.to_path_buf(), line, msg };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(1, format!("not UTF-8 text ({e})")))?;
    let unterminated = !text.is_empty() && !text.ends_with('\n');
    let mut lines = text.lines();
    let fields = check_header(lines.next().unwrap_or(""), path)?;
    let mut rows = Vec::new();
    let (mut seen_idx, mut seen_arch) = (HashSet::new(), HashSet::new());
    for (i, l) in lines.enumerate() {
        let line = i as u64 + 2;
        if l.trim().is_empty() {
            continue;
        }
        let (index, arch, naswot, logsynflow, skip, meco) = parse_line(l, fields, false).map_err(|m| {
            let last = text.lines().count() as u64 == line;
            bad(line, if unterminated && last { format!("{m} (the file ends mid-line: truncated?)") } else { m })
        })?;
        let naswot = naswot.unwrap_or(f64::NAN);
        if !seen_idx.insert(index) || !seen_arch.insert(arch) {
            return Err(bad(line, format!("index {index} or cell {arch} listed twice")));
        }
        rows.push(ScoreRow { index, arch, naswot, logsynflow, skip, meco });
    }
    Ok(rows)
}

/// A score table for the whole space: `TF` for every cell, and the three metrics when it
/// was read from the CSV.
#[derive(Clone, Debug)]
pub struct ScoreTable {
    ranges: Ranges,
    /// `TF` per [`ArchCode`].
    tf: Vec<f64>,
    /// Rows per [`ArchCode`], when loaded from the CSV.
    rows: Option<Vec<ScoreRow>>,
    /// Every cell carries its executed network's scores ([`ScoreTable::executed`]).
    executed: bool,
    /// How `tf` combines the metrics.
    proxy: Proxy,
}

/// The shipped quantised CIFAR-10 table (`artifacts/scores/cifar10_scores.tf16`), compiled in.
const EMBEDDED: &[u8] = include_bytes!("../../../artifacts/scores/cifar10_scores.tf16");

impl ScoreTable {
    /// The table the product ships (CIFAR-10, default settings), compiled into the binary so
    /// it needs no file at run time. Quantised: `TF` within `0.5 / 65535` and the ranges, no
    /// per-metric values ([`ScoreTable::row`] is `None`).
    pub fn embedded() -> Result<ScoreTable> {
        ScoreTable::from_quantised(EMBEDDED, Path::new("<embedded cifar10_scores.tf16>"))
    }

    /// Load a full table (CSV, 15,625 rows, one per cell).
    pub fn load(path: &Path) -> Result<ScoreTable> {
        let bytes = crate::data::read_capped(path, crate::data::MAX_READ_BYTES).map_err(io_err(path))?;
        let rows = parse_rows(&bytes, path)?;
        if rows.len() != NUM_ARCHS {
            let hint = if !bytes.is_empty() && !bytes.ends_with(b"\n") {
                " (the file ends mid-line: truncated?)".to_string()
            } else {
                String::new()
            };
            return Err(TableError::RowCount { path: path.to_path_buf(), expected: NUM_ARCHS, got: rows.len(), hint });
        }
        Ok(ScoreTable::from_full_rows(rows))
    }

    /// The table of `rows` read by [`read_rows`] (which refuses a cell listed twice), or
    /// `None` unless they cover the whole space.
    pub fn from_rows(rows: &[ScoreRow]) -> Option<ScoreTable> {
        (rows.len() == NUM_ARCHS).then(|| ScoreTable::from_full_rows(rows.to_vec()))
    }

    /// A table from rows covering every cell exactly once (checked by the caller).
    fn from_full_rows(rows: Vec<ScoreRow>) -> ScoreTable {
        let mut by_code = rows.clone();
        for r in rows {
            by_code[r.arch.code().get() as usize] = r;
        }
        let (tf, ranges) = combine(&by_code, |_| true, Proxy::Freerea).unwrap_or_default();
        ScoreTable { ranges, tf, rows: Some(by_code), executed: false, proxy: Proxy::Freerea }
    }

    /// [`ScoreTable::load`] with `TF` made by `proxy`.
    pub fn load_with(path: &Path, proxy: Proxy) -> Result<ScoreTable> {
        ScoreTable::load(path)?.with_proxy(proxy)
    }

    /// The same table with `TF` made by `proxy` (normalised over the same space). Needs the
    /// per-metric values (a table read from its CSV) unless `proxy` is the table's own.
    pub fn with_proxy(self, proxy: Proxy) -> Result<ScoreTable> {
        if proxy == self.proxy {
            return Ok(self);
        }
        let Some(rows) = &self.rows else {
            return Err(TableError::Proxy {
                proxy,
                msg: format!(
                    "needs the per-metric values; this quantised table holds the {} proxy's TF only (pass the CSV)",
                    self.proxy.name()
                ),
            });
        };
        let executed = self.executed;
        let in_space = |r: &ScoreRow| !executed || (r.arch.is_connected() && r.arch.is_executed());
        let (tf, ranges) = combine(rows, in_space, proxy).ok_or_else(|| TableError::Proxy {
            proxy,
            msg: "needs MeCo, and this table has no meco column (add it with `simnas score --all --reuse TABLE --out TABLE`)".into(),
        })?;
        Ok(ScoreTable { ranges, tf, proxy, ..self })
    }

    /// The proxy `TF` is made by.
    pub fn proxy(&self) -> Proxy {
        self.proxy
    }

    /// Read a quantised table file ([`super::quant`]).
    pub fn load_quantised(path: &Path) -> Result<ScoreTable> {
        let bytes = crate::data::read_capped(path, crate::data::MAX_READ_BYTES).map_err(io_err(path))?;
        ScoreTable::from_quantised(&bytes, path)
    }

    /// Decode quantised bytes; `path` is only used in messages.
    pub fn from_quantised(bytes: &[u8], path: &Path) -> Result<ScoreTable> {
        let t = edge_runtime::tf16::Tf16::parse(bytes)
            .map_err(|err| TableError::Quant { path: path.to_path_buf(), err })?;
        let [naswot, logsynflow, skip] = t.ranges;
        let tf = ArchCode::all().map(|c| t.tf(&Arch::from_code(c))).collect();
        let proxy = Proxy::from_id(t.meta.proxy).unwrap_or_default();
        Ok(ScoreTable { ranges: Ranges { naswot, logsynflow, skip }, tf, rows: None, executed: t.meta.executed, proxy })
    }

    /// The table of executed networks: every cell carries the scores of its executed
    /// network ([`Arch::executed`], the row of the cell with its dead edges set to `none`),
    /// which is what the network that runs scores; no cell is rescored. From the CSV, the
    /// per-metric values are the executed network's row and `TF` is renormalised over the
    /// connected executed networks (the search space), each row keeping its own index and
    /// cell string. From a quantised table, each cell takes its executed network's `TF`
    /// (already renormalised if the file was written executed). Idempotent.
    pub fn executed(&self) -> ScoreTable {
        if self.executed {
            return self.clone();
        }
        let canon =
            |c: usize| ArchCode::new(c as u16).map_or(c, |code| Arch::from_code(code).executed().code().get() as usize);
        match &self.rows {
            Some(rows) => {
                let by_code: Vec<ScoreRow> = rows
                    .iter()
                    .enumerate()
                    .map(|(c, r)| {
                        let e = &rows[canon(c)];
                        ScoreRow {
                            index: r.index,
                            arch: r.arch,
                            naswot: e.naswot,
                            logsynflow: e.logsynflow,
                            skip: e.skip,
                            meco: e.meco,
                        }
                    })
                    .collect();
                // The proxy was computable over every row, hence over the space's.
                let (tf, ranges) = combine(&by_code, |r| r.arch.is_connected() && r.arch.is_executed(), self.proxy)
                    .unwrap_or_else(|| (self.tf.clone(), self.ranges));
                ScoreTable { ranges, tf, rows: Some(by_code), executed: true, proxy: self.proxy }
            }
            None => {
                let tf = (0..self.tf.len()).map(|c| self.tf[canon(c)]).collect();
                ScoreTable { ranges: self.ranges, tf, rows: None, executed: true, proxy: self.proxy }
            }
        }
    }

    /// True when every cell carries its executed network's scores.
    pub fn is_executed(&self) -> bool {
        self.executed
    }

    /// `TF(arch)` in `[0, 1]`.
    pub fn tf(&self, arch: &Arch) -> f64 {
        self.tf[arch.code().get() as usize]
    }

    /// The metrics of `arch` (`None` for a table read from its quantised form).
    pub fn row(&self, arch: &Arch) -> Option<&ScoreRow> {
        self.rows.as_ref().map(|r| &r[arch.code().get() as usize])
    }

    /// NASWOT of `arch`, if the table holds metrics.
    pub fn naswot(&self, arch: &Arch) -> Option<f64> {
        self.row(arch).map(|r| r.naswot)
    }

    /// LogSynflow of `arch`, if the table holds metrics.
    pub fn logsynflow(&self, arch: &Arch) -> Option<f64> {
        self.row(arch).map(|r| r.logsynflow)
    }

    /// SkipScore of `arch`, if the table holds metrics.
    pub fn skip(&self, arch: &Arch) -> Option<f64> {
        self.row(arch).map(|r| r.skip)
    }

    /// The normalisation ranges (`ranges().naswot.0` is the NASWOT floor).
    pub fn ranges(&self) -> &Ranges {
        &self.ranges
    }

    /// Every row in NATS-Bench index order (`None` for a quantised table).
    pub fn rows_by_index(&self) -> Option<Vec<ScoreRow>> {
        let mut rows = self.rows.clone()?;
        rows.sort_by_key(|r| r.index);
        Some(rows)
    }
}

/// A run's metadata from its settings ([`RunMeta`] is the sidecar's type).
pub trait RunMetaExt: Sized {
    /// Metadata for `settings`.
    fn new(settings: &ScoreSettings, sample: Option<usize>, sample_seed: u64) -> Self;
}

impl RunMetaExt for RunMeta {
    fn new(settings: &ScoreSettings, sample: Option<usize>, sample_seed: u64) -> RunMeta {
        RunMeta {
            channels: settings.net.channels,
            cells_per_stage: settings.net.cells_per_stage,
            resolution: settings.net.resolution,
            classes: settings.net.classes,
            seed: settings.seed,
            batch: settings.batch,
            inits: settings.inits,
            input: settings.input,
            sample,
            sample_seed,
            wall_time_s: 0.0,
            reuse: None,
        }
    }
}

/// A finished cell as the run produces it (`naswot = None` for a degenerate cell).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PartialRow {
    /// NATS-Bench index.
    pub index: NatsIndex,
    /// The cell.
    pub arch: Arch,
    /// NASWOT, `None` when degenerate.
    pub naswot: Option<f64>,
    /// LogSynflow.
    pub logsynflow: f64,
    /// SkipScore.
    pub skip: f64,
    /// MeCo.
    pub meco: Option<f64>,
}

/// The append-only file of a running `score --all`.
#[derive(Debug)]
pub struct PartialTable {
    out: PathBuf,
    partial: PathBuf,
    meta_path: PathBuf,
    file: std::fs::File,
    rows: Vec<PartialRow>,
    meta: RunMeta,
}

/// `<dir>/<stem><suffix>` next to `out`.
pub fn sibling(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "scores".into());
    out.with_file_name(format!("{stem}{suffix}"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl PartialTable {
    /// Open (or start) the partial file of `out` for a run described by `meta`. Rows already
    /// there are kept (a truncated last line is dropped from the file); a partial file of
    /// a run with other settings is refused.
    pub fn open(out: &Path, meta: RunMeta) -> Result<PartialTable> {
        let partial = with_suffix(out, ".partial");
        let meta_path = with_suffix(out, ".partial.json");
        let mut rows = Vec::new();
        let mut meta = meta;
        if partial.exists() {
            if !meta_path.exists() {
                return Err(TableError::Mismatch {
                    path: partial.clone(),
                    msg: format!("its settings file {} is missing", meta_path.display()),
                });
            }
            let text = std::fs::read_to_string(&meta_path).map_err(io_err(&meta_path))?;
            let old: RunMeta = serde_json::from_str(&text).map_err(|e| TableError::Malformed {
                path: meta_path.clone(),
                line: 1,
                msg: e.to_string(),
            })?;
            if !old.same_run(&meta) {
                return Err(TableError::Mismatch {
                    path: partial.clone(),
                    msg: format!("found {}, asked for {}", summary(&old), summary(&meta)),
                });
            }
            meta.wall_time_s = old.wall_time_s;
            rows = read_partial(&partial)?;
        } else {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            }
            crate::output::write(&partial, format!("{}\n", HEADER.join(",")).as_bytes())?;
        }
        let file = std::fs::OpenOptions::new().append(true).open(&partial).map_err(io_err(&partial))?;
        let t = PartialTable { out: out.to_path_buf(), partial, meta_path, file, rows, meta };
        t.save_meta()?;
        Ok(t)
    }

    /// Rows finished so far.
    pub fn rows(&self) -> &[PartialRow] {
        &self.rows
    }

    /// The path of the partial file.
    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    /// Indices finished so far.
    pub fn done(&self) -> HashSet<NatsIndex> {
        self.rows.iter().map(|r| r.index).collect()
    }

    /// Append a finished row and flush it to disk.
    pub fn append(&mut self, row: PartialRow) -> Result<()> {
        let line = csv_line(row.index, &row.arch, row.naswot, row.logsynflow, row.skip, row.meco);
        self.file.write_all(line.as_bytes()).and_then(|()| self.file.flush()).map_err(io_err(&self.partial))?;
        self.rows.push(row);
        Ok(())
    }

    /// Add `seconds` of wall time and save the metadata.
    pub fn add_time(&mut self, seconds: f64) -> Result<()> {
        self.meta.wall_time_s += seconds;
        self.save_meta()
    }

    fn save_meta(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.meta).unwrap_or_default();
        Ok(crate::output::write(&self.meta_path, text.as_bytes())?)
    }

    /// Write the finished table (sorted by index, degenerate NASWOT floored) to `out`
    /// atomically, its sidecar, and for the whole space its quantised form; remove the
    /// partial files. Returns the sidecar.
    pub fn finish(self, command: &str, threads: usize) -> Result<Sidecar> {
        let mut rows = self.rows.clone();
        rows.sort_by_key(|r| r.index);
        let floor = rows.iter().filter_map(|r| r.naswot).fold(f64::INFINITY, f64::min);
        let floor = if floor.is_finite() { floor } else { 0.0 };
        let degenerate = rows.iter().filter(|r| r.naswot.is_none()).count();
        let full: Vec<ScoreRow> = rows
            .iter()
            .map(|r| ScoreRow {
                index: r.index,
                arch: r.arch,
                naswot: r.naswot.unwrap_or(floor),
                logsynflow: r.logsynflow,
                skip: r.skip,
                meco: r.meco,
            })
            .collect();
        let mut csv = format!("{}\n", HEADER.join(","));
        for r in &full {
            csv += &csv_line(r.index, &r.arch, Some(r.naswot), r.logsynflow, r.skip, r.meco);
        }
        crate::output::write(&self.out, csv.as_bytes())?;
        let ranges =
            Ranges::of(&full).unwrap_or(Ranges { naswot: (0.0, 0.0), logsynflow: (0.0, 0.0), skip: (0.0, 0.0) });
        let sidecar = Sidecar {
            format: FORMAT_NAME.into(),
            format_version: TABLE_FORMAT_VERSION,
            simnas_version: env!("CARGO_PKG_VERSION").into(),
            command: command.into(),
            run: self.meta.clone(),
            input: match self.meta.input {
                super::InputKind::Gaussian => {
                    "batch x 3 x R x R values, each i.i.d. N(0, 1) (Box-Muller on SplitMix64), one batch for every cell"
                }
                super::InputKind::Pink => {
                    "batch x 3 planes of R x R Gaussian fields with 1/f^2 power, standardised per channel, one batch for every cell"
                }
            }
            .into(),
            init: "Kaiming normal, mode fan_out, ReLU gain (conv and linear), zero bias; BN gamma 1, beta 0".into(),
            rows: full.len(),
            naswot_floor: floor,
            degenerate_cells: degenerate,
            ranges,
            threads,
        };
        let side = serde_json::to_string_pretty(&sidecar).unwrap_or_default();
        crate::output::write(&sibling(&self.out, ".json"), side.as_bytes())?;
        if full.len() == NUM_ARCHS {
            let meta = QuantMeta {
                seed: self.meta.seed,
                batch: self.meta.batch.min(u16::MAX as usize) as u16,
                inits: self.meta.inits.min(u16::MAX as usize) as u16,
                executed: false,
            };
            write_quantised(&ScoreTable::from_full_rows(full), &self.out, meta)?;
        }
        drop(self.file);
        std::fs::remove_file(&self.partial).map_err(io_err(&self.partial))?;
        std::fs::remove_file(&self.meta_path).map_err(io_err(&self.meta_path))?;
        Ok(sidecar)
    }
}

/// The quantised forms of a whole-space `table` read from or written to `csv`, for every
/// proxy the table can compute: the table of executed networks as `<stem><p>.tf16` (what
/// searches and the board use) and the raw one as `<stem><p>_raw.tf16` (the paper's space),
/// where `<p>` is empty for the default proxy and `_<name>` for the others. Returns the
/// paths, executed then raw, per proxy.
pub fn write_quantised(table: &ScoreTable, csv: &Path, meta: QuantMeta) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for proxy in Proxy::ALL {
        let Ok(t) = table.clone().with_proxy(proxy) else { continue };
        let [exec_path, raw_path] = quantised_paths(csv, proxy);
        let raw = ScoreTable { executed: false, ..t.clone() };
        let exec = t.executed();
        crate::output::write(&exec_path, &quant::encode(&exec, QuantMeta { executed: true, ..meta }))?;
        crate::output::write(&raw_path, &quant::encode(&raw, QuantMeta { executed: false, ..meta }))?;
        paths.extend([exec_path, raw_path]);
    }
    Ok(paths)
}

/// Where [`write_quantised`] puts the executed and raw tables of `proxy` beside `csv`.
pub fn quantised_paths(csv: &Path, proxy: Proxy) -> [PathBuf; 2] {
    let p = if proxy == Proxy::default() { String::new() } else { format!("_{}", proxy.name()) };
    [sibling(csv, &format!("{p}.tf16")), sibling(csv, &format!("{p}_raw.tf16"))]
}

fn summary(m: &RunMeta) -> String {
    format!(
        "C={} N={} R={} classes={} seed={} batch={} inits={} input={:?} sample={:?}/{}",
        m.channels,
        m.cells_per_stage,
        m.resolution,
        m.classes,
        m.seed,
        m.batch,
        m.inits,
        m.input,
        m.sample,
        m.sample_seed
    )
}

/// Rows of a partial file; an unterminated last line (a kill mid-write) is dropped and cut
/// from the file so appends continue on a clean line.
fn read_partial(path: &Path) -> Result<Vec<PartialRow>> {
    let bytes = crate::data::read_capped(path, crate::data::MAX_READ_BYTES).map_err(io_err(path))?;
    let keep = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    if keep < bytes.len() {
        let f = std::fs::OpenOptions::new().write(true).open(path).map_err(io_err(path))?;
        f.set_len(keep as u64).map_err(io_err(path))?;
    }
    let reader = std::io::BufReader::new(&bytes[..keep]);
    let mut rows = Vec::new();
    let mut seen = HashSet::new();
    let mut fields = HEADER.len();
    for (i, l) in reader.lines().enumerate() {
        let l = l.map_err(io_err(path))?;
        let line = i as u64 + 1;
        if i == 0 {
            fields = check_header(&l, path)?;
            if fields != HEADER.len() {
                return Err(TableError::Mismatch {
                    path: path.to_path_buf(),
                    msg: "it was started by a simnas without MeCo".into(),
                });
            }
            continue;
        }
        let (index, arch, naswot, logsynflow, skip, meco) = parse_line(&l, fields, true)
            .map_err(|msg| TableError::Malformed { path: path.to_path_buf(), line, msg })?;
        if !seen.insert(index) {
            return Err(TableError::Malformed {
                path: path.to_path_buf(),
                line,
                msg: format!("index {index} listed twice"),
            });
        }
        rows.push(PartialRow { index, arch, naswot, logsynflow, skip, meco });
    }
    if keep == 0 {
        // Even the header was cut: start over.
        crate::output::write(path, format!("{}\n", HEADER.join(",")).as_bytes())?;
    }
    Ok(rows)
}

/// The code of every cell, for callers iterating the space by [`ArchCode`].
pub fn all_archs() -> impl Iterator<Item = Arch> {
    ArchCode::all().map(Arch::from_code)
}

#[cfg(test)]
mod tests;
