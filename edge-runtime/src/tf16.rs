//! The quantised proxy-score table (`.tf16`) read in place, without an allocator: what a
//! board embeds to know `TF(h)` of every cell.
//!
//! The one definition of the format: the host (`simnas score`, `host-trainer/src/score/quant.rs`)
//! writes it and decodes it with this reader;
//! little-endian, [`TF16_LEN`] = 31,326 bytes for the 15,625 cells:
//!
//! | offset | type | field |
//! |---:|---|---|
//! | 0 | `[u8; 4]` | magic `SNTF` |
//! | 4 | `u16` | format version ([`TF16_VERSION`]) |
//! | 6 | `u16` | cell count (15,625) |
//! | 8 | `u64` | scoring seed |
//! | 16 | `u16` | NASWOT batch size |
//! | 18 | `u16` | initialisations |
//! | 20 | `u32` | bit 0, space: 0 = every cell scored as written (the paper's raw table), 1 = every cell carries its executed network's TF; bits 8..16, the proxy that combined the metrics into TF (0 = FreeREA's mean, 1 = MeCo-NASWOT-LogSynflow rank aggregate); other bits 0 |
//! | 24 | `6 x f64` | min, max of NASWOT, LogSynflow, SkipScore (TF's normalisation) |
//! | 72 | `u32` | CRC-32 (ISO-HDLC) of bytes `0..72` followed by the payload |
//! | 76 | `count x u16` | `round(TF * 65535)` per [`ArchCode`] 0, 1, ..., 15624 |
//!
//! [`Tf16::parse`] checks everything once (length, magic, version, count, checksum,
//! finite and ordered ranges); [`Tf16::tf`] then reads `TF = q / 65535` straight from the
//! bytes (flash on a board) and cannot fail.

use core::fmt;
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

/// File magic.
pub const TF16_MAGIC: [u8; 4] = *b"SNTF";
/// The largest proxy id a table may name (header word 20, bits 8..16).
pub const TF16_MAX_PROXY: u8 = 1;

/// Format version this reader reads.
pub const TF16_VERSION: u16 = 1;
/// Header bytes before the payload.
pub const TF16_HEADER: usize = 76;
/// Total length of a table of the whole space.
pub const TF16_LEN: usize = TF16_HEADER + 2 * NUM_ARCHS;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The three metrics TF averages (names a bad range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// NASWOT.
    Naswot,
    /// LogSynflow.
    LogSynflow,
    /// SkipScore.
    Skip,
}

/// Why a score table was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tf16Error {
    /// Not [`TF16_LEN`] bytes (truncated, or not a score table).
    Length {
        /// Bytes expected.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
    /// Bad magic.
    Magic([u8; 4]),
    /// A version this reader does not read.
    Version(u16),
    /// Not one value per cell of the space.
    Count(u16),
    /// The checksum does not match.
    Crc {
        /// Stored.
        stored: u32,
        /// Computed over the bytes.
        computed: u32,
    },
    /// A normalisation range that is not finite or is reversed.
    Range(Metric),
    /// Header word 20 sets bits this reader does not know.
    Flags(u32),
}

impl fmt::Display for Tf16Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Tf16Error::Length { expected, got } => {
                write!(f, "score table has {got} bytes; expected {expected} (truncated or not a score table)")
            }
            Tf16Error::Magic(m) => write!(f, "not a quantised score table (bad magic {m:?})"),
            Tf16Error::Version(v) => write!(f, "score table version {v}; this reader reads version {TF16_VERSION}"),
            Tf16Error::Count(c) => write!(f, "score table holds {c} cells; the space has {NUM_ARCHS}"),
            Tf16Error::Crc { stored, computed } => {
                write!(f, "score table checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")
            }
            Tf16Error::Range(m) => write!(f, "score table has an invalid range for {m:?}"),
            Tf16Error::Flags(w) => write!(f, "score table header flags {w:#010x} name an unknown space or proxy"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Tf16Error {}

/// Provenance in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tf16Meta {
    /// Scoring seed.
    pub seed: u64,
    /// NASWOT batch.
    pub batch: u16,
    /// Initialisations.
    pub inits: u16,
    /// Every cell carries its executed network's TF (bit 0 of header word 20).
    pub executed: bool,
    /// The proxy that made TF (bits 8..16 of word 20): 0 FreeREA, 1 the rank aggregate.
    pub proxy: u8,
}

