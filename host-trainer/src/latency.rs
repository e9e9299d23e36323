//! Measured latency tables: one latency (ms) per NATS-Bench cell, read from a CSV.
//!
//! A table is a CSV file with a header row, a key column and a latency column in ms:
//! * key `index`: the NATS-Bench index (needs the benchmark's index map, [`NatsMap`]);
//! * key `arch`: the NATS-Bench cell string (self-describing, needs nothing else).
//!
//! Values are stored per [`ArchCode`]; an empty field means "not measured" (`None`), e.g.
//! the 341 disconnected cells BRP-NAS never measured. What is refused, always with the file
//! and line in the message:
//! * a missing key or latency column, an unparsable number, `NaN` or an infinity;
//! * a duplicated cell, a key out of range, more than 15,625 data rows, files over
//!   [`MAX_FILE_BYTES`];
//! * non-positive latencies (HW-NAS-Bench's Edge TPU columns hold `-1` for cells it could
//!   not compile), under [`InvalidPolicy::Reject`], the default and what a table *device*
//!   uses: a search must never see a made-up latency. Fitting synthetic devices uses
//!   [`InvalidPolicy::Skip`]: such cells become `None` and are counted in
//!   [`LatencyTable::skipped`] so the caller can warn.

use crate::data::NatsMap;
use simnas_shared::{Arch, ArchCode, NatsIndex, NUM_ARCHS};
use std::path::{Path, PathBuf};

pub mod registry;

/// Largest table file accepted (a full 15,625-row table with many columns is ~3 MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// What to do with a latency that is zero or negative.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum InvalidPolicy {
    /// Refuse the table (table devices, anything that reports latencies).
    #[default]
    Reject,
    /// Treat the cell as unmeasured and count it (fitting, where a few gaps do no harm).
    Skip,
}

/// Problems reading a latency table.
#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than any latency table.
    #[error("{path} is {bytes} bytes; a latency table is at most {max} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The latency column is not in the header.
    #[error("{path} has no column {column:?}; columns: {available}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The header, comma-separated.
        available: String,
    },
    /// Neither an `index` nor an `arch` column.
    #[error("{path}#{column} has a latency for {covered} of the {total} networks a search can measure ({percent:.1}%); a device table must cover at least {min_percent}% of them (and both reference cells, all-skip and all-conv3x3)")]
    Sparse {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Connected executed networks with a value.
        covered: usize,
        /// Connected executed networks.
        total: usize,
        /// `100 covered / total`.
        percent: f64,
        /// The least accepted.
        min_percent: f64,
    },
    /// Two or more columns carry the name asked for.
    #[error("{path} has {count} columns named {column:?}: rename all but one (which is meant is ambiguous)")]
    DuplicateColumn {
        /// The file.
        path: PathBuf,
        /// The repeated name.
        column: String,
        /// How many columns carry it.
        count: usize,
    },
    /// No column says which cell a row is.
    #[error("{path} has neither an 'index' (NATS-Bench index) nor an 'arch' (cell string) column")]
    MissingKey {
        /// The file.
        path: PathBuf,
    },
    /// An `index`-keyed table read without the index map.
    #[error("{path} is keyed by NATS-Bench index: the index map (nb201_archs.csv, from --data) is needed")]
    NeedsIndexMap {
        /// The file.
        path: PathBuf,
    },
    /// A malformed row.
    #[error("{path}, line {line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// A latency that is not a finite number.
    #[error("{path}, line {line}: latency {value:?} in column {column:?} is not a finite number")]
    NotFinite {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The field as written.
        value: String,
    },
    /// A zero or negative latency under [`InvalidPolicy::Reject`].
    #[error("{path}, line {line}: latency {value} ms in column {column:?} is not positive (the benchmark's marker for a failed measurement); such a table cannot serve as a device")]
    NonPositive {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The value.
        value: f64,
    },
    /// A latency no device measures (and whose arithmetic would overflow or underflow).
    #[error("{path}, line {line}: latency {value:e} ms in column {column:?} is outside [{min:e}, {max:e}] ms, the range a device measures: is the column in milliseconds?")]
    OutOfRange {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The column.
        column: String,
        /// The value.
        value: f64,
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
    },
    /// The same cell twice.
    #[error("{path}, line {line}: cell {arch} already given on line {first_line}")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// 1-based line of the repeat.
        line: u64,
        /// Line of the first occurrence.
        first_line: u64,
        /// The cell.
        arch: String,
    },
    /// More data rows than cells in the space.
    #[error("{path} has more than {max} data rows (one per cell of the space at most)")]
    TooManyRows {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: usize,
    },
    /// Not a single measured cell.
    #[error("{path}: column {column:?} holds no latency at all")]
    Empty {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
}

