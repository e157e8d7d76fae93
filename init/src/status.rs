//! Exit codes and wait-status encoding shared by both modes.

use nix::sys::wait::WaitStatus;
use std::time::{SystemTime, UNIX_EPOCH};

/// The init failed before it could run the OCI process (PID 1 mode only:
/// the contract's `InitMessage::Failed` is followed by this code, and after
/// start a `startContainer` hook, the process setup or `execve` failing):
/// runc's init exits 255 when it fails (1.2 and later,
/// libcontainer/init_linux.go `Init`; 1.1 exited 1).
pub const EXIT_INIT_FAILED: i32 = 255;
/// Wrong command line.
pub const EXIT_USAGE: i32 = 2;
/// Setting up an exec process failed before `execve` (namespaces, cgroups,
/// rlimits, identity, capabilities, seccomp, AppArmor, cwd, stdio). Kept
/// apart from 126/127 so "the runtime failed" is never mistaken for "the
/// command was not found" (the old lxcri's ambiguity), as docker/podman do.
pub const EXIT_SETUP_FAILED: i32 = 125;
/// The executable exists but could not be executed (shell convention).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// The executable was not found (shell convention).
pub const EXIT_NOT_FOUND: i32 = 127;

/// The status containerd expects: the exit code, or 128 + the signal number.
/// `None` for wait states that are not an end (stopped, continued).
pub fn from_wait(ws: WaitStatus) -> Option<u32> {
    match ws {
        WaitStatus::Exited(_, code) => Some(code as u32 & 0xff),
        WaitStatus::Signaled(_, sig, _) => Some(lxcri_init_spec::exit_code_from_signal(sig as i32)),
        _ => None,
    }
}

/// Wall-clock time in Unix nanoseconds (what containerd's `exited_at` wants).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn exit_codes_and_signal_deaths() {
        let pid = Pid::from_raw(42);
        assert_eq!(from_wait(WaitStatus::Exited(pid, 0)), Some(0));
        assert_eq!(from_wait(WaitStatus::Exited(pid, 3)), Some(3));
        assert_eq!(
            from_wait(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            Some(137)
        );
        assert_eq!(
            from_wait(WaitStatus::Signaled(pid, Signal::SIGTERM, true)),
            Some(143)
        );
        assert_eq!(from_wait(WaitStatus::Stopped(pid, Signal::SIGSTOP)), None);
        assert_eq!(from_wait(WaitStatus::Continued(pid)), None);
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ns() > 1_577_836_800_000_000_000);
    }
}
