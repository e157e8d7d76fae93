//! A process's stdio, relayed the way containerd-shim-runc-v2 does it: the
//! process gets pipes (or, with a terminal, a pty whose master the shim
//! holds), and the shim copies between them and containerd's FIFOs
//! ([`crate::output_copier`]). The shim owns the FIFO ends and closes an
//! output FIFO once the process's side reached EOF, so containerd reads
//! every byte before EOF (containerd's client relies on exactly that: the
//! shim's side closes the pipes), or at the process's delete, as runc's
//! shim closes a process's IO then: a child that keeps the output open
//! (`sleep 60 &`) does not hold the client past the delete's bounded wait.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{mpsc, Arc};

use crate::error::{Result, ShimError};
use crate::log_binary::{self, LoggedProcess, Logger, LoggerCommand};
use crate::output_copier::{Copier, Progress};
use crate::stdio_uri;

/// The stdio paths containerd asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// Opens one output (stdout/stderr) target: a FIFO path, a `file://` URI,
/// or nothing (`/dev/null`). FIFOs are opened read-write so the open never
/// blocks and writes never hit EPIPE while containerd reattaches. A
/// `binary://` stdout is a logger ([`crate::log_binary`]), not a target.
pub fn open_output(uri: &str) -> Result<File> {
    if uri.is_empty() {
        return open_path("/dev/null", OpenOptions::new().write(true), "stdio");
    }
    if let Some(path) = file_uri_path(uri)? {
        // As runc's shim (`createIO`, case "file"): the directory made,
        // the file appended to, 0644 before the umask.
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                ShimError::Failed(format!(
                    "creating the log file's directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        return open_path(
            &path.to_string_lossy(),
            OpenOptions::new().create(true).append(true).mode(0o644),
            "log file",
        );
    }
    match uri.split_once("://").map(|(scheme, _)| scheme) {
        Some("binary") => {
            return Err(ShimError::InvalidArgument(format!(
                "stdio {uri}: a logging binary is named by the stdout URI (stderr goes to it too)"
            )))
        }
        // runc's shim knows fifo, binary and file (`unknown STDIO scheme`).
        Some(scheme) if scheme != "fifo" => {
            return Err(ShimError::InvalidArgument(format!(
                "stdio {uri}: unknown STDIO scheme {scheme}"
            )))
        }
        _ => {}
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

/// The path of a `file://` URI; `None` for another URI.
fn file_uri_path(uri: &str) -> Result<Option<std::path::PathBuf>> {
    if !uri.starts_with("file:") {
        return Ok(None);
    }
    let (_, path) = stdio_uri::parse(uri)?;
    if path.is_empty() || path == "/" {
        return Err(stdio_uri::invalid(uri, "names no file"));
    }
    Ok(Some(path.into()))
}

/// Opens containerd's stdin FIFO for the shim's copier, read-only (a
/// blocking reader that opens without a writer). Open a
/// [`hold_stdin_open`] writer right after it, before anything reads: a
/// FIFO without writers reads as EOF.
pub fn open_input(uri: &str) -> Result<File> {
    if uri.is_empty() {
        return open_path("/dev/null", OpenOptions::new().read(true), "stdin");
    }
    let path = fifo_path(uri);
    let f = open_path(
        &path,
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC),
        "stdin fifo",
    )?;
    // Non-blocking only for the open: the process expects blocking reads.
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
    Ok(f)
}

/// A writer of the stdin FIFO for the shim to hold, as runc's shim does:
/// the process sees EOF only once CloseIO dropped it, not when a client
/// that wrote (`ctr run -d`, an attach) goes away. Open it after the read
/// end (a non-blocking writer needs a reader); `None` without a FIFO.
pub fn hold_stdin_open(uri: &str) -> Result<Option<File>> {
    if uri.is_empty() {
        return Ok(None);
    }
    let path = fifo_path(uri);
    open_path(
        &path,
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC),
        "stdin fifo",
    )
    .map(Some)
}

fn open_path(path: &str, opts: &OpenOptions, what: &str) -> Result<File> {
    opts.open(Path::new(path))
        .map_err(|e| ShimError::Failed(format!("opening {what} {path}: {e}")))
}

/// Who the process's stdio pipes belong to: the host ids of its container's
/// root when the container has a user namespace, so that the init (root
/// there) can give them to the process's user and the process can open
/// them again by path (`/dev/stdout`); runc's shim does the same with the
/// `IoUid`/`IoGid` containerd sends for such containers. `None`: root's.
pub type PipeOwner = Option<(u32, u32)>;

/// [`PipeOwner`] of the container whose init is `pid`, for an exec (a
/// create has it from its plan: [`lxcri::runtime::CreatedContainer`]).
pub fn pipe_owner(pid: i32) -> Result<PipeOwner> {
    lxcri::userns::root_ids_of(pid).map_err(|e| {
        ShimError::Failed(format!(
            "stdio: the user namespace of the container's init (pid {pid}): {e}"
        ))
    })
}

/// What the shim keeps for a process's IO.
#[derive(Default)]
pub struct ProcessIo {
    /// The pty master (terminal processes), for resize.
    console: Option<Arc<OwnedFd>>,
    /// See [`hold_stdin_open`]; dropped by CloseIO and at the exit.
    stdin_writer: Option<File>,
    /// The logging binary of a `binary://` stdout, stopped at delete.
    logger: Option<Logger>,
    /// The output copiers, until the delete stops them.
    copiers: Vec<Copier>,
}

/// The process's ends of its relayed stdio.
pub struct ProcessStdio {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn pipe(owner: PipeOwner) -> Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ShimError::Failed(format!("creating a stdio pipe: {e}")))?;
    if let Some((uid, gid)) = owner {
        // Both ends are one inode.
        nix::unistd::fchown(&read, Some(uid.into()), Some(gid.into()))
            .map_err(|e| ShimError::Failed(format!("giving a stdio pipe to {uid}:{gid}: {e}")))?;
    }
    Ok((read, write))
}

