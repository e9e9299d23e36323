//! The writer against what can be at a path: devices, a FIFO, symlinks, read-only files,
//! directories, a stray `NAME.tmp`, and concurrent writers.

use super::*;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simnas-output-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

#[test]
fn an_unrelated_file_named_out_tmp_is_never_touched() {
    let d = tmp("stray");
    let (out, stray) = (d.join("OUT"), d.join("OUT.tmp"));
    std::fs::write(&stray, b"someone else's").unwrap();
    write(&out, b"first").unwrap();
    write(&out, b"second").unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"second");
    assert_eq!(std::fs::read(&stray).unwrap(), b"someone else's");
    assert_eq!(names(&d), ["OUT", "OUT.tmp"], "no temporary file is left behind");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn concurrent_writers_of_one_path_all_succeed() {
    let d = tmp("concurrent");
    let out = d.join("record.json");
    let payload = |t: usize| format!("{{\"writer\": {t}, \"pad\": \"{}\"}}\n", "x".repeat(4096 + t)).into_bytes();
    std::thread::scope(|s| {
        for t in 0..4 {
            let (out, bytes) = (&out, payload(t));
            s.spawn(move || {
                for i in 0..50 {
                    write(out, &bytes).unwrap_or_else(|e| panic!("writer {t}, write {i}: {e}"));
                }
            });
        }
    });
    let got = std::fs::read(&out).unwrap();
    assert!((0..4).any(|t| got == payload(t)), "the file is one writer's whole content");
    assert_eq!(names(&d), ["record.json"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn dev_null_is_written_in_place_and_stays_a_device() {
    write(Path::new("/dev/null"), b"anything").unwrap();
    prepare(Path::new("/dev/null")).unwrap();
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    assert!(!replaces(Path::new("/dev/null")));
}

#[test]
fn dev_full_reports_no_space_and_stays_a_device() {
    let err = write(Path::new("/dev/full"), b"anything").unwrap_err();
    match &err {
        OutputError::Write { err: e, .. } => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{err}"),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("/dev/full"), "{err}");
    assert!(std::fs::metadata("/dev/full").unwrap().file_type().is_char_device());
}

#[test]
fn a_fifo_is_written_in_place() {
    let d = tmp("fifo");
    let fifo = d.join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    prepare(&fifo).unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    write(&fifo, b"through the pipe").unwrap();
    assert_eq!(reader.join().unwrap(), b"through the pipe");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(names(&d), ["pipe"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_symlink_to_a_file_is_replaced_at_its_target_and_survives() {
    let d = tmp("symlink");
    std::fs::create_dir_all(d.join("real")).unwrap();
    let (file, link) = (d.join("real/out.json"), d.join("link.json"));
    std::fs::write(&file, b"old").unwrap();
    std::os::unix::fs::symlink("real/out.json", &link).unwrap();
    write(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&file).unwrap(), b"new");
    // A dangling link: the file is created where it points.
    let (dangling, to) = (d.join("dangling.json"), d.join("real/later.json"));
    std::os::unix::fs::symlink(&to, &dangling).unwrap();
    write(&dangling, b"made").unwrap();
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&to).unwrap(), b"made");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_read_only_file_is_refused_and_kept() {
    let d = tmp("readonly");
    let out = d.join("out.json");
    std::fs::write(&out, b"keep me").unwrap();
    std::fs::set_permissions(&out, Permissions::from_mode(0o444)).unwrap();
    for err in [write(&out, b"new").unwrap_err(), prepare(&out).unwrap_err()] {
        assert!(matches!(err, OutputError::ReadOnly { mode: 0o444, .. }), "{err}");
        assert!(err.to_string().contains("read-only (mode 444)"), "{err}");
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    assert_eq!(names(&d), ["out.json"]);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_replaced_file_keeps_its_permission_bits() {
    let d = tmp("mode");
    let out = d.join("out.csv");
    std::fs::write(&out, b"old").unwrap();
    std::fs::set_permissions(&out, Permissions::from_mode(0o640)).unwrap();
    write(&out, b"new").unwrap();
    assert_eq!((std::fs::read(&out).unwrap(), mode(&out)), (b"new".to_vec(), 0o640));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_directory_is_refused() {
    let d = tmp("dir");
    for err in [write(&d, b"x").unwrap_err(), prepare(&d).unwrap_err()] {
        assert!(matches!(err, OutputError::IsDirectory { .. }), "{err}");
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
    let file = d.join("f");
    std::fs::write(&file, b"").unwrap();
    let err = prepare_dir(&file, &["report.md"]).unwrap_err();
    assert!(matches!(err, OutputError::NotADirectory { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn prepare_creates_parents_and_refuses_what_cannot_be_created() {
    let d = tmp("prepare");
    let deep = d.join("a/b/out.json");
    prepare(&deep).unwrap();
    assert!(d.join("a/b").is_dir() && !deep.exists());
    assert!(names(&d.join("a/b")).is_empty(), "the check leaves nothing behind");
    prepare_dir(&d.join("eval/out"), &["report.md"]).unwrap();
    assert!(d.join("eval/out").is_dir());
    // A parent that is a regular file, and places where no file can be created.
    std::fs::write(d.join("plain"), b"").unwrap();
    let err = prepare(&d.join("plain/sub/out.json")).unwrap_err();
    assert!(matches!(err, OutputError::CreateDir { .. }), "{err}");
    let err = prepare(&d.join("plain/out.json")).unwrap_err();
    assert!(matches!(err, OutputError::NotADirectory { .. }), "{err}");
    let err = prepare(Path::new("/proc/simnas-out.json")).unwrap_err();
    assert!(matches!(err, OutputError::NotWritable { .. }), "{err}");
    let err = prepare(Path::new("/proc/simnas-nope/out.json")).unwrap_err();
    assert!(matches!(err, OutputError::CreateDir { .. }), "{err}");
    let _ = std::fs::remove_dir_all(&d);
}
