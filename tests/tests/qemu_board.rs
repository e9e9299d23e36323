//! The firmware on the reference board: `qemu-system-arm -machine mps2-an386` with
//! `-icount`, talked to over a real pty with the serialport crate (through the host's
//! `BoardLink`), and through `simnas probe --device qemu` as a user runs it.
//!
//! Needs `qemu-system-arm` and the `thumbv7em-none-eabihf` target; the firmware is built
//! on first use if `cargo fw-build` has not been run. Each probe here runs the full
//! ImageNet16-120-sized network 1 + 3 times (about 0.6 s of wall time per run for the
//! all-conv3x3 cell).

use host_trainer::board::qemu::Qemu;
use host_trainer::board::{BoardLink, Event};
use simnas_shared::protocol::{encode_frame, BoardMsg, ErrorCode, HostMsg, ProbeResult, MAX_FRAME, PROTOCOL_VERSION};
use simnas_shared::{Arch, Op};
use simnas_tests::{elf32_size, firmware, firmware_autonomous, simnas};
use std::process::Command;
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(60);

fn boot() -> (Qemu, BoardLink) {
    let (qemu, port) = Qemu::launch(&firmware()).expect("booting the firmware in QEMU");
    let mut link = BoardLink::new(port);
    let hello = link.connect(Duration::from_secs(20)).expect("Hello");
    assert_eq!(hello.protocol, PROTOCOL_VERSION);
    assert_eq!(hello.board.as_str(), "mps2-an386");
    assert_eq!((hello.clock_hz, hello.ticks_per_second), (25_000_000, 25_000_000));
    let n = hello.net;
    assert_eq!((n.channels, n.cells_per_stage, n.resolution, n.classes), (16, 5, 16, 120));
    // 4 node buffers of 16*16*16 floats, an 18*18*16 padded scratch, 64 floats.
    assert_eq!(hello.arena_bytes, 4 * (4 * 4096 + 5184 + 64));
    (qemu, link)
}

fn probe(link: &mut BoardLink, op: Op) -> ProbeResult {
    let r = link.probe(Arch::uniform(op), 1, 3, TIMEOUT, 0).expect("probe");
    assert_eq!((r.arch, r.timing.repeats, r.timing.ticks_per_second), (Arch::uniform(op).code(), 3, 25_000_000));
    assert!(r.timing.min_ticks <= r.timing.median_ticks && r.timing.median_ticks <= r.timing.max_ticks);
    r
}