fn dev_null_for_writing() -> Result<OwnedFd> {
    let f = OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| ShimError::Failed(format!("opening /dev/null: {e}")))?;
    Ok(OwnedFd::from(f))
}

fn fifo_path(uri: &str) -> String {
    uri.strip_prefix("fifo://").unwrap_or(uri).to_string()
}

impl ProcessIo {
    /// Pipes for a process without a terminal, with the copiers running.
    /// stdin too is a pipe the shim feeds from containerd's FIFO, as with
    /// runc's shim: the process never holds a host path (`/proc/self/fd/0`
    /// is `pipe:[...]`), and its EOF comes when the copier ends.
    /// A `binary://` stdout gets a logger reading both outputs from their
    /// pipes, and stdin `/dev/null` (runc's shim gives such a process no
    /// stdin); a `file://` one takes stderr too, as runc's shim does.
    pub fn relay(
        paths: &StdioPaths,
        owner: PipeOwner,
        process: &LoggedProcess,
    ) -> Result<(Self, ProcessStdio)> {
        let mut io = ProcessIo::default();
        if let Some(cmd) = LoggerCommand::parse(&paths.stdout) {
            let (logger, ends) =
                Logger::start(&cmd?, process, &|| pipe(owner), log_binary::READY_TIMEOUT).map_err(
                    |e| ShimError::Failed(format!("failed to create init process I/O: {e}")),
                )?;
            io.logger = Some(logger);
            let stdin = open_input("").map(OwnedFd::from)?;
            return Ok((
                io,
                ProcessStdio {
                    stdin,
                    stdout: ends.stdout,
                    stderr: ends.stderr,
                },
            ));
        }
        let stdin = io.input(&paths.stdin, owner)?;
        let stdout = io.output(&paths.stdout, owner)?;
        let stderr_uri = match file_uri_path(&paths.stdout)? {
            Some(_) => &paths.stdout,
            None => &paths.stderr,
        };
        let stderr = io.output(stderr_uri, owner)?;
        Ok((
            io,
            ProcessStdio {
                stdin,
                stdout,
                stderr,
            },
        ))
    }

    /// A pipe fed from the stdin FIFO `uri` until the FIFO's EOF, which
    /// comes once CloseIO dropped the shim's writer and no client writes;
    /// `/dev/null` without a FIFO.
    fn input(&mut self, uri: &str, owner: PipeOwner) -> Result<OwnedFd> {
        if uri.is_empty() {
            return open_input("").map(OwnedFd::from);
        }
        let fifo = open_input(uri)?;
        self.stdin_writer = hold_stdin_open(uri)?;
        let (read, write) = pipe(owner)?;
        std::thread::spawn(move || copy_stdin(fifo, File::from(write)));
        Ok(read)
    }

