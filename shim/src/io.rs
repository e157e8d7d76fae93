//! A process's stdio. Without a terminal the container gets containerd's
//! FIFOs themselves (no copying, output survives a shim restart); with a
//! terminal the shim owns the pty master and copies between it and the
//! FIFOs, like containerd-shim-runc-v2.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{Result, ShimError};

/// The stdio paths containerd asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Opens one output (stdout/stderr) target: a FIFO path, `file://` path,
/// or nothing (`/dev/null`). FIFOs are opened read-write so the open never
/// blocks and writes never hit EPIPE while containerd reattaches.
pub fn open_output(uri: &str) -> Result<File> {
    if uri.is_empty() {
        return open_path("/dev/null", OpenOptions::new().write(true), "stdio");
    }
    if let Some(path) = uri.strip_prefix("file://") {
        return open_path(
            path,
            OpenOptions::new().create(true).append(true).mode(0o640),
            "log file",
        );
    }
    if uri.starts_with("binary://") {
        return Err(ShimError::Unimplemented(format!(
            "stdio {uri}: binary:// logging drivers are not supported by lxcri"
        )));
    }
    let path = uri.strip_prefix("fifo://").unwrap_or(uri);
    open_path(
        path,
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC),
        "stdio fifo",
    )
}

/// Opens stdin: the FIFO itself, read-only. containerd holds the writer,
/// so `CloseIO` (containerd closing it) is EOF for the process.
pub fn open_input(uri: &str) -> Result<File> {
    if uri.is_empty() {
        return open_path("/dev/null", OpenOptions::new().read(true), "stdin");
    }
    let path = uri.strip_prefix("fifo://").unwrap_or(uri);
    let f = open_path(
        path,
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC),
        "stdin fifo",
    )?;
    // Non-blocking only for the open: the process expects blocking reads.
    set_blocking(&f)?;
    Ok(f)
}

fn open_path(path: &str, opts: &OpenOptions, what: &str) -> Result<File> {
    opts.open(Path::new(path))
        .map_err(|e| ShimError::Failed(format!("opening {what} {path}: {e}")))
}

fn set_blocking(f: &File) -> Result<()> {
    // SAFETY: fcntl on an fd we own.
    let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
    if flags < 0
        || unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0
    {
        return Err(ShimError::Failed(format!(
            "fcntl on stdin: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// What the shim keeps for a process's IO.
#[derive(Default)]
pub struct ProcessIo {
    /// The pty master (terminal processes), for resize.
    console: Option<Arc<OwnedFd>>,
    /// Set by CloseIO: the stdin copier stops forwarding.
    stdin_closed: Arc<AtomicBool>,
}

impl ProcessIo {
    /// Direct FIFO passing: nothing to keep.
    pub fn direct() -> Self {
        Self::default()
    }

    /// Starts copying between a pty master and containerd's FIFOs.
    pub fn console(master: OwnedFd, paths: &StdioPaths) -> Result<Self> {
        let master = Arc::new(master);
        let stdin_closed = Arc::new(AtomicBool::new(false));
        let out = open_output(&paths.stdout)?;
        let reader = File::from(
            master
                .try_clone()
                .map_err(|e| ShimError::Failed(format!("dup pty: {e}")))?,
        );
        std::thread::spawn(move || copy_until_eof(reader, out));
        if !paths.stdin.is_empty() {
            let stdin_path = paths
                .stdin
                .strip_prefix("fifo://")
                .unwrap_or(&paths.stdin)
                .to_string();
            let writer = File::from(
                master
                    .try_clone()
                    .map_err(|e| ShimError::Failed(format!("dup pty: {e}")))?,
            );
            let closed = stdin_closed.clone();
            std::thread::spawn(move || {
                // Blocking open: waits for containerd's writer, like runc's shim.
                if let Ok(input) = File::open(&stdin_path) {
                    copy_stdin(input, writer, &closed);
                }
            });
        }
        Ok(Self {
            console: Some(master),
            stdin_closed,
        })
    }

    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(master) = &self.console else {
            return Err(ShimError::FailedPrecondition(
                "the process has no terminal to resize".into(),
            ));
        };
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) } < 0 {
            return Err(ShimError::Failed(format!(
                "resizing pty: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }

    pub fn close_stdin(&self) {
        self.stdin_closed.store(true, Ordering::SeqCst);
    }

    pub fn process_exited(&mut self) {
        self.close_stdin();
    }
}

fn copy_until_eof(mut from: File, mut to: File) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            // EIO: every slave fd is closed, the terminal is done.
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

fn copy_stdin(mut from: File, mut to: File, closed: &AtomicBool) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if closed.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

/// Gives the init its stdio: the FIFOs themselves, or, for a terminal,
/// takes the pty master it opened and starts copying.
pub fn hand_over_stdio(
    created: &lxcri::runtime::CreatedContainer,
    stdio: &StdioPaths,
) -> Result<ProcessIo> {
    if stdio.terminal {
        let master = created
            .init
            .recv_pty()
            .map_err(|e| ShimError::failed("create: terminal", &e))?;
        return ProcessIo::console(master, stdio);
    }
    let stdin = open_input(&stdio.stdin)?;
    let stdout = open_output(&stdio.stdout)?;
    let stderr = open_output(&stdio.stderr)?;
    created
        .init
        .send_stdio(stdin.as_raw_fd(), stdout.as_raw_fd(), stderr.as_raw_fd())
        .map_err(|e| ShimError::failed("create: stdio", &e))?;
    Ok(ProcessIo::direct())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_paths_are_dev_null_and_binary_is_unimplemented() {
        open_output("").unwrap();
        open_input("").unwrap();
        assert!(matches!(
            open_output("binary:///usr/bin/logger?x=y"),
            Err(ShimError::Unimplemented(_))
        ));
    }

    #[test]
    fn fifo_opens_without_a_reader_and_file_uri_appends() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("out");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut f = open_output(fifo.to_str().unwrap()).unwrap();
        f.write_all(b"x").unwrap();
        let log = tmp.path().join("log");
        open_output(&format!("file://{}", log.display()))
            .unwrap()
            .write_all(b"a")
            .unwrap();
        open_output(&format!("file://{}", log.display()))
            .unwrap()
            .write_all(b"b")
            .unwrap();
        assert_eq!(std::fs::read_to_string(log).unwrap(), "ab");
    }
}
