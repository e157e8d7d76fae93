//! The container's program looked up as its process will run it, before
//! the create completes. runc's init takes the process's identity and
//! capabilities and then runs Go's `LookPath` (standard_init_linux.go,
//! after `finalizeNamespace`), so a program that user may not run, a cwd
//! neither root nor it may enter, or an identity the kernel refuses fail
//! the create, and PATH's next entry is taken past one it may not run
//! (lxcri ran the first and exited 255 at the start). PID 1 here stays
//! root until the start (it still execs hooks and waits for the shim), so
//! a child takes the identity, looks, reports on a pipe and exits.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult};

use super::caps::set_caps;
use super::{sys, Command, SetupError};

/// What the child wrote first: the path found, or why there is none.
const FOUND: u8 = b'+';
const FAILED: u8 = b'-';

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
                let (tag, body) = match self.look_up_as_the_process_user() {
                    Ok(found) => (FOUND, found.into_bytes()),
                    Err(e) => (FAILED, e.to_string().into_bytes()),
                };
                let report = [&[tag][..], &body].concat();
                // SAFETY: write(2) and _exit(2) on the pipe we hold.
                unsafe {
                    libc::write(write.as_raw_fd(), report.as_ptr().cast(), report.len());
                    libc::_exit(0);
                }
            }
            ForkResult::Parent { child } => {
                drop(write);
                let mut report = Vec::new();
                let read_result = std::fs::File::from(read).read_to_end(&mut report);
                waitpid(child, None).map_err(sys("wait for the lookup as the process's user"))?;
                read_result.map_err(|source| SetupError::Io {
                    what: "read the lookup as the process's user".into(),
                    source,
                })?;
                self.take_report(&report)
            }
        }
    }

    fn take_report(&mut self, report: &[u8]) -> Result<(), SetupError> {
        match report.split_first() {
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
                what: "the lookup as the process's user died without a word".into(),
                source: Errno::EIO,
            }),
        }
    }

    /// In the child: the identity, cwd and capabilities the process gets
    /// (its stdio is the shim's, not yet here: left alone), then the lookup.
    fn look_up_as_the_process_user(&self) -> Result<CString, SetupError> {
        self.set_identity_and_cwd(false)?;
        set_caps(&self.caps)?;
        self.look_up_as_the_process()
    }
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
        c.take_report(b"+/usr/bin/sh").unwrap();
        assert_eq!(c.exe.as_bytes(), b"/usr/bin/sh");
        let err = c
            .take_report(b"-exec: \"sh\": permission denied")
            .unwrap_err();
        assert_eq!(err.to_string(), "exec: \"sh\": permission denied");
        assert!(c.take_report(b"").is_err(), "a child that died");
    }
}