    /// A pipe whose read end is copied into `uri` until EOF.
    fn output(&mut self, uri: &str, owner: PipeOwner) -> Result<OwnedFd> {
        if uri.is_empty() {
            return dev_null_for_writing();
        }
        let target = open_output(uri)?;
        let (read, write) = pipe(owner)?;
        self.copiers.push(Copier::spawn(File::from(read), target)?);
        Ok(write)
    }

    /// At the process's delete, after its bounded wait for the copy to
    /// end: the output copiers end now, closing containerd's FIFOs, even
    /// if a child still holds the process's side open; what it writes from
    /// now on is dropped, as with runc's shim.
    pub fn stop_copiers(&mut self) {
        self.copiers.clear();
    }

    /// The copiers' end-of-copy messages, for the delete to wait on
    /// without holding the process.
    pub fn take_done(&mut self) -> Vec<mpsc::Receiver<()>> {
        self.copiers
            .iter_mut()
            .filter_map(Copier::take_done)
            .collect()
    }

    /// What the exit's wait for the output looks at ([`wait_settled`]).
    pub fn progress(&self) -> Vec<Arc<Progress>> {
        self.copiers.iter().map(Copier::progress).collect()
    }

    /// Starts copying between a pty master and containerd's FIFOs; with a
    /// `binary://` stdout, from the master into the logger's stdout pipe
    /// (its stderr pipe gets nothing), as runc's shim (`CopyConsole`).
    pub fn console(master: OwnedFd, paths: &StdioPaths, process: &LoggedProcess) -> Result<Self> {
        let master = Arc::new(master);
        let mut io = ProcessIo::default();
        let mut logger = None;
        let out = match LoggerCommand::parse(&paths.stdout) {
            Some(cmd) => {
                let (started, ends) =
                    Logger::start(&cmd?, process, &|| pipe(None), log_binary::READY_TIMEOUT)
                        .map_err(|e| {
                            ShimError::Failed(format!("failed to start console copy: {e}"))
                        })?;
                logger = Some(started.without_held_ends());
                File::from(ends.stdout)
            }
            None => open_output(&paths.stdout)?,
        };
        let reader = File::from(
            master
                .try_clone()
                .map_err(|e| ShimError::Failed(format!("dup pty: {e}")))?,
        );
        io.copiers.push(Copier::spawn(reader, out)?);
        if !paths.stdin.is_empty() {
            let input = open_input(&paths.stdin)?;
            // The copier reads until CloseIO, whoever attaches meanwhile.
            io.stdin_writer = hold_stdin_open(&paths.stdin)?;
            let writer = File::from(
                master
                    .try_clone()
                    .map_err(|e| ShimError::Failed(format!("dup pty: {e}")))?,
            );
            std::thread::spawn(move || copy_stdin(input, writer));
        }
        io.console = Some(master);
        io.logger = logger;
        Ok(io)
    }

    /// The logger of a `binary://` stdout, for the delete to stop.
    pub fn take_logger(&mut self) -> Option<Logger> {
        self.logger.take()
    }

