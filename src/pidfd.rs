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

/// The state letter (field 3) and start time (field 22) of a
/// `/proc/<pid>/stat` line. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // `fields` now starts at field 4; start time is field 22.
    let started = fields.nth(22 - 4)?.parse().ok()?;
    Some((state, started))
}

/// Whether `pid` under `proc_root` (normally `/proc`) is alive, not a
/// zombie (an exited init waiting to be reaped has stopped), and still the
/// process that started at `start` (otherwise the pid was reused).
pub fn is_live_process(proc_root: &Path, pid: i32, start: Option<u64>) -> bool {
    let Ok(stat) = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) else {
        return false;
    };
    match parse_stat(&stat) {
        Some((state, started)) => {
            !matches!(state, 'Z' | 'X' | 'x') && start.map_or(true, |t| t == started)
        }
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
    fn own_process_is_alive_and_matches() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(is_live_process(Path::new("/proc"), me, Some(st)));
        assert!(!is_live_process(Path::new("/proc"), me, Some(st + 1)));
        let fd = pidfd_open(me).unwrap();
        pidfd_send_signal(&fd, 0).unwrap();
    }
}
