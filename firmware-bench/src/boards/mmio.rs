//! Memory-mapped registers: the one place the firmware uses `unsafe`.

/// A 32-bit device register at a fixed address taken from the board's reference manual.
#[derive(Clone, Copy)]
pub struct Reg(usize);

impl Reg {
    /// The register at `addr` (a device register address, word aligned).
    pub const fn at(addr: usize) -> Reg {
        Reg(addr)
    }

    /// Volatile read.
    pub fn read(self) -> u32 {
        // SAFETY: `self.0` is a word-aligned device register of this board (see `at`);
        // device registers are always mapped and reads have no memory-safety effect.
        unsafe { core::ptr::read_volatile(self.0 as *const u32) }
    }

    /// Volatile write.
    pub fn write(self, value: u32) {
        // SAFETY: as for `read`; the register is not memory Rust owns.
        unsafe { core::ptr::write_volatile(self.0 as *mut u32, value) }
    }

    /// Read, change, write back.
    #[cfg_attr(not(feature = "board-nucleo-f411"), allow(dead_code))]
    pub fn modify(self, f: impl FnOnce(u32) -> u32) {
        self.write(f(self.read()));
    }
}
