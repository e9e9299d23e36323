//! The scoring network's raw weights in kernel layout, read from the candle model after its
//! seeded initialisation (so the fast paths and the references score the very same
//! network): conv weights `[kh][kw][cin][cout]` (no BN folded: the fast NASWOT normalises
//! with batch statistics, and LogSynflow runs with BN disabled), classifier `[f][classes]`.

use crate::nb201::Nb201;
use crate::score::{Result, ScoreError, ScoreSettings, INIT_FAN};
use candle_core::{DType, Device, Tensor, WithDType};
use edge_runtime::layout::STAGES;
use simnas_shared::{Arch, Op, NUM_EDGES};
use std::collections::HashMap;

/// Every conv and linear weight of the supernet, per parameter slot.
#[derive(Clone, Debug)]
pub struct NetWeights<T = f32> {
    /// Stem conv 3x3, 3 -> C.
    pub stem: Vec<T>,
    /// Per reduction (before stage 1, 2): conv A (3x3/s2), conv B (3x3), shortcut (1x1).
    pub reductions: Vec<[Vec<T>; 3]>,
    /// `cells[stage][cell][edge]` = `[conv1x1, conv3x3]`.
    pub cells: Vec<Vec<Vec<[Vec<T>; 2]>>>,
    /// Classifier weights `[features][classes]`.
    pub classifier: Vec<T>,
}

impl<T: WithDType> NetWeights<T> {
    /// Read the weights of `model` (converted to `T`).
    pub fn from_model(model: &Nb201) -> Result<NetWeights<T>> {
        let vars: HashMap<&str, &Tensor> = model.named_vars().map(|(n, v)| (n, v.as_tensor())).collect();
        let get = |name: &str| -> Result<Vec<T>> {
            let t = vars.get(name).ok_or_else(|| ScoreError::Settings(format!("model has no parameter {name}")))?;
            conv_layout::<T>(t)
        };
        let cfg = model.config();
        let stem = get("stem.conv.weight")?;
        let mut reductions = Vec::new();
        for s in 1..STAGES {
            reductions.push([
                get(&format!("reduction{s}.conv_a.conv.weight"))?,
                get(&format!("reduction{s}.conv_b.conv.weight"))?,
                get(&format!("reduction{s}.downsample.weight"))?,
            ]);
        }
        let mut cells = Vec::new();
        for s in 0..STAGES {
            let mut stage = Vec::new();
            for i in 0..cfg.cells_per_stage {
                let mut edges = Vec::new();
                for e in 0..NUM_EDGES {
                    let p = format!("cells.{s}.{i}.edge{e}");
                    edges.push([get(&format!("{p}.conv1x1.conv.weight"))?, get(&format!("{p}.conv3x3.conv.weight"))?]);
                }
                stage.push(edges);
            }
            cells.push(stage);
        }
        let classifier = get("classifier.weight")?;
        Ok(NetWeights { stem, reductions, cells, classifier })
    }

    /// The weights of initialisation `init` of `settings` (Kaiming, [`INIT_FAN`]), read from
    /// a candle model of `dtype` (`F32` for NASWOT, `F64` for LogSynflow).
    pub fn from_seed(settings: &ScoreSettings, init: usize, dtype: DType) -> Result<NetWeights<T>> {
        let model = Nb201::new(settings.net, Arch::uniform(Op::NorConv3x3), dtype, &Device::Cpu)?;
        model.init_kaiming_with(settings.init_seed(init), INIT_FAN)?;
        NetWeights::from_model(&model)
    }

    /// Conv `k` (1 or 3) on `edge` of `cell` in `stage`.
    pub fn cell(&self, stage: usize, cell: usize, edge: usize, k: usize) -> &[T] {
        &self.cells[stage][cell][edge][usize::from(k == 3)]
    }

    /// Reduction conv A before `stage` (1 or 2).
    pub fn reduce_a(&self, stage: usize) -> &[T] {
        &self.reductions[stage - 1][0]
    }

