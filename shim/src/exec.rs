//! Exec processes: `lxcri-init exec SPEC` run on the host joins the
//! container's namespaces and cgroups and runs the process; it is our
//! child, so its wait status is the process's. Before Start answers, the
//! helper says on a socket whether the process started (runc's exec fails
//! when it cannot start its process, and containerd then sees no exit),
//! and its pid: containerd sees the process's pid, as with runc, and Kill
//! reaches the process itself (a SIGSTOP to the helper would stop only it).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use lxcri::runtime::init_channel::{self, InitChannelError};
use lxcri_init_spec::{ExecMessage, ExecSpec, EXEC_SOCKET_FD_ENV};
use tokio::process::{Child, Command};

use crate::error::{chain, Result, ShimError};
use crate::io::ProcessStdio;

/// A started exec helper, and its pty master if it has a terminal (without
/// one, its stdio are the relayed pipes given to [`spawn`]).
pub struct SpawnedExec {
    /// The helper: it exits like the process, so its status is the exec's.
    pub child: Child,
    /// The exec's pid as containerd sees it, and a pidfd on that process,
    /// which signals go through.
    pub pid: i32,
    pub pidfd: OwnedFd,
    pub console: Option<OwnedFd>,
}

impl SpawnedExec {
    /// Ends the process, then its helper, for a start that fails after all:
    /// killed alone, the helper could not pass the signal on.
    pub fn kill(&mut self) {
        let _ = lxcri::pidfd::pidfd_send_signal(&self.pidfd, libc::SIGKILL);
        let _ = self.child.start_kill();
    }
}

/// Why an exec did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The helper could not start the process; its message says why (not
    /// found, not executable, bad user or cwd...).
    #[error("{0}")]
    Refused(String),
    #[error("the exec helper did not report within {0:?}")]
    Timeout(Duration),
    #[error("the exec helper ended without reporting")]
    NoReport,
    #[error("reading the exec helper's report: {0}")]
    Io(#[source] std::io::Error),
    #[error("the exec helper sent a malformed report {line:?}: {source}")]
    Protocol {
        line: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("receiving the terminal: {0}")]
    Terminal(#[source] InitChannelError),
    #[error("opening a pidfd on the exec's pid {pid}: {source}")]
    Pidfd {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
}

impl From<StartError> for ShimError {
    /// Worded as runc's shim, which tools match on (Docker reads "executable
    /// file not found" or "permission denied" to choose 127 or 126).
    fn from(e: StartError) -> Self {
        let why = match &e {
            StartError::Refused(message) => {
                format!("unable to start container process: {message}")
            }
            other => chain(other),
        };
        ShimError::Failed(format!("OCI runtime exec failed: exec failed: {why}"))
    }
}

/// The fd number the helper's report socket gets in the helper.
const SOCKET_FD: i32 = 3;
/// How long the helper may take to join the container and start the process.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn spawn(
    init_binary: &Path,
    spec_path: PathBuf,
    spec: &ExecSpec,
    relayed: Option<ProcessStdio>,
) -> Result<SpawnedExec> {
    let body = serde_json::to_vec(spec).expect("exec spec serializes");
    lxcri::owner_only::write(&spec_path, &body).map_err(|e| {
        ShimError::Failed(format!("writing exec spec {}: {e}", spec_path.display()))
    })?;
    let mut cmd = Command::new(init_binary);
    cmd.arg("exec").arg(&spec_path).kill_on_drop(false);
    match relayed {
        Some(ends) => {
            cmd.stdin(Stdio::from(ends.stdin))
                .stdout(Stdio::from(ends.stdout))
                .stderr(Stdio::from(ends.stderr));
        }
        None => {
            // A terminal: the helper opens the pty in the container and
            // sends the master on the report socket.
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
        }
    }
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| ShimError::Failed(format!("exec report socket: {e}")))?;
    let raw = theirs.as_raw_fd();
    cmd.env(EXEC_SOCKET_FD_ENV, SOCKET_FD.to_string());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep FD_CLOEXEC set: clear it instead.
            let rc = if raw == SOCKET_FD {
                libc::fcntl(raw, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, SOCKET_FD)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ShimError::Failed(format!("running {} exec: {e}", init_binary.display())))?;
    // Ours closed, the helper's end is the only one: its exit is our EOF.
    drop(theirs);
    let terminal = spec.process.terminal;
    let report = tokio::task::spawn_blocking(move || read_report(ours, terminal))
        .await
        .map_err(|e| ShimError::Failed(format!("exec: internal task failed: {e}")))?;
    // Unreaped until the exit watcher has it: a pidfd on it is its own.
    let helper = child.id().map_or(0, |pid| pid as i32);
    match report.and_then(|started| started.with_helper(helper)) {
        Ok((pid, pidfd, console)) => {
            // Its process runs: the container's cgroups are the process's
            // alone from here on, as with runc. Not fatal: a helper left
            // there costs a pids.max slot, as before.
            if let Err(e) = lxcri::runtime::return_exec_helper(helper) {
                tracing::warn!(helper, error = %chain(&e), "leaving the exec helper in the container's cgroups");
            }
            Ok(SpawnedExec {
                child,
                pid,
                pidfd,
                console,
            })
        }
        Err(e) => {
            if !matches!(e, StartError::Refused(_)) {
                // Not started as far as anyone will know: it must not run on unseen.
                let _ = child.start_kill();
            }
            // Reaped here: no exit watcher for an exec that did not start.
            tokio::spawn(async move { child.wait().await });
            Err(e.into())
        }
    }
}

