//! `simnas score` from the outside: the JSON of one cell, and clear errors (never a panic)
//! for an unknown cell, a missing or broken table, and a missing data directory.

#![cfg(feature = "train")]

use std::process::{Command, Output};

fn simnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simnas")).args(args).env_remove("SIMNAS_DATA").output().expect("simnas runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn one_cell_prints_the_metrics_as_json() {
    let cell = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|";
    let o = simnas(&["score", "--arch", cell]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["arch"], cell);
    for key in ["naswot", "logsynflow", "skip", "tf"] {
        assert!(v[key].as_f64().is_some_and(f64::is_finite), "{key}: {v}");
    }
    assert_eq!(v["skip"], 2.0);
    assert_eq!(v["degenerate"], false);
    // A disconnected cell gets the floor, flagged.
    let o = simnas(&["score", "--arch", "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["degenerate"], true);
    assert!(v["naswot"].as_f64().is_some_and(f64::is_finite));
}

#[test]
fn bad_input_gets_a_clear_error() {
    let o = simnas(&["score", "--arch", "|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--arch") && !stderr(&o).contains("panicked"), "{}", stderr(&o));

    let dir = std::env::temp_dir().join(format!("simnas-score-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let missing = dir.join("missing.csv");
    let o = simnas(&["score", "report", "--table", missing.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("missing.csv"), "{}", stderr(&o));

    let cut = dir.join("cut.csv");
    std::fs::write(&cut, "index,arch,naswot,logsynflow,skip\n0,|avg_pool_3x3~0|+|nor_co").unwrap();
    let o = simnas(&["--data", dir.to_str().unwrap(), "score", "report", "--table", cut.to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("truncated"), "{}", stderr(&o));

    let o = simnas(&["score", "--all", "--out", dir.join("t.csv").to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("SIMNAS_DATA"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}

fn data() -> Option<std::path::PathBuf> {
    let d = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    d.join("nb201_archs.csv").exists().then_some(d)
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

/// `--reuse` copies exactly the metrics the other table's settings fix the same way, says
/// so in the sidecar, and refuses a table that fixes none.
#[test]
fn reuse_copies_what_the_settings_fix_and_nothing_else() {
    let Some(data) = data() else {
        eprintln!("skipped: no benchmark data beside the repository");
        return;
    };
    let dir = std::env::temp_dir().join(format!("simnas-score-reuse-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let tiny = ["--channels", "4", "--cells", "1", "--resolution", "8", "--inits", "1", "--batch", "8"];
    let run = |out: &str, extra: &[&str]| {
        let out = dir.join(out);
        let mut args = vec!["--data", data.to_str().unwrap(), "score", "--all", "--sample", "6"];
        args.extend(tiny);
        args.extend(extra);
        args.extend(["--out", out.to_str().unwrap()]);
        let o = simnas(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        out
    };
    let base = run("base.csv", &[]);
    let fresh = run("fresh7.csv", &["--classes", "7"]);
    let reused = run("reused7.csv", &["--classes", "7", "--reuse", base.to_str().unwrap()]);
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reused7.json")).unwrap()).unwrap();
    assert_eq!(side["run"]["reuse"]["metrics"], serde_json::json!(["naswot", "meco"]), "{side}");
    // NASWOT and MeCo copied equal what 7 classes compute; LogSynflow was computed anew.
    let (b, f, r) = (rows(&base), rows(&fresh), rows(&reused));
    assert_eq!(r.len(), 6);
    for ((b, f), r) in b.iter().zip(&f).zip(&r) {
        assert_eq!((&r[2], &r[5]), (&f[2], &f[5]), "NASWOT and MeCo as computed with 7 classes");
        assert_eq!(&r[3], &f[3], "LogSynflow computed with 7 classes");
        assert_eq!(&r[2], &b[2]);
    }
    assert!(b.iter().zip(&f).any(|(b, f)| b[3] != f[3]), "LogSynflow depends on the classes");
    // A sampled table gets a report (without the whole-space ceilings).
    let rep = dir.join("rep");
    let o = simnas(&["--data", data.to_str().unwrap(), "score", "report", "--table", p(&base), "--out", p(&rep)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(rep.join("base_report.md")).unwrap();
    assert!(md.contains("Spearman") && !md.contains("Proxy ceiling"), "{md}");
    // Another seed fixes nothing the same way.
    let out = dir.join("other.csv");
    let mut args = vec!["--data", data.to_str().unwrap(), "score", "--all", "--sample", "6", "--seed", "5"];
    args.extend(tiny);
    args.extend(["--reuse", base.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let o = simnas(&args);
    assert!(!o.status.success() && stderr(&o).contains("nothing to copy"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"));
}
