//! The shim's side of the rendezvous with `lxcri-init` (protocol in
//! `lxcri_init_spec`): accept the init's connection, read its verdict,
//! learn its host pid from `SO_PEERCRED`, hand over stdio fds or receive
//! the pty master.

use std::io::{IoSlice, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lxcri_init_spec::{InitMessage, CGROUPNS_TAG, CONTINUE_TAG, PTY_TAG, STDIO_TAG};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{
    getsockopt, recvmsg, sendmsg, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
};

#[derive(Debug, thiserror::Error)]
pub enum InitChannelError {
    #[error("listening on init socket {path}: {source}")]
    Bind {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the container's init did not report within {0:?}")]
    Timeout(Duration),
    #[error("the container stopped before its init reported")]
    ContainerGone,
    #[error("talking to the container's init: {0}")]
    Io(#[from] std::io::Error),
    #[error("talking to the container's init: {0}")]
    Sys(#[from] nix::Error),
    #[error("the container's init sent a malformed message {line:?}: {source}")]
    Protocol {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the container's init sent {0} where a pty master was expected")]
    NoPty(String),
    /// The init checked the container and refused: the message is the
    /// user-facing cause (missing executable, bad cwd...).
    #[error("{0}")]
    InitFailed(String),
}

pub type Result<T> = std::result::Result<T, InitChannelError>;

/// The listening socket, bound before the container starts.
#[derive(Debug)]
pub struct InitListener {
    listener: UnixListener,
}

impl InitListener {
    pub fn bind(path: &Path) -> Result<Self> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|source| InitChannelError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self { listener })
    }

    /// Waits for the init to connect and report `Mounted` (then
    /// [`InitConnection::resume`] waits for `Ready`) or, from an init
    /// that does not pause, `Ready`, first handing it
    /// this process's cgroup namespace with `cgroupns` (see
    /// `InitSpec::join_runtime_cgroupns`). `still_starting` is polled
    /// between waits so a container that died is noticed at once instead
    /// of after the whole timeout.
    pub fn accept_ready(
        &self,
        timeout: Duration,
        still_starting: &dyn Fn() -> bool,
        cgroupns: bool,
    ) -> Result<InitConnection> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(100u16)) {
                Ok(n) if n > 0 => break,
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            if Instant::now() >= deadline {
                return Err(InitChannelError::Timeout(timeout));
            }
            if !still_starting() {
                // One last look: the init may have connected and then exited.
                let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
                if poll(&mut fds, PollTimeout::ZERO)? == 0 {
                    return Err(InitChannelError::ContainerGone);
                }
                break;
            }
        }
        let (stream, _) = self.listener.accept()?;
        stream.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        ))?;
        let creds = getsockopt(&stream, sockopt::PeerCredentials)?;
        let mut conn = InitConnection {
            stream,
            pid: creds.pid(),
            paused: false,
        };
        if cgroupns {
            conn.send_cgroupns()?;
        }
        match conn.read_message()? {
            InitMessage::Mounted => {
                conn.paused = true;
                Ok(conn)
            }
            InitMessage::Ready => Ok(conn),
            InitMessage::Failed { message } => Err(InitChannelError::InitFailed(message)),
        }
    }
}

/// An accepted connection from a container's init.
#[derive(Debug)]
pub struct InitConnection {
    stream: UnixStream,
    pid: i32,
    /// The init reported `Mounted` and waits for [`Self::resume`].
    paused: bool,
}

impl InitConnection {
    /// The init's pid in the shim's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets an init that reported `Mounted` finish its setup and waits
    /// (up to `timeout`) for `Ready`.
    pub fn resume(&mut self, timeout: Duration) -> Result<()> {
        if !self.paused {
            return Ok(());
        }
        self.paused = false;
        (&self.stream).write_all(&[CONTINUE_TAG])?;
        self.stream.set_read_timeout(Some(timeout))?;
        match self.read_message() {
            Ok(InitMessage::Ready) => Ok(()),
            Ok(InitMessage::Failed { message }) => Err(InitChannelError::InitFailed(message)),
            Ok(InitMessage::Mounted) => Err(InitChannelError::InitFailed(
                "the init reported its mounts twice".into(),
            )),
            Err(e) => Err(e),
        }
    }

    fn read_message(&mut self) -> Result<InitMessage> {
        let line = read_line(&mut self.stream)?;
        if line.is_empty() {
            return Err(InitChannelError::ContainerGone);
        }
        let text = String::from_utf8_lossy(&line).into_owned();
        serde_json::from_str(&text)
            .map_err(|source| InitChannelError::Protocol { line: text, source })
    }

    /// Hands the init the OCI process's stdin, stdout and stderr.
    pub fn send_stdio(&self, stdin: RawFd, stdout: RawFd, stderr: RawFd) -> Result<()> {
        self.send_fds(STDIO_TAG, &[stdin, stdout, stderr])
    }

    fn send_cgroupns(&self) -> Result<()> {
        let ns = std::fs::File::open("/proc/self/ns/cgroup")?;
        self.send_fds(CGROUPNS_TAG, &[ns.as_raw_fd()])
    }

