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