/// The next good message, skipping nothing else silently.
fn next_msg(link: &mut BoardLink) -> BoardMsg {
    match link.next_event(Instant::now() + TIMEOUT).expect("reading the pty") {
        Some(Event::Msg { msg, .. }) => msg,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn qemu_board_serves_probes_errors_and_is_deterministic() {
    let t0 = Instant::now();
    let (_qemu, mut link) = boot();
    let conv = probe(&mut link, Op::NorConv3x3);
    let skip = probe(&mut link, Op::SkipConnect);
    let ms = |r: &ProbeResult| r.timing.median_ms();
    eprintln!("all-conv3x3 {:.3} ms, all-skip {:.3} ms", ms(&conv), ms(&skip));
    assert!(ms(&conv) > 5.0 * ms(&skip), "conv {} vs skip {}", ms(&conv), ms(&skip));

    // Malformed commands: garbage, a frame with a flipped bit, a frame that is not a host
    // message. Each gets an Error frame, and the board keeps serving.
    link.send_raw(&[0x42, 0x13, 0x00]).unwrap();
    assert!(matches!(next_msg(&mut link), BoardMsg::Error(e) if e.code == ErrorCode::FrameCobs && e.request.is_none()));
    let mut buf = [0u8; MAX_FRAME];
    let n = encode_frame(40, &HostMsg::Ping { nonce: 7 }, &mut buf).unwrap();
    buf[3] ^= 0x04; // the message byte (COBS code bytes are at 0 and 2)
    link.send_raw(&buf[..n]).unwrap();
    assert!(matches!(next_msg(&mut link), BoardMsg::Error(e) if e.code == ErrorCode::FrameCrc));
    let n = encode_frame(41, &(9u8, 1u8), &mut buf).unwrap();
    link.send_raw(&buf[..n]).unwrap();
    assert!(matches!(next_msg(&mut link), BoardMsg::Error(e) if e.code == ErrorCode::Decode));
    // An overlong frame: refused once (naming the buffer size), the rest dropped up to the
    // delimiter.
    link.send_raw(&[[0x55u8; 400].as_slice(), &[0]].concat()).unwrap();
    assert!(
        matches!(next_msg(&mut link), BoardMsg::Error(e) if e.code == ErrorCode::FrameOverfull && e.detail as usize == MAX_FRAME)
    );
    link.send(&HostMsg::Ping { nonce: 99 }).unwrap();
    assert_eq!(next_msg(&mut link), BoardMsg::Pong { nonce: 99 });
    // An argument the board refuses names the request.
    let err = link.probe(Arch::uniform(Op::SkipConnect), 0, 0, TIMEOUT, 0).unwrap_err();
    assert!(err.to_string().contains("repeats must be 1..=64"), "{err}");

    // Same cell, same ticks: within this boot, and in a second boot.
    let again = probe(&mut link, Op::NorConv3x3);
    let stats = link.stats();
    assert_eq!((stats.corrupt, stats.missing, stats.resets), (0, 0, 0), "{stats:?}");
    let (_qemu2, mut link2) = boot();
    let other_boot = probe(&mut link2, Op::NorConv3x3);
    let ticks = |r: &ProbeResult| (r.timing.min_ticks, r.timing.median_ticks, r.timing.max_ticks);
    eprintln!("all-conv3x3 ticks: {:?} / {:?} / {:?}", ticks(&conv), ticks(&again), ticks(&other_boot));
    // Repeatable to one tick: a timed run starts on a tick edge, its end may fall either
    // side of the next one (which side can depend on when the host's command arrived).
    let close = |a: (u64, u64, u64), b: (u64, u64, u64)| {
        a.0.abs_diff(b.0) <= 1 && a.1.abs_diff(b.1) <= 1 && a.2.abs_diff(b.2) <= 1
    };
    assert!(close(ticks(&conv), ticks(&again)), "{:?} vs {:?}", ticks(&conv), ticks(&again));
    assert!(close(ticks(&conv), ticks(&other_boot)), "{:?} vs {:?}", ticks(&conv), ticks(&other_boot));
    eprintln!("board test wall time {:.1} s", t0.elapsed().as_secs_f64());
}

#[test]
fn simnas_probe_device_qemu() {
    let t0 = Instant::now();
    let skip = Arch::uniform(Op::SkipConnect).to_string();
    let conv = Arch::uniform(Op::NorConv3x3).to_string();
    let out = Command::new(simnas())
        .args([
            "probe",
            "--device",
            "qemu",
            "--warmup",
            "1",
            "--repeats",
            "3",
            "--json",
            "--arch",
            &skip,
            "--arch",
            &conv,
        ])
        .arg("--firmware")
        .arg(firmware())
        .output()
        .expect("running simnas");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simnas probe --device qemu failed: {stderr}");
    let rows: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0]["device"].as_str().unwrap().starts_with("qemu (mps2-an386"), "{rows:?}");
    assert_eq!(rows[1]["arch"].as_str(), Some(conv.as_str()));
    let ms = |i: usize| rows[i]["latency_ms"].as_f64().unwrap();
    assert!(ms(1) > 5.0 * ms(0) && ms(0) > 0.0, "{rows:?}");
    eprintln!("simnas probe --device qemu: 2 cells in {:.1} s", t0.elapsed().as_secs_f64());

    // A missing firmware says how to build it.
    let out = Command::new(simnas())
        .args(["probe", "--device", "qemu", "--firmware", "/nonexistent/firmware-bench"])
        .output()
        .expect("running simnas");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo fw-build"), "{out:?}");
}

#[test]
fn firmware_fits_the_budget() {
    for image in [firmware(), firmware_autonomous()] {
        let elf = std::fs::read(&image).expect("reading the firmware");
        let size = elf32_size(&elf).expect("an ELF32 image");
        eprintln!("{}: {} bytes flash, {} bytes static RAM", image.display(), size.flash, size.ram);
        // The budget of a common Cortex-M4 part; memory.x enforces it at link time too,
        // this keeps 8 KiB of RAM for the stack.
        assert!(size.flash <= 1024 * 1024, "{size:?}");
        assert!(size.ram <= (192 - 8) * 1024, "{size:?}");
        // The policy and the score table are in the image (flash), not in RAM.
        assert!(size.flash > 107_008 + 31_326 + 147_712, "{size:?}");
    }
}
