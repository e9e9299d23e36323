//! The frame decoder on arbitrary serial bytes, both directions: nothing panics, and every
//! frame that decodes re-encodes to bytes that decode to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Serialize;
use simnas_shared::protocol::{decode_frame, encode_frame, BoardMsg, Frame, FrameAccumulator, HostMsg, MAX_FRAME};

fn stream<M: DeserializeOwned + Serialize + PartialEq + core::fmt::Debug>(data: &[u8]) {
    let mut acc = FrameAccumulator::<MAX_FRAME>::new();
    let mut rest = data;
    loop {
        match acc.feed::<M>(rest) {
            simnas_shared::protocol::Feed::Consumed => break,
            simnas_shared::protocol::Feed::Frame { frame, remaining } => {
                round_trip(&frame);
                rest = remaining;
            }
            simnas_shared::protocol::Feed::Error { remaining, .. } => rest = remaining,
        }
    }
    assert!(acc.pending() <= MAX_FRAME);
}

fn round_trip<M: DeserializeOwned + Serialize + PartialEq + core::fmt::Debug>(frame: &Frame<M>) {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(frame.seq, &frame.msg, &mut buf).expect("a decoded message re-encodes");
    let again: Frame<M> = decode_frame(&mut buf[..n - 1]).expect("a re-encoded frame decodes");
    assert_eq!(&again, frame);
}

fuzz_target!(|data: &[u8]| {
    stream::<BoardMsg>(data);
    stream::<HostMsg>(data);
    // One frame's bytes given directly (no delimiter search).
    let mut one = data.to_vec();
    if let Ok(f) = decode_frame::<BoardMsg>(&mut one) {
        round_trip(&f);
    }
});
