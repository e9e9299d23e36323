//! The score-table loaders on arbitrary bytes: the CSV row reader and the quantised
//! `.tf16` reader. Nothing panics; accepted values are finite.
#![no_main]

use host_trainer::score::table::{parse_rows, ScoreTable};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(rows) = parse_rows(data, Path::new("fuzz.csv")) {
        assert!(rows.iter().all(|r| r.logsynflow.is_finite() && r.skip.is_finite()));
    }
    if let Ok(t) = ScoreTable::from_quantised(data, Path::new("fuzz.tf16")) {
        assert!(t.ranges().naswot.0.is_finite());
    }
});
