//! ST NUCLEO-F411RE (STM32F411RE): USART2 on PA2/PA3, wired to the ST-LINK virtual COM
//! port, at 115200 8N1; DWT's cycle counter for ticks (one tick per core cycle).
//!
//! Clock: the PLL takes the 16 MHz HSI oscillator the chip starts on to the rated 100 MHz
//! (HSI / M=8 = 2 MHz, x N=100 = 200 MHz VCO, / P=2 = 100 MHz SYSCLK; / Q=4 = 50 MHz, no
//! USB), with voltage scale 1, 3 flash wait states (RM0383 table 6, 90-100 MHz at
//! 2.7-3.6 V) and APB1 at 50 MHz (its maximum; USART2's clock), APB2 at 100 MHz. A PLL or
//! clock switch that does not report ready within a bounded wait leaves the chip on the
//! HSI at 16 MHz; either way `Hello` reports the clock the core runs at, and the baud rate
//! divisor follows it. At 100 MHz the 32-bit cycle counter wraps every 42.9 s: `ticks`
//! is read far more often than that while measuring.
//!
//! Register addresses and bits from RM0383 (STM32F411 reference manual). A panic or
//! fault resets the chip; the host sees a new `Hello`.

use super::mmio::Reg;
use cortex_m::peripheral::DWT;
use firmware_bench::board::Board;

const RCC: usize = 0x4002_3800;
const RCC_CR: Reg = Reg::at(RCC);
const RCC_PLLCFGR: Reg = Reg::at(RCC + 0x04);
const RCC_CFGR: Reg = Reg::at(RCC + 0x08);
const RCC_AHB1ENR: Reg = Reg::at(RCC + 0x30);
const RCC_APB1ENR: Reg = Reg::at(RCC + 0x40);
const GPIOAEN: u32 = 1 << 0;
const USART2EN: u32 = 1 << 17;
const PWREN: u32 = 1 << 28;
const CR_PLLON: u32 = 1 << 24;
const CR_PLLRDY: u32 = 1 << 25;
// PLLCFGR fields: M [5:0], N [14:6], P [17:16] (0 = /2), source [22] (0 = HSI), Q [27:24].
const PLLCFGR_FIELDS: u32 = 0x3F | (0x1FF << 6) | (0b11 << 16) | (1 << 22) | (0xF << 24);
const PLLCFGR_100MHZ: u32 = 8 | (100 << 6) | (4 << 24);
// CFGR: SW [1:0] (0b10 = PLL), SWS [3:2], HPRE [7:4] (0 = /1), PPRE1 [12:10] (0b100 = /2),
// PPRE2 [15:13] (0 = /1).
const CFGR_SW: u32 = 0b11;
const CFGR_SW_PLL: u32 = 0b10;
const CFGR_SWS_PLL: u32 = 0b10 << 2;
const CFGR_SWS: u32 = 0b11 << 2;
const CFGR_PRESCALERS: u32 = (0xF << 4) | (0b111 << 10) | (0b111 << 13);
const CFGR_APB1_DIV2: u32 = 0b100 << 10;

const PWR_CR: Reg = Reg::at(0x4000_7000);
const PWR_CR_VOS: u32 = 0b11 << 14; // scale 1: up to 100 MHz

const FLASH_ACR: Reg = Reg::at(0x4002_3C00);
const ACR_LATENCY: u32 = 0xF;
// 3 wait states, prefetch, instruction and data caches.
const ACR_100MHZ: u32 = 3 | (1 << 8) | (1 << 9) | (1 << 10);

/// Register polls before a clock that does not report ready is given up on (far longer
/// than the PLL's lock time of well under a millisecond at 16 MHz).
const READY_POLLS: u32 = 1_000_000;

const GPIOA: usize = 0x4002_0000;
const GPIOA_MODER: Reg = Reg::at(GPIOA);
const GPIOA_AFRL: Reg = Reg::at(GPIOA + 0x20);

const USART2: usize = 0x4000_4400;
const USART_SR: Reg = Reg::at(USART2);
const USART_DR: Reg = Reg::at(USART2 + 0x04);
const USART_BRR: Reg = Reg::at(USART2 + 0x08);
const USART_CR1: Reg = Reg::at(USART2 + 0x0C);
const SR_ORE: u32 = 1 << 3;
const SR_RXNE: u32 = 1 << 5;
const SR_TXE: u32 = 1 << 7;
const CR1_UE_TE_RE: u32 = (1 << 13) | (1 << 3) | (1 << 2);

const HSI_HZ: u32 = 16_000_000;
const PLL_HZ: u32 = 100_000_000;
const BAUD: u32 = 115_200;

