//! NASWOT in candle: the reference implementation (it defines the method; the fast path
//! in [`super::fast`] is tested against it).
//!
//! For a batch `x` `[B, 3, R, R]` forward through the NB201 network with batch-statistics BN
//! ([`BnMode::Batch`]), every ReLU output `r` (reshaped `[B, D]`) gives the binary codes
//! `C = (r > 0)`, and the kernel accumulates `K += C C^T + (1 - C)(1 - C)^T` (`[B, B]`): `K_ij`
//! counts the units, over all ReLUs, where inputs `i` and `j` are on the same side of zero.
//! The score is `log|det K|` ([`logdet_psd`], `f64`). The ReLUs are the network's own: one
//! opening every conv op of every cell (including convs on zero nodes and on nodes that
//! never reach the output), two per reduction block, and the head's.
//!
//! `C C^T` is computed as an `f32` matmul of 0/1 values: every partial sum is an integer at
//! most `D <= 2^24`, so it is exact; the per-ReLU results are summed in `f64`.

use super::linalg::logdet_psd;
use super::{Result, ScoreError, ScoreSettings, INIT_FAN};
use crate::nb201::{BnMode, Nb201};
use candle_core::{DType, Device, Tensor};
use simnas_shared::Arch;

/// `K += C C^T + (1 - C)(1 - C)^T` for the codes `C = (r > 0)` of one ReLU output `r`
/// (`[B, ...]`); `k` is `B x B` row-major.
pub fn accumulate_kernel(k: &mut [f64], r: &Tensor) -> Result<()> {
    let b = r.dim(0)?;
    if k.len() != b * b {
        return Err(ScoreError::Settings(format!("kernel holds {} entries for a batch of {b}", k.len())));
    }
    let c = r.flatten_from(1)?.gt(0.0)?.to_dtype(DType::F32)?;
    let nc = (1.0 - &c)?;
    let agree = (c.matmul(&c.t()?)? + nc.matmul(&nc.t()?)?)?;
    let agree: Vec<f32> = agree.flatten_all()?.to_vec1()?;
    for (acc, v) in k.iter_mut().zip(agree) {
        *acc += f64::from(v);
    }
    Ok(())
}

/// The NASWOT kernel of `model` on the batch `x` (`B x B`, row-major).
pub fn kernel(model: &Nb201, x: &Tensor) -> Result<Vec<f64>> {
    let b = x.dim(0)?;
    let mut k = vec![0.0f64; b * b];
    let mut err = None;
    model.forward_observed(x, BnMode::Batch, &mut |_, r| {
        if let Err(e) = accumulate_kernel(&mut k, r) {
            err = Some(e);
        }
        Ok(())
    })?;
    match err {
        Some(e) => Err(e),
        None => Ok(k),
    }
}

/// NASWOT of `arch` under `settings` by the candle reference: the mean over the
/// initialisations of `log|det K|`, or `None` for a degenerate cell (disconnected, or a
/// kernel singular to working precision under any initialisation).
pub fn reference(settings: &ScoreSettings, arch: Arch) -> Result<Option<f64>> {
    settings.validate()?;
    if !arch.is_connected() {
        return Ok(None);
    }
    let (b, r) = (settings.batch, settings.net.resolution);
    let x = Tensor::from_vec(settings.input_batch(), (b, 3, r, r), &Device::Cpu)?;
    let model = Nb201::new(settings.net, arch, DType::F32, &Device::Cpu)?;
    let mut sum = 0.0;
    for i in 0..settings.inits {
        model.init_kaiming_with(settings.init_seed(i), INIT_FAN)?;
        match logdet_psd(&kernel(&model, &x)?, b) {
            Some(v) => sum += v,
            None => return Ok(None),
        }
    }
    Ok(Some(sum / settings.inits as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_counts_agreements_by_hand() {
        // Two "ReLU outputs" for a batch of 3: D = 4 then D = 2.
        // Site 1 codes: a = 1100, b = 1010, c = 0111 -> agreements [[4,2,1],[2,4,1],[1,1,4]].
        let r1 =
            Tensor::new(&[[1.0f32, 2.0, 0.0, 0.0], [3.0, 0.0, 0.5, 0.0], [0.0, 1.0, 1.0, 7.0]], &Device::Cpu).unwrap();
        // Site 2 as [B, 1, 2]: a = 10, b = 10, c = 01 -> [[2,2,0],[2,2,0],[0,0,2]].
        let r2 = Tensor::new(&[[[1.0f32, 0.0]], [[5.0, 0.0]], [[0.0, 2.0]]], &Device::Cpu).unwrap();
        let mut k = vec![0.0; 9];
        accumulate_kernel(&mut k, &r1).unwrap();
        accumulate_kernel(&mut k, &r2).unwrap();
        assert_eq!(k, vec![6.0, 4.0, 1.0, 4.0, 6.0, 1.0, 1.0, 1.0, 6.0]);
        // det [[6,4,1],[4,6,1],[1,1,6]] = 6*35 - 4*23 + 1*(-2) = 116.
        assert!((logdet_psd(&k, 3).unwrap() - 116f64.ln()).abs() < 1e-12);
        assert!(accumulate_kernel(&mut [0.0; 4], &r1).is_err());
    }
}
