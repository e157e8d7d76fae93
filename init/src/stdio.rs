//! The fd exchange with the shim (`SCM_RIGHTS` with a one-byte tag), the
//! init's JSON message, and pseudo-terminals.

use lxcri_init_spec::{ConsoleSize, PTY_TAG};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::sys::stat::Mode;
use serde::Serialize;
use std::io::{IoSlice, IoSliceMut, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("send {what} to the shim: {source}")]
    Send { what: &'static str, source: Errno },
    #[error("receive stdio fds from the shim: {0}")]
    Receive(#[source] Errno),
    #[error("receive stdio fds from the shim: {0}")]
    Protocol(String),
    #[error("write message to the shim: {0}")]
    Message(#[source] std::io::Error),
    #[error("open pty: {what}: {source}")]
    Pty { what: &'static str, source: Errno },
    #[error("bind the terminal onto /dev/console: {0}")]
    Console(#[source] Errno),
}

pub type Result<T> = std::result::Result<T, StdioError>;

/// Send `msg` (an `InitMessage` or an `ExecMessage`) as one line of JSON.
pub fn send_message(sock: &mut UnixStream, msg: &impl Serialize) -> Result<()> {
    let mut line = serde_json::to_string(msg).expect("messages always serialize");
    line.push('\n');
    sock.write_all(line.as_bytes()).map_err(StdioError::Message)
}

/// Send `fds` with the one-byte `tag` in a single message.
pub fn send_fds(sock: BorrowedFd<'_>, tag: u8, fds: &[RawFd], what: &'static str) -> Result<()> {
    let data = [tag];
    let iov = [IoSlice::new(&data)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(source) => return Err(StdioError::Send { what, source }),
        }
    }
}

/// Receive exactly `count` fds sent with the one-byte `tag`. The fds are
/// close-on-exec in this process; whatever arrives is closed on error.
pub fn recv_fds(sock: BorrowedFd<'_>, tag: u8, count: usize) -> Result<Vec<OwnedFd>> {
    let mut data = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut data)];
    // Room for more fds than expected, so a wrong count is reported as such
    // rather than truncated (MSG_CTRUNC).
    let mut space = nix::cmsg_space!([RawFd; 16]);
    let (bytes, fds, truncated) = loop {
        match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for cmsg in msg.cmsgs().map_err(StdioError::Receive)? {
                    if let ControlMessageOwned::ScmRights(raw) = cmsg {
                        // SAFETY: the kernel just installed these fds for us.
                        fds.extend(
                            raw.into_iter()
                                .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
                        );
                    }
                }
                break (msg.bytes, fds, msg.flags.contains(MsgFlags::MSG_CTRUNC));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(StdioError::Receive(e)),
        }
    };
    if bytes == 0 {
        return Err(StdioError::Protocol("the shim closed the socket".into()));
    }
    if data[0] != tag {
        return Err(StdioError::Protocol(format!(
            "tag byte {:?}, expected {:?}",
            data[0] as char, tag as char
        )));
    }
    if truncated || fds.len() != count {
        return Err(StdioError::Protocol(format!(
            "got {} fds, expected {count}",
            fds.len()
        )));
    }
    Ok(fds)
}

/// A pseudo-terminal pair from the devpts instance behind `/dev/ptmx` of
/// the current mount namespace.
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

/// Opens a pty in the current mount namespace, sends the master to the shim
/// on `sock` and returns the slave for the process. The master is closed
/// here: a copy kept by us would hold the pty open after the process exits
/// and hide the hangup from the shim.
pub fn hand_over_new_pty(sock: BorrowedFd<'_>, size: Option<ConsoleSize>) -> Result<OwnedFd> {
    let pty = open_pty(size)?;
    send_fds(sock, PTY_TAG, &[pty.master.as_raw_fd()], "pty master")?;
    Ok(pty.slave)
}

