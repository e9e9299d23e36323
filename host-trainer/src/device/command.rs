//! The user's own runtime as a device: `cmd:COMMAND`.
//!
//! For each probe the candidate's executed network is exported as ONNX
//! ([`crate::export`], batch 1, weights of seed 0) into a private temporary directory,
//! `{onnx}` in COMMAND is replaced by the file's path and `{arch}` by the cell string, and
//! the command runs **without a shell**: COMMAND is split into arguments like a shell
//! would split a simple command ([`split`]: blanks separate, `'...'` is literal, `"..."`
//! keeps blanks and honours `\"` and `\\`, a backslash outside quotes escapes the next
//! character). Pipes, redirections and variables need an explicit shell:
//! `cmd:sh -c 'trtexec --onnx={onnx} | grep ...'`.
//!
//! The latency in ms is read from the **last non-empty line** of the command's stdout: a
//! number (`3.25`) or a JSON object with a `latency_ms` number (`{"latency_ms": 3.25}`);
//! anything it prints before that line is ignored. The command has `timeout` to finish;
//! on a timeout its whole process group is killed. A timeout or a non-zero exit is tried
//! again `retries` times; a line that is not a finite, positive number is an error at once
//! (the command answered, wrongly). Every error names the command and quotes the end of
//! what it printed (at most [`QUOTE_CHARS`] characters of each stream).

use super::{Device, DeviceError, Probe};
use crate::export::{ExportError, ExportSpec};
use crate::output::OutputError;
use edge_runtime::NetConfig;
use simnas_shared::Arch;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Placeholder replaced by the exported model's path.
pub const ONNX_PLACEHOLDER: &str = "{onnx}";
/// Placeholder replaced by the cell string.
pub const ARCH_PLACEHOLDER: &str = "{arch}";
/// Default time a command has to answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default number of further attempts after a timeout or a non-zero exit.
pub const DEFAULT_RETRIES: u32 = 1;
/// Characters of each output stream quoted in an error.
pub const QUOTE_CHARS: usize = 200;
/// Bytes of each output stream kept (the end of it).
const KEEP_BYTES: usize = 64 * 1024;
/// How often a running command is checked.
const POLL: Duration = Duration::from_millis(5);

/// What is wrong with the latency line a command printed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LatencyLineError {
    /// Stdout had no non-empty line.
    #[error("printed nothing on stdout")]
    Empty,
    /// The last line is neither a number nor a JSON object.
    #[error("last line {line:?} is not a number or a JSON object with latency_ms")]
    NotANumber {
        /// The line.
        line: String,
    },
    /// A JSON object without a numeric `latency_ms`.
    #[error("last line {line:?} has no numeric latency_ms field")]
    NoLatencyField {
        /// The line.
        line: String,
    },
    /// NaN or an infinity.
    #[error("latency {value} ms is not finite")]
    NotFinite {
        /// The value.
        value: f64,
    },
    /// Zero or negative.
    #[error("latency {value} ms is not positive")]
    NotPositive {
        /// The value.
        value: f64,
    },
}

