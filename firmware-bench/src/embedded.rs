//! What the firmware embeds for its on-board search, fixed at build time by `build.rs`:
//! the policy (`$SIMNAS_FW_POLICY`, default `artifacts/policy/policy.safetensors`), the
//! quantised score table (`$SIMNAS_FW_SCORES`, default
//! `artifacts/scores/imagenet16_scores.tf16`, the table of the board's ImageNet16-120 network), the start cells precomputed from them and the
//! prior LUT (`$SIMNAS_FW_PRIOR`, default `artifacts/devices/distribution.json`), and the
//! settings `$SIMNAS_FW_BUDGET` (10), `$SIMNAS_FW_WEIGHT` (0.5),
//! `$SIMNAS_FW_SEARCH_WARMUP` (1) and `$SIMNAS_FW_SEARCH_REPEATS` (3).
//!
//! The files are kept as bytes in flash and validated on the board (at boot and when a
//! search starts), never trusted because the build read them.

use crate::server::SearchInputs;
use edge_runtime::search::calibrated::Groups;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/search_inputs.rs"));
    include!(concat!(env!("OUT_DIR"), "/calibrated.rs"));
}

pub use generated::{BUDGET, POLICY, REPEATS, SCORES, START, WARMUP, WEIGHT};

/// The embedded search inputs.
pub fn inputs() -> SearchInputs<'static> {
    SearchInputs {
        policy: POLICY,
        scores: SCORES,
        start: START,
        obs_tf: generated::OBS_TF,
        calib: if generated::CONTROLLER_PAPER { None } else { Some(&generated::CALIB) },
        groups: Groups {
            starts: &generated::GROUP_STARTS,
            members: &generated::GROUP_MEMBERS,
            packed: &generated::GROUP_PACKED,
            tf0: &generated::GROUP_TF0,
        },
        weight: WEIGHT,
        warmup: WARMUP,
        repeats: REPEATS,
    }
}

/// The budget of the search run at boot: [`BUDGET`] with the `autonomous` feature, else
/// none (the board searches when the host sends `Search`).
pub fn boot_budget() -> Option<u16> {
    cfg!(feature = "autonomous").then_some(BUDGET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use edge_runtime::policy::Policy;
    use edge_runtime::tf16::Tf16;

    #[test]
    fn the_embedded_files_are_valid_and_the_start_is_the_prior_of_the_table() {
        assert!(Policy::from_bytes(POLICY).is_ok());
        let table = Tf16::parse(SCORES).unwrap();
        assert_eq!(START.len(), edge_runtime::search::paper::PRIOR_TOP);
        assert!(START.iter().all(|&c| usize::from(c) < simnas_shared::NUM_ARCHS));
        // The prior ranks high-TF, low-latency cells first: none is a reference cell
        // in the shipped artifacts, so the board starts at START[0].
        let lo = edge_runtime::search::LO.code().get();
        let hi = edge_runtime::search::HI.code().get();
        assert!(!START.contains(&lo) && !START.contains(&hi), "{START:?}");
        let c0 = simnas_shared::ArchCode::new(START[0]).unwrap();
        assert!(table.quantised(c0) > 0);
        assert!((0.0..=1.0).contains(&WEIGHT) && REPEATS >= 1);
    }
}
