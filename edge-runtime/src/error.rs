//! The runtime's one error type: flat, copyable, no allocation.

use crate::layout::ConfigField;
use core::fmt;

/// Everything the runtime can refuse. Values are plain numbers so the type is usable on a
/// board without an allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field is zero or above its limit.
    Config {
        /// The field.
        field: ConfigField,
        /// Its value.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
    /// The input side must be a multiple of 4 (two stride-2 reductions).
    ResolutionNotMultipleOf4 {
        /// The side given.
        resolution: usize,
    },
    /// The arena cannot hold the plan's activations.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed_bytes: usize,
        /// Bytes given.
        got_bytes: usize,
    },
    /// A dense parameter vector of the wrong length, or a parameter source that returned a
    /// slot of the wrong length.
    ParamsLength {
        /// Floats expected.
        expected: usize,
        /// Floats given.
        got: usize,
    },
    /// A weight bank smaller than the largest parameter slot.
    BankTooSmall {
        /// Floats needed.
        needed: usize,
        /// Floats given.
        got: usize,
    },
    /// Input of the wrong length (HWC, 3 channels).
    InputLength {
        /// Floats expected.
        expected: usize,
        /// Floats given.
        got: usize,
    },
    /// Logit buffer of the wrong length.
    OutputLength {
        /// Floats expected.
        expected: usize,
        /// Floats given.
        got: usize,
    },
    /// `measure` was asked for zero repeats.
    NoRepeats,
    /// The timer reports zero ticks per second.
    TimerRate,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Config { field, value, max } => {
                write!(f, "configuration {field:?} = {value} is out of range (1..={max})")
            }
            Error::ResolutionNotMultipleOf4 { resolution } => {
                write!(f, "input resolution {resolution} is not a multiple of 4 (the network halves it twice)")
            }
            Error::ArenaTooSmall { needed_bytes, got_bytes } => write!(
                f,
                "arena of {got_bytes} bytes is too small: this network needs {needed_bytes} bytes of activations"
            ),
            Error::ParamsLength { expected, got } => {
                write!(f, "parameters hold {got} floats where {expected} are needed")
            }
            Error::BankTooSmall { needed, got } => {
                write!(f, "weight bank holds {got} floats; the largest layer needs {needed}")
            }
            Error::InputLength { expected, got } => {
                write!(f, "input holds {got} floats; expected {expected} (HWC, 3 channels)")
            }
            Error::OutputLength { expected, got } => {
                write!(f, "logit buffer holds {got} floats; expected {expected}")
            }
            Error::NoRepeats => write!(f, "a measurement needs at least one repeat"),
            Error::TimerRate => write!(f, "the timer reports 0 ticks per second"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