/// Why a command device could not be opened or measure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// COMMAND could not be split into arguments.
    #[error("cmd:{command}: {why}")]
    Syntax {
        /// The command as given.
        command: String,
        /// What is wrong.
        why: String,
    },
    /// The private directory for exported models could not be made.
    #[error("cmd:{command}: cannot create a temporary directory {path}: {source}")]
    TempDir {
        /// The command.
        command: String,
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The candidate could not be exported.
    #[error("cmd:{command}: exporting {arch}: {source}")]
    Export {
        /// The command.
        command: String,
        /// The cell.
        arch: String,
        /// Why.
        source: ExportError,
    },
    /// The program could not be started (not found, not executable).
    #[error("cmd:{command}: cannot run {program:?}: {source}")]
    Spawn {
        /// The command.
        command: String,
        /// The program (first argument).
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The command exited unsuccessfully on every attempt.
    #[error("cmd:{command} failed on {arch} ({status}, {attempts} attempt(s)); {output}")]
    Exit {
        /// The command.
        command: String,
        /// The cell.
        arch: String,
        /// Exit status as text.
        status: String,
        /// Attempts made.
        attempts: u32,
        /// What it printed (quoted, capped).
        output: String,
    },
    /// The command did not finish in time on any attempt (killed).
    #[error("cmd:{command} timed out on {arch} after {seconds} s ({attempts} attempt(s), killed); {output}")]
    Timeout {
        /// The command.
        command: String,
        /// The cell.
        arch: String,
        /// The timeout.
        seconds: f64,
        /// Attempts made.
        attempts: u32,
        /// What it printed (quoted, capped).
        output: String,
    },
    /// The command finished but its last line is not a usable latency.
    #[error("cmd:{command} on {arch}: {problem}; {output}")]
    Latency {
        /// The command.
        command: String,
        /// The cell.
        arch: String,
        /// What is wrong.
        problem: LatencyLineError,
        /// What it printed (quoted, capped).
        output: String,
    },
}

/// Split `command` into arguments (see the module docs). Errors name the problem.
pub fn split(command: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            '\'' => {
                in_arg = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_arg = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => cur.push(c),
                            Some(c) => {
                                cur.push('\\');
                                cur.push(c);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(c) => cur.push(c),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_arg = true;
                match chars.next() {
                    Some(c) => cur.push(c),
                    None => return Err("a trailing backslash escapes nothing".into()),
                }
            }
            c => {
                in_arg = true;
                cur.push(c);
            }
        }
    }
    if in_arg {
        args.push(cur);
    }
    if args.is_empty() {
        return Err("empty command".into());
    }
    Ok(args)
}

/// Check `command` as a `cmd:` device: it splits, and it reads the candidate (`{onnx}` or
/// `{arch}` appears).
pub fn check(command: &str) -> Result<Vec<String>, String> {
    let argv = split(command)?;
    if !argv.iter().any(|a| a.contains(ONNX_PLACEHOLDER) || a.contains(ARCH_PLACEHOLDER)) {
        return Err(format!(
            "the command never sees the candidate: put {ONNX_PLACEHOLDER} (the exported model's path) or {ARCH_PLACEHOLDER} (the cell) in it"
        ));
    }
    Ok(argv)
}

/// The latency (ms) on the last non-empty line of `stdout`.
pub fn parse_latency(stdout: &str) -> Result<f64, LatencyLineError> {
    let line = stdout.lines().map(str::trim).rfind(|l| !l.is_empty()).ok_or(LatencyLineError::Empty)?;
    let value = if line.starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|_| LatencyLineError::NotANumber { line: line.into() })?;
        v.get("latency_ms").and_then(|x| x.as_f64()).ok_or(LatencyLineError::NoLatencyField { line: line.into() })?
    } else {
        line.parse::<f64>().map_err(|_| LatencyLineError::NotANumber { line: line.into() })?
    };
    if !value.is_finite() {
        return Err(LatencyLineError::NotFinite { value });
    }
    if value <= 0.0 {
        return Err(LatencyLineError::NotPositive { value });
    }
    Ok(value)
}

/// The command's argument template with the placeholders filled in.
pub fn fill(argv: &[String], onnx: &Path, arch: Arch) -> Vec<String> {
    let (path, cell) = (onnx.display().to_string(), arch.to_string());
    argv.iter().map(|a| a.replace(ONNX_PLACEHOLDER, &path).replace(ARCH_PLACEHOLDER, &cell)).collect()
}

/// `cmd:COMMAND`: every probe exports the candidate and runs COMMAND on it.
pub struct CommandDevice {
    command: String,
    argv: Vec<String>,
    cfg: NetConfig,
    timeout: Duration,
    retries: u32,
    dir: PathBuf,
}

