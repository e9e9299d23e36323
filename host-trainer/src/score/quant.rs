//! The quantised score table the board embeds: `TF(h)` as a `u16` per cell, indexed by
//! [`ArchCode`] (the only numbering the board knows), with a small header.
//!
//! Layout (little-endian, [`QUANT_LEN`] = 31,326 bytes for the 15,625 cells):
//!
//! | offset | type | field |
//! |---:|---|---|
//! | 0 | `[u8; 4]` | magic `SNTF` |
//! | 4 | `u16` | format version ([`QUANT_VERSION`]) |
//! | 6 | `u16` | cell count (15,625) |
//! | 8 | `u64` | scoring seed |
//! | 16 | `u16` | NASWOT batch size |
//! | 18 | `u16` | initialisations |
//! | 20 | `u32` | space: 0 = every cell scored as written (the paper's raw table), 1 = every cell carries its executed network's TF ([`ScoreTable::executed`]) |
//! | 24 | `6 x f64` | min, max of NASWOT, LogSynflow, SkipScore over the space (the normalisation of TF) |
//! | 72 | `u32` | CRC-32 (ISO-HDLC, as zlib) of bytes `0..72` followed by the payload |
//! | 76 | `count x u16` | `round(TF * 65535)` for code 0, 1, ..., 15624 |
//!
//! `TF = (n(NASWOT) + n(LogSynflow) + n(SkipScore)) / 3`, `n(x) = (x - min) / (max - min)`;
//! the stored value is within `0.5 / 65535` of it.

use super::table::{tf_of, Ranges, ScoreTable};
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// File magic.
pub const QUANT_MAGIC: [u8; 4] = *b"SNTF";
/// Format version.
pub const QUANT_VERSION: u16 = 1;
/// Header bytes before the payload.
pub const QUANT_HEADER: usize = 76;
/// Total file length.
pub const QUANT_LEN: usize = QUANT_HEADER + 2 * NUM_ARCHS;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// What is wrong with a quantised table.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum QuantError {
    /// Fewer or more bytes than the format has.
    #[error("quantised score table has {got} bytes; expected {expected} (truncated or not a score table)")]
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        got: usize,
    },
    /// Not this format.
    #[error("not a quantised score table (bad magic {0:?})")]
    Magic([u8; 4]),
    /// A version this build cannot read.
    #[error("quantised score table version {0}; this build reads version {QUANT_VERSION}")]
    Version(u16),
    /// Not one value per cell.
    #[error("quantised score table holds {0} cells; the space has {NUM_ARCHS}")]
    Count(u16),
    /// The checksum does not match.
    #[error("quantised score table checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Crc {
        /// Stored CRC.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// Normalisation ranges that are not finite or reversed.
    #[error("quantised score table has an invalid range for {0}")]
    Range(&'static str),
}

/// Provenance carried in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantMeta {
    /// Scoring seed.
    pub seed: u64,
    /// NASWOT batch.
    pub batch: u16,
    /// Initialisations.
    pub inits: u16,
    /// Every cell carries its executed network's TF.
    pub executed: bool,
}

/// Encode `table` (which must hold every cell).
pub fn encode(table: &ScoreTable, meta: QuantMeta) -> Vec<u8> {
    let r = table.ranges();
    let mut out = Vec::with_capacity(QUANT_LEN);
    out.extend_from_slice(&QUANT_MAGIC);
    out.extend_from_slice(&QUANT_VERSION.to_le_bytes());
    out.extend_from_slice(&(NUM_ARCHS as u16).to_le_bytes());
    out.extend_from_slice(&meta.seed.to_le_bytes());
    out.extend_from_slice(&meta.batch.to_le_bytes());
    out.extend_from_slice(&meta.inits.to_le_bytes());
    out.extend_from_slice(&u32::from(meta.executed).to_le_bytes());
    for v in [r.naswot.0, r.naswot.1, r.logsynflow.0, r.logsynflow.1, r.skip.0, r.skip.1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    let mut payload = Vec::with_capacity(2 * NUM_ARCHS);
    for code in ArchCode::all() {
        let tf = table.tf(&Arch::from_code(code));
        payload.extend_from_slice(&quantise(tf).to_le_bytes());
    }
    let mut digest = CRC.digest();
    digest.update(&out);
    digest.update(&payload);
    out.extend_from_slice(&digest.finalize().to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// `round(tf * 65535)`, clamped to `[0, 1]`.
pub fn quantise(tf: f64) -> u16 {
    (tf.clamp(0.0, 1.0) * f64::from(u16::MAX)).round() as u16
}

/// A decoded quantised table.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantTable {
    /// Provenance.
    pub meta: QuantMeta,
    /// Normalisation ranges.
    pub ranges: Ranges,
    /// `TF * 65535` per [`ArchCode`].
    pub tf: Vec<u16>,
}

impl QuantTable {
    /// Decode and check a quantised table.
    pub fn parse(bytes: &[u8]) -> Result<QuantTable, QuantError> {
        if bytes.len() < QUANT_HEADER {
            return Err(QuantError::Length { expected: QUANT_LEN, got: bytes.len() });
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != QUANT_MAGIC {
            return Err(QuantError::Magic(magic));
        }
        let version = u16_at(4);
        if version != QUANT_VERSION {
            return Err(QuantError::Version(version));
        }
        let count = u16_at(6);
        if count as usize != NUM_ARCHS {
            return Err(QuantError::Count(count));
        }
        if bytes.len() != QUANT_LEN {
            return Err(QuantError::Length { expected: QUANT_LEN, got: bytes.len() });
        }
        let stored = u32_at(72);
        let mut digest = CRC.digest();
        digest.update(&bytes[..72]);
        digest.update(&bytes[QUANT_HEADER..]);
        let computed = digest.finalize();
        if stored != computed {
            return Err(QuantError::Crc { stored, computed });
        }
        let f = |o: usize| f64::from_bits(u64_at(o));
        let pair = |o: usize, name: &'static str| {
            let (lo, hi) = (f(o), f(o + 8));
            if lo.is_finite() && hi.is_finite() && lo <= hi {
                Ok((lo, hi))
            } else {
                Err(QuantError::Range(name))
            }
        };
        let ranges =
            Ranges { naswot: pair(24, "naswot")?, logsynflow: pair(40, "logsynflow")?, skip: pair(56, "skip")? };
        let tf = (0..NUM_ARCHS).map(|i| u16_at(QUANT_HEADER + 2 * i)).collect();
        let meta = QuantMeta { seed: u64_at(8), batch: u16_at(16), inits: u16_at(18), executed: u32_at(20) == 1 };
        Ok(QuantTable { meta, ranges, tf })
    }

    /// `TF` of `arch` (within `0.5 / 65535` of the exact value).
    pub fn tf(&self, arch: &Arch) -> f64 {
        f64::from(self.tf[arch.code().get() as usize]) / f64::from(u16::MAX)
    }
}

/// `TF` of raw metrics under `ranges` (re-exported for callers holding a [`QuantTable`]).
pub fn tf_with(ranges: &Ranges, naswot: f64, logsynflow: f64, skip: f64) -> f64 {
    tf_of(ranges, naswot, logsynflow, skip)
}