/// What a helper that started its process reported.
#[derive(Debug)]
struct Started {
    /// The process's host pid and a pidfd on it, opened before the helper
    /// may reap it (it waits until we close the socket); `None` from a
    /// helper from before the pid was reported.
    process: Option<(i32, OwnedFd)>,
    console: Option<OwnedFd>,
}

impl Started {
    /// The exec's pid and pidfd: the process's own, as runc's shim reports
    /// them; from an older helper, which sends no pid, the helper's (it
    /// forwards signals to the process).
    fn with_helper(
        self,
        helper: i32,
    ) -> std::result::Result<(i32, OwnedFd, Option<OwnedFd>), StartError> {
        let (pid, pidfd) = match self.process {
            Some(process) => process,
            None => (helper, open_pidfd(helper)?),
        };
        Ok((pid, pidfd, self.console))
    }
}

fn open_pidfd(pid: i32) -> std::result::Result<OwnedFd, StartError> {
    lxcri::pidfd::pidfd_open(pid).map_err(|source| StartError::Pidfd { pid, source })
}

/// Waits (bounded) for the helper's report; with a terminal, the pty master
/// follows a `Started`. Dropping the socket lets the helper go on.
fn read_report(mut socket: UnixStream, terminal: bool) -> std::result::Result<Started, StartError> {
    socket
        .set_read_timeout(Some(START_TIMEOUT))
        .map_err(StartError::Io)?;
    let line = init_channel::read_line(&mut socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            StartError::Timeout(START_TIMEOUT)
        }
        _ => StartError::Io(e),
    })?;
    if line.is_empty() {
        return Err(StartError::NoReport);
    }
    let text = String::from_utf8_lossy(&line).into_owned();
    let message = serde_json::from_str(&text)
        .map_err(|source| StartError::Protocol { line: text, source })?;
    let pid = match message {
        ExecMessage::Failed { message } => return Err(StartError::Refused(message)),
        ExecMessage::Started { pid } => pid,
    };
    let process = pid
        .map(|pid| open_pidfd(pid).map(|fd| (pid, fd)))
        .transpose()?;
    let console = if terminal {
        let master = init_channel::recv_pty_from(socket.as_raw_fd()).map_err(|e| {
            // It runs, but nobody could reach its terminal.
            if let Some((_, pidfd)) = &process {
                let _ = lxcri::pidfd::pidfd_send_signal(pidfd, libc::SIGKILL);
            }
            StartError::Terminal(e)
        });
        Some(master?)
    } else {
        None
    };
    Ok(Started { process, console })
}

/// The containerd exit status of a finished helper (128+n for signals).
pub fn exit_code(status: std::process::ExitStatus) -> u32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u32,
        (None, Some(sig)) => lxcri_init_spec::exit_code_from_signal(sig),
        (None, None) => 255,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;

    fn report(line: &[u8], terminal: bool) -> std::result::Result<Started, StartError> {
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        theirs.write_all(line).unwrap();
        drop(theirs);
        read_report(ours, terminal)
    }

    #[test]
    fn a_refused_start_carries_the_helpers_words() {
        let e = report(
            br#"{"kind":"failed","message":"exec: \"nosuch\": executable file not found in $PATH"}"#,
            false,
        )
        .unwrap_err();
        assert!(matches!(e, StartError::Refused(_)), "{e:?}");
        match ShimError::from(e) {
            ShimError::Failed(m) => assert_eq!(
                m,
                "OCI runtime exec failed: exec failed: unable to start container process: \
                 exec: \"nosuch\": executable file not found in $PATH"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_started_process_without_a_terminal_sends_nothing_more() {
        assert!(report(b"{\"kind\":\"started\"}\n", false)
            .unwrap()
            .console
            .is_none());
    }

    #[test]
    fn the_exec_is_the_process_the_helper_names() {
        let me = std::process::id() as i32;
        let line = format!("{{\"kind\":\"started\",\"pid\":{me}}}\n");
        let started = report(line.as_bytes(), false).unwrap();
        assert_eq!(started.process.as_ref().map(|(pid, _)| *pid), Some(me));
        let (pid, _pidfd, _) = started.with_helper(1).unwrap();
        assert_eq!(pid, me);
    }

    #[test]
    fn a_helper_from_before_stands_in_for_its_process() {
        let helper = std::process::id() as i32;
        let started = report(b"{\"kind\":\"started\"}\n", false).unwrap();
        assert!(started.process.is_none());
        let (pid, _pidfd, _) = started.with_helper(helper).unwrap();
        assert_eq!(pid, helper);
    }

    #[test]
    fn a_process_that_cannot_be_held_is_no_start() {
        // Above any pid_max: no such process.
        let e = report(b"{\"kind\":\"started\",\"pid\":2147483647}\n", false).unwrap_err();
        assert!(
            matches!(e, StartError::Pidfd { pid: i32::MAX, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn a_started_terminal_needs_its_pty() {
        let e = report(b"{\"kind\":\"started\"}\n", true).unwrap_err();
        assert!(matches!(e, StartError::Terminal(_)), "{e:?}");
    }

    #[test]
    fn silence_and_garbage_are_not_a_start() {
        assert!(matches!(report(b"", false), Err(StartError::NoReport)));
        assert!(matches!(
            report(b"started\n", false),
            Err(StartError::Protocol { .. })
        ));
    }

    #[test]
    fn signal_deaths_are_128_plus_n() {
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
    }
}
