//! The latency-table loader (CSV keyed by cell string) on arbitrary bytes: nothing panics,
//! and every latency it accepts is finite and positive.
#![no_main]

use host_trainer::latency::{InvalidPolicy, LatencyTable};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    for policy in [InvalidPolicy::Reject, InvalidPolicy::Skip] {
        if let Ok(t) = LatencyTable::read(data, Path::new("fuzz.csv"), "lat", None, policy) {
            assert!(t.values().iter().flatten().all(|v| v.is_finite() && *v > 0.0));
            assert!(t.measured() <= simnas_shared::NUM_ARCHS);
        }
    }
});