/// How one run of the command ended.
struct Run {
    /// `None`: killed on timeout.
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
}

impl CommandDevice {
    /// A device running `command` on networks of `cfg`; a probe's attempt is killed after
    /// `timeout`, and retried up to `retries` times after a timeout or a non-zero exit.
    pub fn new(command: &str, cfg: NetConfig, timeout: Duration, retries: u32) -> Result<CommandDevice, DeviceError> {
        let argv = check(command).map_err(|why| CommandError::Syntax { command: command.into(), why })?;
        edge_runtime::ParamLayout::new(cfg)?;
        let dir =
            private_dir().map_err(|(path, source)| CommandError::TempDir { command: command.into(), path, source })?;
        Ok(CommandDevice { command: command.into(), argv, cfg, timeout, retries, dir })
    }

    /// The directory the candidates are exported to (removed with the device).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn quote(&self, run: &Run) -> String {
        format!("stdout: {:?}, stderr: {:?}", tail(&run.stdout, QUOTE_CHARS), tail(&run.stderr, QUOTE_CHARS))
    }

    /// One run of the command on `argv`.
    fn run_once(&self, argv: &[String]) -> Result<Run, CommandError> {
        let spawn_err = |source| CommandError::Spawn {
            command: self.command.clone(),
            program: argv.first().cloned().unwrap_or_default(),
            source,
        };
        let (program, rest) = argv.split_first().ok_or_else(|| spawn_err(std::io::ErrorKind::NotFound.into()))?;
        let mut cmd = Command::new(program);
        cmd.args(rest).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt as _;
            // Its own process group, so a timeout kills what it started too.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        let out = collect(child.stdout.take());
        let err = collect(child.stderr.take());
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(POLL),
                _ => {
                    kill_group(&mut child);
                    break None;
                }
            }
        };
        // Output is complete when the pipes close; something the command left running may
        // hold them open: wait until the deadline, then kill the group.
        let grace = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(200));
        let mut stdout = out.recv_timeout(grace).ok();
        if stdout.is_none() {
            kill_group(&mut child);
            stdout = out.recv_timeout(Duration::from_secs(1)).ok();
        }
        let stderr = err.recv_timeout(Duration::from_secs(1)).ok();
        Ok(Run { status, stdout: stdout.unwrap_or_default(), stderr: stderr.unwrap_or_default() })
    }
}

impl Drop for CommandDevice {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Device for CommandDevice {
    /// `cmd:COMMAND (network)`: the command and the network it measures, so a record made
    /// with another command or network is not resumed on this one.
    fn name(&self) -> String {
        let c = &self.cfg;
        format!(
            "cmd:{} (C={} N={} {}x{} {} classes)",
            self.command, c.channels, c.cells_per_stage, c.resolution, c.resolution, c.classes
        )
    }

    fn probe(&mut self, arch: Arch) -> Result<Probe, DeviceError> {
        let export_err =
            |source| CommandError::Export { command: self.command.clone(), arch: arch.to_string(), source };
        let spec = ExportSpec { arch, cfg: self.cfg, batch: 1, seed: 0 };
        let executed = spec.executed().map_err(export_err)?;
        let bytes = spec.onnx_bytes().map_err(export_err)?;
        let path = self.dir.join(format!("cell-{}.onnx", executed.code().get()));
        std::fs::write(&path, bytes)
            .map_err(|err| export_err(ExportError::Output(OutputError::Write { path: path.clone(), err })))?;
        let argv = fill(&self.argv, &path, arch);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let run = self.run_once(&argv)?;
            let last = attempts > self.retries;
            match run.status {
                None if last => {
                    break Err(CommandError::Timeout {
                        command: self.command.clone(),
                        arch: arch.to_string(),
                        seconds: self.timeout.as_secs_f64(),
                        attempts,
                        output: self.quote(&run),
                    })
                }
                Some(s) if !s.success() && last => {
                    break Err(CommandError::Exit {
                        command: self.command.clone(),
                        arch: arch.to_string(),
                        status: s.to_string(),
                        attempts,
                        output: self.quote(&run),
                    })
                }
                Some(s) if s.success() => {
                    break parse_latency(&run.stdout).map_err(|problem| CommandError::Latency {
                        command: self.command.clone(),
                        arch: arch.to_string(),
                        problem,
                        output: self.quote(&run),
                    })
                }
                _ => continue,
            }
        };
        let _ = std::fs::remove_file(&path);
        let ms = result?;
        Ok(Probe { latency_ms: ms, min_ms: ms, spread: 0.0, repeats: 1 })
    }
}

