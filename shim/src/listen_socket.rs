//! The unix socket this shim serves containerd on (`-socket`), removed by
//! the shim itself when it shuts down.
//!
//! The shim library removes it only after its server has stopped, finding
//! it through the `address` file in the bundle; containerd deletes the
//! bundle as soon as Shutdown has answered, so on a busy node that removal
//! loses the race and the socket stays in `/run/containerd/s`. containerd's
//! own shims remove theirs before answering Shutdown; so does this one.
//! A shim that was killed leaves its socket behind; the `delete` action
//! containerd runs after it removes it then, unless a live shim listens
//! on it (a pod's shim serves its other containers on the same socket); a
//! listener that is a dying shim counts as dead.
//! containerd may fail to run that action for a shim killed in the middle
//! of a call (it deletes the bundle, the action's working directory, at
//! the same time); the socket then stays until a shim starts at the same
//! address, as with containerd's own shims.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenSocket(Option<PathBuf>);

impl ListenSocket {
    /// From the `-socket` address (`unix:///run/containerd/s/<hash>`). An
    /// abstract socket (`unix://@name`) or any other scheme has no file.
    pub fn from_address(address: &str) -> Self {
        let path = address.strip_prefix("unix://").unwrap_or(address);
        Self(path.starts_with('/').then(|| PathBuf::from(path)))
    }

    /// The socket a shim of `grouping` (the pod's sandbox id, or the
    /// container's own id) serves on for the containerd at `address`.
    pub fn of(address: &str, namespace: &str, grouping: &str) -> Self {
        Self::from_address(&containerd_shim::socket_address(
            address, namespace, grouping,
        ))
    }

    /// Removes the socket file unless a live process listens on it. A shim
    /// killed a moment ago may still answer: its listener closes only when
    /// its last thread has exited, after containerd saw its connection go.
    /// A listener that does not answer at once (its queue full) is alive.
    pub fn remove_if_dead(&self) {
        use nix::sys::socket::{connect, getsockopt, socket, sockopt, UnixAddr};
        use nix::sys::socket::{AddressFamily, SockFlag, SockType};
        let Some(path) = &self.0 else { return };
        // The file this looked at: a new shim may bind the path meanwhile.
        let Some(seen) = identity(path) else { return };
        let Ok(addr) = UnixAddr::new(path.as_path()) else {
            return;
        };
        let Ok(fd) = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        ) else {
            return;
        };
        let dead = match connect(fd.as_raw_fd(), &addr) {
            Err(nix::Error::ECONNREFUSED) => true,
            Ok(()) => getsockopt(&fd, sockopt::PeerCredentials).is_ok_and(|c| is_dying(c.pid())),
            Err(_) => false,
        };
        if dead && identity(path) == Some(seen) {
            self.remove();
        }
    }

    /// Removes the socket file. Anything else at the path (a file put there
    /// by someone else) is left alone; a socket already gone is no error.
    pub fn remove(&self) {
        let Some(path) = &self.0 else { return };
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if !meta.file_type().is_socket() {
            tracing::warn!(path = %path.display(), "the shim's socket path is not a socket; left alone");
            return;
        }
        if let Err(e) = std::fs::remove_file(path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "removing the shim's socket");
            }
        }
    }
}