/// The container's terminal at `/dev/console` too, as runc's
/// `setupConsole` binds it there (the init made the mount point while
/// `/dev` was writable: [`crate::dev_setup::console_mount_point`]). The
/// bind is of the slave the process gets, through its fd, not a
/// `/dev/pts/N` name the container could have replaced.
pub fn bind_console(slave: &OwnedFd) -> Result<()> {
    let source = format!("/proc/self/fd/{}", slave.as_raw_fd());
    nix::mount::mount(
        Some(source.as_str()),
        "/dev/console",
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(StdioError::Console)
}

/// Open a pty in the current mount namespace (so the slave belongs to the
/// container's devpts) and apply the initial size.
pub fn open_pty(size: Option<ConsoleSize>) -> Result<Pty> {
    let pty_err = |what| move |source| StdioError::Pty { what, source };
    let master = open(
        "/dev/ptmx",
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(pty_err("open /dev/ptmx"))?;
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one int.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })
        .map_err(pty_err("unlockpt"))?;
    let slave = open_peer(&master).map_err(pty_err("open pty slave"))?;
    if let Some(size) = size {
        set_size(&master, size).map_err(pty_err("set console size"))?;
    }
    Ok(Pty { master, slave })
}

/// TIOCGPTPEER opens the slave through the master itself, so a path in the
/// container's /dev cannot redirect it; older kernels fall back to the
/// /dev/pts/N name.
fn open_peer(master: &OwnedFd) -> nix::Result<OwnedFd> {
    let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    match Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, flags) }) {
        // SAFETY: the kernel returned a fresh fd.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno::EINVAL | Errno::ENOTTY) => {
            let mut n: libc::c_uint = 0;
            // SAFETY: TIOCGPTN writes one unsigned int.
            Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
            open(
                format!("/dev/pts/{n}").as_str(),
                OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
        }
        Err(e) => Err(e),
    }
}

fn set_size(master: &OwnedFd, size: ConsoleSize) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one struct winsize.
    Errno::result(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lxcri_init_spec::InitMessage;
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;

    #[test]
    fn three_fds_cross_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        let files: Vec<std::fs::File> = (0..3).map(|_| tempfile::tempfile().unwrap()).collect();
        let raw: Vec<RawFd> = files.iter().map(|f| f.as_raw_fd()).collect();
        send_fds(a.as_fd(), b'S', &raw, "stdio").unwrap();
        let got = recv_fds(b.as_fd(), b'S', 3).unwrap();
        assert_eq!(got.len(), 3);
        // The received fds are the same open files: write through one, read the original.
        let mut out = std::fs::File::from(got.into_iter().nth(1).unwrap());
        out.write_all(b"hello").unwrap();
        let mut orig = &files[1];
        orig.rewind().unwrap();
        let mut s = String::new();
        orig.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
        // MSG_CMSG_CLOEXEC: nothing leaks into the OCI process by accident.
        let flags = nix::fcntl::fcntl(out.as_fd(), nix::fcntl::FcntlArg::F_GETFD).unwrap();
        assert_ne!(flags & libc::FD_CLOEXEC, 0);
    }

    #[test]
    fn wrong_tag_or_count_is_rejected() {
        let (a, b) = UnixStream::pair().unwrap();
        let f = tempfile::tempfile().unwrap();
        send_fds(a.as_fd(), b'T', &[f.as_raw_fd()], "pty").unwrap();
        let err = recv_fds(b.as_fd(), b'S', 3).unwrap_err();
        assert!(err.to_string().contains("tag byte 'T'"), "{err}");

        send_fds(a.as_fd(), b'S', &[f.as_raw_fd()], "stdio").unwrap();
        let err = recv_fds(b.as_fd(), b'S', 3).unwrap_err();
        assert!(err.to_string().contains("got 1 fds, expected 3"), "{err}");

        drop(a);
        let err = recv_fds(b.as_fd(), b'S', 3).unwrap_err();
        assert!(err.to_string().contains("closed"), "{err}");
    }

    #[test]
    fn message_is_one_line() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        send_message(&mut a, &InitMessage::Ready).unwrap();
        drop(a);
        let mut s = String::new();
        b.read_to_string(&mut s).unwrap();
        assert_eq!(s, "{\"kind\":\"ready\"}\n");
    }

    #[test]
    fn pty_has_the_requested_size() {
        // Needs a devpts at /dev/pts; skip quietly where the sandbox lacks one.
        let Ok(pty) = open_pty(Some(ConsoleSize {
            rows: 24,
            cols: 100,
        })) else {
            return;
        };
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one struct winsize.
        unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (24, 100));
    }
}
