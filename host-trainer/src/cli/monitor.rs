//! `simnas monitor`: print a board's records as they arrive and append each to a JSONL log,
//! flushed per record (a crash or an unplugged cable loses nothing already received).

use anyhow::{Context, Result};
use clap::Args;
use host_trainer::board::{describe, qemu, BoardLink, Event, DEFAULT_BAUD};
use serde_json::{json, Map, Value};
use simnas_shared::protocol::{BenchItem, BoardMsg, HostMsg, Mode, Timing};
use simnas_shared::{Arch, Op};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Debug)]
pub struct MonitorArgs {
    /// Serial port of the board (e.g. /dev/ttyACM0, or the pty `cargo fw-run` printed).
    #[arg(long, value_name = "PORT", required_unless_present = "qemu", conflicts_with = "qemu")]
    port: Option<String>,
    /// Boot the firmware in QEMU and monitor it, instead of opening a port.
    #[arg(long)]
    qemu: bool,
    /// Firmware ELF for --qemu [default: target/thumbv7em-none-eabihf/release/firmware-bench].
    #[arg(long, value_name = "PATH")]
    firmware: Option<PathBuf>,
    /// Baud rate of the port.
    #[arg(long, default_value_t = DEFAULT_BAUD)]
    baud: u32,
    /// Append every record to this JSONL file, one object per line, flushed per record
    /// (missing directories are created; checked before the board is opened).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Ask the board to run its benchmark (every op and a few cells), and stop after it.
    #[arg(long)]
    bench: bool,
    /// Untimed runs per benchmark item.
    #[arg(long, default_value_t = 1)]
    bench_warmup: u16,
    /// Timed runs per benchmark item (the board holds at most 64).
    #[arg(long, default_value_t = 5)]
    bench_repeats: u16,
    /// Ask the board to run the search on itself (embedded policy and score table), and
    /// stop at its final record. A firmware built with `--features autonomous` runs it at
    /// boot without being asked.
    #[arg(long, conflicts_with = "bench")]
    search: bool,
    /// Probe budget of the search --search asks for.
    #[arg(long, default_value_t = 10)]
    search_budget: u16,
    /// Stop after this many seconds without a frame, more than 0 and at most 86400
    /// (default: never; Ctrl-C ends).
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true, value_parser = super::seconds)]
    idle: Option<f64>,
    /// Stop after this many records.
    #[arg(long)]
    count: Option<u64>,
}

/// Request ids of the benchmark and the search monitor asks for.
const BENCH_ID: u32 = 1;
const SEARCH_ID: u32 = 2;

pub fn run(args: MonitorArgs) -> Result<ExitCode> {
    // The log is opened before the board, so a path that cannot be written costs no record.
    let mut log = match &args.log {
        Some(p) => {
            host_trainer::output::prepare(p)?;
            Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .read(true)
                    .open(p)
                    .and_then(|mut f| end_cut_line(&mut f).map(|()| f))
                    .with_context(|| format!("opening {}", p.display()))?,
            )
        }
        None => None,
    };
    let (mut link, _qemu, source) = match &args.port {
        Some(port) => (BoardLink::open(port, args.baud)?, None, port.clone()),
        None => {
            let fw = args.firmware.clone().unwrap_or_else(qemu::default_firmware);
            let (q, port) = qemu::Qemu::launch(&fw)?;
            (BoardLink::new(port), Some(q), format!("qemu {}", fw.display()))
        }
    };
    eprintln!(
        "monitoring {source}{}",
        args.log.as_ref().map(|p| format!(", logging to {}", p.display())).unwrap_or_default()
    );
    if args.bench {
        link.send(&HostMsg::Bench { id: BENCH_ID, warmup: args.bench_warmup, repeats: args.bench_repeats })?;
    }
    if args.search {
        link.send(&HostMsg::Search { id: SEARCH_ID, budget: args.search_budget })?;
    }
    // The summary is printed however the monitor ends (a line that hangs up included).
    let followed = follow(&mut link, &args, log.as_mut());
    let s = link.stats();
    eprintln!("{} frames, {} corrupt, {} missing, {} board resets", s.frames, s.corrupt, s.missing, s.resets);
    followed?;
    Ok(ExitCode::SUCCESS)
}

