//! MeCo (Jiang et al., NeurIPS 2023): the minimum eigenvalue of the channel correlation
//! matrix of feature maps, from one input and one forward pass.
//!
//! For a feature map of one image with `C` channels over `P` positions, `R` is the `C x C`
//! Pearson correlation between channels (each channel a vector over the positions); a
//! channel that is constant over the image has no correlation and its row and column of
//! `R` are zero (the reference's NaN-to-zero rule). The map's value is `lambda_min(R)`, in
//! `[0, 1]`: near 1 when the channels are decorrelated, 0 when some channel is a linear
//! combination of the others (always the case when `P <= C`, e.g. the 64-channel stage at
//! 8 x 8). simnas' MeCo is the sum over the network's 15 **cell outputs** (the maps the
//! network carries from cell to cell), for one synthetic image (the first image of
//! [`super::ScoreSettings::input_batch`] at batch 1, so BN normalises over that image's
//! positions), averaged over the same initialisations as NASWOT and LogSynflow.
//!
//! [`map_value`] is the per-map computation shared by the candle reference ([`fn@reference`],
//! `train` feature) and the fast path ([`super::fast::meco`]).

use super::linalg::min_eigenvalue;

/// Below this centred sum of squares per position a channel counts as constant.
const CONSTANT_CHANNEL: f64 = 1e-18;

/// `lambda_min` of the channel correlation of one feature map: `value(p, ch)` reads
/// position `p` (of `positions`) of channel `ch` (of `channels`). Exactly 0 when
/// `channels >= positions` (`R` is then singular). `None` only if the eigenvalue solver
/// fails on non-finite input.
pub fn map_value(positions: usize, channels: usize, value: impl Fn(usize, usize) -> f64) -> Option<f64> {
    // Centred over `positions`, the channels span at most `positions - 1` dimensions: with
    // as many channels as positions `R` is singular and its smallest eigenvalue exactly 0.
    if positions == 0 || channels == 0 || channels >= positions {
        return Some(0.0);
    }
    // Channel-major, centred, unit length (zero for a constant channel).
    let mut x = vec![0.0f64; channels * positions];
    for ch in 0..channels {
        let row = &mut x[ch * positions..(ch + 1) * positions];
        for (p, v) in row.iter_mut().enumerate() {
            *v = value(p, ch);
        }
        let mean = row.iter().sum::<f64>() / positions as f64;
        row.iter_mut().for_each(|v| *v -= mean);
        let ss: f64 = row.iter().map(|v| v * v).sum();
        if ss <= CONSTANT_CHANNEL * positions as f64 || !ss.is_finite() {
            row.iter_mut().for_each(|v| *v = 0.0);
        } else {
            let inv = 1.0 / ss.sqrt();
            row.iter_mut().for_each(|v| *v *= inv);
        }
    }
    let mut r = vec![0.0f64; channels * channels];
    for i in 0..channels {
        let xi = &x[i * positions..(i + 1) * positions];
        for j in i..channels {
            let xj = &x[j * positions..(j + 1) * positions];
            let d: f64 = xi.iter().zip(xj).map(|(a, b)| a * b).sum();
            r[i * channels + j] = d;
            r[j * channels + i] = d;
        }
    }
    min_eigenvalue(&r, channels)
}

/// MeCo of `arch` under `settings` by the candle reference: the first image of the
/// settings' synthetic input, alone, through the unpruned network with batch-statistics
/// BN; [`map_value`] of each cell output, summed; the mean over the initialisations.
#[cfg(feature = "train")]
pub fn reference(settings: &super::ScoreSettings, arch: simnas_shared::Arch) -> super::Result<f64> {
    use crate::nb201::{BnMode, Nb201};
    use candle_core::{DType, Device, Tensor};
    settings.validate()?;
    let one = super::ScoreSettings { batch: 1, ..*settings };
    let r = settings.net.resolution;
    let x = Tensor::from_vec(one.input_batch(), (1, 3, r, r), &Device::Cpu)?;
    let model = Nb201::new(settings.net, arch, DType::F32, &Device::Cpu)?;
    let mut total = 0.0;
    for i in 0..settings.inits {
        model.init_kaiming_with(settings.init_seed(i), super::INIT_FAN)?;
        let mut maps: Vec<(usize, usize, Vec<f32>)> = Vec::new();
        model.forward_cells(&x, BnMode::Batch, &mut |_, _, t| {
            let (_, c, h, w) = t.dims4()?;
            maps.push((c, h * w, t.flatten_all()?.to_vec1::<f32>()?));
            Ok(())
        })?;
        for (c, p, v) in maps {
            // NCHW with batch 1: channel ch, position q at ch * p + q.
            total += map_value(p, c, |q, ch| f64::from(v[ch * p + q]))
                .ok_or_else(|| super::ScoreError::Settings("MeCo of a non-finite feature map".into()))?;
        }
    }
    Ok(total / settings.inits as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decorrelated_channels_score_one_and_copies_zero() {
        // Two orthogonal zero-mean channels over 4 positions: R = I, lambda_min = 1.
        let a = [1.0, -1.0, 1.0, -1.0];
        let b = [1.0, 1.0, -1.0, -1.0];
        let v = map_value(4, 2, |p, ch| if ch == 0 { a[p] } else { b[p] }).unwrap();
        assert!((v - 1.0).abs() < 1e-12, "{v}");
        // A channel and a scaled copy: R = [[1, 1], [1, 1]], lambda_min = 0.
        let v = map_value(4, 2, |p, ch| if ch == 0 { a[p] } else { 3.0 * a[p] + 2.0 }).unwrap();
        assert!(v.abs() < 1e-12, "{v}");
        // A constant channel: its row and column are zero, lambda_min = 0.
        let v = map_value(4, 2, |p, ch| if ch == 0 { a[p] } else { 5.0 }).unwrap();
        assert!(v.abs() < 1e-12, "{v}");
        // Correlation 0.5 between two channels: eigenvalues 0.5 and 1.5.
        let c = [1.0, 0.0, -1.0, 0.0];
        let d = [0.5, 0.866_025_403_784_438_6, -0.5, -0.866_025_403_784_438_6];
        let v = map_value(4, 2, |p, ch| if ch == 0 { c[p] } else { d[p] }).unwrap();
        assert!((v - 0.5).abs() < 1e-9, "{v}");
        // More channels than positions: rank-deficient, lambda_min = 0.
        let v = map_value(3, 5, |p, ch| ((p * 7 + ch * 3) % 5) as f64 + (ch * p) as f64).unwrap();
        assert!(v.abs() < 1e-9, "{v}");
    }
}
