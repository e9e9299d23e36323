//! The policy file: the actor as safetensors, with metadata saying what it is and how it
//! was made.
//!
//! Written by hand (8-byte little-endian header length, JSON header with sorted keys padded
//! to 8 bytes, then the `F32` data in name order) so the same network always gives the same
//! bytes. Read back by [`edge_runtime::policy::Policy`] on the board, by the `safetensors`
//! crate, and in Python:
//!
//! ```python
//! from safetensors.numpy import load_file
//! from safetensors import safe_open
//! w = load_file("policy.safetensors")               # {"actor.0.weight": (64, 315) float32, ...}
//! meta = safe_open("policy.safetensors", "np").metadata()
//! ```

use super::net::{ActorCritic, NamedTensor};
use edge_runtime::policy::{obs, FORMAT_VERSION, OBS_DIM};
use std::collections::BTreeMap;

/// Metadata every policy file carries (all values are strings, as safetensors requires).
pub fn metadata(net: &ActorCritic, extra: &[(&str, String)]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("format_version", FORMAT_VERSION.into());
    put("activation", "relu".into());
    put("obs_dim", OBS_DIM.to_string());
    put("history", obs::HISTORY.to_string());
    put("hidden", serde_json::to_string(&net.cfg.hidden).unwrap_or_default());
    put(
        "obs_layout",
        format!(
            "{} slots (slot 0 = current state) of {} values: [0,30) cell one-hot edge*5+op, {} normalised latency, {} TF, [{},{}) one-hot of the action into the state, {} present flag",
            obs::HISTORY,
            obs::SLOT,
            obs::LATENCY_AT,
            obs::TF_AT,
            obs::ACTION_AT,
            obs::ACTION_AT + obs::ACTIONS,
            obs::PRESENT_AT
        ),
    );
    put("action_layout", "30 logits, action = edge * 5 + op; edges 0->1,0->2,1->2,0->3,1->3,2->3; ops none,skip_connect,nor_conv_1x1,nor_conv_3x3,avg_pool_3x3".into());
    put(
        "latency_normalisation",
        "l = clamp((lat - lat(lo)) / (lat(hi) - lat(lo)), 0, 1), lo = all skip_connect, hi = all nor_conv_3x3, both measured on the device".into(),
    );
    for (k, v) in extra {
        put(k, v.clone());
    }
    m
}

/// The safetensors bytes of the actor with `meta`.
pub fn to_bytes(tensors: &[NamedTensor], meta: &BTreeMap<String, String>) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(meta).unwrap_or_default());
    let mut data = Vec::new();
    for (name, shape, vals) in tensors {
        let begin = data.len();
        for v in vals {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
        );
    }
    // serde_json's Map is a BTreeMap here (no preserve_order): keys come out sorted.
    let mut json = serde_json::to_string(&header).unwrap_or_default().into_bytes();
    while json.len() % 8 != 0 {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

/// The policy file of `net`.
pub fn policy_bytes(net: &ActorCritic, extra: &[(&str, String)]) -> candle_core::Result<Vec<u8>> {
    Ok(to_bytes(&net.actor_tensors()?, &metadata(net, extra)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rl::net::NetConfig;
    use candle_core::{Device, Tensor};
    use edge_runtime::policy::{Policy, ACTIONS};

    #[test]
    fn runtime_forward_equals_candle_forward() {
        let net = ActorCritic::new(NetConfig { hidden: vec![64, 32] }, 11).unwrap();
        // Larger last-layer weights than the init so logits are not all near 0.
        for (name, var) in net.named_vars() {
            if name.starts_with("actor.2.") {
                var.set(&(var.as_tensor() * 100.0).unwrap()).unwrap();
            }
        }
        let bytes = policy_bytes(&net, &[("seed", "11".into())]).unwrap();
        let p = Policy::from_bytes(&bytes).unwrap();
        assert_eq!(p.parameters(), net.actor_parameters());
        let mut rng = edge_runtime::rng::SplitMix64::new(5);
        let batch = 64;
        // Random observations: one-hot-like 0/1 entries and values in [0, 1].
        let obs: Vec<f32> = (0..batch * OBS_DIM)
            .map(|i| if i % 7 == 0 { 1.0 } else { (rng.next_signed() * 0.5 + 0.5).max(0.0) })
            .collect();
        let t = Tensor::from_vec(obs.clone(), (batch, OBS_DIM), &Device::Cpu).unwrap();
        let want: Vec<Vec<f32>> = net.logits(&t).unwrap().to_vec2().unwrap();
        let mut worst = 0f32;
        for (b, w) in want.iter().enumerate() {
            let mut got = [0f32; ACTIONS];
            p.forward(&obs[b * OBS_DIM..(b + 1) * OBS_DIM], &mut got).unwrap();
            for (g, w) in got.iter().zip(w) {
                worst = worst.max((g - w).abs());
            }
        }
        assert!(worst <= 1e-5, "max abs diff {worst}");
    }

    #[test]
    fn same_network_same_bytes_and_readable_by_the_safetensors_crate() {
        let a = policy_bytes(&ActorCritic::new(NetConfig::default(), 3).unwrap(), &[]).unwrap();
        let b = policy_bytes(&ActorCritic::new(NetConfig::default(), 3).unwrap(), &[]).unwrap();
        assert_eq!(a, b);
        let st = safetensors::SafeTensors::deserialize(&a).unwrap();
        let w = st.tensor("actor.0.weight").unwrap();
        assert_eq!(w.shape(), &[64, OBS_DIM]);
        assert_eq!(w.dtype(), safetensors::Dtype::F32);
        let (_, meta) = safetensors::SafeTensors::read_metadata(&a).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta.get("format_version").map(String::as_str), Some(FORMAT_VERSION));
        assert!(st.tensor("critic.0.weight").is_err());
    }
}