/// Print and log records until the board is done, `--idle` or `--count` says stop, or the
/// line fails.
fn follow(link: &mut BoardLink, args: &MonitorArgs, mut log: Option<&mut File>) -> Result<()> {
    let start = Instant::now();
    let mut last_frame = start;
    let mut asked = false;
    let mut records = 0u64;
    loop {
        let event = link.next_event(Instant::now() + Duration::from_millis(200))?;
        let now = Instant::now();
        let Some(event) = event else {
            // A board that booted before we opened the port: ask for its Hello once.
            if !asked && link.hello().is_none() && now - start > Duration::from_millis(500) {
                link.send(&HostMsg::Identify)?;
                asked = true;
            }
            if args.idle.is_some_and(|s| (now - last_frame).as_secs_f64() > s) {
                eprintln!("no frame for {:.1} s: stopping", (now - last_frame).as_secs_f64());
                return Ok(());
            }
            continue;
        };
        last_frame = now;
        let t_s = (now - start).as_secs_f64();
        let (line, record) = render(&event, t_s);
        // Strings come from the board: no escape sequence of its reaches the terminal.
        let line = printable(&line);
        match &event {
            Event::Corrupt(_) => eprintln!("{line}"),
            Event::Msg { .. } => outln!("{line}"),
        }
        if let Event::Msg { msg: BoardMsg::Hello(h), .. } = &event {
            if h.mode == Mode::Serve && !args.bench && !args.search {
                eprintln!(
                    "the board serves host commands and sends nothing on its own: pass --search (it runs its \
                     search and reports) or --bench, or probe it with `simnas probe --device serial:PORT`; \
                     Ctrl-C stops"
                );
            }
        }
        if let Some(why) = record.get("invalid").and_then(Value::as_str) {
            eprintln!(
                "warning: the board's last record is no measurement ({why}); it is logged with an \"invalid\" field"
            );
        }
        if let Some(f) = log.as_deref_mut() {
            append(f, &record).context("writing the log")?;
        }
        records += 1;
        let done = match &event {
            Event::Msg { msg: BoardMsg::Final(_), .. } => true,
            Event::Msg { msg: BoardMsg::BenchRecord(r), .. } => {
                args.bench && r.id == BENCH_ID && r.index + 1 >= r.total
            }
            Event::Msg { msg: BoardMsg::Error(e), .. } => {
                (args.bench && e.request == Some(BENCH_ID)) || (args.search && e.request == Some(SEARCH_ID))
            }
            _ => false,
        };
        if done || args.count.is_some_and(|n| records >= n) {
            return Ok(());
        }
    }
}

/// `s` with every control character written as a `\u{..}` escape.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

/// Ends a log whose last line was cut off (a kill mid-write) with a newline, so the next
/// record starts a line of its own instead of being glued onto the fragment.
fn end_cut_line(f: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    let mut r = f.try_clone()?;
    r.seek(SeekFrom::Start(len - 1))?;
    r.read_exact(&mut last)?;
    if last[0] != b'\n' {
        f.write_all(b"\n")?;
    }
    Ok(())
}

fn append(f: &mut File, record: &Value) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record)?;
    line.push(b'\n');
    f.write_all(&line)?;
    f.flush()
}

