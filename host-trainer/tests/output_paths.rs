//! Output paths are checked before any work, by one rule for every command: missing parent
//! directories are created; a directory, a read-only file, a place where no file can be
//! created, or a parent that cannot be created is an error at once (non-zero exit, nothing
//! measured). A save that still fails at the end of `search` is reported after the pick.

use serialport::SerialPort as _;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    std::env::var_os("SIMNAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// A measured latency table of the benchmark: fast, and every probe is a lookup.
fn table_device() -> String {
    format!("table:{}#pixel3_latency_ms", data_dir().join("latency_hwnasbench_cifar10.csv").display())
}

fn simnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simnas")).arg("--data").arg(data_dir()).args(args).output().expect("run simnas")
}

fn search(extra: &[&str]) -> Output {
    let dev = table_device();
    let mut args = vec!["search", "--device", &dev, "--strategy", "random", "--budget", "6"];
    args.extend_from_slice(extra);
    simnas(&args)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simnas-outputs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A file with `text`, mode 0444.
fn read_only(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
}

/// Refused before any work: exit status 1, `what` in the message, nothing on stdout.
#[track_caller]
fn assert_refused_up_front(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
    assert!(out.stdout.is_empty(), "work was done first: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn search_checks_its_outputs_before_the_first_probe() {
    let d = tmp("search");
    std::fs::write(d.join("plain"), "").unwrap();
    read_only(&d.join("ro.svg"), "old plot");
    let cases = [
        ("--json", p(&d).to_string(), "is a directory: name a file inside it"),
        ("--plot", p(&d.join("ro.svg")).to_string(), "ro.svg is read-only (mode 444)"),
        ("--json", p(&d.join("plain/sub/out.json")).to_string(), "cannot create the directory"),
        ("--plot", p(&d.join("plain/out.svg")).to_string(), "exists and is not a directory"),
        ("--json", "/proc/simnas-out.json".to_string(), "cannot create files in /proc"),
        ("--json", "/proc/simnas-nope/out.json".to_string(), "cannot create the directory /proc/simnas-nope"),
    ];
    for (flag, path, what) in &cases {
        assert_refused_up_front(&search(&[flag, path]), what);
    }
    assert_eq!(std::fs::read_to_string(d.join("ro.svg")).unwrap(), "old plot");
    // Missing parents are created.
    let (json, svg) = (d.join("new/a/out.json"), d.join("new/b/plot.svg"));
    let out = search(&["--json", p(&json), "--plot", p(&svg)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(json.is_file() && svg.is_file());
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn search_prints_the_pick_before_a_failed_save() {
    let out = search(&["--json", "/dev/full"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.contains("pick: ") && stdout.contains("(measured, probe"), "{stdout}");
    assert!(stderr.contains("writing /dev/full: No space left on device"), "{stderr}");
    assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device());
    // A stream gets the final record once, not one per probe.
    let out = search(&["--json", "/dev/stdout"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("\"probes\"").count(), 1, "{stdout}");
    assert!(std::fs::symlink_metadata("/dev/stdout").unwrap().file_type().is_symlink());
    let out = search(&["--json", "/dev/null", "--plot", "/dev/null"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
}

#[test]
fn eval_checks_its_out_directory_before_searching() {
    let d = tmp("eval");
    let dev = table_device();
    let eval = |out: &Path| {
        let args = ["eval", "--devices", &dev, "--budgets", "2", "--seeds", "1", "--strategies", "random", "--out"];
        let mut args = args.to_vec();
        args.push(p(out));
        simnas(&args)
    };
    std::fs::create_dir_all(d.join("out")).unwrap();
    read_only(&d.join("out/report.md"), "an earlier report");
    assert_refused_up_front(&eval(&d.join("out")), "report.md is read-only (mode 444)");
    assert_eq!(std::fs::read_to_string(d.join("out/report.md")).unwrap(), "an earlier report");
    std::fs::write(d.join("plain"), "").unwrap();
    assert_refused_up_front(&eval(&d.join("plain")), "exists and is not a directory");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn prior_checks_its_out_file_before_fitting() {
    let d = tmp("prior");
    read_only(&d.join("prior.json"), "{}");
    assert_refused_up_front(&simnas(&["prior", "--out", p(&d.join("prior.json"))]), "read-only (mode 444)");
    assert_eq!(std::fs::read_to_string(d.join("prior.json")).unwrap(), "{}");
    assert_refused_up_front(&simnas(&["prior", "--out", p(&d)]), "is a directory");
    let _ = std::fs::remove_dir_all(&d);
}

#[cfg(feature = "train")]
#[test]
fn train_checks_its_out_directory_before_training() {
    let d = tmp("train");
    read_only(&d.join("policy.safetensors"), "an earlier policy");
    let out = simnas(&["train", "--quiet", "--steps", "256", "--checkpoint-every", "0", "--out", p(&d)]);
    assert_refused_up_front(&out, "policy.safetensors is read-only (mode 444)");
    assert_eq!(std::fs::read_to_string(d.join("policy.safetensors")).unwrap(), "an earlier policy");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn monitor_checks_its_log_before_opening_the_board() {
    let d = tmp("monitor");
    read_only(&d.join("log.jsonl"), "{\"kept\": true}\n");
    let out = simnas(&["monitor", "--port", "/dev/simnas-no-such-port", "--log", p(&d.join("log.jsonl"))]);
    assert_refused_up_front(&out, "log.jsonl is read-only (mode 444)");
    // Missing directories of the log are created.
    let (master, slave) = serialport::TTYPort::pair().expect("a pty pair");
    let port = slave.name().expect("pty name");
    let log = d.join("new/dir/log.jsonl");
    let out = simnas(&["monitor", "--port", &port, "--idle", "0.3", "--log", p(&log)]);
    drop((master, slave));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(log.is_file());
    let _ = std::fs::remove_dir_all(&d);
}
