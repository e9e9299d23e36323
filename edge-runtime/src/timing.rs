//! Measuring latency in place: a [`Timer`] and a robust [`measure`].
//!
//! A measurement runs `warmup` untimed passes (caches, branch predictors, frequency
//! ramps), then times each of `samples.len()` passes separately and summarises them by
//! the median (robust to the outliers a shared machine produces), the minimum, and the
//! quartiles. [`Measurement::spread`] is the interquartile range over the median.

use crate::Error;

/// A free-running tick counter.
pub trait Timer {
    /// Current tick count (monotonic; wrapping is the implementation's business).
    fn ticks(&mut self) -> u64;
    /// Ticks per second.
    fn ticks_per_second(&self) -> u64;
}

/// Summary of repeated timings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement {
    /// Median ticks.
    pub median_ticks: u64,
    /// Fastest run.
    pub min_ticks: u64,
    /// Slowest run.
    pub max_ticks: u64,
    /// First quartile.
    pub q1_ticks: u64,
    /// Third quartile.
    pub q3_ticks: u64,
    /// Timed repeats.
    pub repeats: u32,
    /// The timer's rate.
    pub ticks_per_second: u64,
}

impl Measurement {
    fn ms(&self, ticks: u64) -> f64 {
        ticks as f64 * 1e3 / self.ticks_per_second as f64
    }
    /// Median in milliseconds.
    pub fn median_ms(&self) -> f64 {
        self.ms(self.median_ticks)
    }
    /// Minimum in milliseconds.
    pub fn min_ms(&self) -> f64 {
        self.ms(self.min_ticks)
    }
    /// Maximum in milliseconds.
    pub fn max_ms(&self) -> f64 {
        self.ms(self.max_ticks)
    }
    /// The same measurement when every sample covered `runs` back-to-back runs: tick
    /// figures become per run.
    pub fn per_run(self, runs: u64) -> Measurement {
        let d = |t: u64| t / runs.max(1);
        Measurement {
            median_ticks: d(self.median_ticks),
            min_ticks: d(self.min_ticks),
            max_ticks: d(self.max_ticks),
            q1_ticks: d(self.q1_ticks),
            q3_ticks: d(self.q3_ticks),
            ..self
        }
    }
    /// Interquartile range relative to the median (0.02 = 2%).
    pub fn spread(&self) -> f64 {
        if self.median_ticks == 0 {
            return 0.0;
        }
        (self.q3_ticks - self.q1_ticks) as f64 / self.median_ticks as f64
    }
}

/// Run `f` `warmup` times untimed, then once per element of `samples`, timing each run.
/// `samples` is caller-provided storage (no allocation); it is left sorted.
pub fn measure<T: Timer, E>(
    timer: &mut T,
    warmup: usize,
    samples: &mut [u64],
    f: impl FnMut() -> Result<(), E>,
) -> Result<Measurement, E>
where
    E: From<Error>,
{
    measure_best_of(timer, warmup, samples, 1, f)
}

/// [`measure`] where each sample is the fastest of `best_of` back-to-back timed runs.
///
/// Interference on a shared machine only ever slows a run down, so the minimum of a few
/// runs estimates the device's own latency and the median over samples stays robust; the
/// spread then reflects the device rather than the neighbours. `best_of = 1` is [`measure`].
pub fn measure_best_of<T: Timer, E>(
    timer: &mut T,
    warmup: usize,
    samples: &mut [u64],
    best_of: usize,
    mut f: impl FnMut() -> Result<(), E>,
) -> Result<Measurement, E>
where
    E: From<Error>,
{
    if samples.is_empty() {
        return Err(Error::NoRepeats.into());
    }
    let ticks_per_second = timer.ticks_per_second();
    if ticks_per_second == 0 {
        return Err(Error::TimerRate.into());
    }
    for _ in 0..warmup {
        f()?;
    }
    for s in samples.iter_mut() {
        let mut best = u64::MAX;
        for _ in 0..best_of.max(1) {
            let t0 = timer.ticks();
            f()?;
            best = best.min(timer.ticks().wrapping_sub(t0));
        }
        *s = best;
    }
    Ok(summarise(samples, ticks_per_second))
}

fn summarise(samples: &mut [u64], ticks_per_second: u64) -> Measurement {
    samples.sort_unstable();
    let n = samples.len();
    let at = |q: usize| samples[(q * (n - 1) + 2) / 4];
    let median = if n % 2 == 1 { samples[n / 2] } else { (samples[n / 2 - 1] + samples[n / 2]) / 2 };
    Measurement {
        median_ticks: median,
        min_ticks: samples[0],
        max_ticks: samples[n - 1],
        q1_ticks: at(1),
        q3_ticks: at(3),
        repeats: n as u32,
        ticks_per_second,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer whose every run lasts the next value of a script.
    struct Scripted {
        now: u64,
        runs: Vec<u64>,
        reads: usize,
    }
    impl Timer for Scripted {
        fn ticks(&mut self) -> u64 {
            // Even reads start a run, odd reads end it.
            if self.reads % 2 == 1 {
                self.now += self.runs[self.reads / 2];
            }
            self.reads += 1;
            self.now
        }
        fn ticks_per_second(&self) -> u64 {
            1000
        }
    }

    #[test]
    fn median_min_quartiles() {
        let mut t = Scripted { now: 0, runs: vec![10, 50, 11, 12, 9, 13, 1000], reads: 0 };
        let mut s = [0u64; 7];
        let mut calls = 0;
        let m = measure::<_, Error>(&mut t, 2, &mut s, || {
            calls += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(calls, 9);
        assert_eq!((m.median_ticks, m.min_ticks, m.max_ticks), (12, 9, 1000));
        assert_eq!((m.q1_ticks, m.q3_ticks), (11, 50));
        assert_eq!(m.median_ms(), 12.0);
        assert!((m.spread() - 39.0 / 12.0).abs() < 1e-12);
    }

    #[test]
    fn best_of_takes_the_fastest_run_of_each_sample() {
        let mut t = Scripted { now: 0, runs: vec![10, 7, 9, 30, 8, 8], reads: 0 };
        let mut s = [0u64; 2];
        let m = measure_best_of::<_, Error>(&mut t, 0, &mut s, 3, || Ok(())).unwrap();
        assert_eq!((m.min_ticks, m.max_ticks, m.repeats), (7, 8, 2));
    }

    #[test]
    fn errors() {
        let mut t = Scripted { now: 0, runs: vec![], reads: 0 };
        assert_eq!(measure::<_, Error>(&mut t, 0, &mut [], || Ok(())).unwrap_err(), Error::NoRepeats);
        let r: Result<Measurement, Error> = measure(&mut t, 0, &mut [0; 1], || Err(Error::NoRepeats));
        assert!(r.is_err());
    }
}