/// The smallest latency a table may hold (1 ps): below it, normalising by differences
/// of latencies loses every digit.
pub const MIN_LATENCY_MS: f64 = 1e-9;
/// The largest latency a table may hold (about 31.7 years).
pub const MAX_LATENCY_MS: f64 = 1e12;

/// One latency per cell (ms), `None` where the table has no measurement.
#[derive(Clone, Debug)]
pub struct LatencyTable {
    /// `path#column`, for reports.
    pub source: String,
    values: Vec<Option<f64>>,
    skipped: usize,
}

impl LatencyTable {
    /// Read `column` of the CSV at `path`. `map` is needed only for `index`-keyed tables.
    pub fn load(
        path: &Path,
        column: &str,
        map: Option<&NatsMap>,
        policy: InvalidPolicy,
    ) -> Result<LatencyTable, LatencyError> {
        let io = |source| LatencyError::Io { path: path.to_path_buf(), source };
        let bytes = std::fs::metadata(path).map_err(io)?.len();
        if bytes > MAX_FILE_BYTES {
            return Err(LatencyError::TooLarge { path: path.to_path_buf(), bytes, max: MAX_FILE_BYTES });
        }
        let bytes = crate::data::read_capped(path, MAX_FILE_BYTES).map_err(io)?;
        Self::read(&bytes[..], path, column, map, policy)
    }

