//! `binary://` stdio: a logging binary the shim starts for a process, as
//! containerd's runc shim does (`NewBinaryIO` and `NewBinaryCmd`,
//! cmd/containerd-shim-runc-v2/process/io.go and io_util.go): the program
//! at the URI's path, the query as its arguments (each key, then its first
//! value), an environment of only `CONTAINER_ID` (the process's id: the
//! container's, or the exec's) and `CONTAINER_NAMESPACE`, the process's
//! stdout and stderr to read on fds 3 and 4, and fd 5 to close (or write
//! to) once it is ready; the create waits for that. nerdctl logs every
//! container it runs so, and `ctr run --log-uri binary:///...` too.
//!
//! The shim keeps its own copies of the process's ends until the process
//! is deleted, as runc's shim does, so the logger reads EOF then; it is
//! asked to end with SIGTERM and killed if it has not after
//! [`STOP_TIMEOUT`].

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Result, ShimError};
use crate::stdio_uri;

/// How long a logger may take to say it is ready (runc's shim waits
/// without a bound; a create must end).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a logger may take to end after SIGTERM (runc's shim:
/// `binaryIOProcTermTimeout`, 12 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(12);

/// The fds the logger reads the process's stdout and stderr from, and the
/// one it closes when ready.
const STDOUT_FD: RawFd = 3;
const STDERR_FD: RawFd = 4;
const READY_FD: RawFd = 5;

/// The program and arguments a `binary://` URI names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl LoggerCommand {
    /// The logger of stdout URI `uri`; `None` when it is not `binary://`.
    /// Go's `url.Query` yields a map: each key once, with its first value
    /// (a key without one gets ""); the keys keep the URI's order here.
    pub fn parse(uri: &str) -> Option<Result<Self>> {
        if !uri.starts_with("binary:") {
            return None;
        }
        Some(Self::parse_binary(uri))
    }

    fn parse_binary(uri: &str) -> Result<Self> {
        let (parsed, path) = stdio_uri::parse(uri)?;
        if path.is_empty() {
            return Err(stdio_uri::invalid(
                uri,
                "names no logging binary (binary:///PATH?ARGS)",
            ));
        }
        let mut args: Vec<(String, String)> = Vec::new();
        for (key, value) in parsed.query_pairs() {
            if !args.iter().any(|(k, _)| *k == key) {
                args.push((key.into_owned(), value.into_owned()));
            }
        }
        Ok(Self {
            program: PathBuf::from(path),
            args: args.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        })
    }
}

/// Whose output a logger takes: CRI and `ctr` name the namespace and the
/// process (the container's id, or the exec's).
#[derive(Debug, Clone)]
pub struct LoggedProcess {
    pub namespace: String,
    pub id: String,
}

impl LoggedProcess {
    pub fn new(namespace: &str, id: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            id: id.to_string(),
        }
    }
}

/// A running logging binary.
pub struct Logger {
    program: PathBuf,
    child: Option<Child>,
    /// The shim's copies of the process's ends, closed at [`Logger::stop`].
    held: Vec<OwnedFd>,
}

