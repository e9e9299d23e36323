//! The host CPU as a device (feature `std`): a nanosecond [`StdTimer`] and [`HostProbe`],
//! which measures any cell of one network configuration with seeded weights.

use crate::layout::{NetConfig, ParamLayout};
use crate::params::DenseParams;
use crate::rng::{fill_params, SplitMix64};
use crate::timing::{measure_best_of, Measurement, Timer};
use crate::{Error, Executor, Plan};
use simnas_shared::Arch;
use std::time::Instant;

/// Nanoseconds since the timer was made.
#[derive(Clone, Copy, Debug)]
pub struct StdTimer {
    start: Instant,
}

impl Default for StdTimer {
    fn default() -> Self {
        StdTimer { start: Instant::now() }
    }
}

impl Timer for StdTimer {
    fn ticks(&mut self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

/// Shortest timed sample on the host, in nanoseconds.
pub const MIN_SAMPLE_NS: u64 = 2_000_000;

/// Each host sample is the fastest of this many back-to-back timed batches
/// ([`measure_best_of`]): neighbours on a shared machine only ever slow a run down.
pub const BEST_OF: usize = 3;

/// Measures cells of one configuration on this CPU: seeded dense weights and input, one
/// arena reused across probes.
pub struct HostProbe {
    cfg: NetConfig,
    layout: ParamLayout,
    params: Vec<f32>,
    input: Vec<f32>,
    arena: Vec<f32>,
    logits: Vec<f32>,
}

impl HostProbe {
    /// Weights and input from `seed`.
    pub fn new(cfg: NetConfig, seed: u64) -> Result<HostProbe, Error> {
        let layout = ParamLayout::new(cfg)?;
        let mut params = vec![0.0; layout.total_len()];
        fill_params(&layout, seed, &mut params);
        let mut rng = SplitMix64::new(seed ^ 0x5eed_1a7e);
        let input = (0..cfg.input_len()).map(|_| rng.next_signed()).collect();
        Ok(HostProbe { cfg, layout, params, input, arena: Vec::new(), logits: vec![0.0; cfg.classes] })
    }

    /// The configuration.
    pub fn config(&self) -> &NetConfig {
        &self.cfg
    }

    /// Run `arch` once and return its logits (for checks; not timed).
    pub fn forward(&mut self, arch: Arch) -> Result<&[f32], Error> {
        self.measure(arch, 0, 1)?;
        Ok(&self.logits)
    }

    /// Time `arch`: `warmup` untimed forwards, then `repeats` timed samples.
    ///
    /// A sample is never shorter than [`MIN_SAMPLE_NS`]: fast cells run several times per
    /// sample (the count is calibrated during warm-up) and the per-run time is reported,
    /// so scheduler noise on a shared machine does not dominate sub-millisecond cells; each
    /// sample is the fastest of [`BEST_OF`] such batches.
    pub fn measure(&mut self, arch: Arch, warmup: usize, repeats: usize) -> Result<Measurement, Error> {
        self.measure_with(&mut StdTimer::default(), arch, warmup, repeats)
    }

    /// [`HostProbe::measure`] with another clock (e.g. the thread's CPU time).
    pub fn measure_with<T: Timer>(
        &mut self,
        timer: &mut T,
        arch: Arch,
        warmup: usize,
        repeats: usize,
    ) -> Result<Measurement, Error> {
        let plan = Plan::new(self.cfg, arch)?;
        if self.arena.len() < plan.arena_len() {
            self.arena.resize(plan.arena_len(), 0.0);
        }
        let mut ex = Executor::new(&plan, &mut self.arena)?;
        let params = DenseParams::new(&self.layout, &self.params)?;
        let (input, logits) = (&self.input, &mut self.logits);
        // Warm up, and calibrate how many runs make one sample of at least MIN_SAMPLE_NS.
        let t0 = timer.ticks();
        for _ in 0..warmup.max(1) {
            ex.run(&params, input, logits)?;
        }
        let per_run = timer.ticks().wrapping_sub(t0) / warmup.max(1) as u64;
        let min_ticks = (MIN_SAMPLE_NS as u128 * timer.ticks_per_second() as u128 / 1_000_000_000) as u64;
        let runs = (min_ticks / per_run.max(1)).clamp(1, 1000);
        let mut samples = vec![0u64; repeats];
        let m = measure_best_of(timer, 0, &mut samples, BEST_OF, || {
            for _ in 0..runs {
                ex.run(&params, input, logits)?;
            }
            Ok::<(), Error>(())
        })?;
        Ok(m.per_run(runs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simnas_shared::Op;

    #[test]
    fn host_probe_runs_and_is_deterministic() {
        let cfg = NetConfig { channels: 8, cells_per_stage: 1, resolution: 16, classes: 10 };
        let mut a = HostProbe::new(cfg, 7).unwrap();
        let mut b = HostProbe::new(cfg, 7).unwrap();
        let arch = Arch::uniform(Op::NorConv3x3);
        let la = a.forward(arch).unwrap().to_vec();
        assert!(la.iter().all(|v| v.is_finite() && *v != 0.0));
        assert_eq!(la, b.forward(arch).unwrap());
        let m = a.measure(arch, 1, 5).unwrap();
        assert!(m.min_ticks > 0 && m.min_ticks <= m.median_ticks && m.median_ticks <= m.max_ticks);
        assert_eq!(a.measure(arch, 0, 0).unwrap_err(), Error::NoRepeats);
    }
}