    /// Reduction conv B before `stage`.
    pub fn reduce_b(&self, stage: usize) -> &[T] {
        &self.reductions[stage - 1][1]
    }

    /// Reduction shortcut before `stage`.
    pub fn shortcut(&self, stage: usize) -> &[T] {
        &self.reductions[stage - 1][2]
    }

    /// Replace every weight by its absolute value (SynFlow's linearisation).
    pub fn abs(&mut self)
    where
        T: num_abs::Abs,
    {
        let all = std::iter::once(&mut self.stem)
            .chain(self.reductions.iter_mut().flat_map(|r| r.iter_mut()))
            .chain(self.cells.iter_mut().flatten().flatten().flat_map(|p| p.iter_mut()))
            .chain(std::iter::once(&mut self.classifier));
        for v in all {
            v.iter_mut().for_each(|x| *x = x.abs_value());
        }
    }
}

/// Absolute value for the two float types.
pub mod num_abs {
    /// `|x|`.
    pub trait Abs {
        /// `|self|`.
        fn abs_value(self) -> Self;
    }
    impl Abs for f32 {
        fn abs_value(self) -> f32 {
            self.abs()
        }
    }
    impl Abs for f64 {
        fn abs_value(self) -> f64 {
            self.abs()
        }
    }
}

/// A candle conv weight `[cout][cin][kh][kw]` as `[kh][kw][cin][cout]`; a linear weight
/// `[out][in]` as `[in][out]`.
fn conv_layout<T: WithDType>(t: &Tensor) -> Result<Vec<T>> {
    let v: Vec<T> = t.flatten_all()?.to_dtype(T::DTYPE)?.to_vec1()?;
    let dims = t.dims();
    let (cout, cin, kh, kw) = match *dims {
        [co, ci, h, w] => (co, ci, h, w),
        [o, i] => (o, i, 1, 1),
        _ => return Err(ScoreError::Settings(format!("unexpected weight shape {dims:?}"))),
    };
    let mut out = v.clone();
    for co in 0..cout {
        for ci in 0..cin {
            for y in 0..kh {
                for x in 0..kw {
                    out[((y * kw + x) * cin + ci) * cout + co] = v[((co * cin + ci) * kh + y) * kw + x];
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_kaiming_fan_out_in_kernel_layout() {
        let s = ScoreSettings::default();
        let w = NetWeights::<f64>::from_seed(&s, 0, DType::F64).unwrap();
        let std = |v: &[f64]| (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt();
        // Stem 3 -> 16, 3x3: fan_out = 16 * 9 (fan_in would be 27).
        assert_eq!(w.stem.len(), 9 * 3 * 16);
        let want = (2.0f64 / 144.0).sqrt();
        assert!((std(&w.stem) / want - 1.0).abs() < 0.1, "{} vs {want}", std(&w.stem));
        // Classifier 64 -> 10: fan_out = 10.
        let want = (2.0f64 / 10.0).sqrt();
        assert!((std(&w.classifier) / want - 1.0).abs() < 0.1);
        // Layout: [kh][kw][cin][cout] of candle's [cout][cin][kh][kw].
        let model = Nb201::new(s.net, Arch::uniform(Op::NorConv3x3), DType::F64, &Device::Cpu).unwrap();
        model.init_kaiming_with(s.init_seed(0), INIT_FAN).unwrap();
        let (_, v) = model.named_vars().find(|(n, _)| *n == "reduction1.conv_a.conv.weight").unwrap();
        let flat: Vec<f64> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let (cout, cin) = (32, 16);
        let (co, ci, ky, kx) = (5, 7, 2, 1);
        assert_eq!(w.reduce_a(1)[((ky * 3 + kx) * cin + ci) * cout + co], flat[((co * cin + ci) * 3 + ky) * 3 + kx]);
        let mut a = w.clone();
        a.abs();
        assert!(a.cells[2][4][5][1].iter().all(|&x| x >= 0.0));
    }
}
