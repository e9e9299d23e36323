//! The board's conv kernel (the Cortex-M4F assembly of edge-runtime, which no host test
//! executes) against the naive reference, on the board: `firmware-bench`'s `kernel-check`
//! binary booted in QEMU `mps2-an386` checks every geometry of
//! `edge_runtime::check::GEOMETRIES` on seeded data, prints one line per geometry on its
//! serial line (QEMU's stdout here) and ends QEMU with a success status only if all passed.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target; the binary is built on
//! first use if `cargo fw-build` has not been run. About 4 s of wall time.

use host_trainer::board::qemu::{program, QEMU_ARGS};
use simnas_tests::kernel_check;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn the_boards_conv_kernel_matches_the_reference_on_the_board() {
    let t0 = Instant::now();
    let mut child = Command::new(program())
        .args(QEMU_ARGS)
        .args(["-serial", "stdio", "-kernel"])
        .arg(kernel_check())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting qemu-system-arm");
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for QEMU") {
            break status;
        }
        if t0.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kernel-check did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().expect("piped").read_to_string(&mut out).expect("QEMU's stdout");
    child.stderr.take().expect("piped").read_to_string(&mut err).expect("QEMU's stderr");
    eprintln!("{out}kernel-check: {:.1} s of wall time", t0.elapsed().as_secs_f64());
    assert!(status.success(), "kernel-check failed ({status}):\n{out}\n{err}");

    // Every geometry reported, each within tolerance, and the summary says so.
    let n = geometry_count(&out);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("conv in ")).collect();
    assert_eq!(lines.len(), n, "{out}");
    assert!(lines.iter().all(|l| l.ends_with(": ok") && l.contains("guard writes 0")), "{out}");
    assert!(out.contains(&format!("kernel-check: {n} of {n} geometries within tolerance: PASSED")), "{out}");
}

/// The number of geometries the board says it checks (its first line).
fn geometry_count(out: &str) -> usize {
    let first = out.lines().next().unwrap_or_default();
    assert!(first.starts_with("kernel-check on mps2-an386: "), "{out}");
    let n = first.split(": ").nth(1).and_then(|s| s.split(' ').next()).and_then(|s| s.parse().ok());
    let n = n.unwrap_or_else(|| panic!("no geometry count in {first:?}"));
    // The shipped list has 20 (edge_runtime::check::GEOMETRIES): shapes of the network,
    // of a 32x32 network and of the kernels' remainder paths.
    assert!(n >= 20, "{first}");
    n
}
