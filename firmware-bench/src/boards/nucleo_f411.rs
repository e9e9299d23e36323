//! ST NUCLEO-F411RE (STM32F411RE): USART2 on PA2/PA3, wired to the ST-LINK virtual COM
//! port, at 115200 8N1; DWT's cycle counter for ticks. Runs on the 16 MHz HSI oscillator
//! the chip starts on (no PLL set-up), so a tick is one core cycle at 16 MHz.
//!
//! Register addresses and bits from RM0383 (STM32F411 reference manual). A panic or
//! fault resets the chip; the host sees a new `Hello`.

use super::mmio::Reg;
use cortex_m::peripheral::DWT;
use firmware_bench::board::Board;

const RCC: usize = 0x4002_3800;
const RCC_AHB1ENR: Reg = Reg::at(RCC + 0x30);
const RCC_APB1ENR: Reg = Reg::at(RCC + 0x40);
const GPIOAEN: u32 = 1 << 0;
const USART2EN: u32 = 1 << 17;

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

const CLOCK_HZ: u32 = 16_000_000;
const BAUD: u32 = 115_200;

/// The board; [`NucleoF411::init`] configures USART2 and the cycle counter.
pub struct NucleoF411 {
    last: u32,
    total: u64,
}

impl NucleoF411 {
    /// Clock GPIOA and USART2, route PA2/PA3 to AF7, 115200 8N1; start DWT CYCCNT.
    pub fn init() -> Self {
        let Some(mut cp) = cortex_m::Peripherals::take() else { fail() };
        cp.DCB.enable_trace();
        cp.DWT.enable_cycle_counter();
        RCC_AHB1ENR.modify(|v| v | GPIOAEN);
        RCC_APB1ENR.modify(|v| v | USART2EN);
        // PA2, PA3: alternate function mode (0b10), AF7 (USART2).
        GPIOA_MODER.modify(|v| (v & !(0b1111 << 4)) | (0b1010 << 4));
        GPIOA_AFRL.modify(|v| (v & !(0xFF << 8)) | (0x77 << 8));
        // Oversampling by 16: BRR = f_ck / baud, rounded (mantissa and fraction packed).
        USART_BRR.write((CLOCK_HZ + BAUD / 2) / BAUD);
        USART_CR1.write(CR1_UE_TE_RE);
        NucleoF411 { last: DWT::cycle_count(), total: 0 }
    }
}

impl Board for NucleoF411 {
    fn name(&self) -> &'static str {
        "nucleo-f411re"
    }
    fn clock_hz(&self) -> u32 {
        CLOCK_HZ
    }
    fn ticks_per_second(&self) -> u64 {
        CLOCK_HZ as u64
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