/// A validated score table over its bytes.
#[derive(Clone, Copy, Debug)]
pub struct Tf16<'a> {
    payload: &'a [u8],
    /// Provenance.
    pub meta: Tf16Meta,
    /// `(min, max)` of NASWOT, LogSynflow and SkipScore over the space.
    pub ranges: [(f64, f64); 3],
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    match b.get(o..o + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    match b.get(o..o + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from(u32_at(b, o)) | (u64::from(u32_at(b, o + 4)) << 32)
}

impl<'a> Tf16<'a> {
    /// Check a table and index it (the checks run in the order the host's reader runs them,
    /// so both refuse a bad file for the same reason).
    pub fn parse(bytes: &'a [u8]) -> Result<Tf16<'a>, Tf16Error> {
        if bytes.len() < TF16_HEADER {
            return Err(Tf16Error::Length { expected: TF16_LEN, got: bytes.len() });
        }
        let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
        if magic != TF16_MAGIC {
            return Err(Tf16Error::Magic(magic));
        }
        let version = u16_at(bytes, 4);
        if version != TF16_VERSION {
            return Err(Tf16Error::Version(version));
        }
        let count = u16_at(bytes, 6);
        if usize::from(count) != NUM_ARCHS {
            return Err(Tf16Error::Count(count));
        }
        if bytes.len() != TF16_LEN {
            return Err(Tf16Error::Length { expected: TF16_LEN, got: bytes.len() });
        }
        let stored = u32_at(bytes, 72);
        let mut digest = CRC.digest();
        digest.update(&bytes[..72]);
        digest.update(&bytes[TF16_HEADER..]);
        let computed = digest.finalize();
        if stored != computed {
            return Err(Tf16Error::Crc { stored, computed });
        }
        let mut ranges = [(0.0, 0.0); 3];
        for (k, (r, m)) in ranges.iter_mut().zip([Metric::Naswot, Metric::LogSynflow, Metric::Skip]).enumerate() {
            let lo = f64::from_bits(u64_at(bytes, 24 + 16 * k));
            let hi = f64::from_bits(u64_at(bytes, 32 + 16 * k));
            if !(lo.is_finite() && hi.is_finite() && lo <= hi) {
                return Err(Tf16Error::Range(m));
            }
            *r = (lo, hi);
        }
        let flags = u32_at(bytes, 20);
        let proxy = ((flags >> 8) & 0xff) as u8;
        if flags & !0xff01 != 0 || proxy > TF16_MAX_PROXY {
            return Err(Tf16Error::Flags(flags));
        }
        let meta = Tf16Meta {
            seed: u64_at(bytes, 8),
            batch: u16_at(bytes, 16),
            inits: u16_at(bytes, 18),
            executed: flags & 1 == 1,
            proxy,
        };
        Ok(Tf16 { payload: &bytes[TF16_HEADER..], meta, ranges })
    }

    /// The stored `round(TF * 65535)` of a cell.
    pub fn quantised(&self, code: ArchCode) -> u16 {
        u16_at(self.payload, 2 * usize::from(code.get()))
    }

    /// `TF` of `arch` in `[0, 1]` (within `0.5 / 65535` of the exact score).
    pub fn tf(&self, arch: &Arch) -> f64 {
        f64::from(self.quantised(arch.code())) / f64::from(u16::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simnas_shared::Op;

    /// A valid table whose cell `c` holds `c * 4 mod 65536`, built here byte by byte.
    fn table() -> std::vec::Vec<u8> {
        let mut b = std::vec::Vec::new();
        b.extend_from_slice(b"SNTF");
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&(NUM_ARCHS as u16).to_le_bytes());
        b.extend_from_slice(&7u64.to_le_bytes());
        b.extend_from_slice(&64u16.to_le_bytes());
        b.extend_from_slice(&3u16.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        for v in [1.0f64, 2.0, -3.0, 4.0, 0.0, 0.0] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let payload: std::vec::Vec<u8> = (0..NUM_ARCHS).flat_map(|c| ((c * 4) as u16).to_le_bytes()).collect();
        let mut d = CRC.digest();
        d.update(&b);
        d.update(&payload);
        b.extend_from_slice(&d.finalize().to_le_bytes());
        b.extend_from_slice(&payload);
        b
    }

    fn reseal(b: &mut [u8]) {
        let mut d = CRC.digest();
        d.update(&b[..72]);
        d.update(&b[TF16_HEADER..]);
        let crc = d.finalize().to_le_bytes();
        b[72..76].copy_from_slice(&crc);
    }

    #[test]
    fn reads_values_and_header() {
        let b = table();
        let t = Tf16::parse(&b).unwrap();
        assert_eq!(t.meta, Tf16Meta { seed: 7, batch: 64, inits: 3, executed: false, proxy: 0 });
        assert_eq!(t.ranges, [(1.0, 2.0), (-3.0, 4.0), (0.0, 0.0)]);
        let a = Arch::uniform(Op::NorConv3x3);
        let c = a.code().get() as usize;
        assert_eq!(t.quantised(a.code()), (c * 4) as u16);
        assert_eq!(t.tf(&a), ((c * 4) as u16) as f64 / 65535.0);
    }

    #[test]
    fn refuses_every_kind_of_damage() {
        let good = table();
        assert_eq!(Tf16::parse(&good[..10]).unwrap_err(), Tf16Error::Length { expected: TF16_LEN, got: 10 });
        assert_eq!(
            Tf16::parse(&good[..good.len() - 1]).unwrap_err(),
            Tf16Error::Length { expected: TF16_LEN, got: TF16_LEN - 1 }
        );
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Tf16::parse(&b).unwrap_err(), Tf16Error::Magic(*b"XNTF"));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(Tf16::parse(&b).unwrap_err(), Tf16Error::Version(2));
        let mut b = good.clone();
        b[6..8].copy_from_slice(&100u16.to_le_bytes());
        assert_eq!(Tf16::parse(&b).unwrap_err(), Tf16Error::Count(100));
        let mut b = good.clone();
        b[TF16_HEADER + 5] ^= 1;
        assert!(matches!(Tf16::parse(&b).unwrap_err(), Tf16Error::Crc { .. }));
        // Ranges are checked after the CRC: reseal the damaged header.
        let mut b = good.clone();
        b[40..48].copy_from_slice(&f64::NAN.to_le_bytes());
        reseal(&mut b);
        assert_eq!(Tf16::parse(&b).unwrap_err(), Tf16Error::Range(Metric::LogSynflow));
        let mut b = good.clone();
        b[56..64].copy_from_slice(&5.0f64.to_le_bytes());
        reseal(&mut b);
        assert_eq!(Tf16::parse(&b).unwrap_err(), Tf16Error::Range(Metric::Skip));
    }

    #[test]
    fn flags_name_the_space_and_the_proxy() {
        let mut b = table();
        b[20..24].copy_from_slice(&0x0101u32.to_le_bytes());
        reseal(&mut b);
        let t = Tf16::parse(&b).unwrap();
        assert!(t.meta.executed);
        assert_eq!(t.meta.proxy, 1);
        for bad in [0x0201u32, 0x2, 0x1_0000] {
            b[20..24].copy_from_slice(&bad.to_le_bytes());
            reseal(&mut b);
            assert_eq!(Tf16::parse(&b).unwrap_err(), Tf16Error::Flags(bad));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let good = table();
        let mut b = good.clone();
        for i in (0..TF16_HEADER).chain([TF16_HEADER + 1, TF16_LEN - 1]) {
            for bit in 0..8 {
                b[i] ^= 1 << bit;
                assert!(Tf16::parse(&b).is_err(), "flip of bit {bit} of byte {i} accepted");
                b[i] ^= 1 << bit;
            }
        }
        for n in 0..TF16_HEADER + 3 {
            assert!(Tf16::parse(&good[..n]).is_err());
        }
    }
}
