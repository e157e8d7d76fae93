//! The liblxc backend, driven through the `lxc-*` tools (PVE itself runs
//! containers with `lxc-start`, so the same mechanics work on a PVE node).
//!
//! Each container is `<lxcpath>/<name>/config` plus its `lxc.log`; the
//! rootfs is not managed by LXC (`lxc.rootfs.managed = 0`), so removing a
//! container is removing that directory.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use super::command::{display, CommandRunner, SystemCommands};

#[derive(Debug, thiserror::Error)]
pub enum LxcError {
    #[error("writing LXC config {path}: {source}")]
    WriteConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("running `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {detail}")]
    Failed {
        command: String,
        status: String,
        detail: String,
    },
    #[error("removing LXC container directory {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T> = std::result::Result<T, LxcError>;

/// LXC log file name inside the container directory.
pub const LOG_FILE: &str = "lxc.log";

/// The LXC container name for a containerd namespace and id. containerd
/// namespaces cannot contain `_`, so the pair is unique.
pub fn container_name(namespace: &str, id: &str) -> String {
    format!("{namespace}_{id}")
}

#[derive(Debug, Clone)]
pub struct LxcBackend<R: CommandRunner = SystemCommands> {
    lxcpath: PathBuf,
    log_level: String,
    runner: R,
}

impl LxcBackend<SystemCommands> {
    pub fn new(lxcpath: impl Into<PathBuf>, log_level: impl Into<String>) -> Self {
        Self::with_runner(lxcpath, log_level, SystemCommands::default())
    }
}

impl<R: CommandRunner> LxcBackend<R> {
    pub fn with_runner(
        lxcpath: impl Into<PathBuf>,
        log_level: impl Into<String>,
        runner: R,
    ) -> Self {
        Self {
            lxcpath: lxcpath.into(),
            log_level: log_level.into(),
            runner,
        }
    }

    pub fn lxcpath(&self) -> &Path {
        &self.lxcpath
    }

    pub fn container_dir(&self, name: &str) -> PathBuf {
        self.lxcpath.join(name)
    }

    pub fn write_config(&self, name: &str, rendered: &str) -> Result<()> {
        let dir = self.container_dir(name);
        let path = dir.join("config");
        fs::create_dir_all(&dir)
            .and_then(|_| fs::write(&path, rendered))
            .map_err(|source| LxcError::WriteConfig { path, source })
    }

    fn base_args(&self, name: &str) -> Vec<OsString> {
        vec![
            "-n".into(),
            name.into(),
            "-P".into(),
            self.lxcpath.clone().into_os_string(),
        ]
    }

    fn run(&self, program: &str, args: Vec<OsString>) -> Result<std::process::Output> {
        let command = display(program, &args);
        self.runner
            .run(program, &args)
            .map_err(|source| LxcError::Spawn { command, source })
    }

    /// Starts the container daemonized; returns once LXC has started its
    /// init (which then waits for the shim), or fails with LXC's own words.
    pub fn start(&self, name: &str) -> Result<()> {
        let mut args = self.base_args(name);
        args.extend([
            "-d".into(),
            "-o".into(),
            self.container_dir(name).join(LOG_FILE).into_os_string(),
            "-l".into(),
            self.log_level.clone().into(),
        ]);
        let out = self.run("lxc-start", args.clone())?;
        if out.status.success() {
            return Ok(());
        }
        Err(LxcError::Failed {
            command: display("lxc-start", &args),
            status: out.status.to_string(),
            detail: self.failure_detail(name, &out.stderr),
        })
    }

