//! The no_std safetensors policy reader (what the board and the host load) on arbitrary
//! bytes: nothing panics; a policy that loads runs a forward pass and a greedy choice
//! without error, and the host controller accepts exactly what the reader accepts.
#![no_main]

use edge_runtime::policy::{Policy, ACTIONS, OBS_DIM};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let loaded = Policy::from_bytes(data);
    if let Ok(p) = &loaded {
        let obs = [0.5f32; OBS_DIM];
        let mut logits = [0f32; ACTIONS];
        p.forward(&obs, &mut logits).expect("a loaded policy runs");
        let _ = p.greedy(&obs, |_| true).expect("a loaded policy chooses");
    }
    let host = host_trainer::search::strategies::paper::Controller::from_bytes(data.to_vec(), "fuzz".into());
    assert_eq!(host.is_ok(), loaded.is_ok());
});
