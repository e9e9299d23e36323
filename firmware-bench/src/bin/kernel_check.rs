//! The board's conv kernel checked against the naive reference, on the board: every
//! geometry of `edge_runtime::check::GEOMETRIES` on seeded data, one line per geometry
//! on the serial console, then a summary line, and QEMU's exit status (semihosting) says
//! whether all passed. `tests/tests/qemu_kernels.rs` boots it in QEMU (`mps2-an386`);
//! on the host this binary is a stub that says so.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("kernel-check runs on the board: `cargo fw-build`, then boot target/thumbv7em-none-eabihf/release/kernel-check in QEMU");
}

#[cfg(target_os = "none")]
#[path = "../boards/mod.rs"]
mod boards;

#[cfg(target_os = "none")]
mod firmware {
    use crate::boards::{fail, Selected};
    use core::fmt::Write;
    use cortex_m_rt::{entry, exception, ExceptionFrame};
    use edge_runtime::check::{self, GEOMETRIES, MAX_SCRATCH, TOLERANCE};
    use firmware_bench::board::Board;

    /// Text to the board's serial line.
    struct Console(Selected);

    impl Write for Console {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }

    #[entry]
    fn main() -> ! {
        // cortex-m-rt hands this to `main` as `&'static mut`, once.
        static mut SCRATCH: [f32; MAX_SCRATCH] = [0.0; MAX_SCRATCH];
        let mut console = Console(Selected::init());
        let name = console.0.name();
        let _ =
            writeln!(console, "kernel-check on {name}: {} conv geometries, tolerance {TOLERANCE:e}", GEOMETRIES.len());
        let mut passed = 0;
        for (i, g) in GEOMETRIES.iter().enumerate() {
            let _ =
                write!(console, "conv in {} cin {} cout {} k {} stride {}: ", g.in_side, g.cin, g.cout, g.k, g.stride);
            match check::conv(g, 0x5eed + i as u64, &mut SCRATCH[..]) {
                Some(r) => {
                    let verdict = if r.passed() { "ok" } else { "FAILED" };
                    let _ = writeln!(
                        console,
                        "max error {:.3e} of max value {:.3e}, guard writes {}: {verdict}",
                        r.max_err, r.max_abs, r.guard_writes
                    );
                    passed += usize::from(r.passed());
                }
                None => {
                    let _ = writeln!(console, "not checked (invalid geometry or scratch too small): FAILED");
                }
            }
        }
        let all = passed == GEOMETRIES.len();
        let verdict = if all { "PASSED" } else { "FAILED" };
        let _ =
            writeln!(console, "kernel-check: {passed} of {} geometries within tolerance: {verdict}", GEOMETRIES.len());
        if all {
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        }
        fail()
    }

    #[exception]
    unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
        fail()
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        fail()
    }
}
