//! The container's program looked up as its process will run it, before
//! the create completes. runc's init takes the process's identity and
//! capabilities and then runs Go's `LookPath` (standard_init_linux.go,
//! after `finalizeNamespace`), so a program that user may not run, a cwd
//! neither root nor it may enter, or an identity the kernel refuses fail
//! the create, and PATH's next entry is taken past one it may not run
//! (lxcri ran the first and exited 255 at the start); so do a scheduler,
//! I/O priority or memory policy the kernel refuses. PID 1 here stays
//! root until the start (it still execs hooks and waits for the shim), so
//! a child takes the identity, looks, reports on a pipe and exits.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, pipe2, ForkResult};

use super::fds::open_fds_from;
use super::{sys, Command, SetupError};

/// What the child writes first: the path found, or why there is none; a
/// NUL ends a whole report (no path or message has one).
const FOUND: u8 = b'+';
const FAILED: u8 = b'-';
const END: u8 = 0;

impl Command {
    /// Looks the program up as the process's user and keeps the path that
    /// user finds for the `execve`; fails as runc's create does.
    pub fn look_up_before_start(&mut self) -> Result<(), SetupError> {
        let (read, write) = pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
        // SAFETY: PID 1 is single-threaded here; the child only makes
        // syscalls, writes to the pipe and exits.
        match unsafe { fork() }.map_err(sys("fork the lookup as the process's user"))? {
            ForkResult::Child => {
                drop(read);
                // Nothing of PID 1's (the shim's socket, the runtime
                // directory, the start FIFO) goes along into the identity.
                let report =
                    keep_only(write.as_raw_fd()).and_then(|()| self.look_up_as_the_process_user());
                let (tag, body, code) = match report {
                    Ok(found) => (FOUND, found.into_bytes(), 0),
                    Err(e) => (FAILED, e.to_string().into_bytes(), 1),
                };
                let report = [&[tag][..], &body, &[END]].concat();
                // SAFETY: write(2) and _exit(2) on the pipe we hold.
                unsafe {
                    libc::write(write.as_raw_fd(), report.as_ptr().cast(), report.len());
                    libc::_exit(code);
                }
            }
            ForkResult::Parent { child } => {
                drop(write);
                let mut report = Vec::new();
                let read_result = std::fs::File::from(read).read_to_end(&mut report);
                // A PID 1 that inherited SIGCHLD ignored has no child to
                // wait for (ECHILD): the report, whole, says it all.
                let exited = match waitpid(child, None) {
                    Ok(WaitStatus::Exited(_, code)) => code == 0 || code == 1,
                    Err(Errno::ECHILD) => true,
                    Ok(_) | Err(_) => false,
                };
                read_result.map_err(|source| SetupError::Io {
                    what: "read the lookup as the process's user".into(),
                    source,
                })?;
                self.take_report(&report, exited)
            }
        }
    }

    /// `exited`: the child ended by itself (not killed part way).
    fn take_report(&mut self, report: &[u8], exited: bool) -> Result<(), SetupError> {
        let whole = report
            .strip_suffix(&[END])
            .filter(|_| exited)
            .and_then(|r| r.split_first());
        match whole {
            Some((&FOUND, path)) => {
                self.exe = CString::new(path).map_err(|_| SetupError::Sys {
                    what: "the path the lookup found".into(),
                    source: Errno::EINVAL,
                })?;
                Ok(())
            }
            Some((&FAILED, message)) => Err(SetupError::Reported(
                String::from_utf8_lossy(message).into_owned(),
            )),
            _ => Err(SetupError::Sys {
                what: "the lookup as the process's user ended without a whole report".into(),
                source: Errno::EIO,
            }),
        }
    }

    /// In the child: the affinity, rlimits and scheduling the process gets
    /// (so a policy, class or memory policy the kernel refuses fails the
    /// create, where runc's init sets them), its identity, cwd and
    /// capabilities (its stdio is
    /// the shim's, not yet here: left alone), then the lookup. All of it
    /// ends with the child.
    fn look_up_as_the_process_user(&self) -> Result<CString, SetupError> {
        self.set_affinity_and_rlimits(false)?;
        self.set_scheduling()?;
        self.become_the_process_user(false)?;
        self.look_up_as_the_process()
    }
}

/// Closes every fd but 0, 1, 2 and `keep` (above 2).
fn keep_only(keep: RawFd) -> Result<(), SetupError> {
    let close_range = |first: RawFd, last: RawFd| {
        // SAFETY: closes fds this child inherited and does not use.
        first > last || unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } == 0
    };
    if close_range(3, keep - 1) && close_range(keep + 1, RawFd::MAX) {
        return Ok(());
    }
    // Kernels before 5.9: walk /proc/self/fd.
    for fd in open_fds_from(3)?.into_iter().filter(|&fd| fd != keep) {
        // SAFETY: closing fds this child inherited and does not use (the
        // listing's own is gone by now: EBADF, ignored).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lxcri_init_spec::ProcessSpec;
    use std::path::Path;

    fn command() -> Command {
        let spec = ProcessSpec {
            args: vec!["sh".into()],
            cwd: "/".into(),
            ..Default::default()
        };
        Command::new(&spec, Path::new("/bin/sh")).unwrap()
    }

    #[test]
    fn a_report_gives_the_path_or_the_childs_words() {
        let mut c = command();
        c.take_report(b"+/usr/bin/sh\0", true).unwrap();
        assert_eq!(c.exe.as_bytes(), b"/usr/bin/sh");
        let err = c
            .take_report(b"-exec: \"sh\": permission denied\0", true)
            .unwrap_err();
        assert_eq!(err.to_string(), "exec: \"sh\": permission denied");
        // A child killed before, while or after it wrote.
        for (report, exited) in [
            (&b""[..], true),
            (b"+/usr/bi", true),
            (b"+/usr/bin/sh\0", false),
        ] {
            let err = c.take_report(report, exited).unwrap_err();
            assert!(
                err.to_string().contains("whole report"),
                "{report:?}: {err}"
            );
        }
        assert_eq!(c.exe.as_bytes(), b"/usr/bin/sh");
    }
}
