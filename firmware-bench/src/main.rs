//! Firmware entry point: the board (chosen by a cargo feature) and the memory the server
//! measures with. Builds for `thumbv7em-none-eabihf` (`cargo fw-build`); on the host this
//! binary is a stub that says so.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("firmware-bench runs on a Cortex-M4 board: `cargo fw-build`, then `cargo fw-run` (QEMU)");
}

#[cfg(target_os = "none")]
mod boards;

#[cfg(target_os = "none")]
mod firmware {
    use crate::boards::{fail, Selected};
    use cortex_m_rt::{entry, exception, ExceptionFrame};
    use firmware_bench::server::{Server, Workload};
    use firmware_bench::{config, embedded, net};

    #[entry]
    fn main() -> ! {
        // cortex-m-rt hands these to `main` as `&'static mut`, once.
        static mut ARENA: [f32; net::ARENA_LEN] = [0.0; net::ARENA_LEN];
        static mut INPUT: [f32; net::INPUT_LEN] = [0.0; net::INPUT_LEN];
        let board = Selected::init();
        net::fill_input(&mut INPUT[..], config::SEED);
        let work = Workload {
            net: config::NET,
            arena: &mut ARENA[..],
            bank: net::bank(),
            input: &INPUT[..],
            seed: config::SEED,
            search: embedded::inputs(),
            search_at_boot: embedded::boot_budget(),
        };
        Server::new(board, work).run()
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