/// The device and inode of the file at `path`.
fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Whether process `pid` is gone or on its way out: a zombie, exiting
/// (`PF_EXITING` in its flags), or with a SIGKILL pending. A pid this
/// process cannot see (0: another pid namespace's) or read counts as alive.
fn is_dying(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let read = |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}"));
    match (read("stat"), read("status")) {
        (Ok(stat), Ok(status)) => stat_says_dying(&stat) || status_has_sigkill_pending(&status),
        (Err(e), _) | (_, Err(e)) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// `PF_EXITING` (include/linux/sched.h).
const PF_EXITING: u64 = 0x4;

/// From `/proc/<pid>/stat`: a zombie or dead, or exiting (`PF_EXITING`).
fn stat_says_dying(stat: &str) -> bool {
    lxcri::pidfd::parse_state_and_flags(stat).is_some_and(|(state, flags)| {
        lxcri::pidfd::is_exited_state(state) || flags & PF_EXITING != 0
    })
}

/// From `/proc/<pid>/status`: SIGKILL in the thread's or the process's
/// pending signals (`SigPnd`, `ShdPnd`, hex masks; bit n-1 is signal n).
fn status_has_sigkill_pending(status: &str) -> bool {
    let sigkill = 1u64 << (libc::SIGKILL - 1);
    status.lines().any(|l| {
        let mask = l
            .strip_prefix("SigPnd:")
            .or_else(|| l.strip_prefix("ShdPnd:"));
        mask.and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & sigkill != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;
    use std::path::Path;

    #[test]
    fn address_forms() {
        let s = ListenSocket::from_address("unix:///run/containerd/s/ab12");
        assert_eq!(s.0.as_deref(), Some(Path::new("/run/containerd/s/ab12")));
        assert_eq!(
            ListenSocket::from_address("/run/x.sock").0.as_deref(),
            Some(Path::new("/run/x.sock"))
        );
        assert_eq!(
            ListenSocket::from_address("unix://@abstract").0.as_deref(),
            None
        );
        assert_eq!(
            ListenSocket::from_address("vsock://3:1024").0.as_deref(),
            None
        );
        assert_eq!(ListenSocket::from_address("").0.as_deref(), None);
    }

    #[test]
    fn removes_its_socket_only() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let _listener = UnixListener::bind(&sock).unwrap();
        let s = ListenSocket::from_address(&format!("unix://{}", sock.display()));
        s.remove();
        assert!(!sock.exists());
        // Gone already: nothing to do, no panic.
        s.remove();

        let file = dir.path().join("f");
        ListenSocket::from_address(file.to_str().unwrap()).remove_if_dead();
        std::fs::write(&file, "not a socket").unwrap();
        ListenSocket::from_address(file.to_str().unwrap()).remove();
        assert!(file.exists());
    }

    #[test]
    fn a_dead_socket_goes_a_live_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let _listener = UnixListener::bind(&live).unwrap();
        ListenSocket::from_address(live.to_str().unwrap()).remove_if_dead();
        assert!(live.exists());

        let dead = dir.path().join("dead");
        drop(UnixListener::bind(&dead).unwrap());
        assert!(dead.exists());
        // Another test's fork may hold a copy of the listener until its
        // child execs: the socket is dead once that copy is gone too.
        let dead_socket = ListenSocket::from_address(dead.to_str().unwrap());
        let began = std::time::Instant::now();
        while dead.exists() && began.elapsed() < std::time::Duration::from_secs(5) {
            dead_socket.remove_if_dead();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!dead.exists());
    }

    #[test]
    fn a_process_on_its_way_out_is_dying() {
        let live = "42 (containerd-shim) S 1 42 42 0 -1 4194560 10 0 0 0";
        assert!(!stat_says_dying(live));
        assert!(stat_says_dying("42 (a) b) Z 1 42 42 0 -1 4194560 10"));
        // PF_EXITING in the flags.
        assert!(stat_says_dying("42 (x) S 1 42 42 0 -1 4194564 10"));
        assert!(!stat_says_dying("garbage"));
        let status = |shd: &str| format!("Name:\tx\nSigPnd:\t0000000000000000\nShdPnd:\t{shd}\n");
        assert!(!status_has_sigkill_pending(&status("0000000000000000")));
        assert!(status_has_sigkill_pending(&status("0000000000000100")));
        assert!(!status_has_sigkill_pending(&status("0000000000004000")));
        // This process lives; a pid that is gone is dying; pid 0 (the
        // listener in a pid namespace this one cannot see) is not.
        assert!(!is_dying(std::process::id() as i32));
        assert!(!is_dying(0));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(is_dying(pid));
    }

    #[test]
    fn containerds_socket_for_a_grouping() {
        // containerd 1.6: /run/containerd/s/sha256("<address>/<namespace>/<id>").
        let s = ListenSocket::of("/run/containerd/containerd.sock", "default", "x");
        let name = s.0.unwrap();
        assert_eq!(name.parent(), Some(Path::new("/run/containerd/s")));
        assert_eq!(name.file_name().unwrap().len(), 64);
    }
}
