//! Mode 2: `lxcri-init exec <spec.json>`, run on the host by the shim.
//! Joins the container's cgroups and namespaces, forks the process into
//! them, forwards signals to it and ends the way it ended.

use crate::path_lookup::{self, LookupError};
use crate::process::{Command, SpecError, Stdio};
use crate::signals::{self, Signals};
use crate::status::EXIT_SETUP_FAILED;
use crate::stdio::{self, StdioError};
use lxcri_init_spec::{ExecSpec, CONSOLE_FD_ENV};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::WaitStatus;
use nix::unistd::{fork, ForkResult};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error("read {path}: {source}")]
    ReadSpec {
        path: String,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    ParseSpec {
        path: String,
        source: serde_json::Error,
    },
    #[error("join cgroup {path}: {source}")]
    Cgroup {
        path: String,
        source: std::io::Error,
    },
    #[error("open namespace {path}: {source}")]
    OpenNamespace { path: String, source: Errno },
    #[error("join {name} namespace of pid {pid}: {source}")]
    Setns {
        name: String,
        pid: i32,
        source: Errno,
    },
    #[error("{CONSOLE_FD_ENV}: {0}")]
    ConsoleFd(String),
    #[error(transparent)]
    Lookup(#[from] LookupError),
    #[error("process: {0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Stdio(#[from] StdioError),
    #[error("{what}: {source}")]
    Sys { what: &'static str, source: Errno },
}

impl ExecError {
    fn exit_code(&self) -> i32 {
        match self {
            ExecError::Lookup(e) => e.exit_code(),
            _ => EXIT_SETUP_FAILED,
        }
    }
}

pub fn run(spec_path: &Path) -> i32 {
    match run_inner(spec_path) {
        Ok(ws) => exit_like(ws),
        Err(e) => {
            eprintln!("lxcri-init exec: {e}");
            e.exit_code()
        }
    }
}

fn run_inner(spec_path: &Path) -> Result<WaitStatus, ExecError> {
    let path = spec_path.display().to_string();
    // Everything on the host side first: after setns(mnt) host paths are gone.
    let text = std::fs::read(spec_path).map_err(|source| ExecError::ReadSpec {
        path: path.clone(),
        source,
    })?;
    let spec: ExecSpec =
        serde_json::from_slice(&text).map_err(|source| ExecError::ParseSpec { path, source })?;
    let console = if spec.process.terminal {
        Some(console_socket()?)
    } else {
        None
    };
    let pid = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, &pid).map_err(|source| ExecError::Cgroup {
            path: procs.clone(),
            source,
        })?;
    }
    // Open every namespace before joining any: once in the container's
    // mount namespace, /proc/<init_pid> is no longer the host's.
    let namespaces = spec
        .namespaces
        .iter()
        .map(|name| {
            let path = format!("/proc/{}/ns/{name}", spec.init_pid);
            open(
                path.as_str(),
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map(|fd| (name, fd))
            .map_err(|source| ExecError::OpenNamespace { path, source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (name, fd) in &namespaces {
        setns(fd, CloneFlags::empty()).map_err(|source| ExecError::Setns {
            name: name.to_string(),
            pid: spec.init_pid,
            source,
        })?;
    }
    let joined_user = namespaces.iter().any(|(name, _)| name.as_str() == "user");
    drop(namespaces);
    if joined_user {
        // Joining a user namespace keeps the host ids, which it does not
        // map: become its root, as runc's nsexec does, so what the exec
        // makes (its pty first) belongs to the container's root, not to
        // the overflow id.
        nix::unistd::setresgid(0.into(), 0.into(), 0.into()).map_err(|source| ExecError::Sys {
            what: "setresgid(0) in the container's user namespace",
            source,
        })?;
        nix::unistd::setresuid(0.into(), 0.into(), 0.into()).map_err(|source| ExecError::Sys {
            what: "setresuid(0) in the container's user namespace",
            source,
        })?;
    }
    // setns(mnt) moved root and cwd to the namespace's root; make sure of it.
    nix::unistd::chdir("/").map_err(|source| ExecError::Sys {
        what: "chdir /",
        source,
    })?;

    let exe = path_lookup::lookup(
        spec.process.args.first().map(String::as_str).unwrap_or(""),
        path_lookup::path_from_env(&spec.process.env),
        Path::new(&spec.process.cwd),
    )?;
    let command = Command::new(&spec.process, &exe)?;
    let child_stdio = match console {
        // Opened after setns(mnt): the pty belongs to the container's devpts.
        Some(console) => Stdio::Terminal(stdio::hand_over_new_pty(
            console.as_fd(),
            spec.process.console_size,
        )?),
        None => Stdio::Inherit,
    };
    let signals = Signals::block().map_err(|source| ExecError::Sys {
        what: "block signals",
        source,
    })?;
    // SAFETY: this process is single-threaded, so the child may do anything.
    let child = match unsafe { fork() }.map_err(|source| ExecError::Sys {
        what: "fork",
        source,
    })? {
        // The pid namespace applies to this child; it dies with us.
        ForkResult::Child => command.exec(child_stdio, true),
        ForkResult::Parent { child } => child,
    };
    drop(child_stdio);
    signals::supervise(&signals, child).map_err(|source| ExecError::Sys {
        what: "wait for the process",
        source,
    })
}

/// The unix socket the shim passed for the pty master.
fn console_socket() -> Result<OwnedFd, ExecError> {
    let value =
        std::env::var(CONSOLE_FD_ENV).map_err(|_| ExecError::ConsoleFd("not set".into()))?;
    let fd: RawFd =
        value.parse().ok().filter(|fd| *fd > 2).ok_or_else(|| {
            ExecError::ConsoleFd(format!("{value:?} is not an fd number above 2"))
        })?;
    // SAFETY: F_GETFD only checks that the fd is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(ExecError::ConsoleFd(format!("fd {fd} is not open")));
    }
    // SAFETY: the shim handed this fd to us for exactly this use.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Not inherited by the process, whatever the shim set.
    // SAFETY: F_SETFD on an fd we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(fd)
}

/// Exit with the child's code, or die by the child's signal.
fn exit_like(ws: WaitStatus) -> i32 {
    match ws {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => signals::die_like(sig as i32),
        _ => EXIT_SETUP_FAILED,
    }
}