    /// `RUNNING`, `STOPPED`, ... or `None` if LXC does not know it.
    pub fn state(&self, name: &str) -> Option<String> {
        let mut args = self.base_args(name);
        args.extend(["-s".into(), "-H".into()]);
        let out = self.run("lxc-info", args).ok()?;
        if !out.status.success() {
            return None;
        }
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    pub fn is_running(&self, name: &str) -> bool {
        matches!(
            self.state(name).as_deref(),
            Some("RUNNING") | Some("STARTING") | Some("FROZEN")
        )
    }

    /// Kills the container (all its processes) if it runs. Stopping a
    /// stopped or unknown container is not an error.
    pub fn stop(&self, name: &str) -> Result<()> {
        if !self.container_dir(name).join("config").exists() || !self.is_running(name) {
            return Ok(());
        }
        let mut args = self.base_args(name);
        args.push("-k".into());
        let out = self.run("lxc-stop", args.clone())?;
        if out.status.success() || !self.is_running(name) {
            return Ok(());
        }
        Err(LxcError::Failed {
            command: display("lxc-stop", &args),
            status: out.status.to_string(),
            detail: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Removes the container's config and log directory.
    pub fn remove(&self, name: &str) -> Result<()> {
        let dir = self.container_dir(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(LxcError::Remove { path: dir, source }),
        }
    }

    /// The error lines of the LXC log (the useful part of a failed start).
    pub fn failure_detail(&self, name: &str, stderr: &[u8]) -> String {
        let log = fs::read_to_string(self.container_dir(name).join(LOG_FILE)).unwrap_or_default();
        // The first errors are the cause; later ones are LXC unwinding.
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(" ERROR "))
            .take(4)
            .collect();
        let mut detail = String::from_utf8_lossy(stderr).trim().to_string();
        for l in lines {
            // LXC lines: "lxc-start NAME TIMESTAMP ERROR file - file:line:func - message"
            let msg = l.rsplit(" - ").next().unwrap_or(l);
            if !detail.is_empty() {
                detail.push_str("; ");
            }
            detail.push_str(msg.trim());
        }
        detail
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{ExitStatus, Output};
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder {
        calls: Mutex<Vec<String>>,
        state: Mutex<&'static str>,
    }

    impl CommandRunner for Recorder {
        fn run(&self, program: &str, args: &[OsString]) -> std::io::Result<Output> {
            self.calls.lock().unwrap().push(display(program, args));
            let (code, stdout) = match program {
                "lxc-info" => (0, format!("{}\n", self.state.lock().unwrap())),
                "lxc-start" => (1, String::new()),
                _ => (0, String::new()),
            };
            Ok(Output {
                status: ExitStatus::from_raw(code << 8),
                stdout: stdout.into_bytes(),
                stderr: b"lxc-start: c: tools/lxc_start.c: main: 306 The container failed to start"
                    .to_vec(),
            })
        }
    }

    #[test]
    fn failed_start_reports_lxc_log_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let b = LxcBackend::with_runner(tmp.path(), "warn", Recorder::default());
        b.write_config("ns_c1", "lxc.uts.name = c1\n").unwrap();
        fs::write(
            b.container_dir("ns_c1").join(LOG_FILE),
            "lxc-start ns_c1 20261122 ERROR conf - ../src/lxc/conf.c:2024:mount_entry - No such file or directory - Failed to mount \"/nope\"\n",
        )
        .unwrap();
        let err = b.start("ns_c1").unwrap_err().to_string();
        assert!(err.contains("The container failed to start"), "{err}");
        assert!(err.contains("Failed to mount \"/nope\""), "{err}");
        let calls = b.runner.calls.lock().unwrap();
        assert!(calls[0].starts_with(&format!(
            "lxc-start -n ns_c1 -P {} -d -o",
            tmp.path().display()
        )));
    }

    #[test]
    fn stop_is_a_noop_when_not_running_and_remove_is_idempotent() {
        let tmp = tempfile::tempdir().unwrap();
        let rec = Recorder::default();
        *rec.state.lock().unwrap() = "STOPPED";
        let b = LxcBackend::with_runner(tmp.path(), "warn", rec);
        b.write_config("ns_c2", "x").unwrap();
        b.stop("ns_c2").unwrap();
        assert!(!b
            .runner
            .calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.starts_with("lxc-stop")));
        b.remove("ns_c2").unwrap();
        b.remove("ns_c2").unwrap();
        assert!(!b.container_dir("ns_c2").exists());
    }
}
