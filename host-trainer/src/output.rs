//! Writing the files simnas produces: one writer for every command, and the check a command
//! runs on its output paths before it starts measuring.
//!
//! [`fn@write`] never destroys what is at the path:
//!
//! * nothing there, or a regular file: the bytes go to a new file in the same directory
//!   (`.NAME.PID.COUNTER.NANOS.tmp`, opened with `create_new`, so no existing file is ever
//!   opened, `NAME.tmp` included), are synced to disk, and the new file is renamed over the
//!   path. A reader sees the old content or the new, never a torn file; two processes
//!   writing the same path each rename their own file and both succeed (the last rename
//!   wins). A replaced file keeps its permission bits.
//! * a symlink: followed; its target is written by these rules and the link stays.
//! * something that is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO, a terminal):
//!   opened for writing and written in place, with no rename; a failed write (`/dev/full`:
//!   no space left on device) is an error.
//! * a regular file without its owner's write bit (mode `0444`): refused, also for root,
//!   which the operating system would let through.
//! * a directory: refused.
//!
//! [`prepare`] (a file) and [`prepare_dir`] (a directory of files) apply the same rules
//! before a command does its work: missing parent directories are created, and a path
//! [`fn@write`] would refuse, or a directory where no file can be created (read-only file
//! system, no permission), is an error at once instead of after the last measurement.

use plotters::coord::Shift;
use plotters::prelude::{DrawingArea, IntoDrawingArea as _, SVGBackend};
use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an output path cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The path is a directory.
    #[error("{path} is a directory: name a file inside it")]
    IsDirectory {
        /// The path.
        path: PathBuf,
    },
    /// An output directory's path is something else.
    #[error("{path} exists and is not a directory: choose a directory for the outputs")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },
    /// A regular file without its owner's write permission.
    #[error("{path} is read-only (mode {mode:03o}): make it writable (chmod u+w) or choose another path")]
    ReadOnly {
        /// The file (symlinks followed).
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A missing directory could not be created.
    #[error("cannot create the directory {path}: {err}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// No new file can be created in the directory.
    #[error("cannot create files in {dir}: {err}")]
    NotWritable {
        /// The directory.
        dir: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The path could not be inspected (a symlink loop, a permission problem).
    #[error("{path}: {err}")]
    Inspect {
        /// The path.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// Writing failed (disk full, I/O error); a regular file at the path is unchanged.
    #[error("writing {path}: {err}")]
    Write {
        /// The file written (symlinks followed).
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
}

/// Where the bytes of a write go.
enum Target {
    /// A new regular file, or one replacing a regular file (with these permissions).
    Replace(PathBuf, Option<Permissions>),
    /// Not a regular file: written in place.
    InPlace(PathBuf),
}

/// Write `bytes` to `path` by the rules in the module docs.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    match target(path)? {
        Target::Replace(dest, perms) => replace(&dest, bytes, perms),
        Target::InPlace(dest) => {
            let written = OpenOptions::new().write(true).open(&dest).and_then(|mut f| {
                f.write_all(bytes)?;
                f.flush()
            });
            written.map_err(|err| OutputError::Write { path: dest, err })
        }
    }
}

/// What plotters reports when it cannot draw into an SVG.
pub type DrawError = plotters::drawing::DrawingAreaErrorKind<std::io::Error>;

/// Why an SVG plot was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// plotters could not lay out or draw the figure.
    #[error("drawing the figure: {0}")]
    Draw(#[from] DrawError),
    /// The drawn figure could not be written.
    #[error(transparent)]
    Write(#[from] OutputError),
}

/// Draw an SVG with plotters into memory, then [`fn@write`] it to `path` (so a plot is never
/// left half-drawn, and devices and symlinks are treated like every other output). `draw`'s
/// error type is the caller's ([`PlotError`] for plotters' errors).
pub fn write_svg<F, E>(path: &Path, size: (u32, u32), draw: F) -> Result<(), E>
where
    F: FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), E>,
    E: From<OutputError>,
{
    let mut svg = String::new();
    draw(SVGBackend::with_string(&mut svg, size).into_drawing_area())?;
    Ok(write(path, svg.as_bytes())?)
}

/// Whether a second [`fn@write`] to `path` replaces the first (a regular file, or nothing
/// yet), rather than adding to a stream (a device, a FIFO, a terminal).
pub fn replaces(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| m.is_file())
}