    /// A process without a terminal has nothing to resize: fine, as with
    /// runc's shim (clients resize whatever they attach to).
    pub fn resize(&self, width: u32, height: u32) -> Result<()> {
        let Some(master) = &self.console else {
            return Ok(());
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

    /// CloseIO: the shim's writer goes, so the copier reads EOF (and the
    /// process gets it) once no client writes either.
    pub fn close_stdin(&mut self) {
        self.stdin_writer = None;
    }

    pub fn process_exited(&mut self) {
        self.close_stdin();
    }
}

/// Forwards containerd's stdin until its EOF (every writer gone: the
/// client's and, after CloseIO, the shim's), as runc's shim copies it:
/// what a client wrote before CloseIO still reaches the process.
fn copy_stdin(mut from: File, mut to: File) {
    let mut buf = [0u8; 32 * 1024];
    loop {
        match from.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
}

/// Gives the init its stdio: the process's ends of relayed pipes, or, for
/// a terminal, takes the pty master it opened and starts copying.
pub fn hand_over_stdio(
    created: &lxcri::runtime::CreatedContainer,
    stdio: &StdioPaths,
    process: &LoggedProcess,
) -> Result<ProcessIo> {
    if stdio.terminal {
        let master = created
            .init
            .recv_pty()
            .map_err(|e| ShimError::failed("create: terminal", &e))?;
        return ProcessIo::console(master, stdio, process);
    }
    let (io, ends) = ProcessIo::relay(stdio, created.root_ids, process)?;
    created
        .init
        .send_stdio(
            ends.stdin.as_raw_fd(),
            ends.stdout.as_raw_fd(),
            ends.stderr.as_raw_fd(),
        )
        .map_err(|e| ShimError::failed("create: stdio", &e))?;
    // `ends` closes here: only the process holds its ends now, so EOF
    // reaches the copiers when it (and its children) are done.
    Ok(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output_copier::{is_fifo, wait_done};
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    use std::time::Duration;

    fn test_process() -> LoggedProcess {
        LoggedProcess::new("n", "c")
    }

    #[test]
    fn output_uris_as_runcs_shim_reads_them() {
        open_output("").unwrap();
        for (uri, want) in [
            (
                "binary:///usr/bin/logger?x=y",
                "a logging binary is named by the stdout URI",
            ),
            ("tcp://127.0.0.1:1", "unknown STDIO scheme tcp"),
            ("file://", "names no file"),
        ] {
            let e = open_output(uri).unwrap_err();
            assert!(matches!(e, ShimError::InvalidArgument(_)), "{uri}: {e}");
            assert!(e.to_string().contains(want), "{uri}: {e}");
        }
        // A file URI: percent-decoded, its directory made, appended to.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new dir/c.log");
        let uri = format!("file://{}", dir.path().join("new%20dir/c.log").display());
        open_output(&uri).unwrap().write_all(b"a\n").unwrap();
        open_output(&uri).unwrap().write_all(b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
    }

    #[test]
    fn only_a_fifo_is_waited_on_until_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert!(is_fifo(&open_output(fifo.to_str().unwrap()).unwrap()));
        let log = format!("file://{}", dir.path().join("c.log").display());
        assert!(!is_fifo(&open_output(&log).unwrap()));
        assert!(!is_fifo(&open_output("").unwrap()));
    }

    #[test]
    fn a_file_uri_takes_stderr_too() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c.log");
        let paths = StdioPaths {
            stdout: format!("file://{}", log.display()),
            stderr: format!("file://{}", dir.path().join("elsewhere.log").display()),
            ..Default::default()
        };
        let (mut io, ends) = ProcessIo::relay(&paths, None, &test_process()).unwrap();
        File::from(ends.stdout).write_all(b"out\n").unwrap();
        File::from(ends.stderr).write_all(b"err\n").unwrap();
        drop(ends.stdin);
        wait_done(io.take_done(), Duration::from_secs(5));
        let mut lines: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
        assert!(!dir.path().join("elsewhere.log").exists());
    }

    fn fifo(dir: &std::path::Path, name: &str) -> String {
        let path = dir.join(name);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn relayed_output_arrives_whole_before_eof() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut reader, mut io, ends) = relayed_stdout(tmp.path());
        let reader_thread = std::thread::spawn(move || {
            // Blocking from here on: read until every writer is gone.
            set_blocking(&reader);
            let mut got = Vec::new();
            reader.read_to_end(&mut got).unwrap();
            got
        });
        let mut process_out = File::from(ends.stdout);
        let big = vec![b'x'; 1 << 20];
        process_out.write_all(&big).unwrap();
        drop(process_out);
        drop(ends.stdin);
        drop(ends.stderr);
        wait_done(io.take_done(), Duration::from_secs(10));
        assert_eq!(reader_thread.join().unwrap().len(), 1 << 20);
    }

    /// A background child of the process keeps its stdout open: the FIFO
    /// still closes at the delete, and what the child writes after it is
    /// dropped, as runc's shim closes a process's IO at its delete.
    #[test]
    fn the_delete_closes_an_output_fifo_a_child_holds_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (reader, mut io, ends) = relayed_stdout(tmp.path());
        let mut child_out = File::from(ends.stdout);
        child_out.write_all(b"early\n").unwrap();
        assert_eq!(
            read_within(&reader, Duration::from_secs(10)).as_deref(),
            Some(&b"early\n"[..])
        );
        assert_eq!(read_within(&reader, Duration::from_millis(100)), None);
        io.stop_copiers();
        // EOF: a readable FIFO that reads nothing.
        assert_eq!(
            read_within(&reader, Duration::from_secs(10)).as_deref(),
            Some(&b""[..])
        );
        // The copier's read end went with it: the child's next write
        // fails (a shell child would get SIGPIPE), as with runc's shim.
        assert!(child_out.write_all(b"late\n").is_err());
    }

    #[test]
    fn stdin_fifo_opens_without_a_writer_and_reads_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let input = fifo(tmp.path(), "in");
        let f = open_input(&input).unwrap();
        // SAFETY: fcntl on an fd the test owns.
        let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        open_input("").unwrap();
    }