    /// `fds` with one `tag` byte (`SCM_RIGHTS`).
    fn send_fds(&self, tag: u8, fds: &[RawFd]) -> Result<()> {
        let tag = [tag];
        let iov = [IoSlice::new(&tag)];
        let cmsg = [ControlMessage::ScmRights(fds)];
        sendmsg::<()>(
            self.stream.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            None,
        )?;
        Ok(())
    }

    /// Receives the pty master the init opened for a terminal process.
    pub fn recv_pty(&self) -> Result<OwnedFd> {
        recv_pty_from(self.stream.as_raw_fd())
    }
}

/// Reads one line (without its newline; at most 64 KiB) byte by byte, so
/// nothing after it is consumed: an fd the peer sends next stays for
/// `recvmsg`. Empty at end of stream.
pub fn read_line(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        let n = stream.read(&mut byte)?;
        if n == 0 || byte[0] == b'\n' || line.len() > 64 * 1024 {
            return Ok(line);
        }
        line.push(byte[0]);
    }
}

/// Receives one fd tagged [`PTY_TAG`] on a unix socket (also used for
/// exec helpers' console sockets).
pub fn recv_pty_from(sock: RawFd) -> Result<OwnedFd> {
    let mut tag = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut tag)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let mut received = None;
    for c in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            for fd in fds {
                // SAFETY: the kernel installed these fds for us.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                if received.is_none() {
                    received = Some(owned);
                }
            }
        }
    }
    let bytes = msg.bytes;
    match received {
        Some(fd) if bytes == 1 && tag[0] == PTY_TAG => Ok(fd),
        Some(_) => Err(InitChannelError::NoPty(format!("tag {:?}", tag[0] as char))),
        None if bytes == 0 => Err(InitChannelError::NoPty("end of stream".into())),
        None => Err(InitChannelError::NoPty("a message without fds".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_then_pty_handoff() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.sock");
        let listener = InitListener::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(b"{\"kind\":\"ready\"}\n").unwrap();
            let f = std::fs::File::open("/dev/null").unwrap();
            let fds = [f.as_raw_fd()];
            let iov = [IoSlice::new(&[PTY_TAG])];
            sendmsg::<()>(
                s.as_raw_fd(),
                &iov,
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )
            .unwrap();
        });
        let conn = listener
            .accept_ready(Duration::from_secs(5), &|| true, false)
            .unwrap();
        assert_eq!(conn.pid(), std::process::id() as i32);
        let pty = conn.recv_pty().unwrap();
        assert!(pty.as_raw_fd() > 2);
        client.join().unwrap();
    }

    /// One fd and its tag byte, as the init receives them.
    fn recv_one(s: &UnixStream) -> (u8, OwnedFd) {
        let mut tag = [0u8; 1];
        let mut iov = [IoSliceMut::new(&mut tag)];
        let mut space = nix::cmsg_space!([RawFd; 3]);
        let msg =
            recvmsg::<()>(s.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("an fd");
        (tag[0], unsafe { OwnedFd::from_raw_fd(fd) })
    }

    #[test]
    fn the_cgroup_namespace_goes_before_ready() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.sock");
        let listener = InitListener::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            // The init joins it, then reports.
            let (tag, ns) = recv_one(&s);
            s.write_all(b"{\"kind\":\"ready\"}\n").unwrap();
            let (stdio_tag, _) = recv_one(&s);
            let ino = std::fs::File::from(ns).metadata().unwrap().ino();
            (tag, ino, stdio_tag)
        });
        let conn = listener
            .accept_ready(Duration::from_secs(5), &|| true, true)
            .unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let fd = null.as_raw_fd();
        conn.send_stdio(fd, fd, fd).unwrap();
        let (tag, ino, stdio_tag) = client.join().unwrap();
        assert_eq!((tag, stdio_tag), (CGROUPNS_TAG, STDIO_TAG));
        let own = std::fs::metadata("/proc/self/ns/cgroup").unwrap().ino();
        assert_eq!(ino, own, "the shim's own cgroup namespace");
    }

    #[test]
    fn a_paused_init_is_let_go_once_and_its_verdict_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.sock");
        let listener = InitListener::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(b"{\"kind\":\"mounted\"}\n").unwrap();
            let mut go = [0u8; 1];
            s.read_exact(&mut go).unwrap();
            s.write_all(b"{\"kind\":\"failed\",\"message\":\"masked path /x: EPERM\"}\n")
                .unwrap();
            go[0]
        });
        let mut conn = listener
            .accept_ready(Duration::from_secs(5), &|| true, false)
            .unwrap();
        let err = conn.resume(Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.to_string(), "masked path /x: EPERM");
        assert_eq!(client.join().unwrap(), CONTINUE_TAG);
        // Once only: a second resume has nothing to do.
        conn.resume(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn failure_message_is_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.sock");
        let listener = InitListener::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut s = UnixStream::connect(&p).unwrap();
            s.write_all(b"{\"kind\":\"failed\",\"message\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n")
                .unwrap();
        });
        let err = listener
            .accept_ready(Duration::from_secs(5), &|| true, false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"nope\": executable file not found in $PATH"
        );
        client.join().unwrap();
    }

    #[test]
    fn dead_container_is_noticed_before_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let listener = InitListener::bind(&dir.path().join("s")).unwrap();
        let start = Instant::now();
        let err = listener
            .accept_ready(Duration::from_secs(30), &|| false, false)
            .unwrap_err();
        assert!(matches!(err, InitChannelError::ContainerGone));
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}
