//! Where the executor's weights come from.
//!
//! A [`Params`] hands out the floats of one slot of the dense layout
//! ([`crate::layout`]). [`DenseParams`] is the whole vector (host, parity tests, trained
//! networks). [`BankParams`] serves every slot from one shared bank no larger than the
//! largest slot, so a board with 1 MiB of flash can still run the 6 MB all-conv3x3
//! network for latency measurement: the arithmetic and memory traffic are the same, only
//! the values repeat.

use crate::layout::ParamLayout;
use crate::Error;

/// A source of inference parameters.
pub trait Params {
    /// The `len` floats of the slot that starts at `offset` in the dense layout. A source
    /// that cannot serve the slot returns a shorter slice; the executor then fails with
    /// [`Error::ParamsLength`].
    fn slot(&self, offset: usize, len: usize) -> &[f32];
}

/// The full dense parameter vector, checked against its layout once.
#[derive(Clone, Copy, Debug)]
pub struct DenseParams<'a> {
    data: &'a [f32],
}

impl<'a> DenseParams<'a> {
    /// Wrap `data`, which must be exactly `layout.total_len()` floats.
    pub fn new(layout: &ParamLayout, data: &'a [f32]) -> Result<Self, Error> {
        let expected = layout.total_len();
        if data.len() != expected {
            return Err(Error::ParamsLength { expected, got: data.len() });
        }
        Ok(DenseParams { data })
    }
}

impl Params for DenseParams<'_> {
    fn slot(&self, offset: usize, len: usize) -> &[f32] {
        let end = offset.saturating_add(len).min(self.data.len());
        self.data.get(offset.min(end)..end).unwrap_or(&[])
    }
}

/// Every slot is a window of one shared bank, starting at a position mixed from the slot's
/// dense offset (so neighbouring layers read different values).
#[derive(Clone, Copy, Debug)]
pub struct BankParams<'a> {
    bank: &'a [f32],
}

impl<'a> BankParams<'a> {
    /// Wrap `bank`, which must hold at least `layout.max_slot_len()` floats.
    pub fn new(layout: &ParamLayout, bank: &'a [f32]) -> Result<Self, Error> {
        let needed = layout.max_slot_len();
        if bank.len() < needed {
            return Err(Error::BankTooSmall { needed, got: bank.len() });
        }
        Ok(BankParams { bank })
    }
}

impl Params for BankParams<'_> {
    fn slot(&self, offset: usize, len: usize) -> &[f32] {
        let Some(room) = self.bank.len().checked_sub(len) else {
            return &[];
        };
        let start = (offset.wrapping_mul(0x9E37_79B1) >> 3) % (room + 1);
        self.bank.get(start..start + len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetConfig;

    #[test]
    fn dense_checks_length_and_serves_slots() {
        let l = ParamLayout::new(NetConfig::IMAGENET16_120).unwrap();
        let v: Vec<f32> = (0..l.total_len()).map(|i| i as f32).collect();
        assert!(DenseParams::new(&l, &v[1..]).is_err());
        let p = DenseParams::new(&l, &v).unwrap();
        for s in l.slots() {
            let got = p.slot(s.offset, s.len());
            assert_eq!(got.len(), s.len());
            assert_eq!(got[0], s.offset as f32);
        }
        assert!(p.slot(usize::MAX, 10).is_empty());
    }

    #[test]
    fn bank_serves_every_slot_in_bounds() {
        let l = ParamLayout::new(NetConfig::CIFAR10).unwrap();
        let bank = vec![0.5f32; l.max_slot_len() + 17];
        assert_eq!(
            BankParams::new(&l, &bank[..l.max_slot_len() - 1]).unwrap_err(),
            Error::BankTooSmall { needed: l.max_slot_len(), got: l.max_slot_len() - 1 }
        );
        let p = BankParams::new(&l, &bank).unwrap();
        for s in l.slots() {
            assert_eq!(p.slot(s.offset, s.len()).len(), s.len());
        }
        assert!(p.slot(0, bank.len() + 1).is_empty());
    }
}
