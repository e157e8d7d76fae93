//! Exec processes: `lxcri-init exec SPEC` run on the host joins the
//! container's namespaces and cgroups and runs the process; it is our
//! child, so its wait status is the process's.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use lxcri_init_spec::{ExecSpec, CONSOLE_FD_ENV};
use tokio::process::{Child, Command};

use crate::error::{Result, ShimError};
use crate::io::ProcessStdio;

/// A started exec helper, and its pty master if it has a terminal (without
/// one, its stdio are the relayed pipes given to [`spawn`]).
pub struct SpawnedExec {
    pub child: Child,
    pub console: Option<OwnedFd>,
}

/// The fd number the console socket gets in the helper.
const CONSOLE_FD: i32 = 3;

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
    let console_pair = if let Some(ends) = relayed {
        cmd.stdin(Stdio::from(ends.stdin))
            .stdout(Stdio::from(ends.stdout))
            .stderr(Stdio::from(ends.stderr));
        None
    } else {
        // A terminal: the helper opens the pty in the container and sends
        // the master back on this socket.
        let (ours, theirs) =
            UnixStream::pair().map_err(|e| ShimError::Failed(format!("console socket: {e}")))?;
        let raw = theirs.as_raw_fd();
        cmd.env(CONSOLE_FD_ENV, CONSOLE_FD.to_string());
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe dup2 between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // dup2 onto itself would keep FD_CLOEXEC set: clear it instead.
                let rc = if raw == CONSOLE_FD {
                    libc::fcntl(raw, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, CONSOLE_FD)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Some((ours, theirs))
    };
    let mut child = cmd
        .spawn()
        .map_err(|e| ShimError::Failed(format!("running {} exec: {e}", init_binary.display())))?;
    let console = match console_pair {
        None => None,
        Some((ours, theirs)) => {
            drop(theirs);
            let fd = ours.as_raw_fd();
            let recv = tokio::task::spawn_blocking(move || {
                let _keep = ours;
                lxcri::runtime::init_channel::recv_pty_from(fd)
            });
            let received = tokio::time::timeout(std::time::Duration::from_secs(30), recv)
                .await
                .map_err(|_| {
                    ShimError::Failed("exec: no terminal from the exec helper within 30s".into())
                })
                .and_then(|r| r.map_err(|e| ShimError::Failed(format!("exec: {e}"))))
                .and_then(|r| {
                    r.map_err(|e| ShimError::Failed(format!("exec: receiving the terminal: {e}")))
                });
            match received {
                Ok(master) => Some(master),
                Err(e) => {
                    // No terminal, no exec: the helper must not run on unseen.
                    let _ = child.start_kill();
                    return Err(e);
                }
            }
        }
    };
    Ok(SpawnedExec { child, console })
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

    #[test]
    fn signal_deaths_are_128_plus_n() {
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(std::process::ExitStatus::from_raw(3 << 8)), 3);
    }
}
