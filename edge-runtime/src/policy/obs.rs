//! The controller's observation: the last [`HISTORY`] (state, action) pairs, most recent
//! first, as a flat `f32` vector of [`OBS_DIM`] values.
//!
//! Slot `k` (k = 0 is the current state) holds [`SLOT`] values:
//!
//! ```text
//! [0, 30)   cell one-hot, edge-major: value 1 at edge * 5 + op
//! 30        normalised latency l in [0, 1] (see below)
//! 31        training-free score TF in [0, 1] (0 when the policy was trained without it)
//! [32, 62)  one-hot of the action that led to this state (all 0 for an episode's start)
//! 62        1 if the slot holds a state, 0 for padding before the episode had k steps
//! ```
//!
//! Latency normalisation (the same rule at training and at test time): the controller
//! measures two reference cells on the device, all-`skip_connect` (`lo`) and
//! all-`nor_conv_3x3` (`hi`), and sees `l(h) = clamp((lat(h) - lat(lo)) / (lat(hi) -
//! lat(lo)), 0, 1)`; see [`normalise_latency`].

use simnas_shared::{Action, Arch, NUM_EDGES, NUM_OPS};

/// History length (states, with the action into each).
pub const HISTORY: usize = 5;
/// Values per history slot.
pub const SLOT: usize = 63;
/// Observation length.
pub const OBS_DIM: usize = HISTORY * SLOT;
/// Number of actions (edge * 5 + op).
pub const ACTIONS: usize = Action::COUNT;

/// Offset of the latency value in a slot.
pub const LATENCY_AT: usize = NUM_EDGES * NUM_OPS;
/// Offset of the TF value in a slot.
pub const TF_AT: usize = LATENCY_AT + 1;
/// Offset of the action one-hot in a slot.
pub const ACTION_AT: usize = TF_AT + 1;
/// Offset of the presence flag in a slot.
pub const PRESENT_AT: usize = ACTION_AT + ACTIONS;

/// `clamp((lat - lo) / (hi - lo), 0, 1)`; 0 when `hi <= lo` or any input is not finite.
pub fn normalise_latency(lat: f64, lo: f64, hi: f64) -> f32 {
    let r = (lat - lo) / (hi - lo);
    if hi.partial_cmp(&lo) != Some(core::cmp::Ordering::Greater) || !r.is_finite() {
        return 0.0;
    }
    r.clamp(0.0, 1.0) as f32
}

/// One visited state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Step {
    /// The cell.
    pub arch: Arch,
    /// Its normalised latency.
    pub latency: f32,
    /// Its training-free score (or 0).
    pub tf: f32,
    /// The action that led here (`None` at the episode's start).
    pub action: Option<Action>,
}

/// The last [`HISTORY`] steps, most recent first; fixed size, no allocation.
#[derive(Clone, Debug, Default)]
pub struct History {
    steps: [Option<Step>; HISTORY],
}

impl History {
    /// An empty history (start of an episode).
    pub const fn new() -> History {
        History { steps: [None; HISTORY] }
    }

    /// Forget everything.
    pub fn clear(&mut self) {
        self.steps = [None; HISTORY];
    }

    /// Record a new current state.
    pub fn push(&mut self, step: Step) {
        self.steps.copy_within(0..HISTORY - 1, 1);
        self.steps[0] = Some(step);
    }

    /// The current state.
    pub fn current(&self) -> Option<&Step> {
        self.steps[0].as_ref()
    }

    /// Write the observation into `out` (exactly [`OBS_DIM`] values).
    pub fn encode(&self, out: &mut [f32; OBS_DIM]) {
        out.fill(0.0);
        for (k, step) in self.steps.iter().enumerate() {
            let Some(s) = step else { continue };
            let slot = &mut out[k * SLOT..(k + 1) * SLOT];
            for (e, op) in s.arch.ops.iter().enumerate() {
                slot[e * NUM_OPS + *op as usize] = 1.0;
            }
            slot[LATENCY_AT] = s.latency;
            slot[TF_AT] = s.tf;
            if let Some(a) = s.action {
                slot[ACTION_AT + a.index()] = 1.0;
            }
            slot[PRESENT_AT] = 1.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simnas_shared::Op;

    #[test]
    fn layout_of_two_steps() {
        let mut h = History::new();
        let a0 = Arch::uniform(Op::SkipConnect);
        h.push(Step { arch: a0, latency: 0.0, tf: 0.25, action: None });
        let act = Action::from_index(2 * 5 + 3).unwrap();
        let a1 = a0.apply(act);
        h.push(Step { arch: a1, latency: 0.5, tf: 0.75, action: Some(act) });
        let mut o = [9.0; OBS_DIM];
        h.encode(&mut o);
        // Slot 0: the new cell, edge 2 is conv3x3 (index 13), the others skip (index e*5+1).
        assert_eq!(o[13], 1.0);
        assert_eq!((o[11], o[1]), (0.0, 1.0)); // edge 2 no longer skip, edge 0 still is
        assert_eq!((o[LATENCY_AT], o[TF_AT], o[ACTION_AT + 13], o[PRESENT_AT]), (0.5, 0.75, 1.0, 1.0));
        assert_eq!(o[..30].iter().sum::<f32>(), 6.0);
        // Slot 1: the start, no action.
        let s1 = &o[SLOT..2 * SLOT];
        assert_eq!((s1[TF_AT], s1[PRESENT_AT]), (0.25, 1.0));
        assert_eq!(s1[ACTION_AT..ACTION_AT + ACTIONS].iter().sum::<f32>(), 0.0);
        // Padding.
        assert!(o[2 * SLOT..].iter().all(|&v| v == 0.0));
        assert_eq!(PRESENT_AT + 1, SLOT);
    }

    #[test]
    fn normalisation_clamps() {
        assert_eq!(normalise_latency(5.0, 4.0, 8.0), 0.25);
        assert_eq!(normalise_latency(3.0, 4.0, 8.0), 0.0);
        assert_eq!(normalise_latency(9.0, 4.0, 8.0), 1.0);
        assert_eq!(normalise_latency(5.0, 8.0, 8.0), 0.0);
        assert_eq!(normalise_latency(f64::NAN, 4.0, 8.0), 0.0);
    }
}
