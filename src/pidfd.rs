//! Process handles that survive pid reuse: `pidfd_open(2)` and the
//! `/proc/<pid>/stat` start time.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

/// Opens a pidfd for any process (not only children). Readable once the
/// process has exited.
pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative return is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends a signal through a pidfd, so it cannot hit a recycled pid.
pub fn pidfd_send_signal(fd: &OwnedFd, signal: i32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall with a valid fd and null siginfo.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `PIDFD_INFO_EXIT` (linux/pidfd.h): ask for the exit status.
const PIDFD_INFO_EXIT: u64 = 1 << 3;
/// `PIDFD_GET_INFO`: `_IOWR(0xFF, 11, struct pidfd_info)` with the first
/// published size of the struct (64 bytes, `PIDFD_INFO_SIZE_VER0`).
const PIDFD_GET_INFO: libc::c_ulong = 0xC040_FF0B;

/// `struct pidfd_info` up to `exit_code` (`PIDFD_INFO_SIZE_VER0`).
#[repr(C)]
#[derive(Default)]
struct PidfdInfo {
    mask: u64,
    cgroupid: u64,
    /// pid, tgid, ppid, then the real, effective, saved and fs uid/gid.
    ids: [u32; 11],
    exit_code: i32,
}

const _: () = assert!(std::mem::size_of::<PidfdInfo>() == 64);

/// The wait status (`code << 8`, or the signal) of the process behind
/// `fd` once it has been reaped, kept by pidfs for its pidfds (Linux
/// 6.15, `PIDFD_INFO_EXIT`; the pidfd must be open before the reap).
/// `None` while it has not been reaped, or when this kernel keeps none.
pub fn reaped_exit_status(fd: &OwnedFd) -> std::io::Result<Option<u32>> {
    use std::os::fd::AsRawFd;
    let mut info = PidfdInfo {
        mask: PIDFD_INFO_EXIT,
        ..PidfdInfo::default()
    };
    // SAFETY: the ioctl writes at most size_of::<PidfdInfo>() (the size in
    // the request number) into `info`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), PIDFD_GET_INFO, &mut info as *mut PidfdInfo) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        // Reaped, on a kernel that keeps no exit status (ESRCH), or a
        // kernel without PIDFD_GET_INFO (before 6.13).
        return match e.raw_os_error() {
            Some(libc::ESRCH | libc::ENOTTY | libc::EINVAL) => Ok(None),
            _ => Err(e),
        };
    }
    Ok((info.mask & PIDFD_INFO_EXIT != 0).then_some(info.exit_code as u32))
}

/// Whether this kernel keeps a reaped process's exit status for its
/// pidfds (Linux 6.15): tried on a child of our own that waits until its
/// pidfd is open, is killed, and is reaped here.
pub fn keeps_exit_status() -> bool {
    // SAFETY: the child only calls pause and _exit, which are
    // async-signal-safe, so forking a multi-threaded process is sound.
    let child = unsafe { libc::fork() };
    if child == 0 {
        loop {
            // SAFETY: see above; SIGKILL ends it.
            unsafe { libc::pause() };
        }
    }
    if child < 0 {
        return false;
    }
    let fd = pidfd_open(child);
    // SAFETY: signals and reaps our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    matches!(fd, Ok(fd) if matches!(reaped_exit_status(&fd), Ok(Some(s)) if s == libc::SIGKILL as u32))
}

/// Field 22 of `/proc/<pid>/stat`: start time in clock ticks since boot.
pub fn start_time(pid: i32) -> std::io::Result<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat)
        .map(|(_, started)| started)
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("malformed /proc/{pid}/stat"),
            )
        })
}

/// Fields 3 on of a `/proc/<pid>/stat` line. The command name (field 2)
/// may contain spaces and parentheses, so fields are counted from the last
/// `)`.
fn fields_after_comm(stat: &str) -> Option<std::str::SplitWhitespace<'_>> {
    Some(stat[stat.rfind(')')? + 1..].split_whitespace())
}

/// The state letter (field 3) and start time (field 22) of a
/// `/proc/<pid>/stat` line.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let mut fields = fields_after_comm(stat)?;
    let state = fields.next()?.chars().next()?;
    // `fields` now starts at field 4; start time is field 22.
    let started = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, started))
}

/// The state letter (field 3) and flags (field 9, the kernel's `PF_*`) of
/// a `/proc/<pid>/stat` line.
pub fn parse_state_and_flags(stat: &str) -> Option<(char, u64)> {
    let mut fields = fields_after_comm(stat)?;
    let state = fields.next()?.chars().next()?;
    let flags = fields.nth(9 - 4)?.parse().ok()?;
    Some((state, flags))
}

/// Whether a `/proc/<pid>/stat` state letter is an exited process's: a
/// zombie (not reaped yet) or dead.
pub fn is_exited_state(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Whether `pid` under `proc_root` (normally `/proc`) is alive, not a
/// zombie (an exited init waiting to be reaped has stopped), and still the
/// process that started at `start` (otherwise the pid was reused).
pub fn is_live_process(proc_root: &Path, pid: i32, start: Option<u64>) -> bool {
    let Ok(stat) = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) else {
        return false;
    };
    match parse_stat(&stat) {
        Some((state, started)) => !is_exited_state(state) && start.map_or(true, |t| t == started),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_skips_tricky_comm() {
        let stat =
            "123 (a) b (c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100";
        assert_eq!(parse_stat(stat), Some(('S', 98765)));
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn a_reaped_childs_exit_status_is_kept_on_kernels_that_keep_it() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap();
        let fd = pidfd_open(child.id() as i32).unwrap();
        child.wait().unwrap();
        let kept = reaped_exit_status(&fd).unwrap();
        // The probe agrees with what a child of the test shows.
        if keeps_exit_status() {
            assert_eq!(kept, Some(3 << 8));
        } else {
            assert_eq!(kept, None);
        }
        // A live process has none.
        let me = pidfd_open(std::process::id() as i32).unwrap();
        assert_eq!(reaped_exit_status(&me).unwrap(), None);
    }

    #[test]
    fn own_process_is_alive_and_matches() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(is_live_process(Path::new("/proc"), me, Some(st)));
        assert!(!is_live_process(Path::new("/proc"), me, Some(st + 1)));
        let fd = pidfd_open(me).unwrap();
        pidfd_send_signal(&fd, 0).unwrap();
    }
}
