//! Actor and critic: two separate MLPs over the [`OBS_DIM`]-value observation, ReLU hidden
//! layers, in candle.
//!
//! ```text
//! actor:  obs [B, 315] -> Linear(315, h0) -> ReLU -> ... -> Linear(h_last, 30)  logits [B, 30]
//! critic: obs [B, 315] -> Linear(315, h0) -> ReLU -> ... -> Linear(h_last, 1)   value  [B]
//! ```
//!
//! Parameters are named `actor.{k}.weight` (`[out, in]`) / `actor.{k}.bias`, the names the
//! edge runtime reads. Initialisation is seeded (SplitMix64 in sorted-name order): PyTorch's
//! default `U(-1/sqrt(in), 1/sqrt(in))`, with the actor's last layer scaled by 0.01 so the
//! untrained policy starts near uniform.

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{Linear, VarBuilder, VarMap};
use edge_runtime::policy::{ACTIONS, OBS_DIM};
use edge_runtime::rng::SplitMix64;

/// A tensor as `(name, shape, values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Network settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    /// Hidden widths (both networks).
    pub hidden: Vec<usize>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { hidden: vec![64, 64] }
    }
}

/// The actor-critic.
pub struct ActorCritic {
    /// Every parameter.
    pub varmap: VarMap,
    actor: Vec<Linear>,
    critic: Vec<Linear>,
    /// Settings.
    pub cfg: NetConfig,
}

fn mlp(vb: VarBuilder, dims: &[usize]) -> candle_core::Result<Vec<Linear>> {
    dims.windows(2).enumerate().map(|(k, w)| candle_nn::linear(w[0], w[1], vb.pp(k.to_string()))).collect()
}

fn run(layers: &[Linear], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (k, l) in layers.iter().enumerate() {
        h = l.forward(&h)?;
        if k + 1 < layers.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

impl ActorCritic {
    /// A seeded network.
    pub fn new(cfg: NetConfig, seed: u64) -> candle_core::Result<ActorCritic> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let dims =
            |out: usize| std::iter::once(OBS_DIM).chain(cfg.hidden.iter().copied()).chain([out]).collect::<Vec<_>>();
        let actor = mlp(vb.pp("actor"), &dims(ACTIONS))?;
        let critic = mlp(vb.pp("critic"), &dims(1))?;
        let net = ActorCritic { varmap, actor, critic, cfg };
        net.init(seed)?;
        Ok(net)
    }

    /// Parameters sorted by name.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let data = self.varmap.data().lock().expect("varmap lock");
        let mut v: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn init(&self, seed: u64) -> candle_core::Result<()> {
        let mut rng = SplitMix64::new(seed);
        let last_actor = format!("actor.{}.", self.actor.len() - 1);
        for (name, var) in self.named_vars() {
            let dims = var.dims().to_vec();
            // Weight [out, in]; bias [out] shares its layer's fan-in, found from the weight.
            let fan_in = if dims.len() == 2 {
                dims[1]
            } else {
                let w = name.replace(".bias", ".weight");
                self.named_vars().iter().find(|(n, _)| *n == w).map(|(_, v)| v.dims()[1]).unwrap_or(1)
            };
            let scale = if name.starts_with(&last_actor) { 0.01 } else { 1.0 };
            let bound = scale / (fan_in as f32).sqrt();
            let vals: Vec<f32> = (0..var.elem_count()).map(|_| rng.next_signed() * bound).collect();
            var.set(&Tensor::from_vec(vals, var.shape(), &Device::Cpu)?)?;
        }
        Ok(())
    }

    /// Logits `[B, 30]` of observations `[B, OBS_DIM]`.
    pub fn logits(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        run(&self.actor, obs)
    }

    /// Values `[B]`.
    pub fn value(&self, obs: &Tensor) -> candle_core::Result<Tensor> {
        run(&self.critic, obs)?.squeeze(1)
    }

    /// Number of actor parameters.
    pub fn actor_parameters(&self) -> usize {
        self.named_vars().iter().filter(|(n, _)| n.starts_with("actor.")).map(|(_, v)| v.elem_count()).sum()
    }

    /// The actor's tensors as `(name, shape, values)`, sorted by name.
    pub fn actor_tensors(&self) -> candle_core::Result<Vec<NamedTensor>> {
        self.named_vars()
            .into_iter()
            .filter(|(n, _)| n.starts_with("actor."))
            .map(|(n, v)| Ok((n, v.dims().to_vec(), v.flatten_all()?.to_vec1::<f32>()?)))
            .collect()
    }
}
