//! Process handles that survive pid reuse: `pidfd_open(2)` and the
//! `/proc/<pid>/stat` start time.

use std::fs;
use std::os::fd::{FromRawFd, OwnedFd};

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
    parse_start_time(&stat).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("malformed /proc/{pid}/stat"),
        )
    })
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // comm (field 2) may contain spaces and parentheses: skip to the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // After comm, field 3 is the first; start time is field 22.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether `pid` is alive and still the process that started at `start`.
pub fn is_same_process(pid: i32, start: Option<u64>) -> bool {
    match (start_time(pid), start) {
        (Ok(now), Some(then)) => now == then,
        (Ok(_), None) => true,
        (Err(_), _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_skips_tricky_comm() {
        let stat =
            "123 (a) b (c) S 1 123 123 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 100";
        assert_eq!(parse_start_time(stat), Some(98765));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn own_process_is_alive_and_matches() {
        let me = std::process::id() as i32;
        let st = start_time(me).unwrap();
        assert!(is_same_process(me, Some(st)));
        assert!(!is_same_process(me, Some(st + 1)));
        let fd = pidfd_open(me).unwrap();
        pidfd_send_signal(&fd, 0).unwrap();
    }
}
