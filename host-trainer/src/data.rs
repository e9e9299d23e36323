//! Benchmark files from a user-named data directory (`--data DIR` or `SIMNAS_DATA`).
//!
//! The product never ships these tables; it reads them where the user keeps them. This
//! module maps the benchmark's own index ([`NatsIndex`]) to cells ([`Arch`]) from
//! `nb201_archs.csv` and checks the file thoroughly: a wrong mapping would silently
//! mislabel every result.

use simnas_shared::{Arch, ArchCode, NatsIndex, NUM_ARCHS};
use std::path::{Path, PathBuf};

/// Environment variable naming the data directory.
pub const DATA_ENV: &str = "SIMNAS_DATA";

/// Largest file the loaders read whole (policies, score tables, distributions, index
/// maps): far above any file simnas writes, low enough that a wrong path (a disk image,
/// `/dev/zero`, a FIFO) fails at once instead of exhausting memory.
pub const MAX_READ_BYTES: u64 = 64 << 20;

/// Read a whole file, refusing one longer than `max` bytes. The size is checked before
/// reading and again while reading, so files whose size the metadata does not tell
/// (devices, pipes) are bounded too.
pub fn read_capped(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let too_large = |what: String| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}; files over {max} bytes are refused"))
    };
    // A FIFO or a socket would block `open` until a writer appears: refuse it first.
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(path)?.file_type();
        if kind.is_fifo() || kind.is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a named pipe or socket, not a file: pass a regular file",
            ));
        }
    }
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        return Err(too_large(format!("the file is {len} bytes")));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large("the file is longer than its size says (a device or a pipe?)".into()));
    }
    Ok(bytes)
}

/// `text` quoted for an error message, at most `max` characters of it (a binary file read
/// as text must not turn into a message of megabytes).
pub fn quote_capped(text: &str, max: usize) -> String {
    let n = text.chars().count();
    let head: String = text.chars().take(max).collect();
    if n > max {
        format!("{head:?} ... ({n} characters in all)")
    } else {
        format!("{head:?}")
    }
}

/// Problems reading benchmark files.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// No directory given.
    #[error("no benchmark data directory: pass --data DIR or set {DATA_ENV} (e.g. ../shared/data)")]
    NoDataDir,
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A malformed row or header.
    #[error("{path}, line {line}: {msg}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        msg: String,
    },
    /// Not one row per architecture.
    #[error("{path} has {got} data rows; the NATS-Bench topology space has {expected}")]
    RowCount {
        /// The file.
        path: PathBuf,
        /// Rows expected.
        expected: usize,
        /// Rows found.
        got: usize,
    },
}

/// Resolve the data directory from a flag, then the environment.
pub fn data_dir(flag: Option<&Path>) -> Result<PathBuf, DataError> {
    flag.map(Path::to_path_buf).or_else(|| std::env::var_os(DATA_ENV).map(PathBuf::from)).ok_or(DataError::NoDataDir)
}

/// The benchmark's index <-> cell permutation.
#[derive(Clone, Debug)]
pub struct NatsMap {
    arch_of: Vec<Arch>,
    index_of: Vec<NatsIndex>,
}

impl NatsMap {
    /// Read `nb201_archs.csv` (`index,arch`, one row per index in order) from `dir`.
    pub fn load(dir: &Path) -> Result<NatsMap, DataError> {
        let path = dir.join("nb201_archs.csv");
        let bytes =
            read_capped(&path, MAX_READ_BYTES).map_err(|source| DataError::Io { path: path.clone(), source })?;
        Self::read(&bytes[..], &path)
    }

    /// Parse an `index,arch` table; `path` is only used in messages.
    pub fn read(reader: impl std::io::Read, path: &Path) -> Result<NatsMap, DataError> {
        let bad = |line: u64, msg: String| DataError::Malformed { path: path.to_path_buf(), line, msg };
        let mut rdr = csv::ReaderBuilder::new().has_headers(true).from_reader(reader);
        let headers = rdr.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let col = |name: &str| headers.iter().position(|h| h == name);
        let (Some(ci), Some(ca)) = (col("index"), col("arch")) else {
            return Err(bad(
                1,
                format!("expected columns 'index' and 'arch', found {:?}", headers.iter().collect::<Vec<_>>()),
            ));
        };
        let mut arch_of = Vec::with_capacity(NUM_ARCHS);
        let mut index_of = vec![None; NUM_ARCHS];
        for (row, rec) in rdr.records().enumerate() {
            let line = row as u64 + 2;
            let rec = rec.map_err(|e| bad(line, e.to_string()))?;
            if row >= NUM_ARCHS {
                return Err(DataError::RowCount { path: path.to_path_buf(), expected: NUM_ARCHS, got: row + 1 });
            }
            let idx: usize =
                rec.get(ci).unwrap_or("").trim().parse().map_err(|_| bad(line, "index is not a number".into()))?;
            if idx != row {
                return Err(bad(line, format!("index {idx} out of order (expected {row})")));
            }
            let s = rec.get(ca).unwrap_or("");
            let arch = Arch::parse(s).map_err(|e| bad(line, format!("{s:?}: {e}")))?;
            let slot = &mut index_of[arch.code().get() as usize];
            if let Some(prev) = slot {
                return Err(bad(line, format!("cell {s} already listed as index {prev}")));
            }
            *slot = NatsIndex::new(row as u16);
            arch_of.push(arch);
        }
        if arch_of.len() != NUM_ARCHS {
            return Err(DataError::RowCount { path: path.to_path_buf(), expected: NUM_ARCHS, got: arch_of.len() });
        }
        // 15625 distinct cells in a space of 15625: every code is covered.
        let index_of = index_of.into_iter().flatten().collect();
        Ok(NatsMap { arch_of, index_of })
    }

