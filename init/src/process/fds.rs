//! The process's stdio and the fds it inherits: set up from what the
//! shim sent, handed to the process's user, `/dev/null` reopened inside,
//! everything else close-on-exec.

use nix::errno::Errno;
use nix::unistd::{Gid, Uid};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::{sys, SetupError};

/// Where the process's stdin/stdout/stderr come from.
pub enum Stdio {
    /// Keep this process's fds 0, 1 and 2 (the exec helper without a tty).
    Inherit,
    /// stdin, stdout, stderr received from the shim.
    Fds(Vec<OwnedFd>),
    /// A pty slave: becomes the controlling terminal and fds 0, 1 and 2.
    Terminal(OwnedFd),
}

/// runc's `fixStdioPermissions` (libcontainer/init_linux.go): the
/// process's stdio (the shim's pipes, a pty) becomes its user's, so that a
/// non-root process can open it again by path: `/dev/stdout`,
/// `/proc/self/fd/1`, a log file linked there (nginx's). Only the owner
/// changes. `/dev/null` and stdio the user owns already stay as they are,
/// and so does stdio whose owner or group the user namespace does not map
/// (EPERM, EINVAL) or on a read-only file system (EROFS).
pub(super) fn give_stdio_to(uid: Uid) -> Result<(), SetupError> {
    let null = nix::sys::stat::stat("/dev/null").map_err(sys("stat /dev/null"))?;
    for (fd, st) in open_stdio()? {
        if st.st_uid == uid.as_raw() || st.st_rdev == null.st_rdev {
            continue;
        }
        match nix::unistd::fchown(fd, Some(uid), Some(Gid::from_raw(st.st_gid))) {
            Ok(()) | Err(Errno::EPERM | Errno::EINVAL | Errno::EROFS) => {}
            Err(e) => {
                let n = fd.as_raw_fd();
                return Err(sys(format!("chown stdio fd {n} to uid {uid}"))(e));
            }
        }
    }
    Ok(())
}

/// runc's `reOpenDevNull` (libcontainer/rootfs_linux.go), for the
/// container's first process: stdio that is the host's `/dev/null` (a
/// CRI container without stdin, `ctr run --null-io`) becomes the
/// container's own, opened read-write as runc opens it. A container without
/// `/dev/null` fails, as on runc. Pipes, the usual stdio, open nothing.
pub(super) fn reopen_dev_null() -> Result<(), SetupError> {
    let devices: Vec<_> = open_stdio()?
        .into_iter()
        .filter(|(_, st)| st.st_mode & libc::S_IFMT == libc::S_IFCHR)
        .collect();
    if devices.is_empty() {
        return Ok(());
    }
    let null = nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(sys("open the container's /dev/null"))?;
    let rdev = nix::sys::stat::fstat(&null)
        .map_err(sys("fstat /dev/null"))?
        .st_rdev;
    for (fd, st) in devices {
        if st.st_rdev == rdev {
            dup_onto(null.as_raw_fd(), fd.as_raw_fd())?;
        }
    }
    Ok(())
}

/// Fds 0 to 2 that are open, with their `fstat`.
fn open_stdio() -> Result<Vec<(BorrowedFd<'static>, nix::sys::stat::FileStat)>, SetupError> {
    let mut open = Vec::with_capacity(3);
    for n in 0..=2 {
        // SAFETY: the process's stdio, which the setup replaces only with
        // dup2 (the fd numbers stay open); a closed fd fails fstat with
        // EBADF.
        let fd = unsafe { BorrowedFd::borrow_raw(n) };
        match nix::sys::stat::fstat(fd) {
            Ok(st) => open.push((fd, st)),
            Err(Errno::EBADF) => {}
            Err(e) => return Err(sys(format!("fstat stdio fd {n}"))(e)),
        }
    }
    Ok(open)
}

pub(super) fn setup_stdio(stdio: Stdio) -> Result<(), SetupError> {
    match stdio {
        Stdio::Inherit => Ok(()),
        Stdio::Fds(fds) => {
            // Move every source above 2 first, so dup2 onto 0..2 cannot
            // clobber a source that happens to sit there already.
            let mut high = Vec::with_capacity(3);
            for fd in &fds {
                // SAFETY: F_DUPFD_CLOEXEC returns a new fd or -1.
                let new =
                    Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })
                        .map_err(sys("duplicate stdio fd"))?;
                high.push(new);
            }
            for (target, &fd) in high.iter().enumerate() {
                dup_onto(fd, target as RawFd)?;
            }
            Ok(())
        }
        Stdio::Terminal(slave) => {
            // SAFETY: TIOCSCTTY takes an int (0: do not steal).
            Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
                .map_err(sys("set controlling terminal"))?;
            for target in 0..3 {
                dup_onto(slave.as_raw_fd(), target)?;
            }
            Ok(())
        }
    }
}

fn dup_onto(fd: RawFd, target: RawFd) -> Result<(), SetupError> {
    // SAFETY: dup2 on fds we own; the result is not close-on-exec.
    Errno::result(unsafe { libc::dup2(fd, target) })
        .map(drop)
        .map_err(sys(format!("dup2 onto fd {target}")))
}

/// Mark every fd from `first` up close-on-exec, so nothing of the init
/// (sockets, the exit dir, signalfd) reaches the container process.
pub(super) fn cloexec_from(first: u32) -> Result<(), SetupError> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes fd flags.
    let res = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if res == 0 {
        return Ok(());
    }
    // Kernels before 5.11: walk /proc/self/fd.
    for fd in open_fds_from(first as RawFd)? {
        // SAFETY: F_SETFD on a possibly stale fd just fails with EBADF.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(())
}

/// This process's open fds from `first` up, from `/proc/self/fd` (where
/// `close_range` is missing); the listing's own is among them, closed by
/// the time they are returned.
pub(super) fn open_fds_from(first: RawFd) -> Result<Vec<RawFd>, SetupError> {
    let entries = std::fs::read_dir("/proc/self/fd").map_err(|source| SetupError::Io {
        what: "list /proc/self/fd".into(),
        source,
    })?;
    Ok(entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd >= first)
        .collect())
}
