//! The quantised score table the board embeds: `TF(h)` as a `u16` per cell, indexed by
//! [`ArchCode`] (the only numbering the board knows), with a small header.
//!
//! The format (layout, checks) is defined once, by the reader the board runs:
//! [`edge_runtime::tf16`]. This module writes it; [`ScoreTable::from_quantised`] reads it
//! with that reader.

use super::table::ScoreTable;
use simnas_shared::{Arch, ArchCode, NUM_ARCHS};

pub use edge_runtime::tf16::{Tf16Error, TF16_LEN};
use edge_runtime::tf16::{TF16_MAGIC, TF16_VERSION};

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

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
    let mut out = Vec::with_capacity(TF16_LEN);
    out.extend_from_slice(&TF16_MAGIC);
    out.extend_from_slice(&TF16_VERSION.to_le_bytes());
    out.extend_from_slice(&(NUM_ARCHS as u16).to_le_bytes());
    out.extend_from_slice(&meta.seed.to_le_bytes());
    out.extend_from_slice(&meta.batch.to_le_bytes());
    out.extend_from_slice(&meta.inits.to_le_bytes());
    let flags = u32::from(meta.executed) | u32::from(table.proxy().id()) << 8;
    out.extend_from_slice(&flags.to_le_bytes());
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