/// Read `pipe` to its end on a thread, keeping its last [`KEEP_BYTES`]; the text arrives
/// on the returned channel.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut kept: Vec<u8> = Vec::new();
        if let Some(mut p) = pipe {
            let mut buf = [0u8; 8192];
            while let Ok(n) = p.read(&mut buf) {
                if n == 0 {
                    break;
                }
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * KEEP_BYTES {
                    kept.drain(..kept.len() - KEEP_BYTES);
                }
            }
        }
        let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
    });
    rx
}

/// Kill `child` and its process group, and reap it.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) only sends a signal; the group is the child's own (process_group(0)).
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `n` characters of `s`, trimmed, with `...` in front when cut.
fn tail(s: &str, n: usize) -> String {
    let s = s.trim();
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let cut: String = s.chars().skip(count - n).collect();
    format!("...{cut}")
}

/// A new directory of this process under the system's temporary directory.
fn private_dir() -> Result<PathBuf, (PathBuf, std::io::Error)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut last = None;
    for _ in 0..16 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("simnas-cmd-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((path, e)),
            Err(e) => return Err((path, e)),
        }
    }
    Err(last.unwrap_or_else(|| (base, std::io::ErrorKind::AlreadyExists.into())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_simple_shell_command() {
        let s = |c: &str| split(c).unwrap();
        assert_eq!(s("  time-it  {onnx} --n 3 "), ["time-it", "{onnx}", "--n", "3"]);
        assert_eq!(s("sh -c 'a | b \"x\"' end"), ["sh", "-c", "a | b \"x\"", "end"]);
        assert_eq!(s(r#"p "a b \"c\" \\ \n" x\ y ''"#), ["p", r#"a b "c" \ \n"#, "x y", ""]);
        assert_eq!(s("a'b'\"c\"d"), ["abcd"]);
        assert!(split("sh -c 'oops").unwrap_err().contains("single quote"));
        assert!(split("p \"oops").unwrap_err().contains("double quote"));
        assert!(split("p \\").unwrap_err().contains("backslash"));
        assert_eq!(split("   ").unwrap_err(), "empty command");
        assert!(check("time-it model.onnx").unwrap_err().contains("{onnx}"));
        assert!(check("time-it --cell={arch}").is_ok());
    }

    #[test]
    fn latency_is_the_last_non_empty_line() {
        assert_eq!(parse_latency("loading\n3.5\n\n  \n"), Ok(3.5));
        assert_eq!(parse_latency("x\n{\"latency_ms\": 0.25, \"runs\": 10}\n"), Ok(0.25));
        assert_eq!(parse_latency("1e1"), Ok(10.0));
        assert_eq!(parse_latency(" \n"), Err(LatencyLineError::Empty));
        assert_eq!(parse_latency("3.5\nfast"), Err(LatencyLineError::NotANumber { line: "fast".into() }));
        assert!(matches!(parse_latency("{\"ms\": 3}"), Err(LatencyLineError::NoLatencyField { .. })));
        assert!(matches!(parse_latency("{\"latency_ms\": \"3\"}"), Err(LatencyLineError::NoLatencyField { .. })));
        assert!(matches!(parse_latency("{broken"), Err(LatencyLineError::NotANumber { .. })));
        assert!(matches!(parse_latency("nan"), Err(LatencyLineError::NotFinite { .. })));
        assert!(matches!(parse_latency("inf"), Err(LatencyLineError::NotFinite { .. })));
        assert_eq!(parse_latency("-3"), Err(LatencyLineError::NotPositive { value: -3.0 }));
        assert_eq!(parse_latency("0"), Err(LatencyLineError::NotPositive { value: 0.0 }));
    }

    /// The `--device 'cmd:...'` values of the README's recipe table, as the user's shell
    /// passes them (outer single quotes removed, the table's `\|` back to `|`).
    fn readme_recipes() -> Vec<String> {
        let readme = include_str!("../../../README.md");
        let rows = readme.lines().filter(|l| l.starts_with('|') && l.contains("`'cmd:"));
        rows.filter_map(|l| {
            let start = l.find("`'cmd:")? + 6;
            let len = l[start..].find("'`")?;
            Some(l[start..start + len].replace("\\|", "|"))
        })
        .collect()
    }

    /// Run `argv` with `dir` first on PATH.
    fn run_with(dir: &Path, argv: &[String]) -> String {
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new(&argv[0]).args(&argv[1..]).env("PATH", path).output().unwrap();
        assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[cfg(unix)]
    #[test]
    fn readme_recipes_split_and_their_pipelines_parse_the_tools_output() {
        use std::os::unix::fs::PermissionsExt as _;
        let recipes = readme_recipes();
        assert_eq!(recipes.len(), 4, "{recipes:?}");
        for r in &recipes {
            check(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        }
        // Stand-ins printing the documented output lines of trtexec and TFLite's
        // benchmark_model (through adb), and an onnx2tf writing its float32 model.
        let dir = std::env::temp_dir().join(format!("simnas-recipes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tools = [
            ("trtexec", "echo '[I] Latency: min = 0.9 ms, max = 1.5 ms, mean = 1.0 ms, median = 0.98 ms'\necho '[I] GPU Compute Time: min = 0.41 ms, max = 0.63 ms, mean = 0.45 ms, median = 0.44 ms, percentile(90%) = 0.5 ms'"),
            ("onnx2tf", "mkdir -p \"$4\" && : > \"$4/model_float32.tflite\""),
            ("adb", "[ \"$1\" = shell ] && echo 'INFO: Timings (microseconds): count=50 first=1830 curr=1790 min=1702 max=2040 avg=1812.5 std=61'; exit 0"),
        ];
        for (name, body) in tools {
            let p = dir.join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let onnx = dir.join("m.onnx");
        let a = Arch::uniform(simnas_shared::Op::SkipConnect);
        let trt = recipes.iter().find(|r| r.contains("trtexec")).unwrap();
        assert_eq!(parse_latency(&run_with(&dir, &fill(&split(trt).unwrap(), &onnx, a))), Ok(0.44));
        let tfl = recipes.iter().find(|r| r.contains("benchmark_model")).unwrap();
        assert_eq!(parse_latency(&run_with(&dir, &fill(&split(tfl).unwrap(), &onnx, a))), Ok(1.8125));
        let _ = std::fs::remove_dir_all(&dir);
        // The TFLite recipe's own scratch directory.
        let _ = std::fs::remove_dir_all("/tmp/simnas-tfl");
    }

    #[test]
    fn placeholders_are_filled_in_every_argument() {
        let argv = split("t --model={onnx} {arch} {onnx}").unwrap();
        let a = Arch::uniform(simnas_shared::Op::SkipConnect);
        let got = fill(&argv, Path::new("/tmp/m.onnx"), a);
        assert_eq!(got, ["t".to_string(), "--model=/tmp/m.onnx".into(), a.to_string(), "/tmp/m.onnx".into()]);
        assert_eq!(tail("abcdef", 3), "...def");
        assert_eq!(tail(" ab \n", 3), "ab");
    }
}
