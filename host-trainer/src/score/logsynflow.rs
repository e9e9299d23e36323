//! LogSynflow in candle: the reference implementation.
//!
//! SynFlow (Tanaka et al. 2020) linearises the network: every parameter and BN statistic is
//! replaced by its absolute value, batch norms are disabled ([`BnMode::Identity`]), the
//! input is all ones (`[1, 3, R, R]`, `f64`), and `R = sum(logits)` is back-propagated.
//! LogSynflow (Cavagnero et al. 2023, FreeREA) compresses the gradient:
//!
//! ```text
//! score = sum over conv and linear weights theta of |theta * ln(dR/dtheta + 1)|
//! ```
//!
//! Weights that take no part in `R` (the supernet's unused conv slots, convs on nodes that
//! never reach the output) have no gradient and contribute 0 (`ln 1 = 0`), as in the
//! reference code, where an unused op does not exist at all.

use super::{Result, ScoreSettings, INIT_FAN};
use crate::nb201::{BnMode, Nb201};
use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};
use simnas_shared::Arch;

/// `sum |theta * ln(g + 1)|` over `weights`, with `g` their gradients in `grads` (a weight
/// without a gradient contributes 0).
pub fn synflow_sum<'a>(weights: impl IntoIterator<Item = &'a Var>, grads: &GradStore) -> Result<f64> {
    let mut total = 0.0;
    for w in weights {
        let Some(g) = grads.get(w.as_tensor()) else { continue };
        let term = (w.as_tensor() * (g + 1.0)?.log()?)?.abs()?.sum_all()?;
        total += term.to_dtype(DType::F64)?.to_scalar::<f64>()?;
    }
    Ok(total)
}

/// LogSynflow of `model` as it stands (the caller has initialised it and taken absolute
/// values; see [`fn@reference`]). The model should be `f64`.
pub fn logsynflow_of(model: &Nb201) -> Result<f64> {
    let r = model.config().resolution;
    let ones = Tensor::ones((1, 3, r, r), model.dtype(), model.device())?;
    let grads = model.forward(&ones, BnMode::Identity)?.sum_all()?.backward()?;
    // Conv weights are rank 4 and the classifier's rank 2; BN vectors and biases rank 1.
    synflow_sum(model.named_vars().map(|(_, v)| v).filter(|v| v.rank() >= 2), &grads)
}

/// LogSynflow of `arch` under `settings` by the candle reference: the mean over the
/// initialisations, each in `f64` on absolute values.
pub fn reference(settings: &ScoreSettings, arch: Arch) -> Result<f64> {
    settings.validate()?;
    let model = Nb201::new(settings.net, arch, DType::F64, &Device::Cpu)?;
    let mut sum = 0.0;
    for i in 0..settings.inits {
        model.init_kaiming_with(settings.init_seed(i), INIT_FAN)?;
        model.abs_params()?;
        sum += logsynflow_of(&model)?;
    }
    Ok(sum / settings.inits as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_layer_network_by_hand() {
        // R = sum(W2 relu(W1 x)) with x = (1, 1, 1), all weights positive (already |.|):
        // W1 = [[1, 2, 0.5], [0.25, 1, 3]], W2 = [[2, 0.5]].
        // h = W1 x = (3.5, 4.25); dR/dW2 = h; dR/dW1[i][j] = W2[i] * x[j] = 2 (row 0), 0.5 (row 1).
        let dev = Device::Cpu;
        let w1 = Var::from_tensor(&Tensor::new(&[[1.0f64, 2.0, 0.5], [0.25, 1.0, 3.0]], &dev).unwrap()).unwrap();
        let w2 = Var::from_tensor(&Tensor::new(&[[2.0f64, 0.5]], &dev).unwrap()).unwrap();
        let x = Tensor::ones((3, 1), DType::F64, &dev).unwrap();
        let h = w1.as_tensor().matmul(&x).unwrap().relu().unwrap();
        let r = w2.as_tensor().matmul(&h).unwrap().sum_all().unwrap();
        assert_eq!(r.to_scalar::<f64>().unwrap(), 9.125);
        let grads = r.backward().unwrap();
        let g1: Vec<Vec<f64>> = grads.get(w1.as_tensor()).unwrap().to_vec2().unwrap();
        assert_eq!(g1, vec![vec![2.0; 3], vec![0.5; 3]]);
        let g2: Vec<Vec<f64>> = grads.get(w2.as_tensor()).unwrap().to_vec2().unwrap();
        assert_eq!(g2, vec![vec![3.5, 4.25]]);
        // sum theta ln(g + 1) = 3.5 ln 3 + 4.25 ln 1.5 (W1) + 2 ln 4.5 + 0.5 ln 5.25 (W2).
        let want = 3.5 * 3f64.ln() + 4.25 * 1.5f64.ln() + 2.0 * 4.5f64.ln() + 0.5 * 5.25f64.ln();
        let got = synflow_sum([&w1, &w2], &grads).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        // A weight outside the graph contributes nothing.
        let stray = Var::ones((2, 2), DType::F64, &dev).unwrap();
        assert_eq!(synflow_sum([&w1, &w2, &stray], &grads).unwrap(), got);
    }
}
