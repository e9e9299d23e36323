//! Hostile input to the `simnas` binary: cell strings, latency tables, policy files and
//! score tables that are malformed, truncated, lying, from a newer version, or huge. Each
//! must end in a clear error naming the problem and a non-zero exit, never a panic, and
//! no file is read without a size bound. The files are made in a temporary directory from
//! the shipped artifacts (mutated copies) or written here.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use simnas_shared::{Arch, ArchCode, Op};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn simnas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simnas")).args(args).output().expect("run simnas")
}

/// A refusal: non-zero exit, an error message saying `what`, and never a panic.
#[track_caller]
fn assert_refused(out: &Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exit status {:?}; stderr: {err}", out.status);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(what), "expected {what:?} in: {err}");
}

/// Success or a clean refusal, never a panic or a signal.
#[track_caller]
fn assert_no_panic(out: &Output, case: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{case}: status {:?}: {err}", out.status);
    assert!(!err.contains("panicked"), "{case}: {err}");
}

/// A fresh temporary directory for one test.
fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simnas-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn hostile_cell_strings() {
    let long = "|none~0|".repeat(12_000);
    let cases = [
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~9|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~99999999999999999999|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~-1|",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|+|none~0|",
        "|nör_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|~0|+|~0|~1|+|~0|~1|~2|",
        "||+||||+||||",
        "+++",
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2",
        "\u{202e}|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        long.as_str(),
    ];
    for bad in cases {
        assert_refused(&simnas(&["probe", "--arch", bad]), "--arch");
    }
}

/// An arch-keyed latency table with `rows` cells (codes 0..rows), column `lat`.
fn latency_csv(rows: usize, value: impl Fn(usize) -> String) -> String {
    let mut s = String::from("arch,lat\n");
    for c in 0..rows {
        let arch = Arch::from_code(ArchCode::new(c as u16).unwrap());
        s.push_str(&format!("{arch},{}\n", value(c)));
    }
    s
}

