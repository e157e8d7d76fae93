//! Mode 2: `lxcri-init exec <spec.json>`, run on the host by the shim.
//! Joins the container's cgroups and namespaces, forks the process into
//! them (the shim moves the helper back out once the process started, so
//! the container's hold only the process, as with runc), tells the shim whether it started (runc's exec fails when its
//! process cannot start, so the shim's Start must know before it answers),
//! forwards signals to it and ends the way it ended.

use crate::errno_text::errno_text;
use crate::process::{Command, Runner, SpecError, Stdio};
use crate::signals::{self, Signals};
use crate::spec_file::{self, SpecFileError};
use crate::status::{self, EXIT_SETUP_FAILED};
use crate::stdio::{self, StdioError};
use lxcri_init_spec::{ExecMessage, ExecSpec, EXEC_SOCKET_FD_ENV, PTY_TAG};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error(transparent)]
    SpecFile(#[from] SpecFileError),
    #[error("join cgroup {path}: {source}")]
    Cgroup {
        path: String,
        source: std::io::Error,
    },
    #[error("open namespace {path}: {}", errno_text(*source))]
    OpenNamespace { path: String, source: Errno },
    #[error("join {name} namespace of pid {pid}: {}", errno_text(*source))]
    Setns {
        name: String,
        pid: i32,
        source: Errno,
    },
    #[error("{0}")]
    Socket(String),
    #[error("read the process's setup outcome: {0}")]
    Verdict(#[source] std::io::Error),
    /// The child could not set the process up; its own words.
    #[error("{message}")]
    Child { message: String, code: i32 },
    #[error("process: {0}")]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Stdio(#[from] StdioError),
    #[error("{what}: {}", errno_text(*source))]
    Sys { what: &'static str, source: Errno },
}

impl ExecError {
    fn exit_code(&self) -> i32 {
        match self {
            ExecError::Child { code, .. } => *code,
            _ => EXIT_SETUP_FAILED,
        }
    }
}

pub fn run(spec_path: &Path) -> i32 {
    let mut report = match Report::from_env(&|name| std::env::var(name).ok()) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("lxcri-init exec: {e}");
            return e.exit_code();
        }
    };
    let started = match start(spec_path) {
        Ok(started) => started,
        Err(e) => {
            report.failed(&e);
            return e.exit_code();
        }
    };
    let reported = report.started(started.child, started.pty_master.as_ref());
    // Our copy of the master would hold the pty open after the process
    // exits and hide the hangup from the shim.
    drop(started.pty_master);
    drop(report);
    if let Err(e) = reported {
        eprintln!("lxcri-init exec: {e}");
        // The shim gave up on this exec: nobody would watch the process.
        // SAFETY: plain kill(2) of our own unreaped child.
        unsafe { libc::kill(started.child.as_raw(), libc::SIGKILL) };
    }
    match signals::supervise(&started.signals, started.child) {
        Ok(ws) => exit_like(ws),
        Err(source) => {
            eprintln!("lxcri-init exec: wait for the process: {source}");
            EXIT_SETUP_FAILED
        }
    }
}

/// The console socket of a shim from before the start report: it names
/// the socket in this variable only for a terminal, and expects the pty
/// master on it and nothing else.
const LEGACY_CONSOLE_FD_ENV: &str = "LXCRI_CONSOLE_FD";

/// Where the helper says how the start went.
enum Report {
    /// The shim's exec socket: an [`ExecMessage`], then the pty master.
    Shim(UnixStream),
    /// A shim started before lxcri was upgraded (its containers still
    /// run): it learns of a failed start from the exit code, as it did.
    Legacy { console: Option<UnixStream> },
}

impl Report {
    fn from_env(var: &dyn Fn(&str) -> Option<String>) -> Result<Self, ExecError> {
        if let Some(value) = var(EXEC_SOCKET_FD_ENV) {
            return Ok(Self::Shim(inherited_socket(EXEC_SOCKET_FD_ENV, &value)?));
        }
        let console = var(LEGACY_CONSOLE_FD_ENV)
            .map(|value| inherited_socket(LEGACY_CONSOLE_FD_ENV, &value))
            .transpose()?;
        Ok(Self::Legacy { console })
    }

    fn failed(&mut self, e: &ExecError) {
        let message = e.to_string();
        match self {
            Self::Shim(socket) => {
                if let Err(sent) = stdio::send_message(socket, &ExecMessage::Failed { message }) {
                    eprintln!("lxcri-init exec: {e} ({sent})");
                }
            }
            Self::Legacy { .. } => eprintln!("lxcri-init exec: {message}"),
        }
    }

    /// Says that `child` runs. To the current shim, only once it has
    /// closed its end: it opens a pidfd on `child` first, and until then
    /// the child must stay unreaped, or its pid could name another process.
    fn started(&mut self, child: Pid, pty_master: Option<&OwnedFd>) -> Result<(), ExecError> {
        let send_master = |socket: &UnixStream, master: &OwnedFd| {
            stdio::send_fds(socket.as_fd(), PTY_TAG, &[master.as_raw_fd()], "pty master")
        };
        match (self, pty_master) {
            (Self::Shim(socket), master) => {
                let pid = Some(child.as_raw());
                stdio::send_message(socket, &ExecMessage::Started { pid })?;
                if let Some(master) = master {
                    send_master(socket, master)?;
                }
                // The shim sends nothing: this ends when it closes (or dies).
                let _ = std::io::copy(&mut &*socket, &mut std::io::sink());
            }
            (Self::Legacy { console: Some(c) }, Some(master)) => send_master(c, master)?,
            (Self::Legacy { console: None }, Some(_)) => {
                return Err(ExecError::Socket(format!(
                    "neither {EXEC_SOCKET_FD_ENV} nor {LEGACY_CONSOLE_FD_ENV} is set for a terminal"
                )))
            }
            (Self::Legacy { .. }, None) => {}
        }
        Ok(())
    }
}

