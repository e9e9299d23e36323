//! The board layer: what the firmware needs from a board, and the timer the executor is
//! measured with.

use edge_runtime::Timer;

/// A board: one serial line, one free-running timer, a known clock.
pub trait Board {
    /// Short name sent in `Hello` (at most 24 bytes).
    fn name(&self) -> &'static str;
    /// Core clock in Hz.
    fn clock_hz(&self) -> u32;
    /// Rate of [`Board::ticks`].
    fn ticks_per_second(&self) -> u64;
    /// Timer ticks since boot, extended to 64 bits. Implementations extend a narrower
    /// hardware counter on each call, so it must be called at least once per hardware
    /// wrap (the serve loop calls it on every pass).
    fn ticks(&mut self) -> u64;
    /// Send bytes, blocking until the UART has taken them.
    fn write(&mut self, bytes: &[u8]);
    /// A received byte, if one is waiting (never blocks).
    fn read_byte(&mut self) -> Option<u8>;
}

/// The [`Timer`] handed to `edge_runtime::measure`.
///
/// `measure` reads the timer in pairs, before and after each timed run. Each *start*
/// read waits for the next tick edge, so every run starts at the same phase of the timer
/// and a fixed workload always spans the same count (to within one tick when its length
/// falls within a few instructions of a tick boundary).
pub struct EdgeSyncedTimer<'b, B: Board> {
    board: &'b mut B,
    starting: bool,
}

impl<'b, B: Board> EdgeSyncedTimer<'b, B> {
    /// Wrap `board`'s timer.
    pub fn new(board: &'b mut B) -> Self {
        EdgeSyncedTimer { board, starting: false }
    }
}

impl<B: Board> Timer for EdgeSyncedTimer<'_, B> {
    fn ticks(&mut self) -> u64 {
        self.starting = !self.starting;
        let t0 = self.board.ticks();
        if !self.starting {
            return t0;
        }
        loop {
            let t = self.board.ticks();
            if t != t0 {
                return t;
            }
        }
    }

    fn ticks_per_second(&self) -> u64 {
        self.board.ticks_per_second()
    }
}
