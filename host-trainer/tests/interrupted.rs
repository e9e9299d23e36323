//! Interrupted work: `simnas score --all`, `train` and `search` are stopped mid-run by a
//! signal to the child process (SIGINT as Ctrl-C sends it, or SIGKILL, which no handler
//! sees), then run again. Completed results must be on disk after the kill, and the rerun
//! must continue from them instead of starting over.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn simnas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_simnas"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simnas-interrupted-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(feature = "train")]
fn data_dir() -> PathBuf {
    std::env::var_os("SIMNAS_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"))
}

/// Wait until `ready()` holds (polling), failing after `limit`.
fn wait_for(what: &str, limit: Duration, child: &mut Child, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the run ended ({status}) before {what}");
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(feature = "train")]
fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill failed");
}

#[cfg(feature = "train")]
fn finish(child: Child) -> Output {
    child.wait_with_output().expect("waiting for simnas")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[cfg(feature = "train")]
fn lines(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0)
}

/// Rows of a partial score table (its first line is the header); a row cut short by a
/// kill counts too.
#[cfg(feature = "train")]
fn rows(path: &std::path::Path) -> usize {
    lines(path).saturating_sub(1)
}

#[cfg(feature = "train")]
#[test]
fn score_all_survives_ctrl_c_and_sigkill_and_resumes() {
    let dir = tmp("score");
    let out = dir.join("scores.csv");
    let partial = dir.join("scores.csv.partial");
    let data = data_dir();
    let run = || {
        simnas()
            .args(["score", "--all", "--sample", "80", "--jobs", "1", "--batch", "8", "--inits", "1", "--out"])
            .arg(&out)
            .arg("--data")
            .arg(&data)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running simnas score")
    };
    // Ctrl-C: the handler stops the workers, keeps what is scored, says how to continue.
    let mut child = run();
    wait_for("10 scored cells", Duration::from_secs(120), &mut child, || rows(&partial) >= 10);
    signal(&child, libc::SIGINT);
    let o = finish(child);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert!(stderr(&o).contains("rerun the same command to continue"), "{}", stderr(&o));
    let kept = rows(&partial);
    assert!((10..80).contains(&kept), "{kept} rows kept");
    assert!(!out.exists());
    // SIGKILL: nothing runs on the way out; the rows written before stay.
    let mut child = run();
    wait_for("more scored cells", Duration::from_secs(120), &mut child, || rows(&partial) >= kept + 10);
    child.kill().unwrap();
    let _ = child.wait();
    let kept2 = rows(&partial);
    assert!(kept2 >= kept + 10 && kept2 < 80, "{kept2} rows after the kill");
    // The rerun scores only the rest.
    let o = finish(run());
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    let resumed = err.lines().find(|l| l.starts_with("scoring ")).unwrap_or_default();
    let todo: usize = resumed.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
    // Only the cells not on disk are scored (a row cut short by the kill is scored again).
    assert!(todo == 80 - kept2 || todo == 81 - kept2, "{kept2} rows kept: {err}");
    assert!(resumed.contains("already in"), "{err}");
    assert_eq!(lines(&out), 81, "header and 80 rows");
    assert!(!partial.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "train")]
#[test]
fn train_resumes_from_its_checkpoint_after_sigkill() {
    let dir = tmp("train");
    let out = dir.join("run");
    let state = out.join("checkpoint/state.json");
    // 12 updates of 16 x 128 steps, a checkpoint after each; the stand-in proxy (no score
    // table) and no benchmark data keep it quick.
    let args = |seed: &str| {
        let mut c = simnas();
        c.args(["train", "--steps", "24576", "--quiet", "--checkpoint-every", "1", "--eval-episodes", "1"])
            .args(["--seed", seed, "--out"])
            .arg(&out)
            .env_remove("SIMNAS_DATA")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    };
    let steps_saved = || -> Option<u64> {
        let v: Value = serde_json::from_slice(&std::fs::read(&state).ok()?).ok()?;
        v["steps"].as_u64()
    };
    let mut child = args("4").spawn().unwrap();
    wait_for("a checkpoint past step 4096", Duration::from_secs(120), &mut child, || {
        steps_saved().is_some_and(|s| s >= 4096)
    });
    child.kill().unwrap();
    let _ = child.wait();
    let saved = steps_saved().expect("a whole checkpoint after the kill");
    assert!(!out.join("policy.safetensors").exists(), "the run was killed before the end");

    // Another configuration must not pick up this checkpoint.
    let o = args("5").output().unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("another training configuration") && stderr(&o).contains("--fresh"), "{}", stderr(&o));

    let o = args("4").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("resuming from step {saved} of 24576")), "{}", stderr(&o));
    // The curve covers the whole run, the policy loads, the checkpoint is gone.
    assert_eq!(lines(&out.join("curves.csv")), 1 + 12);
    let policy = std::fs::read(out.join("policy.safetensors")).unwrap();
    assert!(edge_runtime::policy::Policy::from_bytes(&policy).is_ok());
    assert!(!out.join("checkpoint").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn search_killed_mid_run_resumes_without_measuring_again() {
    let dir = tmp("search");
    let json = dir.join("search.json");
    let run = |resume: bool| {
        let mut c = simnas();
        c.args(["search", "--device", "host", "--net", "imagenet16", "--budget", "8", "--json"]).arg(&json);
        if resume {
            c.arg("--resume");
        }
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let probes = || -> Vec<Value> {
        std::fs::read(&json)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v["probes"].as_array().cloned())
            .unwrap_or_default()
    };
    let mut child = run(false).spawn().unwrap();
    wait_for("3 probes on disk", Duration::from_secs(300), &mut child, || probes().len() >= 3);
    child.kill().unwrap();
    let _ = child.wait();
    let before = probes();
    assert!((3..8).contains(&before.len()), "{} probes before the kill", before.len());

    let o = run(true).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let n = before.len();
    assert!(stderr(&o).contains(&format!("resumed: {n} of {n} recorded probes replayed")), "{}", stderr(&o));
    let after = probes();
    assert_eq!(after.len(), 8);
    // The recorded probes are kept as they were measured, in the same order.
    assert_eq!(&after[..n], &before[..]);
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(v["result"].is_object(), "{v}");

    // A record from another device is not reused.
    let other = simnas()
        .args(["search", "--device", "host", "--net", "cifar10", "--budget", "8", "--resume", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    assert!(!other.status.success());
    assert!(stderr(&other).contains("cannot be reused"), "{}", stderr(&other));
    let _ = std::fs::remove_dir_all(&dir);
}