/// A process whose setup passed (its `execve` may still refuse it: it
/// then exits 255).
struct Started {
    child: Pid,
    signals: Signals,
    /// With a terminal: the pty master, for the shim.
    pty_master: Option<OwnedFd>,
}

fn start(spec_path: &Path) -> Result<Started, ExecError> {
    // Everything on the host side first: after setns(mnt) host paths are gone.
    let spec: ExecSpec = spec_file::read(spec_path)?;
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

    // The child looks the program up as the process's user, once in its
    // cwd, as runc's exec (setns_init_linux.go after finalizeNamespace).
    let name = Path::new(spec.process.args.first().map_or("", String::as_str));
    let command = Command::new(&spec.process, name)?;
    let (child_stdio, pty_master) = if spec.process.terminal {
        // Opened after setns(mnt): the pty belongs to the container's devpts.
        let pty = stdio::open_pty(spec.process.console_size)?;
        (Stdio::Terminal(pty.slave), Some(pty.master))
    } else {
        (Stdio::Inherit, None)
    };
    // Close-on-exec: a successful execve closes it unwritten.
    let (verdict, child_verdict) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| ExecError::Sys {
            what: "create the setup pipe",
            source,
        })?;
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
        ForkResult::Child => command.exec(child_stdio, Runner::ExecChild(child_verdict)),
        ForkResult::Parent { child } => child,
    };
    drop(child_verdict);
    drop(child_stdio);
    let mut failure = String::new();
    std::fs::File::from(verdict)
        .read_to_string(&mut failure)
        .map_err(ExecError::Verdict)?;
    if failure.is_empty() {
        return Ok(Started {
            child,
            signals,
            pty_master,
        });
    }
    let code = waitpid(child, None)
        .ok()
        .and_then(status::from_wait)
        .map_or(EXIT_SETUP_FAILED, |code| code as i32);
    Err(ExecError::Child {
        message: failure,
        code,
    })
}

/// The unix socket the shim passed to learn how the start went.
/// The unix socket at the fd `value` of variable `name` names.
fn inherited_socket(name: &str, value: &str) -> Result<UnixStream, ExecError> {
    let bad = |why: String| ExecError::Socket(format!("{name}: {why}"));
    let fd: RawFd = value
        .parse()
        .ok()
        .filter(|fd| *fd > 2)
        .ok_or_else(|| bad(format!("{value:?} is not an fd number above 2")))?;
    // SAFETY: F_GETFD only checks that the fd is open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(bad(format!("fd {fd} is not open")));
    }
    // SAFETY: the shim handed this fd to us for exactly this use.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // Not inherited by the process, whatever the shim set.
    // SAFETY: F_SETFD on an fd we own.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok(UnixStream::from(fd))
}

/// Exit with the child's code, or die by the child's signal.
fn exit_like(ws: WaitStatus) -> i32 {
    match ws {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => signals::die_like(sig as i32),
        _ => EXIT_SETUP_FAILED,
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::fd::IntoRawFd;

    use super::*;

    fn vars<'a>(pairs: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn a_current_shim_hears_that_the_process_started() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let env = [(EXEC_SOCKET_FD_ENV, theirs.into_raw_fd().to_string())];
        let mut report = Report::from_env(&vars(&env)).unwrap();
        assert!(matches!(report, Report::Shim(_)));
        // Returns only once the shim closed its end, after it read.
        let shim = std::thread::spawn(move || {
            let mut line = String::new();
            BufReader::new(ours).read_line(&mut line).unwrap();
            line
        });
        report.started(Pid::from_raw(4242), None).unwrap();
        assert_eq!(
            shim.join().unwrap(),
            "{\"kind\":\"started\",\"pid\":4242}\n"
        );
    }

    /// A shim from before the report (containers started before an
    /// upgrade) sets only the console fd, and only for a terminal.
    #[test]
    fn a_shim_from_before_gets_what_it_expected() {
        let (_ours, theirs) = UnixStream::pair().unwrap();
        let env = [(LEGACY_CONSOLE_FD_ENV, theirs.into_raw_fd().to_string())];
        let report = Report::from_env(&vars(&env)).unwrap();
        assert!(matches!(report, Report::Legacy { console: Some(_) }));

        let mut report = Report::from_env(&vars(&[])).unwrap();
        assert!(matches!(report, Report::Legacy { console: None }));
        let child = Pid::from_raw(4242);
        report.started(child, None).unwrap();
        let (master, _slave) = UnixStream::pair().unwrap();
        let e = report
            .started(child, Some(&OwnedFd::from(master)))
            .unwrap_err();
        assert!(e.to_string().contains(LEGACY_CONSOLE_FD_ENV), "{e}");
    }

    #[test]
    fn a_bad_fd_is_named() {
        let env = [(EXEC_SOCKET_FD_ENV, "1".to_string())];
        let e = Report::from_env(&vars(&env)).err().unwrap().to_string();
        assert!(
            e.starts_with(EXEC_SOCKET_FD_ENV) && e.contains("above 2"),
            "{e}"
        );
    }
}