/// The board; [`NucleoF411::init`] sets the clock, USART2 and the cycle counter.
pub struct NucleoF411 {
    clock_hz: u32,
    last: u32,
    total: u64,
}

/// Poll `reg` until `(value & mask) == want`, at most [`READY_POLLS`] times.
fn wait_for(reg: Reg, mask: u32, want: u32) -> bool {
    (0..READY_POLLS).any(|_| reg.read() & mask == want)
}

/// Run the core at 100 MHz from the PLL; the core clock afterwards (16 MHz if the PLL or
/// the switch did not report ready, the chip then still on the HSI).
fn clock_100mhz() -> u32 {
    RCC_APB1ENR.modify(|v| v | PWREN);
    // A read-back delays the first PWR access until its clock runs (RM0383 asks for a
    // delay after a peripheral clock enable).
    let _ = RCC_APB1ENR.read();
    PWR_CR.modify(|v| v | PWR_CR_VOS);
    RCC_PLLCFGR.modify(|v| (v & !PLLCFGR_FIELDS) | PLLCFGR_100MHZ);
    RCC_CR.modify(|v| v | CR_PLLON);
    if !wait_for(RCC_CR, CR_PLLRDY, CR_PLLRDY) {
        RCC_CR.modify(|v| v & !CR_PLLON);
        return HSI_HZ;
    }
    // Wait states before the faster clock, and confirmed, or the flash misreads.
    FLASH_ACR.modify(|v| (v & !ACR_LATENCY) | ACR_100MHZ);
    if FLASH_ACR.read() & ACR_LATENCY != ACR_100MHZ & ACR_LATENCY {
        return HSI_HZ;
    }
    RCC_CFGR.modify(|v| (v & !CFGR_PRESCALERS) | CFGR_APB1_DIV2);
    RCC_CFGR.modify(|v| (v & !CFGR_SW) | CFGR_SW_PLL);
    if !wait_for(RCC_CFGR, CFGR_SWS, CFGR_SWS_PLL) {
        // Back to the HSI with undivided buses, the state `init` then assumes.
        RCC_CFGR.modify(|v| v & !(CFGR_SW | CFGR_PRESCALERS));
        return HSI_HZ;
    }
    PLL_HZ
}

impl NucleoF411 {
    /// Clock the core at 100 MHz; clock GPIOA and USART2, route PA2/PA3 to AF7, 115200 8N1;
    /// start DWT CYCCNT.
    pub fn init() -> Self {
        let Some(mut cp) = cortex_m::Peripherals::take() else { fail() };
        let clock_hz = clock_100mhz();
        // USART2 is on APB1: the core clock, halved when the PLL runs.
        let usart_hz = if clock_hz == PLL_HZ { clock_hz / 2 } else { clock_hz };
        cp.DCB.enable_trace();
        cp.DWT.enable_cycle_counter();
        RCC_AHB1ENR.modify(|v| v | GPIOAEN);
        RCC_APB1ENR.modify(|v| v | USART2EN);
        // PA2, PA3: alternate function mode (0b10), AF7 (USART2).
        GPIOA_MODER.modify(|v| (v & !(0b1111 << 4)) | (0b1010 << 4));
        GPIOA_AFRL.modify(|v| (v & !(0xFF << 8)) | (0x77 << 8));
        // Oversampling by 16: BRR = f_ck / baud, rounded (mantissa and fraction packed).
        USART_BRR.write((usart_hz + BAUD / 2) / BAUD);
        USART_CR1.write(CR1_UE_TE_RE);
        NucleoF411 { clock_hz, last: DWT::cycle_count(), total: 0 }
    }
}

impl Board for NucleoF411 {
    fn name(&self) -> &'static str {
        "nucleo-f411re"
    }
    fn clock_hz(&self) -> u32 {
        self.clock_hz
    }
    fn ticks_per_second(&self) -> u64 {
        self.clock_hz as u64
    }
    fn ticks(&mut self) -> u64 {
        let now = DWT::cycle_count();
        self.total += now.wrapping_sub(self.last) as u64;
        self.last = now;
        self.total
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while USART_SR.read() & SR_TXE == 0 {}
            USART_DR.write(b as u32);
        }
    }
    fn read_byte(&mut self) -> Option<u8> {
        let sr = USART_SR.read();
        if sr & (SR_RXNE | SR_ORE) == 0 {
            return None;
        }
        // Reading DR clears RXNE, and ORE after an overrun (the lost bytes surface as a
        // bad frame, which the board answers with an error).
        let b = USART_DR.read() as u8;
        (sr & SR_RXNE != 0).then_some(b)
    }
}

/// Reset the chip (panic, HardFault): the host sees a new `Hello`.
pub fn fail() -> ! {
    cortex_m::peripheral::SCB::sys_reset()
}