/// Check, before any work, that [`fn@write`] to `path` can succeed: create its missing parent
/// directories, refuse what [`fn@write`] refuses, and make sure a file can be created in its
/// directory. A device is opened for writing (nothing written); a FIFO is not opened.
pub fn prepare(path: &Path) -> Result<(), OutputError> {
    create_dirs(parent(path))?;
    match target(path)? {
        Target::Replace(dest, _) => {
            let dir = parent(&dest);
            create_dirs(dir)?;
            let (tmp, file) = create_temp(dir, &dest)?;
            drop(file);
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Target::InPlace(dest) => {
            if is_fifo(&dest) {
                return Ok(());
            }
            OpenOptions::new().write(true).open(&dest).map(drop).map_err(|err| OutputError::Write { path: dest, err })
        }
    }
}

/// [`prepare`] for an output directory and the `files` a command writes into it: create
/// the directory, check it is one and a file can be created in it, and refuse any of the
/// files [`fn@write`] would refuse.
pub fn prepare_dir(dir: &Path, files: &[&str]) -> Result<(), OutputError> {
    create_dirs(dir)?;
    let (tmp, file) = create_temp(dir, &dir.join("check"))?;
    drop(file);
    let _ = std::fs::remove_file(tmp);
    for f in files {
        prepare(&dir.join(f))?;
    }
    Ok(())
}

/// The directory `path` is in (`.` for a bare name).
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn create_dirs(dir: &Path) -> Result<(), OutputError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(OutputError::NotADirectory { path: dir.to_path_buf() }),
        Err(_) => std::fs::create_dir_all(dir).map_err(|err| OutputError::CreateDir { path: dir.to_path_buf(), err }),
    }
}

/// What a write to `path` does, or why it is refused.
fn target(path: &Path) -> Result<Target, OutputError> {
    // `metadata` follows symlinks, `/proc` ones (`/dev/stdout`) included.
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(OutputError::IsDirectory { path: path.to_path_buf() }),
        Ok(m) if m.is_file() => {
            let dest = follow(path)?;
            if let Some(mode) = read_only(&m) {
                return Err(OutputError::ReadOnly { path: dest, mode });
            }
            Ok(Target::Replace(dest, Some(m.permissions())))
        }
        Ok(_) => Ok(Target::InPlace(path.to_path_buf())),
        // Nothing there (or a dangling symlink: the file is created where it points).
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dest = follow(path)?;
            if dest.file_name().is_none() {
                return Err(OutputError::IsDirectory { path: dest });
            }
            Ok(Target::Replace(dest, None))
        }
        Err(err) => Err(OutputError::Inspect { path: path.to_path_buf(), err }),
    }
}

/// `path` with symlinks in its last component followed, so a rename replaces the file a
/// link points to and not the link.
fn follow(path: &Path) -> Result<PathBuf, OutputError> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = std::fs::read_link(&p).map_err(|err| OutputError::Inspect { path: p.clone(), err })?;
                p = if to.is_relative() { parent(&p).join(to) } else { to };
            }
            _ => return Ok(p),
        }
    }
    Err(OutputError::Inspect {
        path: path.to_path_buf(),
        err: std::io::Error::other("too many levels of symbolic links"),
    })
}

#[cfg(unix)]
fn read_only(m: &Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = m.permissions().mode() & 0o7777;
    (mode & 0o200 == 0).then_some(mode)
}

#[cfg(not(unix))]
fn read_only(m: &Metadata) -> Option<u32> {
    m.permissions().readonly().then_some(0o444)
}

#[cfg(unix)]
fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[cfg(not(unix))]
fn is_fifo(_: &Path) -> bool {
    false
}

/// A new file in `dir` whose name no other writer (thread or process) uses.
fn create_temp(dir: &Path, dest: &Path) -> Result<(PathBuf, File), OutputError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    // A short prefix of the target's name, so the name stays within the file system's limit.
    let stem: String = dest.file_name().map(|n| n.to_string_lossy().chars().take(64).collect()).unwrap_or_default();
    let mut last = None;
    for _ in 0..64 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut name = OsString::from(".");
        name.push(&stem);
        name.push(format!(".{}.{n}.{nanos:08x}.tmp", std::process::id()));
        let tmp = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(err) => return Err(OutputError::NotWritable { dir: dir.to_path_buf(), err }),
        }
    }
    let err = last.unwrap_or_else(|| std::io::Error::other("no unused temporary name"));
    Err(OutputError::NotWritable { dir: dir.to_path_buf(), err })
}

/// Temporary file, sync, rename over `dest`; the temporary file is removed on failure.
fn replace(dest: &Path, bytes: &[u8], perms: Option<Permissions>) -> Result<(), OutputError> {
    let dir = parent(dest);
    let (tmp, mut f) = create_temp(dir, dest)?;
    let done = (|| {
        f.write_all(bytes)?;
        if let Some(p) = perms {
            f.set_permissions(p)?;
        }
        // On disk before the rename makes it visible: a crash leaves the old file or the
        // new one, never a torn one.
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    drop(f);
    if let Err(err) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(OutputError::Write { path: dest.to_path_buf(), err });
    }
    // The rename itself on disk (best effort: not every platform can sync a directory).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests;
