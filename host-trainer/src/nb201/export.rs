//! Export of the candle model as the edge runtime's dense inference parameter vector:
//! every conv slot transposed from candle's `[cout][cin][kh][kw]` to `[kh][kw][cin][cout]`
//! with the following BN folded in, the final BN as `scale`/`shift`, the classifier
//! transposed to `[4C][classes]` (see [`edge_runtime::layout`]).

use super::{BatchNorm, Conv, ConvBn, Nb201, Nb201Error, Reduction, Result, BN_EPS};
use candle_core::{DType, Tensor};
use edge_runtime::layout::{fold_batch_norm, ParamLayout, Slot};

impl Nb201 {
    /// The folded inference parameters in the edge runtime's dense layout
    /// ([`edge_runtime::layout`]), from the running statistics, as `f32`.
    pub fn to_dense_params(&self) -> Result<Vec<f32>> {
        let layout = ParamLayout::new(self.cfg)?;
        let mut out = vec![0f32; layout.total_len()];
        for info in layout.slots() {
            let mismatch = |got| Nb201Error::SlotMismatch { slot: info.slot, expected: info.len(), got };
            let dst = out.get_mut(info.offset..info.offset + info.len()).ok_or(mismatch(0))?;
            let written = match info.slot {
                Slot::Stem => self.stem.export(info.slot, dst)?,
                Slot::ReduceA(s) => self.reduction(s).ok_or(mismatch(0))?.a.export(info.slot, dst)?,
                Slot::ReduceB(s) => self.reduction(s).ok_or(mismatch(0))?.b.export(info.slot, dst)?,
                Slot::ReduceShortcut(s) => {
                    let conv = &self.reduction(s).ok_or(mismatch(0))?.shortcut;
                    let n = export_conv(info.slot, conv, dst)?;
                    dst[n..].fill(0.0);
                    dst.len()
                }
                Slot::CellConv { stage, cell, edge, kernel } => {
                    let k = usize::from(kernel == 3);
                    let cell = self.cells.get(stage).and_then(|s| s.get(cell)).ok_or(mismatch(0))?;
                    cell.convs.get(edge).ok_or(mismatch(0))?[k].export(info.slot, dst)?
                }
                Slot::FinalBn => {
                    let (scale, shift) = self.head_bn.affine()?;
                    let n = scale.len();
                    if dst.len() != 2 * n {
                        return Err(mismatch(2 * n));
                    }
                    dst[..n].copy_from_slice(&scale);
                    dst[n..].copy_from_slice(&shift);
                    2 * n
                }
                Slot::Classifier => {
                    let w = to_f32(self.fc_w.as_tensor())?; // [classes][4C]
                    let b = to_f32(self.fc_b.as_tensor())?;
                    let (k, f) = (b.len(), w.len() / b.len().max(1));
                    if dst.len() != w.len() + k {
                        return Err(mismatch(w.len() + k));
                    }
                    for ci in 0..f {
                        for co in 0..k {
                            dst[ci * k + co] = w[co * f + ci];
                        }
                    }
                    dst[f * k..].copy_from_slice(&b);
                    dst.len()
                }
            };
            if written != info.len() {
                return Err(mismatch(written));
            }
        }
        Ok(out)
    }

    fn reduction(&self, stage: usize) -> Option<&Reduction> {
        stage.checked_sub(1).and_then(|i| self.reductions.get(i))
    }
}

impl BatchNorm {
    /// Inference BN as `(scale, shift)`: `scale = g / sqrt(v + eps)`, `shift = beta - mean * scale`.
    fn affine(&self) -> Result<(Vec<f32>, Vec<f32>)> {
        let [g, b, m, v] = self.stats()?;
        let scale: Vec<f32> = g.iter().zip(&v).map(|(g, v)| g / (v + BN_EPS as f32).sqrt()).collect();
        let shift = b.iter().zip(&m).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Ok((scale, shift))
    }

    fn stats(&self) -> Result<[Vec<f32>; 4]> {
        Ok([
            to_f32(self.gamma.as_tensor())?,
            to_f32(self.beta.as_tensor())?,
            to_f32(self.mean.as_tensor())?,
            to_f32(self.var.as_tensor())?,
        ])
    }
}

impl ConvBn {
    /// Write the BN-folded slot (weights `[kh][kw][cin][cout]`, then bias); returns floats
    /// written.
    fn export(&self, slot: Slot, dst: &mut [f32]) -> Result<usize> {
        let n = export_conv(slot, &self.conv, dst)?;
        let [g, b, m, v] = self.bn.stats()?;
        let (weights, bias) = dst.split_at_mut(n);
        bias.fill(0.0);
        fold_batch_norm(weights, bias, &g, &b, &m, &v, BN_EPS as f32);
        Ok(dst.len())
    }
}

/// Transpose a conv's weights into `dst[..k*k*cin*cout]` as `[kh][kw][cin][cout]`; `dst` must
/// also have room for `cout` biases (left to the caller). Returns the weight count.
fn export_conv(slot: Slot, conv: &Conv, dst: &mut [f32]) -> Result<usize> {
    let (cout, cin, kh, kw) = conv.w.as_tensor().dims4()?;
    let w = to_f32(conv.w.as_tensor())?;
    let n = w.len();
    if dst.len() != n + cout {
        return Err(Nb201Error::SlotMismatch { slot, expected: dst.len(), got: n + cout });
    }
    for co in 0..cout {
        for ci in 0..cin {
            for y in 0..kh {
                for x in 0..kw {
                    dst[((y * kw + x) * cin + ci) * cout + co] = w[((co * cin + ci) * kh + y) * kw + x];
                }
            }
        }
    }
    Ok(n)
}

fn to_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?)
}