#[test]
fn hostile_latency_tables() {
    let dir = tmp("latency");
    let skip = Arch::uniform(Op::SkipConnect).to_string();
    let probe_table = |file: &Path, column: &str, arch: &str| {
        simnas(&["probe", "--device", &format!("table:{}#{column}", p(file)), "--arch", arch])
    };
    let write = |name: &str, text: &str| {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        f
    };
    let first = Arch::from_code(ArchCode::new(0).unwrap()).to_string();

    // A good one works: the tests below fail for the reason they name.
    let good = write("good.csv", &latency_csv(10, |c| format!("{}.5", c + 1)));
    let out = probe_table(&good, "lat", &first);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    assert_refused(&probe_table(&good, "latency_ms", &first), "no column \"latency_ms\"");
    let f = write("nokey.csv", "cell,lat\nx,1.0\n");
    assert_refused(&probe_table(&f, "lat", &first), "index");
    let f = write("nan.csv", &latency_csv(10, |c| if c == 3 { "NaN".into() } else { "1.0".into() }));
    assert_refused(&probe_table(&f, "lat", &first), "line 5");
    let f = write("inf.csv", &latency_csv(10, |c| if c == 2 { "inf".into() } else { "1.0".into() }));
    assert_refused(&probe_table(&f, "lat", &first), "line 4");
    let f = write("neg.csv", &latency_csv(10, |c| if c == 7 { "-1".into() } else { "1.0".into() }));
    assert_refused(&probe_table(&f, "lat", &first), "line 9");
    let f = write("text.csv", &latency_csv(10, |c| if c == 1 { "fast".into() } else { "1.0".into() }));
    assert_refused(&probe_table(&f, "lat", &first), "line 3");
    let f = write("short_row.csv", "arch,lat\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n");
    assert_refused(&probe_table(&f, "lat", &first), "line 2");
    let mut dup = latency_csv(3, |_| "1.0".into());
    dup.push_str(&latency_csv(1, |_| "2.0".into())[9..]);
    let f = write("dup.csv", &dup);
    assert_refused(&probe_table(&f, "lat", &first), "line 5");
    // Wrong row counts: too many rows, or a cell the table does not hold.
    let mut many = latency_csv(15_625, |_| "1.0".into());
    many.push_str(&format!("{skip},1.0\n"));
    let f = write("many.csv", &many);
    assert_refused(&probe_table(&f, "lat", &first), "15625");
    assert_refused(&probe_table(&good, "lat", &skip), "no measurement of cell");
    // Binary garbage.
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let garbage: Vec<u8> = (0..4096).map(|_| rng.random()).collect();
    let f = dir.join("garbage.csv");
    std::fs::write(&f, garbage).unwrap();
    assert_no_panic(&probe_table(&f, "lat", &first), "garbage");
    assert!(!probe_table(&f, "lat", &first).status.success());
    // Huge: a sparse 1 GiB file is refused by size, without reading it.
    let f = dir.join("huge.csv");
    std::fs::File::create(&f).unwrap().set_len(1 << 30).unwrap();
    let t = std::time::Instant::now();
    assert_refused(&probe_table(&f, "lat", &first), "at most");
    assert!(t.elapsed().as_secs() < 10);
    // A device that never ends is read only up to the bound.
    assert_refused(&probe_table(Path::new("/dev/zero"), "lat", &first), "refused");
    assert_refused(&probe_table(&dir.join("missing.csv"), "lat", &first), "missing.csv");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The shipped policy's header JSON and where its data starts.
fn split_policy(bytes: &[u8]) -> (String, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (String::from_utf8(bytes[8..8 + n].to_vec()).unwrap(), 8 + n)
}

/// A policy file with header `json` (padded to keep the data offsets) and `data`.
fn join_policy(json: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn hostile_policy_files() {
    let dir = tmp("policy");
    let bytes = std::fs::read(shipped("artifacts/policy/policy.safetensors")).unwrap();
    let (json, data_start) = split_policy(&bytes);
    let data = &bytes[data_start..];
    let search = |file: &Path| simnas(&["search", "--budget", "1", "--policy", p(file)]);
    let write = |name: &str, b: &[u8]| {
        let f = dir.join(name);
        std::fs::write(&f, b).unwrap();
        f
    };
    let edited = |from: &str, to: &str| {
        assert!(json.contains(from), "the shipped header holds {from}");
        join_policy(&json.replacen(from, to, 1), data)
    };

    for cut in [0, 4, 8, 9, 100, data_start - 1, data_start + 10, bytes.len() - 1] {
        let f = write(&format!("cut{cut}.safetensors"), &bytes[..cut]);
        assert_refused(&search(&f), if cut < data_start { "truncated" } else { "data offsets outside the file" });
    }
    let f = write("huge_header.safetensors", &[&u64::MAX.to_le_bytes()[..], &bytes[8..]].concat());
    assert_refused(&search(&f), "header of");
    let f = write("past_end.safetensors", &[&60_000u64.to_le_bytes()[..], &bytes[8..30_000]].concat());
    assert_refused(&search(&f), "truncated");
    let f = write("offsets.safetensors", &edited("\"data_offsets\":[0,256]", "\"data_offsets\":[0,99999999]"));
    assert_refused(&search(&f), "data offsets");
    let f = write("overlap.safetensors", &edited("\"data_offsets\":[0,256]", "\"data_offsets\":[4,256]"));
    assert_refused(&search(&f), "data offsets");
    let f = write("dtype.safetensors", &edited("\"dtype\":\"F32\"", "\"dtype\":\"F16\""));
    assert_refused(&search(&f), "not F32");
    let f = write("shape.safetensors", &edited("\"shape\":[64]", "\"shape\":[65]"));
    assert_refused(&search(&f), "dimension");
    let f = write("rank.safetensors", &edited("\"shape\":[64,315]", "\"shape\":[64,315,1,1,1]"));
    assert_refused(&search(&f), "dimensions");
    let f = write("newer.safetensors", &edited("\"format_version\":\"1\"", "\"format_version\":\"2\""));
    assert_refused(&search(&f), "newer than this reader");
    let f = write("json.safetensors", &edited("\"dtype\"", "\"dtype\"\"\""));
    assert_refused(&search(&f), "not valid JSON");
    let f = write("missing.safetensors", &edited("actor.1.bias", "actor.1.bia5"));
    assert_refused(&search(&f), "missing");
    // A NaN weight.
    let mut nan = bytes.clone();
    nan[data_start..data_start + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    assert_refused(&search(&write("nan.safetensors", &nan)), "NaN");
    // Not a policy at all, a directory, a device that never ends, a sparse 1 GiB file.
    assert_refused(&search(&write("text.safetensors", b"hello, world\n")), "policy");
    assert_refused(&search(&dir), "policy");
    assert_refused(&search(Path::new("/dev/zero")), "refused");
    let f = dir.join("sparse.safetensors");
    std::fs::File::create(&f).unwrap().set_len(1 << 30).unwrap();
    assert_refused(&search(&f), "refused");
    // Random byte changes anywhere in the header: never a panic.
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for i in 0..40 {
        let mut b = bytes.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..data_start);
            b[at] = rng.random();
        }
        let f = write("mutated.safetensors", &b);
        assert_no_panic(&search(&f), &format!("mutation {i}"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_score_tables() {
    let dir = tmp("scores");
    let csv = std::fs::read(shipped("artifacts/scores/cifar10_scores.csv")).unwrap();
    let tf16 = std::fs::read(shipped("artifacts/scores/cifar10_scores.tf16")).unwrap();
    let search = |file: &Path| simnas(&["search", "--budget", "1", "--strategy", "random", "--scores", p(file)]);
    let write = |name: &str, b: &[u8]| {
        let f = dir.join(name);
        std::fs::write(&f, b).unwrap();
        f
    };
    let text = String::from_utf8(csv.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    assert_refused(&search(&write("cut.csv", &csv[..csv.len() / 2])), "truncated");
    assert_refused(&search(&write("few.csv", lines[..101].join("\n").as_bytes())), "has 100 rows");
    let header = write("header.csv", text.replacen("naswot", "nasbot", 1).as_bytes());
    assert_refused(&search(&header), "line 1");
    let nan_line = {
        let mut f: Vec<&str> = lines[5].split(',').collect();
        f[3] = "NaN";
        f.join(",")
    };
    let nan = text.replacen(lines[5], &nan_line, 1);
    assert_refused(&search(&write("nan.csv", nan.as_bytes())), "line 6");
    let dup = text.replacen(lines[7], lines[6], 1);
    assert_refused(&search(&write("dup.csv", dup.as_bytes())), "twice");
    assert_refused(&search(&write("utf.csv", &[0xff, 0xfe, b'\n'])), "UTF-8");

    assert_refused(&search(&write("cut.tf16", &tf16[..1000])), "bytes");
    assert_refused(&search(&write("short.tf16", &tf16[..10])), "bytes");
    let mut magic = tf16.clone();
    magic[0] = b'X';
    assert_refused(&search(&write("magic.tf16", &magic)), "magic");
    let mut version = tf16.clone();
    version[4] = 2;
    assert_refused(&search(&write("version.tf16", &version)), "version");
    let mut flipped = tf16.clone();
    flipped[5000] ^= 0x10;
    assert_refused(&search(&write("flipped.tf16", &flipped)), "checksum mismatch");
    assert_refused(&search(Path::new("/dev/zero")), "refused");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Named pipes as inputs (a latency table, a score table, a policy, a controller prior) are
/// refused at once; before, `open` waited forever for a writer. The controller prior is
/// also read with the size bound (a sparse 1 GiB file is refused by size).
#[test]
fn fifos_and_oversized_priors_are_refused_at_once() {
    let d = tmp("fifo");
    let fifo = d.join("pipe");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let f = p(&fifo);
    let cases: Vec<Vec<String>> = vec![
        vec!["search".into(), "--device".into(), format!("table:{f}#ms")],
        vec!["search".into(), "--scores".into(), f.into(), "--device".into(), "qemu".into()],
        vec!["search".into(), "--strategy".into(), "controller-paper".into(), "--policy".into(), f.into()],
        vec!["search".into(), "--controller-prior".into(), f.into(), "--device".into(), "qemu".into()],
    ];
    for args in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_simnas"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            if t0.elapsed() > std::time::Duration::from_secs(20) {
                child.kill().ok();
                panic!("{args:?}: still waiting on the pipe after 20 s");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_refused(&out, "named pipe");
    }
    let sparse = d.join("prior.json");
    std::fs::File::create(&sparse).unwrap().set_len(1 << 30).unwrap();
    let out = simnas(&["search", "--controller-prior", p(&sparse), "--device", "qemu"]);
    assert_refused(&out, "refused");
    std::fs::remove_dir_all(&d).ok();
}

/// Tables that cannot be a device, or name their columns ambiguously: a one-row table and
/// one holding only dead-branch cells are refused with their coverage; a duplicated column
/// name and `index` / `arch` columns that disagree are errors; an accuracy or energy column
/// gets a warning that it is read as milliseconds.
#[test]
fn tables_too_sparse_ambiguous_or_not_latency() {
    let d = tmp("sparse");
    let lo = Arch::uniform(Op::SkipConnect).to_string();
    let one = d.join("one.csv");
    std::fs::write(&one, format!("arch,ms\n{lo},1.5\n")).unwrap();
    let out = simnas(&["search", "--device", &format!("table:{}#ms", p(&one))]);
    assert_refused(&out, "has a latency for 1 of the 9444 networks");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().count() < 5, "one message, not one line per missing cell: {err}");
    let mut dead = String::from("arch,ms\n");
    for c in ArchCode::all() {
        let a = Arch::from_code(c);
        if !a.is_executed() {
            dead += &format!("{a},2.0\n");
        }
    }
    let dead_path = d.join("dead.csv");
    std::fs::write(&dead_path, dead).unwrap();
    assert_refused(&simnas(&["search", "--device", &format!("table:{}#ms", p(&dead_path))]), "of the 9444 networks");
    let dup = d.join("dup.csv");
    std::fs::write(&dup, format!("arch,ms,ms\n{lo},1.5,2.5\n")).unwrap();
    assert_refused(&simnas(&["search", "--device", &format!("table:{}#ms", p(&dup))]), "2 columns named \"ms\"");
    let data = std::env::var_os("SIMNAS_DATA").map(PathBuf::from).unwrap_or_else(|| shipped("../shared/data"));
    let both = d.join("both.csv");
    let hi = Arch::uniform(Op::NorConv3x3).to_string();
    std::fs::write(&both, format!("index,arch,ms\n0,{lo},1.5\n1,{hi},2.5\n")).unwrap();
    let out = simnas(&["--data", p(&data), "search", "--device", &format!("table:{}#ms", p(&both))]);
    assert_refused(&out, "name different cells");
    let out = simnas(&[
        "--data",
        p(&data),
        "search",
        "--strategy",
        "random",
        "--budget",
        "2",
        "--device",
        &format!("table:{}#cifar10_test", p(&data.join("nb201_accuracy.csv"))),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a latency"), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&d).ok();
}

/// A score table whose `arch` column is shuffled against its `index` column: without a data
/// directory it is not taken as the benchmark's numbering, so an index-keyed latency table
/// cannot be read through it (before, every latency landed on the wrong cell); `score
/// report` refuses to join it to the accuracies by index.
#[cfg(feature = "train")]
#[test]
fn a_score_table_with_a_foreign_numbering_is_not_trusted() {
    let d = tmp("numbering");
    let text = std::fs::read_to_string(shipped("artifacts/scores/cifar10_scores.csv")).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    let header = lines.remove(0);
    let archs: Vec<&str> = lines.iter().map(|l| l.split(',').nth(1).unwrap()).collect();
    let mut out = format!("{header}\n");
    for (i, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split(',').collect();
        // Each index gets the next row's cell (and keeps its own scores).
        out += &format!("{},{},{}\n", f[0], archs[(i + 1) % archs.len()], f[2..].join(","));
    }
    let scores = d.join("shuffled.csv");
    std::fs::write(&scores, out).unwrap();
    let mut lat = String::from("index,ms\n");
    for i in 0..15_625 {
        lat += &format!("{i},{}\n", 1.0 + i as f64 * 1e-3);
    }
    let lat_path = d.join("lat.csv");
    std::fs::write(&lat_path, lat).unwrap();
    let empty = d.join("empty-data");
    std::fs::create_dir_all(&empty).unwrap();
    let out = simnas(&[
        "--data",
        p(&empty),
        "search",
        "--scores",
        p(&scores),
        "--device",
        &format!("table:{}#ms", p(&lat_path)),
    ]);
    assert_refused(&out, "index map");
    let data = std::env::var_os("SIMNAS_DATA").map(PathBuf::from).unwrap_or_else(|| shipped("../shared/data"));
    let out = simnas(&["--data", p(&data), "score", "report", "--table", p(&scores), "--out", p(&d.join("rep"))]);
    assert_refused(&out, "the index column does not match the arch column");
    std::fs::remove_dir_all(&d).ok();
}

/// Tables scaled far outside what a device measures (x 1e306, x 1e-321, alternating) are
/// refused naming the table and the line, not blamed on the shipped prior; a moderate
/// rescaling (x 1000) leaves every strategy's pick unchanged.
#[test]
fn extreme_scalings_are_refused_and_moderate_ones_change_nothing() {
    let d = tmp("scaled");
    let mut rows = vec![String::from("arch,ms")];
    for c in ArchCode::all() {
        let a = Arch::from_code(c);
        let ms =
            1.0 + a.count(Op::NorConv3x3) as f64 + 0.3 * a.count(Op::NorConv1x1) as f64 + (c.get() % 7) as f64 * 0.01;
        rows.push(format!("{a},{ms}"));
    }
    let scaled = |name: &str, f: &dyn Fn(usize, f64) -> f64| {
        let mut out = String::from("arch,ms\n");
        for (i, r) in rows[1..].iter().enumerate() {
            let (a, ms) = r.rsplit_once(',').unwrap();
            out += &format!("{a},{:e}\n", f(i, ms.parse().unwrap()));
        }
        let path = d.join(name);
        std::fs::write(&path, out).unwrap();
        format!("table:{}#ms", p(&path))
    };
    for (name, f) in [
        ("big.csv", &(|_, v| v * 1e306) as &dyn Fn(usize, f64) -> f64),
        ("tiny.csv", &|_, v| v * 1e-321),
        ("alternating.csv", &|i, v| if i % 2 == 0 { v * 1e300 } else { v * 1e-320 }),
    ] {
        let dev = scaled(name, f);
        let out = simnas(&["search", "--device", &dev]);
        assert_refused(&out, "the range a device measures");
        assert!(String::from_utf8_lossy(&out.stderr).contains(name), "the table is named");
    }
    let base = scaled("base.csv", &|_, v| v);
    let thousand = scaled("x1000.csv", &|_, v| v * 1000.0);
    for strategy in ["controller", "lut-probe", "random"] {
        let pick = |dev: &str| {
            let out = simnas(&["search", "--device", dev, "--strategy", strategy]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines().find(|l| l.starts_with("pick:")).unwrap().split(" | ").next().unwrap().to_string()
        };
        assert_eq!(pick(&base), pick(&thousand), "{strategy}: a pure rescaling changed the pick");
    }
    std::fs::remove_dir_all(&d).ok();
}
