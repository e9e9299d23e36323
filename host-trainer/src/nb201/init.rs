//! Seeded initialisation of the candle model: non-trivial values for parity checks, and
//! Kaiming-normal for scoring. Values come from one SplitMix64 stream in parameter
//! registration order, so a seed fixes every parameter whatever the cell.

use super::{Kind, Nb201, Result};
use candle_core::Tensor;
use edge_runtime::rng::SplitMix64;

impl Nb201 {
    /// Fill every parameter from `f(kind, rng)` in registration order.
    fn fill(&self, seed: u64, mut f: impl FnMut(Kind, &mut SplitMix64) -> f64) -> Result<()> {
        let mut rng = SplitMix64::new(seed);
        for (_, kind, var) in &self.params {
            let n = var.elem_count();
            let vals: Vec<f64> = (0..n).map(|_| f(*kind, &mut rng)).collect();
            let t = Tensor::from_vec(vals, var.shape(), &self.device)?.to_dtype(self.dtype)?;
            var.set(&t)?;
        }
        Ok(())
    }

    /// Seeded values for parity checks: He-uniform convs (gain 1), and batch norms with
    /// non-trivial running statistics so folding and constant BN shifts are exercised:
    /// `gamma ~ U(0.5, 1.5)`, `beta, mean ~ U(-0.5, 0.5)`, `var ~ U(0.5, 2)`; linear weights
    /// and biases `U(-1/sqrt(fan_in), 1/sqrt(fan_in))`. Every value is an exact `f32`.
    pub fn init_parity(&self, seed: u64) -> Result<()> {
        self.fill(seed, |kind, rng| {
            let u = rng.next_signed() as f64; // an f32 in [-1, 1)
            let v = match kind {
                Kind::ConvWeight { fan_in, .. } => u * (3.0 / fan_in as f64).sqrt(),
                Kind::BnGamma => 1.0 + 0.5 * u,
                Kind::BnBeta | Kind::BnMean => 0.5 * u,
                Kind::BnVar => 1.25 + 0.75 * u,
                Kind::LinearWeight { fan_in, .. } | Kind::LinearBias { fan_in } => u / (fan_in as f64).sqrt(),
            };
            v as f32 as f64
        })
    }

    /// Seeded Kaiming-normal initialisation (fan-in, ReLU gain): conv and linear weights
    /// `N(0, 2 / fan_in)`, linear bias 0, batch norms `gamma = 1, beta = 0, mean = 0, var = 1`.
    pub fn init_kaiming(&self, seed: u64) -> Result<()> {
        self.init_kaiming_with(seed, Fan::In)
    }

    /// Seeded Kaiming-normal initialisation scaled by `fan`: conv and linear weights
    /// `N(0, 2 / fan)` (`fan_in = cin * k * k`, `fan_out = cout * k * k`; for the linear
    /// head `features` and `classes`), linear bias 0, batch norms `gamma = 1, beta = 0,
    /// mean = 0, var = 1`. The same seed draws the same standard normals whatever `fan`.
    pub fn init_kaiming_with(&self, seed: u64, fan: Fan) -> Result<()> {
        self.fill(seed, |kind, rng| match kind {
            Kind::ConvWeight { fan_in, fan_out } | Kind::LinearWeight { fan_in, fan_out } => {
                let n = match fan {
                    Fan::In => fan_in,
                    Fan::Out => fan_out,
                };
                normal(rng) * (2.0 / n as f64).sqrt()
            }
            Kind::BnGamma | Kind::BnVar => 1.0,
            Kind::BnBeta | Kind::BnMean | Kind::LinearBias { .. } => 0.0,
        })
    }
}

/// Which fan Kaiming initialisation normalises by (PyTorch's `mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fan {
    /// `fan_in` (PyTorch's default), preserves the forward variance.
    #[default]
    In,
    /// `fan_out`, preserves the backward variance (what FreeREA's reference initialises with).
    Out,
}

/// A standard normal from two uniforms (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64; // (0, 1]
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}
