//! A child process held in a user namespace, made new (`unshare`) or
//! joined (`setns`), while the caller reads or writes its `/proc` files
//! (`uid_map`, `gid_map`, `ns/user`); let go and reaped on drop. The shim
//! is multi-threaded: the child only makes async-signal-safe calls.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::unistd::{pipe2, read, Pid};

/// How the child enters its user namespace.
#[derive(Clone, Copy)]
pub enum Enter<'a> {
    /// A new one (`unshare(CLONE_NEWUSER)`), without mappings yet.
    New,
    /// The one this fd names (`setns`).
    Join(BorrowedFd<'a>),
}

pub struct HeldChild {
    pid: Pid,
    /// Closing it lets the child exit.
    release: Option<OwnedFd>,
}

impl HeldChild {
    /// Forks the child and waits until it is in the namespace; `Err` names
    /// the step that failed.
    pub fn spawn(enter: Enter<'_>) -> Result<Self, (&'static str, Errno)> {
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| ("pipe", e))?;
        let (done_r, done_w) = pipe2(OFlag::O_CLOEXEC).map_err(|e| ("pipe", e))?;
        // SAFETY: the child only calls async-signal-safe functions (close,
        // unshare or setns, write, read, _exit) before it exits.
        let pid = match unsafe { libc::fork() } {
            -1 => return Err(("fork", Errno::last())),
            0 => unsafe {
                // Its copy of the parent's ends would keep its read from
                // ever seeing the parent let go.
                libc::close(done_w.as_raw_fd());
                libc::close(ready_r.as_raw_fd());
                let rc = match enter {
                    Enter::New => libc::unshare(libc::CLONE_NEWUSER),
                    Enter::Join(fd) => libc::setns(fd.as_raw_fd(), libc::CLONE_NEWUSER),
                };
                let ok = u8::from(rc == 0);
                libc::write(ready_w.as_raw_fd(), (&ok as *const u8).cast(), 1);
                let mut b = 0u8;
                libc::read(done_r.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
                libc::_exit(0);
            },
            pid => Pid::from_raw(pid),
        };
        drop((ready_w, done_r));
        let child = HeldChild {
            pid,
            release: Some(done_w),
        };
        let mut ok = [0u8];
        let n = read(&ready_r, &mut ok).map_err(|e| ("wait for the child", e))?;
        if n != 1 || ok[0] != 1 {
            let what = match enter {
                Enter::New => "unshare(CLONE_NEWUSER) in the child",
                Enter::Join(_) => "setns(CLONE_NEWUSER) in the child",
            };
            return Err((what, Errno::EPERM));
        }
        Ok(child)
    }

    /// `/proc/PID/<file>` of the child.
    pub fn proc_path(&self, file: &str) -> String {
        format!("/proc/{}/{file}", self.pid)
    }
}

impl Drop for HeldChild {
    fn drop(&mut self) {
        drop(self.release.take());
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}