    /// What `f` has to read within `timeout`: `None` when it has nothing
    /// (and no EOF) by then, `Some(empty)` at EOF.
    fn read_within(f: &File, timeout: Duration) -> Option<Vec<u8>> {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap();
        if poll(&mut fds, ms).unwrap() == 0 {
            return None;
        }
        let mut buf = [0u8; 64];
        let n = (&mut &*f).read(&mut buf).unwrap();
        Some(buf[..n].to_vec())
    }

    /// containerd's writer; non-blocking, so a missing reader fails the test
    /// instead of hanging it.
    fn open_client(path: &str) -> File {
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap()
    }

    /// A process's relayed stdout FIFO in `dir` with containerd's reader,
    /// opened first (non-blocking) as containerd does.
    fn relayed_stdout(dir: &std::path::Path) -> (File, ProcessIo, ProcessStdio) {
        let out = fifo(dir, "out");
        let reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&out)
            .unwrap();
        let paths = StdioPaths {
            stdout: out,
            ..Default::default()
        };
        let (io, ends) = ProcessIo::relay(&paths, None, &test_process()).unwrap();
        (reader, io, ends)
    }

    /// A relayed process with a stdin FIFO in `dir`; the FIFO's path.
    fn relayed_stdin(dir: &std::path::Path) -> (String, ProcessIo, ProcessStdio) {
        let input = fifo(dir, "in");
        let paths = StdioPaths {
            stdin: input.clone(),
            ..Default::default()
        };
        let (io, ends) = ProcessIo::relay(&paths, None, &test_process()).unwrap();
        (input, io, ends)
    }

    #[test]
    fn relayed_stdin_ends_at_close_io_not_when_a_client_leaves() {
        let tmp = tempfile::tempdir().unwrap();
        let (input, mut io, ends) = relayed_stdin(tmp.path());
        // A pipe of the shim's, as runc's shim gives: not the host's FIFO.
        let link = std::fs::read_link(format!("/proc/self/fd/{}", ends.stdin.as_raw_fd()));
        assert!(link.unwrap().to_string_lossy().starts_with("pipe:["));
        let process_in = File::from(ends.stdin);
        let client = open_client(&input);
        (&client).write_all(b"x").unwrap();
        drop(client);
        let wait = Duration::from_millis(200);
        assert_eq!(read_within(&process_in, wait).unwrap(), b"x");
        assert_eq!(read_within(&process_in, wait), None, "EOF with no client");
        io.close_stdin();
        assert_eq!(
            read_within(&process_in, wait).unwrap(),
            b"",
            "EOF at CloseIO"
        );
    }

    /// A client writes, leaves and sends CloseIO before the copier got to
    /// the bytes (ctr's order under load): they still reach the process,
    /// then its EOF.
    #[test]
    fn stdin_written_before_close_io_is_forwarded() {
        let tmp = tempfile::tempdir().unwrap();
        let (input, mut io, ends) = relayed_stdin(tmp.path());
        let client = open_client(&input);
        (&client).write_all(b"line one\nline two\n").unwrap();
        drop(client);
        io.close_stdin();
        let mut got = Vec::new();
        File::from(ends.stdin).read_to_end(&mut got).unwrap();
        assert_eq!(got, b"line one\nline two\n");
    }

    #[test]
    fn terminal_stdin_outlives_a_client_and_resize_needs_no_terminal() {
        let tmp = tempfile::tempdir().unwrap();
        let input = fifo(tmp.path(), "in");
        let pty = nix::pty::openpty(None, None).unwrap();
        let paths = StdioPaths {
            stdin: input.clone(),
            terminal: true,
            ..Default::default()
        };
        let io = ProcessIo::console(pty.master, &paths, &test_process()).unwrap();
        io.resize(100, 40).unwrap();
        let slave = File::from(pty.slave);
        let wait = Duration::from_secs(5);
        // Two clients one after the other: the second is still forwarded.
        for line in [&b"one\n"[..], b"two\n"] {
            let client = open_client(&input);
            (&client).write_all(line).unwrap();
            drop(client);
            assert_eq!(read_within(&slave, wait).unwrap(), line);
        }
        // No terminal: nothing to resize, and no error (as runc's shim).
        ProcessIo::default().resize(100, 40).unwrap();
    }

    fn set_blocking(f: &File) {
        // SAFETY: fcntl on an fd the test owns.
        unsafe {
            let flags = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
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
