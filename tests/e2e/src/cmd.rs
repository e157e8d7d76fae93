//! Running commands with a deadline, so a hung `ctr` (a shim that never
//! answers) fails the test instead of hanging it.

use std::io::Read;
use std::io::Write;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// Default deadline for one `ctr` call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(90);

/// What a command printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// The command line, for messages.
    pub command: String,
    pub stdout: String,
    pub stderr: String,
    /// Exit code; `128 + n` when killed by signal `n`; `None` on timeout.
    pub code: Option<i32>,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Panics with everything known unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// stdout and stderr together, for substring checks on error messages.
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = match self.code {
            Some(c) => c.to_string(),
            None => "none (timed out and killed)".into(),
        };
        write!(
            f,
            "`{}`\n  exit code: {code}\n  stdout: {:?}\n  stderr: {:?}",
            self.command, self.stdout, self.stderr
        )
    }
}

/// Quotes `args` for a POSIX shell (for messages and `script -c`).
pub fn shell_quote(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
            {
                a.to_string()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    shell_quote(&refs)
}

/// Runs `cmd` to completion (stdin from /dev/null unless set), killing it
/// after `timeout`.
pub fn run(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    run_with_stdin(cmd, None, timeout)
}

/// Like [`run`], writing `stdin` to the command's stdin and closing it.
pub fn run_with_stdin(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> CmdOutput {
    let command = describe(cmd);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    let bg = Background::start(child, command, stdin.map(<[u8]>::to_vec));
    bg.wait(timeout)
}

/// A command running in the background (e.g. a foreground `ctr run` the
/// test signals from outside); its output is collected until it exits.
pub struct Background {
    child: Child,
    command: String,
    stdin: Option<ChildStdin>,
    readers: Vec<std::thread::JoinHandle<String>>,
}

impl Background {
    /// Spawns `cmd` with piped stdout/stderr (stdin /dev/null).
    pub fn spawn(cmd: &mut Command) -> Self {
        Self::spawn_stdin(cmd, Stdio::null())
    }

    /// Spawns `cmd` with stdin a pipe kept open until
    /// [`Background::write_stdin_and_close`].
    pub fn spawn_piped_stdin(cmd: &mut Command) -> Self {
        let mut bg = Self::spawn_stdin(cmd, Stdio::piped());
        bg.stdin = bg.child.stdin.take();
        bg
    }

    /// The pid of the command (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Writes `data` to the command's stdin and closes it.
    pub fn write_stdin_and_close(&mut self, data: &[u8]) {
        let mut pipe = self.stdin.take().expect("spawned with spawn_piped_stdin");
        pipe.write_all(data).expect("write to stdin");
    }

    fn spawn_stdin(cmd: &mut Command, stdin: Stdio) -> Self {
        let command = describe(cmd);
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
        Self::start(child, command, None)
    }

    fn start(mut child: Child, command: String, stdin: Option<Vec<u8>>) -> Self {
        if let Some(data) = stdin {
            let mut pipe = child.stdin.take().expect("stdin piped");
            std::thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let mut readers = Vec::new();
        for pipe in [
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            readers.push(std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = Vec::new();
                let _ = pipe.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            }));
        }
        Self {
            child,
            command,
            stdin: None,
            readers,
        }
    }

    /// Waits for the command, killing it after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> CmdOutput {
        let deadline = Instant::now() + timeout;
        // Woken by the exit itself (not a sleep-and-look loop), so that a
        // benchmark timing a command is not rounded up to a poll interval.
        let exited = lxcri::pidfd::pidfd_open(self.child.id() as i32).ok();
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match &exited {
                        Some(fd) => wait_readable(fd, left),
                        None => std::thread::sleep(left.min(Duration::from_millis(20))),
                    }
                }
                _ => {
                    // Only this child, which we spawned ourselves.
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break None;
                }
            }
        };
        let mut outs = std::mem::take(&mut self.readers)
            .into_iter()
            .map(|h| h.join().unwrap_or_default());
        let stdout = outs.next().unwrap_or_default();
        let stderr = outs.next().unwrap_or_default();
        let code = status.map(|s| {
            use std::os::unix::process::ExitStatusExt;
            s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
        });
        CmdOutput {
            command: std::mem::take(&mut self.command),
            stdout,
            stderr,
            code,
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `dir/NAME`: the C program `source` (`dir/NAME.c`), linked static so it
/// runs in an image without a libc (the busybox test image). Panics when
/// `cc` fails.
pub fn compile_static_c(dir: &std::path::Path, name: &str, source: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("program dir");
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write the C source");
    let bin = dir.join(name);
    let out = Command::new("cc")
        .args(["-static", "-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .expect("run cc");
    assert!(out.status.success(), "cc -static: {out:?}");
    bin
}

/// Polls `check` every 50 ms until it returns `Some`, or gives up after
/// `timeout` with `None`.
pub fn poll<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `fd` is readable (a pidfd: its process exited) or `timeout`.
fn wait_readable(fd: &std::os::fd::OwnedFd, timeout: Duration) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let ms = u16::try_from(timeout.as_millis().max(1)).unwrap_or(u16::MAX);
    let _ = poll(
        &mut [PollFd::new(fd.as_fd(), PollFlags::POLLIN)],
        PollTimeout::from(ms),
    );
}
