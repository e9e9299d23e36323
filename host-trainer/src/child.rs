//! Child processes that end with simnas (the QEMU board): none outlives it, however it ends.
//!
//! * On Linux each child asks the kernel for `SIGKILL` when simnas dies
//!   (`prctl(PR_SET_PDEATHSIG)`); this covers even `kill -9` of simnas. The kernel ties it
//!   to the thread that started the child, so a child is started from a thread that lives
//!   as long as the child should (the main thread in `simnas`).
//! * Once a child runs, `SIGTERM`, `SIGHUP` and `SIGINT` (a supervisor stopping simnas,
//!   Python's `subprocess.terminate()`, a closed terminal, Ctrl-C) are caught, unless
//!   something else already handles or ignores them (`nohup`, the Ctrl-C handler of
//!   `score --all`): the handler kills and reaps every child and exits with status
//!   128 + the signal number.
//! * An [`OwnedChild`] is killed and reaped when dropped (an ordinary end, or an error).
//! * Descriptors a child must not hold (our end of a board's pty) are marked
//!   close-on-exec ([`keep_from_children`]): a child holding them would keep the line up.
//!
//! The process-control `unsafe` code of the crate is all here.

use std::io;
use std::ops::{Deref, DerefMut};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};

/// Running children, by pid (0: a free slot). Atomics, so the signal handler may read them.
static CHILDREN: [AtomicI32; 16] = [const { AtomicI32::new(0) }; 16];

/// A child process that ends with simnas.
#[derive(Debug)]
pub struct OwnedChild {
    child: Child,
    slot: Option<usize>,
}

/// Start `cmd` as a child that ends with simnas.
pub fn spawn(cmd: &mut Command) -> io::Result<OwnedChild> {
    #[cfg(unix)]
    install_handlers();
    #[cfg(target_os = "linux")]
    die_with_parent(cmd);
    let child = cmd.spawn()?;
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let slot = CHILDREN.iter().position(|s| s.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst).is_ok());
    Ok(OwnedChild { child, slot })
}

impl Deref for OwnedChild {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for OwnedChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        if let Some(slot) = self.slot {
            CHILDREN[slot].store(0, Ordering::SeqCst);
        }
        let _ = self.child.wait();
    }
}

/// Mark `fd` close-on-exec, so no child process inherits it.
#[cfg(unix)]
pub fn keep_from_children(fd: &impl std::os::fd::AsRawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor the caller owns, setting only its close-on-exec flag.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ask the kernel to `SIGKILL` the child when the thread starting it ends.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and calls only prctl and
    // getppid, which are async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // simnas ended between the fork and the prctl: nobody would stop this child.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Install [`on_signal`] for each signal whose disposition is still the default.
#[cfg(unix)]
fn install_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
            // SAFETY: sigaction with a zeroed, then filled, sigaction struct we own; the
            // handler only calls async-signal-safe functions and reads atomics.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
                    continue;
                }
                let mut new: libc::sigaction = std::mem::zeroed();
                new.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut new.sa_mask);
                libc::sigaction(sig, &new, std::ptr::null_mut());
            }
        }
    });
}

/// Kill and reap every child, then exit with 128 + `sig` (the shell's convention for a
/// process ended by a signal).
#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int) {
    for slot in &CHILDREN {
        let pid = slot.swap(0, Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill, waitpid and _exit are async-signal-safe; `pid` is a child of
            // ours that has not been reaped (its slot is cleared before it is).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
    // SAFETY: as above.
    unsafe { libc::_exit(128 + sig) }
}
