//! External commands (`lxc-*`, `zfs`) behind one narrow interface, so the
//! logic above them is testable with a recording fake.
//!
//! The real runner never waits forever: a command gets a deadline (waited
//! for on a pidfd, so a fast command costs no polling delay) and is killed
//! past it, and its output is collected only until the command
//! itself has exited (plus a short grace), because `lxc-start -d` leaves a
//! daemonized monitor behind that may still hold the output pipes.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// How long a command may run before it is killed.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long output is still read after the command exited.
const OUTPUT_GRACE: Duration = Duration::from_millis(300);

/// Runs a program to completion and returns its output.
pub trait CommandRunner: Send + Sync {
    fn run(&self, program: &str, args: &[OsString]) -> std::io::Result<Output>;
}

/// The real thing, with [`COMMAND_TIMEOUT`], stdin from /dev/null and the
/// C locale (lxcri reads the commands' error messages).
#[derive(Debug, Clone, Copy)]
pub struct SystemCommands {
    pub timeout: Duration,
}

impl Default for SystemCommands {
    fn default() -> Self {
        Self {
            timeout: COMMAND_TIMEOUT,
        }
    }
}

impl CommandRunner for SystemCommands {
    fn run(&self, program: &str, args: &[OsString]) -> std::io::Result<Output> {
        let mut child = Command::new(program)
            .args(args)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = collect(child.stdout.take());
        let stderr = collect(child.stderr.take());
        // Our child stays unreaped until `wait`, so its pid cannot be reused
        // while the pidfd is made; the pidfd turns readable when it exits.
        let exited = crate::pidfd::pidfd_open(child.id() as i32)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(exited.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(n) if n > 0 => break,
                Ok(_) | Err(nix::Error::EINTR) if !left.is_zero() => continue,
                Ok(_) | Err(nix::Error::EINTR) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "`{}` did not finish within {:?}",
                            display(program, args),
                            self.timeout
                        ),
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let status = child.wait()?;
        Ok(Output {
            status,
            stdout: stdout.recv_timeout(OUTPUT_GRACE).unwrap_or_default(),
            stderr: stderr.recv_timeout(OUTPUT_GRACE).unwrap_or_default(),
        })
    }
}

/// Reads a pipe to its end on a thread; the receiver gets the bytes.
fn collect<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

/// Renders a command line for error messages.
pub fn display(program: &str, args: &[OsString]) -> String {
    let mut s = program.to_string();
    for a in args {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn output_and_status_are_returned() {
        let out = SystemCommands::default()
            .run("sh", &args(&["-c", "echo out; echo err >&2; exit 3"]))
            .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_command_past_its_deadline_is_killed() {
        let runner = SystemCommands {
            timeout: Duration::from_millis(200),
        };
        let start = Instant::now();
        let err = runner.run("sleep", &args(&["30"])).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert!(err.to_string().contains("sleep 30"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_daemon_holding_the_pipes_does_not_block() {
        // The shell exits at once; its background child keeps stdout open.
        let start = Instant::now();
        let out = SystemCommands::default()
            .run("sh", &args(&["-c", "echo started; sleep 5 & exit 0"]))
            .unwrap();
        assert!(out.status.success());
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }
}