    /// The cell at benchmark index `i`.
    pub fn arch(&self, i: NatsIndex) -> Arch {
        self.arch_of[i.get() as usize]
    }

    /// The benchmark index of `arch`.
    pub fn index(&self, arch: Arch) -> NatsIndex {
        self.index_of[arch.code().get() as usize]
    }

    /// Benchmark index of a compact code.
    pub fn index_of_code(&self, code: ArchCode) -> NatsIndex {
        self.index_of[code.get() as usize]
    }

    /// CRC-32 (ISO-HDLC) of the compact code of every index in order, little-endian `u16`s:
    /// a fingerprint of the numbering, to recognise the benchmark's own without its file.
    pub fn fingerprint(&self) -> u32 {
        let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
        let mut d = crc.digest();
        for a in &self.arch_of {
            d.update(&a.code().get().to_le_bytes());
        }
        d.finalize()
    }

    /// True when this is the NATS-Bench numbering ([`NATS_FINGERPRINT`]).
    pub fn is_benchmark(&self) -> bool {
        self.fingerprint() == NATS_FINGERPRINT
    }
}

/// [`NatsMap::fingerprint`] of the benchmark's `nb201_archs.csv` (checked against the file
/// by a test when the data directory is present).
pub const NATS_FINGERPRINT: u32 = 0x1b65_bfcd;

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rows: &[(usize, String)]) -> String {
        let mut s = String::from("index,arch\n");
        for (i, a) in rows {
            s += &format!("{i},{a}\n");
        }
        s
    }

    fn full() -> Vec<(usize, String)> {
        // A valid permutation: reversed codes.
        (0..NUM_ARCHS)
            .map(|i| (i, Arch::from_code(ArchCode::new((NUM_ARCHS - 1 - i) as u16).unwrap()).to_string()))
            .collect()
    }

    #[test]
    fn reads_a_permutation() {
        let m = NatsMap::read(table(&full()).as_bytes(), Path::new("t.csv")).unwrap();
        let a = Arch::from_code(ArchCode::new(0).unwrap());
        assert_eq!(m.index(a).get(), 15624);
        assert_eq!(m.arch(NatsIndex::new(15624).unwrap()), a);
    }

    #[test]
    fn rejects_broken_tables() {
        let p = Path::new("t.csv");
        let mut rows = full();
        assert!(matches!(NatsMap::read(table(&rows[..10]).as_bytes(), p), Err(DataError::RowCount { got: 10, .. })));
        rows[5].1 = rows[4].1.clone();
        assert!(NatsMap::read(table(&rows).as_bytes(), p).unwrap_err().to_string().contains("already listed"));
        let mut rows = full();
        rows[7].1 = "|bogus~0|".into();
        assert!(NatsMap::read(table(&rows).as_bytes(), p).unwrap_err().to_string().contains("line 9"));
        let mut rows = full();
        rows[3].0 = 4;
        assert!(NatsMap::read(table(&rows).as_bytes(), p).is_err());
        assert!(NatsMap::read("idx,cell\n0,x\n".as_bytes(), p).unwrap_err().to_string().contains("expected columns"));
        assert!(NatsMap::read(&b"\xff\xfe,\n"[..], p).is_err());
        let mut big = table(&full());
        big += "15625,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n";
        assert!(matches!(NatsMap::read(big.as_bytes(), p), Err(DataError::RowCount { .. })));
    }
}

#[cfg(test)]
mod fingerprint_tests {
    use super::*;

    /// The constant is the fingerprint of the real `nb201_archs.csv` (when the data
    /// directory is there), and a shuffled numbering is not recognised.
    #[test]
    fn the_benchmark_numbering_is_recognised() {
        let dir = std::env::var_os(DATA_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"));
        let Ok(m) = NatsMap::load(&dir) else { return };
        assert_eq!(m.fingerprint(), NATS_FINGERPRINT, "{:#010x}", m.fingerprint());
        assert!(m.is_benchmark());
        let mut rows = String::from("index,arch\n");
        for i in 0..NUM_ARCHS {
            let j = if i < 2 { 1 - i } else { i };
            rows += &format!("{i},{}\n", m.arch(NatsIndex::new(j as u16).unwrap()));
        }
        assert!(!NatsMap::read(rows.as_bytes(), Path::new("t.csv")).unwrap().is_benchmark());
    }
}
