//! QEMU `mps2-an386` (Cortex-M4F at 25 MHz): CMSDK UART0 for the serial line, CMSDK
//! timer0 (32-bit down-counter at the 25 MHz system clock) for ticks.
//!
//! Under `-icount shift=0,align=off,sleep=off` QEMU advances its clock by 1 ns per
//! instruction, so tick counts are proportional to instructions executed and repeatable.
//! (DWT CYCCNT reads 0 under QEMU, hence the CMSDK timer.) A panic or fault ends QEMU
//! through semihosting with a failure status.

use super::mmio::Reg;
use firmware_bench::board::Board;

const UART0: usize = 0x4000_4000;
const UART_DATA: Reg = Reg::at(UART0);
const UART_STATE: Reg = Reg::at(UART0 + 0x04);
const UART_CTRL: Reg = Reg::at(UART0 + 0x08);
const UART_BAUDDIV: Reg = Reg::at(UART0 + 0x10);
const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_RX_ENABLE: u32 = 0b11;

const TIMER0: usize = 0x4000_0000;
const TIMER_CTRL: Reg = Reg::at(TIMER0);
const TIMER_VALUE: Reg = Reg::at(TIMER0 + 0x04);
const TIMER_RELOAD: Reg = Reg::at(TIMER0 + 0x08);

const CLOCK_HZ: u32 = 25_000_000;

/// The board; [`Mps2An386::init`] configures the UART and the timer.
pub struct Mps2An386 {
    last: u32,
    total: u64,
}

impl Mps2An386 {
    /// Enable UART0 (TX and RX, polled) and start timer0 free-running over 32 bits.
    pub fn init() -> Self {
        UART_BAUDDIV.write(16);
        UART_CTRL.write(CTRL_TX_RX_ENABLE);
        TIMER_CTRL.write(0);
        TIMER_RELOAD.write(u32::MAX);
        TIMER_VALUE.write(u32::MAX);
        TIMER_CTRL.write(1);
        Mps2An386 { last: TIMER_VALUE.read(), total: 0 }
    }
}

impl Board for Mps2An386 {
    fn name(&self) -> &'static str {
        "mps2-an386"
    }
    fn clock_hz(&self) -> u32 {
        CLOCK_HZ
    }
    fn ticks_per_second(&self) -> u64 {
        CLOCK_HZ as u64
    }
    fn ticks(&mut self) -> u64 {
        // Down-counter: elapsed ticks are last - now (mod 2^32).
        let now = TIMER_VALUE.read();
        self.total += self.last.wrapping_sub(now) as u64;
        self.last = now;
        self.total
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while UART_STATE.read() & STATE_TX_FULL != 0 {}
            UART_DATA.write(b as u32);
        }
    }
    fn read_byte(&mut self) -> Option<u8> {
        (UART_STATE.read() & STATE_RX_FULL != 0).then(|| UART_DATA.read() as u8)
    }
}

/// End QEMU with a failure status (panic, HardFault).
pub fn fail() -> ! {
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    // Not under QEMU (no semihosting host): stop here.
    cortex_m::asm::udf()
}
