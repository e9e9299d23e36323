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
    ref_arena: Vec<f32>,
    logits: Vec<f32>,
}

/// A cell timed against a reference cell, interleaved ([`HostProbe::measure_paired_with`]):
/// quantiles of the per-sample ratio `time(cell) / time(reference)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Paired {
    /// Median ratio.
    pub median: f64,
    /// Smallest ratio.
    pub min: f64,
    /// Largest ratio.
    pub max: f64,
    /// First quartile.
    pub q1: f64,
    /// Third quartile.
    pub q3: f64,
    /// Samples.
    pub repeats: u32,
}

impl Paired {
    /// Interquartile range relative to the median.
    pub fn spread(&self) -> f64 {
        if self.median > 0.0 {
            (self.q3 - self.q1) / self.median
        } else {
            0.0
        }
    }
}

impl HostProbe {
    /// Weights and input from `seed`.
    pub fn new(cfg: NetConfig, seed: u64) -> Result<HostProbe, Error> {
        let layout = ParamLayout::new(cfg)?;
        let mut params = vec![0.0; layout.total_len()];
        fill_params(&layout, seed, &mut params);
        let mut rng = SplitMix64::new(seed ^ 0x5eed_1a7e);
        let input = (0..cfg.input_len()).map(|_| rng.next_signed()).collect();
        Ok(HostProbe {
            cfg,
            layout,
            params,
            input,
            arena: Vec::new(),
            ref_arena: Vec::new(),
            logits: vec![0.0; cfg.classes],
        })
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
        let runs = warm_up(timer, &mut ex, &params, input, logits, warmup)?;
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

/// Run `warmup` (at least one) untimed forwards and return how many runs make one sample
/// of at least [`MIN_SAMPLE_NS`] (1 to 1000).
fn warm_up<T: Timer>(
    timer: &mut T,
    ex: &mut Executor,
    params: &DenseParams,
    input: &[f32],
    logits: &mut [f32],
    warmup: usize,
) -> Result<u64, Error> {
    let t0 = timer.ticks();
    for _ in 0..warmup.max(1) {
        ex.run(params, input, logits)?;
    }
    let per_run = timer.ticks().wrapping_sub(t0) / warmup.max(1) as u64;
    let min_ticks = (MIN_SAMPLE_NS as u128 * timer.ticks_per_second() as u128 / 1_000_000_000) as u64;
    Ok((min_ticks / per_run.max(1)).clamp(1, 1000))
}

impl HostProbe {
    /// Time `arch` against `reference`, interleaved: each of `repeats` samples times one
    /// batch of each back to back (the order alternating) and records the ratio of their
    /// per-run times. A slow phase of the machine lasting longer than one pair (a virtual
    /// CPU throttled for seconds, a noisy neighbour) slows both alike and cancels in the
    /// ratio. Batches are calibrated to at least [`MIN_SAMPLE_NS`] and each is the fastest
    /// of [`BEST_OF`], as in [`HostProbe::measure`].
    pub fn measure_paired_with<T: Timer>(
        &mut self,
        timer: &mut T,
        arch: Arch,
        reference: Arch,
        warmup: usize,
        repeats: usize,
    ) -> Result<Paired, Error> {
        if repeats == 0 {
            return Err(Error::NoRepeats);
        }
        let tps = timer.ticks_per_second();
        if tps == 0 {
            return Err(Error::TimerRate);
        }
        let (plan, ref_plan) = (Plan::new(self.cfg, arch)?, Plan::new(self.cfg, reference)?);
        if self.arena.len() < plan.arena_len() {
            self.arena.resize(plan.arena_len(), 0.0);
        }
        if self.ref_arena.len() < ref_plan.arena_len() {
            self.ref_arena.resize(ref_plan.arena_len(), 0.0);
        }
        let mut ex = Executor::new(&plan, &mut self.arena)?;
        let mut rx = Executor::new(&ref_plan, &mut self.ref_arena)?;
        let params = DenseParams::new(&self.layout, &self.params)?;
        let (input, logits) = (&self.input, &mut self.logits);
        let runs = warm_up(timer, &mut ex, &params, input, logits, warmup)?;
        let ref_runs = warm_up(timer, &mut rx, &params, input, logits, warmup)?;
        let mut batch = |x: &mut Executor, n: u64, timer: &mut T| -> Result<f64, Error> {
            let mut best = u64::MAX;
            for _ in 0..BEST_OF {
                let t0 = timer.ticks();
                for _ in 0..n {
                    x.run(&params, input, logits)?;
                }
                best = best.min(timer.ticks().wrapping_sub(t0));
            }
            Ok(best as f64 / n as f64)
        };
        let mut ratios = Vec::with_capacity(repeats);
        for i in 0..repeats {
            let (a, r) = if i % 2 == 0 {
                let r = batch(&mut rx, ref_runs, timer)?;
                (batch(&mut ex, runs, timer)?, r)
            } else {
                let a = batch(&mut ex, runs, timer)?;
                (a, batch(&mut rx, ref_runs, timer)?)
            };
            ratios.push(if r > 0.0 { a / r } else { f64::INFINITY });
        }
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        let at = |q: usize| ratios[(q * (n - 1) + 2) / 4];
        let median = if n % 2 == 1 { ratios[n / 2] } else { 0.5 * (ratios[n / 2 - 1] + ratios[n / 2]) };
        Ok(Paired { median, min: ratios[0], max: ratios[n - 1], q1: at(1), q3: at(3), repeats: n as u32 })
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

    #[test]
    fn paired_ratio_orders_cells_and_is_one_against_itself() {
        let cfg = NetConfig { channels: 8, cells_per_stage: 1, resolution: 16, classes: 10 };
        let mut p = HostProbe::new(cfg, 7).unwrap();
        let (skip, conv) = (Arch::uniform(Op::SkipConnect), Arch::uniform(Op::NorConv3x3));
        let r = p.measure_paired_with(&mut StdTimer::default(), conv, skip, 1, 5).unwrap();
        assert!(r.median > 1.0, "conv3x3 vs skip: {r:?}");
        assert!(r.min <= r.q1 && r.q1 <= r.median && r.median <= r.q3 && r.q3 <= r.max);
        let same = p.measure_paired_with(&mut StdTimer::default(), skip, skip, 1, 5).unwrap();
        assert!(same.median > 0.3 && same.median < 3.0, "{same:?}");
        assert_eq!(p.measure_paired_with(&mut StdTimer::default(), skip, skip, 1, 0).unwrap_err(), Error::NoRepeats);
    }
}
