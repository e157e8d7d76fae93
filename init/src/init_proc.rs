//! A created container's init, as the host-side helpers reach it: its
//! `/proc/<pid>` directory, held open, after a check that the pid still
//! names the process the shim recorded.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct InitProcError {
    pub what: String,
    pub source: Errno,
}

fn err(what: impl Into<String>) -> impl FnOnce(Errno) -> InitProcError {
    let what = what.into();
    move |source| InitProcError { what, source }
}

/// The init's `/proc/<pid>` directory. Through it the namespaces are that
/// process's even if the pid is reused later; its start time
/// (`expected_start`, when the shim recorded one) says the pid was not
/// reused before.
pub struct InitProc {
    dir: OwnedFd,
    path: String,
}

impl InitProc {
    pub fn open(pid: i32, expected_start: Option<u64>) -> Result<Self, InitProcError> {
        let path = format!("/proc/{pid}");
        let dir = open(
            path.as_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(err(format!("open {path}")))?;
        let init = Self { dir, path };
        if let Some(expected) = expected_start {
            let started = start_time(&init.dir).map_err(err(format!("read {}/stat", init.path)))?;
            if started != expected {
                return Err(InitProcError {
                    what: format!("the container's init (pid {pid}) is gone"),
                    source: Errno::ESRCH,
                });
            }
        }
        Ok(init)
    }

    /// The init's namespace `name` (`mnt`, `user`, ...).
    pub fn namespace(&self, name: &str) -> Result<OwnedFd, InitProcError> {
        openat(
            &self.dir,
            format!("ns/{name}").as_str(),
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(err(format!("open {}/ns/{name}", self.path)))
    }
}

/// Field 22 of the `stat` file in a `/proc/<pid>` directory (counted
/// after the command name, which may hold spaces and parentheses).
fn start_time(proc_dir: &OwnedFd) -> Result<u64, Errno> {
    let fd = openat(
        proc_dir,
        "stat",
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut text)
        .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))?;
    let after_comm = &text[text.rfind(')').ok_or(Errno::EINVAL)? + 1..];
    after_comm
        .split_whitespace()
        .nth(22 - 3)
        .and_then(|f| f.parse().ok())
        .ok_or(Errno::EINVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_time_is_the_kernels() {
        let me = std::process::id() as i32;
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let field = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .nth(19)
            .unwrap()
            .parse::<u64>()
            .unwrap();
        assert!(InitProc::open(me, Some(field)).is_ok());
        let gone = InitProc::open(me, Some(field + 1)).err().unwrap();
        assert_eq!(gone.source, Errno::ESRCH);
        assert!(InitProc::open(me, None).unwrap().namespace("mnt").is_ok());
    }
}
