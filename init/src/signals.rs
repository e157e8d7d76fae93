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
        Self::block_set(&set)
    }

    /// Block the fault signals too and open a signalfd for them: while
    /// the init only waits for `start`, one sent with kill(2) must reach
    /// it (to PID 1 the kernel drops it otherwise). A real fault still
    /// ends the process: the kernel unblocks a fault's signal to deliver it.
    pub fn block_faults() -> nix::Result<Self> {
        let mut set = SigSet::empty();
        for sig in SYNCHRONOUS {
            set.add(sig);
        }
        Self::block_set(&set)
    }

    fn block_set(set: &SigSet) -> nix::Result<Self> {
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(set), None)?;
        let fd = SignalFd::with_flags(set, SfdFlags::SFD_CLOEXEC)?;
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

/// The signals pending (blocked) for this thread or the process.
fn pending() -> Vec<i32> {
    // SAFETY: sigpending fills the zeroed set we own.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    if unsafe { libc::sigpending(&mut set) } != 0 {
        return Vec::new();
    }
    (1..=MAX_SIGNAL)
        // SAFETY: a valid set and signal number.
        .filter(|&sig| unsafe { libc::sigismember(&set, sig) } == 1)
        .collect()
}

/// A pending signal that ends the container before its process runs,
/// and the exit status it gives it (see [`ends_before_start`]).
pub fn pending_ending(pid1: bool) -> Option<(i32, u32)> {
    pending()
        .into_iter()
        .find_map(|sig| ends_before_start(sig, pid1).map(|code| (sig, code)))
}

/// Drops the pending signals that do not end a created container
/// ([`ends_before_start`]): unblocked, they would reach the process (or
/// end an init that is not PID 1), where runc's Go init took them in.
/// Setting a signal's disposition to SIG_IGN discards it (signal(7)).
pub fn drop_pending_others(pid1: bool) {
    for sig in pending() {
        if ends_before_start(sig, pid1).is_none() {
            set_disposition(sig, IGNORE);
            set_disposition(sig, DEFAULT);
        }
    }
}

/// The kernel's handler values SIG_DFL and SIG_IGN.
const DEFAULT: u64 = 0;
const IGNORE: u64 = 1;

/// SIG_DFL for `sig` through the system call: glibc's wrappers refuse its
/// internal signals (32, 33) with EINVAL, and one the init inherited as
/// ignored would stay ignored in the process (LXC's chain passed 33 so).
fn default_disposition(sig: i32) {
    set_disposition(sig, DEFAULT);
}

/// `handler` (SIG_DFL or SIG_IGN) for `sig`, through the system call.
fn set_disposition(sig: i32, handler: u64) {
    // The kernel's struct sigaction: handler, flags, restorer and mask,
    // the rest zero; larger than any architecture's layout.
    let action = [handler, 0, 0, 0];
    // SAFETY: rt_sigaction reads a kernel sigaction with a SIG_DFL or
    // SIG_IGN handler, no flags and an empty mask, and writes nothing (no
    // old action asked for).
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

/// Is this process PID 1 of its PID namespace? (Not where the container
/// shares another's.)
pub fn is_pid1() -> bool {
    nix::unistd::getpid().as_raw() == 1
}

/// Signals for which Go's runtime ends a program that did not ask for
/// them, by raising the signal again (`_SigKill` in its signal table).
const GO_KILL: [i32; 3] = [libc::SIGHUP, libc::SIGINT, libc::SIGTERM];

/// Signals for which it crashes, exit status 2 (`_SigThrow`; the fault
/// signals too when sent with kill(2)).
const GO_THROW: [i32; 9] = [
    libc::SIGQUIT,
    libc::SIGILL,
    libc::SIGTRAP,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGSEGV,
    libc::SIGSTKFLT,
    libc::SIGSYS,
];

/// Go's exit status when raising a `_SigKill` signal did not end it.
const GO_EXIT: u32 = 2;

/// The exit status signal `signo` gives a created container, one whose
/// process has not run yet, if it ends it: what it gives runc's, whose
/// process is `runc init` until then, a Go program. `pid1`: the init is
/// PID 1 of its PID namespace, where the signal Go raises at itself is
/// dropped, so it exits 2 instead. Any other signal leaves it waiting
/// (runc 1.1.5 and 1.3.6 measured alike: SIGUSR1, SIGALRM, real-time
/// signals...).
pub fn ends_before_start(signo: i32, pid1: bool) -> Option<u32> {
    if GO_THROW.contains(&signo) || (pid1 && GO_KILL.contains(&signo)) {
        Some(GO_EXIT)
    } else if GO_KILL.contains(&signo) {
        Some(lxcri_init_spec::exit_code_from_signal(signo))
    } else {
        None
    }
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

    /// This test thread's own mask holds the signals, which raise() sends
    /// to this thread; only SIGUSR2's and SIGHUP's dispositions change.
    #[test]
    fn pending_signals_that_do_not_end_a_created_container_are_dropped() {
        let mut set = SigSet::empty();
        set.add(Signal::SIGUSR2);
        set.add(Signal::SIGHUP);
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None).unwrap();
        nix::sys::signal::raise(Signal::SIGUSR2).unwrap();
        nix::sys::signal::raise(Signal::SIGHUP).unwrap();
        drop_pending_others(true);
        assert_eq!(pending_ending(true), Some((libc::SIGHUP, 2)));
        let now = pending();
        let (usr2, hup) = (now.contains(&libc::SIGUSR2), now.contains(&libc::SIGHUP));
        // Discard SIGHUP too before unblocking.
        set_disposition(libc::SIGHUP, IGNORE);
        set_disposition(libc::SIGHUP, DEFAULT);
        nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None).unwrap();
        assert_eq!((usr2, hup), (false, true));
    }

    /// Measured with `runc create` then `runc kill ID SIG` (1.1.5, 1.3.6).
    #[test]
    fn what_ends_a_created_container_as_on_runc() {
        for (sig, pid1, code) in [
            (libc::SIGTERM, true, Some(2)),
            (libc::SIGINT, true, Some(2)),
            (libc::SIGHUP, true, Some(2)),
            (libc::SIGQUIT, true, Some(2)),
            (libc::SIGSEGV, true, Some(2)),
            (libc::SIGABRT, true, Some(2)),
            (libc::SIGSYS, true, Some(2)),
            (libc::SIGSTKFLT, true, Some(2)),
            (libc::SIGUSR1, true, None),
            (libc::SIGALRM, true, None),
            (libc::SIGPIPE, true, None),
            (libc::SIGXCPU, true, None),
            (40, true, None),
            (libc::SIGCHLD, true, None),
            (libc::SIGTERM, false, Some(143)),
            (libc::SIGINT, false, Some(130)),
            (libc::SIGHUP, false, Some(129)),
            (libc::SIGQUIT, false, Some(2)),
            (libc::SIGSEGV, false, Some(2)),
            (libc::SIGUSR1, false, None),
            (40, false, None),
        ] {
            assert_eq!(ends_before_start(sig, pid1), code, "{sig} pid1={pid1}");
        }
    }
}