/// The write ends of the logger's stdout and stderr pipes.
pub struct LoggerEnds {
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

impl Logger {
    /// Starts `cmd` for `process` and waits (up to `ready_timeout`) until
    /// it is ready. `pipe` makes each of the two pipes (read end first).
    pub fn start(
        cmd: &LoggerCommand,
        process: &LoggedProcess,
        pipe: &dyn Fn() -> Result<(OwnedFd, OwnedFd)>,
        ready_timeout: Duration,
    ) -> Result<(Self, LoggerEnds)> {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| ShimError::Failed(format!("creating the logger's ready pipe: {e}")))?;
        // Above 5, so each dup2 below moves an fd (a dup2 onto itself would
        // leave FD_CLOEXEC set).
        let given = [out_r, err_r, ready_w]
            .into_iter()
            .map(|fd| high_fd(&fd))
            .collect::<Result<Vec<_>>>()?;
        let raw: Vec<RawFd> = given.iter().map(|fd| fd.as_raw_fd()).collect();
        let mut command = Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .env_clear()
            .env("CONTAINER_ID", &process.id)
            .env("CONTAINER_NAMESPACE", &process.namespace)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only dup2, async-signal-safe, between fork and exec.
        unsafe {
            command.pre_exec(move || {
                for (from, to) in raw.iter().zip([STDOUT_FD, STDERR_FD, READY_FD]) {
                    if libc::dup2(*from, to) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|e| {
            ShimError::Failed(format!(
                "failed to start binary process {}: {e}",
                cmd.program.display()
            ))
        })?;
        // Only the logger holds these now: its ready end's close is our EOF.
        drop(given);
        let mut logger = Logger {
            program: cmd.program.clone(),
            child: Some(child),
            held: Vec::new(),
        };
        wait_ready(File::from(ready_r), ready_timeout).map_err(|why| {
            ShimError::Failed(format!(
                "the logging binary {}: {why}",
                cmd.program.display()
            ))
        })?;
        // On an error above `logger` is dropped: killed and reaped.
        logger.held = vec![dup(&out_w)?, dup(&err_w)?];
        Ok((
            logger,
            LoggerEnds {
                stdout: out_w,
                stderr: err_w,
            },
        ))
    }

    /// For a terminal's logger: the copier owns the stdout end and the
    /// stderr one goes unused, so the shim keeps no copies (runc's
    /// `CopyConsole`): the logger reads EOF once the terminal is done.
    pub fn without_held_ends(mut self) -> Self {
        self.held.clear();
        self
    }

    /// Closes the shim's ends, asks the logger to end (SIGTERM) and waits
    /// up to `timeout` before killing it, as runc's shim does at delete.
    pub fn stop(mut self, timeout: Duration) {
        self.held.clear();
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on our own unreaped child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => break,
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        tracing::warn!(program = %self.program.display(), "the logging binary did not end after SIGTERM: killing it");
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Logger {
    /// A logger not stopped (a create or exec that failed, a task that
    /// went without a delete) is killed: nothing of it is left.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn high_fd(fd: &OwnedFd) -> Result<OwnedFd> {
    let raw = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(10))
        .map_err(|e| ShimError::Failed(format!("dup of a logger pipe: {e}")))?;
    // SAFETY: F_DUPFD_CLOEXEC returned a new fd that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd> {
    fd.try_clone()
        .map_err(|e| ShimError::Failed(format!("dup of a logger pipe: {e}")))
}

/// Waits until the logger closes its ready fd or writes to it.
fn wait_ready(mut ready: File, timeout: Duration) -> std::result::Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(ready.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) if left.is_zero() => {
                return Err(format!("not ready within {timeout:?} (fd 5 still open)"))
            }
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {
                let mut byte = [0u8; 1];
                return match ready.read(&mut byte) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(format!("reading its ready fd: {e}")),
                };
            }
            Err(e) => return Err(format!("waiting for it to be ready: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn cmd(uri: &str) -> LoggerCommand {
        LoggerCommand::parse(uri).expect("binary").expect("parses")
    }

    #[test]
    fn only_binary_uris_are_loggers() {
        for uri in ["", "/run/fifo/x-stdout", "fifo:///x", "file:///var/log/x"] {
            assert!(LoggerCommand::parse(uri).is_none(), "{uri}");
        }
    }

    #[test]
    fn the_path_is_the_program_and_the_query_its_arguments() {
        let c = cmd("binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING=%2Fvar%2Flib%2Fnerdctl%2F1935db59");
        assert_eq!(c.program, PathBuf::from("/usr/local/bin/nerdctl"));
        assert_eq!(
            c.args,
            ["_NERDCTL_INTERNAL_LOGGING", "/var/lib/nerdctl/1935db59"]
        );
        // Each key once with its first value, "" for none; `+` is a space
        // and the path is percent-decoded, as Go's url package reads them.
        let c = cmd("binary:///opt/my%20logger?a=1&flag&a=2&b=x+y");
        assert_eq!(c.program, PathBuf::from("/opt/my logger"));
        assert_eq!(c.args, ["a", "1", "flag", "", "b", "x y"]);
        assert_eq!(cmd("binary:///bin/logger").args, Vec::<String>::new());
    }

    #[test]
    fn a_uri_without_a_program_is_refused() {
        for uri in ["binary://", "binary:"] {
            let e = LoggerCommand::parse(uri).unwrap().unwrap_err();
            assert!(matches!(e, ShimError::InvalidArgument(_)), "{uri}: {e}");
        }
    }

    fn pipe() -> Result<(OwnedFd, OwnedFd)> {
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| ShimError::Failed(e.to_string()))
    }

    /// A logger in sh: records its arguments, environment and open fds,
    /// copies fds 3 and 4 into files, then says it is ready.
    fn sh_logger(dir: &std::path::Path, script_tail: &str) -> LoggerCommand {
        let script = format!(
            "cd {d}; echo \"$@\" > args; env | sort > env; ls -l /proc/self/fd > fds; \
             cat <&3 5>&- > out & cat <&4 5>&- > err & exec 5>&-; {script_tail}",
            d = dir.display()
        );
        LoggerCommand {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script, "logger".into(), "x".into()],
        }
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap_or_default()
    }

