//! Signals: blocked (and read from a signalfd) while the init waits for
//! `start`, forwarded by the exec helper to its process.
//!
//! Every catchable, asynchronous signal is blocked and read from a
//! signalfd. Blocking (rather than handlers) is also what lets PID 1 of a
//! pid namespace receive them at all: the kernel drops signals for which an
//! init has the default disposition, but never blocked ones.

use nix::errno::Errno;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd};

/// Raised by faults in this very process: blocking them would turn a crash
/// of the init into an unexplained kill, so they keep their default.
const SYNCHRONOUS: [Signal; 7] = [
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGABRT,
];

/// Highest signal number on Linux (SIGRTMAX).
const MAX_SIGNAL: i32 = 64;

pub struct Signals {
    fd: SignalFd,
}

impl Signals {
    /// Block the forwardable signals and open a signalfd for them. Call it
    /// before forking, so nothing arrives between fork and the first read.
    pub fn block() -> nix::Result<Self> {
        let mut set = SigSet::all();
        for sig in SYNCHRONOUS {
            set.remove(sig);
        }
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC)?;
        Ok(Signals { fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The next pending signal's number (blocks until there is one).
    pub fn next(&self) -> nix::Result<i32> {
        loop {
            match self.fd.read_signal() {
                Ok(Some(info)) => return Ok(info.ssi_signo as i32),
                Ok(None) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// In the forked child, before exec: an empty mask and default dispositions
/// (Rust's runtime ignores SIGPIPE, and ignored signals survive execve).
pub fn reset_for_exec() {
    reset_dispositions();
    unblock_all();
}

/// Every disposition back to its default; the mask is left as it is.
pub fn reset_dispositions() {
    for sig in 1..=MAX_SIGNAL {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            default_disposition(sig);
        }
    }
}

/// An empty signal mask: what is pending is delivered now.
pub fn unblock_all() {
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// A pending (blocked) signal whose default action ends a process, if any.
pub fn pending_terminating() -> Option<i32> {
    // SAFETY: sigpending fills the zeroed set we own.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigpending(&mut set) } != 0 {
        return None;
    }
    (1..=MAX_SIGNAL).find(|&sig| {
        // SAFETY: a valid set and signal number.
        default_terminates(sig) && unsafe { libc::sigismember(&set, sig) } == 1
    })
}

/// SIG_DFL for `sig` through the system call: glibc's wrappers refuse its
/// internal signals (32, 33) with EINVAL, and one the init inherited as
/// ignored would stay ignored in the process (LXC's chain passed 33 so).
fn default_disposition(sig: i32) {
    // The kernel's struct sigaction: handler (SIG_DFL = 0), flags,
    // restorer and mask, all zero; larger than any architecture's layout.
    let action = [0u64; 4];
    // SAFETY: rt_sigaction reads a zeroed kernel sigaction (SIG_DFL, no
    // flags, empty mask) and writes nothing (no old action asked for).
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            action.as_ptr(),
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// Does the default action of `signo` end a process? (Used before the OCI
/// process exists: such a signal then ends the container.)
pub fn default_terminates(signo: i32) -> bool {
    !matches!(
        signo,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// Forward signals to `child` until it ends (the exec helper: the process
/// is its only child).
pub fn supervise(signals: &Signals, child: Pid) -> nix::Result<WaitStatus> {
    loop {
        let signo = signals.next()?;
        if signo == libc::SIGCHLD {
            if let Some(ws) = reap(child) {
                return Ok(ws);
            }
        } else {
            // SAFETY: plain kill(2); ESRCH (already gone) is not an error here.
            unsafe { libc::kill(child.as_raw(), signo) };
        }
    }
}

/// `child`'s final status if it ended (stops and continues are not ends).
fn reap(child: Pid) -> Option<WaitStatus> {
    loop {
        match waitpid(Some(child), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(ws) if crate::status::from_wait(ws).is_some() => return Some(ws),
            Ok(_) => continue,
        }
    }
}

/// End this process the way the child ended: by the same signal, so a
/// parent's `waitpid` sees "killed by N". Returns 128 + N if the signal did
/// not end us (it only stops by default), for the caller to exit with.
pub fn die_like(signo: i32) -> i32 {
    // The process dumped core already if it was going to; we must not.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    // SAFETY: SIG_DFL installs no handler; the mask change and kill are plain syscalls.
    unsafe {
        libc::signal(signo, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, signo);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), signo);
    }
    lxcri_init_spec::exit_code_from_signal(signo) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_ends_a_process_by_default() {
        for sig in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGKILL,
            40,
        ] {
            assert!(default_terminates(sig), "{sig}");
        }
        for sig in [
            libc::SIGCHLD,
            libc::SIGWINCH,
            libc::SIGCONT,
            libc::SIGTSTP,
            libc::SIGURG,
        ] {
            assert!(!default_terminates(sig), "{sig}");
        }
    }
}