    /// Parse a table from `reader`; `path` is used in messages only.
    pub fn read(
        reader: impl std::io::Read,
        path: &Path,
        column: &str,
        map: Option<&NatsMap>,
        policy: InvalidPolicy,
    ) -> Result<LatencyTable, LatencyError> {
        let p = || path.to_path_buf();
        let bad = |line: u64, msg: String| LatencyError::Malformed { path: p(), line, msg };
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let pos = |name: &str| headers.iter().position(|h| h.trim() == name);
        for name in [column, "index", "arch"] {
            let count = headers.iter().filter(|h| h.trim() == name).count();
            if count > 1 {
                return Err(LatencyError::DuplicateColumn { path: p(), column: name.to_string(), count });
            }
        }
        let col = pos(column).ok_or_else(|| {
            // A header can be huge (a binary file read as CSV): quote at most its start.
            let mut available = headers.iter().collect::<Vec<_>>().join(",");
            if available.len() > 300 {
                let cut = (0..=300).rev().find(|&i| available.is_char_boundary(i)).unwrap_or(0);
                available.truncate(cut);
                available.push_str(" ...");
            }
            LatencyError::MissingColumn { path: p(), column: column.to_string(), available }
        })?;
        enum Key {
            Index(usize),
            Arch(usize),
        }
        let key = match (pos("index"), pos("arch")) {
            (_, Some(a)) => Key::Arch(a),
            (Some(i), None) => Key::Index(i),
            (None, None) => return Err(LatencyError::MissingKey { path: p() }),
        };
        // With both keys and the index map, every row's index must name its cell.
        let cross_check = pos("index").zip(pos("arch")).and(map);
        if matches!(key, Key::Index(_)) && map.is_none() {
            return Err(LatencyError::NeedsIndexMap { path: p() });
        }
        let mut values = vec![None; NUM_ARCHS];
        let mut line_of = vec![0u64; NUM_ARCHS];
        let mut skipped = 0;
        let mut record = csv::StringRecord::new();
        let mut row = 0usize;
        loop {
            let line = row as u64 + 2;
            match rdr.read_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => return Err(bad(line, e.to_string())),
            }
            row += 1;
            if row > NUM_ARCHS {
                return Err(LatencyError::TooManyRows { path: p(), max: NUM_ARCHS });
            }
            let arch = match key {
                Key::Arch(c) => {
                    let s = record.get(c).unwrap_or("").trim();
                    Arch::parse(s).map_err(|e| bad(line, format!("arch {s:?}: {e}")))?
                }
                Key::Index(c) => {
                    let s = record.get(c).unwrap_or("").trim();
                    let i = s
                        .parse::<u16>()
                        .ok()
                        .and_then(NatsIndex::new)
                        .ok_or_else(|| bad(line, format!("index {s:?} is not a NATS-Bench index (0..15624)")))?;
                    // Checked above: an index key implies a map.
                    map.ok_or(LatencyError::NeedsIndexMap { path: p() })?.arch(i)
                }
            };
            if let (Some(m), Some(i)) = (cross_check, pos("index")) {
                let s = record.get(i).unwrap_or("").trim();
                let index = s.parse::<u16>().ok().and_then(NatsIndex::new);
                if index.map(|i| m.arch(i)) != Some(arch) {
                    return Err(bad(
                        line,
                        format!(
                            "index {s:?} and arch {arch} name different cells (the benchmark's index of {arch} is {})",
                            m.index(arch)
                        ),
                    ));
                }
            }
            let code = arch.code().get() as usize;
            if line_of[code] != 0 {
                return Err(LatencyError::Duplicate {
                    path: p(),
                    line,
                    first_line: line_of[code],
                    arch: arch.to_string(),
                });
            }
            line_of[code] = line;
            let field = record.get(col).unwrap_or("").trim();
            if field.is_empty() {
                continue;
            }
            let v: f64 = field.parse().map_err(|_| bad(line, format!("latency {field:?} is not a number")))?;
            if !v.is_finite() {
                return Err(LatencyError::NotFinite { path: p(), line, column: column.into(), value: field.into() });
            }
            if v <= 0.0 {
                match policy {
                    InvalidPolicy::Reject => {
                        return Err(LatencyError::NonPositive { path: p(), line, column: column.into(), value: v })
                    }
                    InvalidPolicy::Skip => {
                        skipped += 1;
                        continue;
                    }
                }
            }
            if !(MIN_LATENCY_MS..=MAX_LATENCY_MS).contains(&v) {
                return Err(LatencyError::OutOfRange {
                    path: p(),
                    line,
                    column: column.into(),
                    value: v,
                    min: MIN_LATENCY_MS,
                    max: MAX_LATENCY_MS,
                });
            }
            values[code] = Some(v);
        }
        if values.iter().all(Option::is_none) {
            return Err(LatencyError::Empty { path: p(), column: column.into() });
        }
        // Named by its resolved path, so the same table named another way is the same device.
        let resolved = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(LatencyTable { source: format!("{}#{column}", resolved.display()), values, skipped })
    }

    /// A table from values indexed by [`ArchCode`] (tests, synthetic devices).
    pub fn from_codes(source: impl Into<String>, values: Vec<Option<f64>>) -> Option<LatencyTable> {
        (values.len() == NUM_ARCHS).then(|| LatencyTable { source: source.into(), values, skipped: 0 })
    }

    /// Latency of `arch` in ms, if measured.
    pub fn get(&self, arch: Arch) -> Option<f64> {
        self.values[arch.code().get() as usize]
    }

    /// Latency by compact code.
    pub fn get_code(&self, code: ArchCode) -> Option<f64> {
        self.values[code.get() as usize]
    }

    /// All values, indexed by [`ArchCode`].
    pub fn values(&self) -> &[Option<f64>] {
        &self.values
    }

    /// Number of measured cells.
    pub fn measured(&self) -> usize {
        self.values.iter().flatten().count()
    }

    /// Non-positive values dropped under [`InvalidPolicy::Skip`].
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

/// The header of a CSV file: the columns a table device may name.
pub fn list_columns(path: &Path) -> Result<Vec<String>, LatencyError> {
    let io = |source| LatencyError::Io { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(io)?;
    // A header is never this long; the bound keeps a file without newlines from growing
    // the reader's buffer without end.
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(std::io::Read::take(file, 1 << 20));
    let headers =
        rdr.headers().map_err(|e| LatencyError::Malformed { path: path.to_path_buf(), line: 1, msg: e.to_string() })?;
    Ok(headers.iter().map(|h| h.trim().to_string()).collect())
}

#[cfg(test)]
mod tests;