    #[test]
    fn a_logger_reads_the_output_until_it_is_stopped() {
        let dir = tempfile::tempdir().unwrap();
        // Ignoring SIGTERM, the script ends when both copies reach EOF.
        let c = sh_logger(dir.path(), "trap '' TERM; wait");
        let process = LoggedProcess::new("k8s.io", "c1");
        let (logger, ends) = Logger::start(&c, &process, &pipe, READY_TIMEOUT).unwrap();
        File::from(ends.stdout).write_all(b"to stdout\n").unwrap();
        File::from(ends.stderr).write_all(b"to stderr\n").unwrap();
        // The shim's copies still hold the pipes open: no EOF yet, the
        // logger (which ignores SIGTERM and ends at EOF) still runs.
        std::thread::sleep(Duration::from_millis(100));
        let mut logger = logger;
        assert!(matches!(
            logger.child.as_mut().unwrap().try_wait(),
            Ok(None)
        ));
        logger.stop(STOP_TIMEOUT);
        assert_eq!(read(dir.path(), "out"), "to stdout\n");
        assert_eq!(read(dir.path(), "err"), "to stderr\n");
        assert_eq!(read(dir.path(), "args"), "x\n");
        // Only the two variables (sh adds PWD and its own).
        let env = read(dir.path(), "env");
        assert!(env.contains("CONTAINER_ID=c1\n"), "{env}");
        assert!(env.contains("CONTAINER_NAMESPACE=k8s.io\n"), "{env}");
        assert!(!env.contains("PATH="), "{env}");
        // stdin and stderr /dev/null (stdout is the script's file), the
        // two outputs to read and the ready fd to write.
        let fds = read(dir.path(), "fds");
        for (fd, target) in [
            ("0", "/dev/null"),
            ("2", "/dev/null"),
            ("3", "pipe:"),
            ("4", "pipe:"),
            ("5", "pipe:"),
        ] {
            assert!(
                fds.lines()
                    .any(|l| l.contains(&format!(" {fd} -> {target}"))),
                "fd {fd}: {fds}"
            );
        }
        assert!(
            fds.lines()
                .any(|l| l.starts_with("lr") && l.contains(" 3 -> ")),
            "{fds}"
        );
        assert!(
            fds.lines()
                .any(|l| l.starts_with("l-w") && l.contains(" 5 -> ")),
            "{fds}"
        );
    }

    #[test]
    fn a_logger_that_ignores_sigterm_is_killed_after_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let c = sh_logger(dir.path(), "trap '' TERM; while :; do sleep 1; done");
        let process = LoggedProcess::new("n", "c");
        let (logger, _ends) = Logger::start(&c, &process, &pipe, READY_TIMEOUT).unwrap();
        let pid = logger.child.as_ref().unwrap().id() as i32;
        let began = Instant::now();
        logger.stop(Duration::from_millis(200));
        assert!(began.elapsed() >= Duration::from_millis(200));
        // Reaped: the pid is gone.
        assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    }

    #[test]
    fn a_logger_that_never_gets_ready_fails_the_start_and_is_killed() {
        let c = LoggerCommand {
            program: "/bin/sleep".into(),
            args: vec!["1000".into()],
        };
        let process = LoggedProcess::new("n", "c");
        let began = Instant::now();
        let Err(e) = Logger::start(&c, &process, &pipe, Duration::from_millis(100)) else {
            panic!("started");
        };
        assert!(e.to_string().contains("not ready within"), "{e}");
        assert!(began.elapsed() < Duration::from_secs(5));
        let missing = LoggerCommand {
            program: "/nonexistent/logger".into(),
            args: vec![],
        };
        let Err(e) = Logger::start(&missing, &process, &pipe, READY_TIMEOUT) else {
            panic!("started");
        };
        assert!(
            e.to_string()
                .starts_with("failed to start binary process /nonexistent/logger: "),
            "{e}"
        );
    }
}