/// The printed line and the JSON record of one event.
fn render(event: &Event, t_s: f64) -> (String, Value) {
    let (seq, msg) = match event {
        Event::Corrupt(e) => {
            return (
                format!("corrupt frame dropped: {e}"),
                json!({"t_s": t_s, "kind": "frame_error", "error": e.to_string()}),
            )
        }
        Event::Msg { seq, msg } => (*seq, msg),
    };
    let mut rec = Map::new();
    rec.insert("t_s".into(), json!(t_s));
    rec.insert("seq".into(), json!(seq));
    let line = match msg {
        BoardMsg::Hello(h) => {
            rec.insert("kind".into(), json!("hello"));
            if let Ok(Value::Object(m)) = serde_json::to_value(h) {
                rec.extend(m);
            }
            format!(
                "hello  {} firmware {} protocol v{} {:?} | arena {} B, bank {} B, seed {:#x}",
                describe(h),
                h.firmware,
                h.protocol,
                h.mode,
                h.arena_bytes,
                h.bank_bytes,
                h.seed
            )
        }
        BoardMsg::Pong { nonce } => {
            rec.insert("kind".into(), json!("pong"));
            rec.insert("nonce".into(), json!(nonce));
            format!("pong   {nonce}")
        }
        BoardMsg::ProbeResult(r) => {
            rec.insert("kind".into(), json!("probe"));
            rec.insert("id".into(), json!(r.id));
            let arch = Arch::from_code(r.arch);
            rec.insert("arch".into(), json!(arch.to_string()));
            rec.insert("arch_code".into(), json!(r.arch.get()));
            add_timing(&mut rec, &r.timing);
            format!("probe  #{:<4} {}  {arch}", r.id, timing_text(&r.timing))
        }
        BoardMsg::BenchRecord(r) => {
            rec.insert("kind".into(), json!("bench"));
            rec.insert("id".into(), json!(r.id));
            rec.insert("index".into(), json!(r.index));
            rec.insert("total".into(), json!(r.total));
            let item = match r.item {
                BenchItem::Baseline => "baseline".to_string(),
                BenchItem::SingleEdge(op) => {
                    format!("single_edge:{}", Op::from_index(op).map(|o| o.name()).unwrap_or("?"))
                }
                BenchItem::Cell => "cell".to_string(),
            };
            rec.insert("item".into(), json!(item));
            let arch = Arch::from_code(r.arch);
            rec.insert("arch".into(), json!(arch.to_string()));
            add_timing(&mut rec, &r.timing);
            format!("bench  {:>2}/{} {:<26} {}  {arch}", r.index + 1, r.total, item, timing_text(&r.timing))
        }
        BoardMsg::SearchProbe(p) => {
            rec.insert("kind".into(), json!("search_probe"));
            rec.insert("id".into(), json!(p.id));
            rec.insert("index".into(), json!(p.index));
            rec.insert("step".into(), json!(p.step));
            let arch = Arch::from_code(p.arch);
            rec.insert("arch".into(), json!(arch.to_string()));
            rec.insert("arch_code".into(), json!(p.arch.get()));
            add_timing(&mut rec, &p.timing);
            rec.insert("probe_ticks".into(), json!(p.probe_ticks));
            rec.insert("controller_ticks".into(), json!(p.controller_ticks));
            let share = ratio(p.controller_ticks, p.probe_ticks);
            rec.insert("controller_share".into(), json!(share));
            format!(
                "search probe {:>2} (step {:>2}) {}  controller {:.3}% of the probe  {arch}",
                p.index,
                p.step,
                timing_text(&p.timing),
                100.0 * share
            )
        }
        BoardMsg::Final(f) => {
            rec.insert("kind".into(), json!("final"));
            rec.insert("id".into(), json!(f.id));
            rec.insert("budget".into(), json!(f.budget));
            rec.insert("probes".into(), json!(f.probes));
            rec.insert("steps".into(), json!(f.steps));
            rec.insert("stop".into(), json!(format!("{:?}", f.stop)));
            let arch = f.arch.map(Arch::from_code);
            rec.insert("arch".into(), json!(arch.map(|a| a.to_string())));
            rec.insert("arch_code".into(), json!(f.arch.map(|c| c.get())));
            rec.insert("pick_index".into(), json!(f.pick_index));
            let ms = |t: u64| if f.ticks_per_second == 0 { 0.0 } else { t as f64 * 1e3 / f.ticks_per_second as f64 };
            rec.insert("latency_ms".into(), json!(ms(f.pick_ticks)));
            rec.insert("pick_ticks".into(), json!(f.pick_ticks));
            rec.insert("score".into(), json!(f.score));
            rec.insert("ticks_per_second".into(), json!(f.ticks_per_second));
            rec.insert("controller_ticks".into(), json!(f.controller_ticks));
            rec.insert("probe_ticks".into(), json!(f.probe_ticks));
            rec.insert("max_step_ticks".into(), json!(f.max_step_ticks));
            let share = ratio(f.controller_ticks, f.probe_ticks);
            rec.insert("controller_share".into(), json!(share));
            if f.ticks_per_second == 0 {
                rec.insert("invalid".into(), json!("ticks_per_second is 0"));
            } else if arch.is_some() && f.pick_ticks == 0 {
                rec.insert("invalid".into(), json!("pick_ticks is 0"));
            }
            let pick = match arch {
                Some(a) => {
                    format!("pick {a} (probe {}, {:.3} ms, score {:.4})", f.pick_index, ms(f.pick_ticks), f.score)
                }
                None => "no pick".into(),
            };
            format!(
                "final  {} probes of {}, {} steps, stop {:?}; controller {:.3} ms = {:.3}% of probing ({:.3} ms); {pick}",
                f.probes,
                f.budget,
                f.steps,
                f.stop,
                ms(f.controller_ticks),
                100.0 * share,
                ms(f.probe_ticks)
            )
        }
        BoardMsg::Error(e) => {
            rec.insert("kind".into(), json!("error"));
            rec.insert("code".into(), json!(format!("{:?}", e.code)));
            rec.insert("request".into(), json!(e.request));
            rec.insert("detail".into(), json!(e.detail));
            format!("error  {:?} (request {:?}, detail {})", e.code, e.request, e.detail)
        }
    };
    (line, Value::Object(rec))
}

fn add_timing(rec: &mut Map<String, Value>, t: &Timing) {
    if let Err(fault) = t.check() {
        rec.insert("invalid".into(), json!(fault.to_string()));
    }
    rec.insert("latency_ms".into(), json!(t.median_ms()));
    rec.insert("min_ms".into(), json!(t.ms(t.min_ticks)));
    rec.insert("max_ms".into(), json!(t.ms(t.max_ticks)));
    rec.insert("spread".into(), json!(t.spread()));
    rec.insert("repeats".into(), json!(t.repeats));
    rec.insert("median_ticks".into(), json!(t.median_ticks));
    rec.insert("min_ticks".into(), json!(t.min_ticks));
    rec.insert("max_ticks".into(), json!(t.max_ticks));
    rec.insert("ticks_per_second".into(), json!(t.ticks_per_second));
}

/// `a / b` (0 when `b` is 0).
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn timing_text(t: &Timing) -> String {
    format!("{:>10.3} ms (min {:.3}, {} repeats)", t.median_ms(), t.ms(t.min_ticks), t.repeats)
}
