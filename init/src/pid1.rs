//! Mode 1: PID 1 of the container until `start`, then the OCI process
//! itself (see the numbered protocol in `lxcri-init-spec`).

use crate::prepare::{self, PrepareError};
use crate::process::{Command, Runner, Stdio};
use crate::signals::{self, Signals};
use crate::status::{self, EXIT_INIT_FAILED};
use crate::stdio::{self, StdioError};
use lxcri_init_spec::{
    ExitReport, InitMessage, InitSpec, CGROUPNS_TAG, CONTINUE_TAG, EXIT_FILE, INIT_ERROR_FILE,
    INIT_SOCKET, INIT_SPEC_FILE, RUNTIME_DIR, START_FIFO, STDIO_TAG,
};
use nix::errno::Errno;
use nix::fcntl::{open, openat, renameat, OFlag};
use nix::mount::{umount2, MntFlags};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
enum Pid1Error {
    #[error("read {INIT_SPEC_FILE}: {0}")]
    ReadSpec(#[source] std::io::Error),
    #[error("parse {INIT_SPEC_FILE}: {0}")]
    ParseSpec(#[source] serde_json::Error),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error("process: {0}")]
    Spec(#[from] crate::process::SpecError),
    #[error(transparent)]
    Setup(#[from] crate::process::SetupError),
    #[error(transparent)]
    Stdio(#[from] StdioError),
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
    #[error("write {EXIT_FILE}: {0}")]
    ExitFile(#[source] Errno),
}

type Result<T> = std::result::Result<T, Pid1Error>;

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> Pid1Error {
    let what = what.into();
    move |source| Pid1Error::Sys { what, source }
}

pub fn run() -> i32 {
    match run_inner() {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("lxcri-init: {e}\n");
            eprint!("{msg}");
            leave_last_words(&msg);
            EXIT_INIT_FAILED
        }
    }
}

/// Appends `msg` to [`INIT_ERROR_FILE`], for the shim to quote when the
/// container stops without the init having reported on its socket. Best
/// effort: when even this fails there is nowhere left to say it.
fn leave_last_words(msg: &str) {
    let path = Path::new(RUNTIME_DIR).join(INIT_ERROR_FILE);
    if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = f.write_all(msg.as_bytes());
    }
}

fn run_inner() -> Result<i32> {
    let runtime = Path::new(RUNTIME_DIR);
    // Block first: the kernel drops signals that PID 1 neither handles nor
    // blocks, so a `kill` while the container is being created or waits
    // for start would otherwise be lost; blocked, it is seen by
    // wait_for_start (or forwarded once the process runs).
    let signals = Signals::block().map_err(sys("block signals"))?;
    // The start gate is opened before Ready is reported: the shim may
    // write the start byte and close its end as soon as it has seen Ready,
    // and a FIFO nobody holds open drops what was written to it.
    let gate = open_gate(runtime);
    // Steps 1-2; the outcome is reported on the socket either way.
    let loaded = gate.and_then(|gate| {
        let spec = load_spec(runtime)?;
        crate::process::join_session_keyring(&spec.process)?;
        prepare::prepare_mounts(&spec)?;
        Ok((gate, spec))
    });
    let socket_path = runtime.join(INIT_SOCKET);
    let mut sock = UnixStream::connect(&socket_path).map_err(|e| Pid1Error::Sys {
        what: format!("connect {}", socket_path.display()),
        source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
    })?;
    // Step 3: the cgroup namespace first, so that failing to join it is
    // reported as any other reason the container cannot run.
    let prepared = loaded.and_then(|(gate, spec)| {
        if spec.join_runtime_cgroupns {
            join_runtime_cgroupns(&sock)?;
        }
        leave_runtime_dir(runtime, spec.own_rootfs)?;
        if spec.pause_after_mounts {
            let root = root_identity()?;
            stdio::send_message(&mut sock, &InitMessage::Mounted)?;
            // The shim's NICs, shared binds and create hooks happen now; a
            // shim that gives up closes the socket instead.
            stdio::recv_fds(sock.as_fd(), CONTINUE_TAG, 0)?;
            // The hooks' host view (lxcri-init host-view) must be lifted:
            // never go on in the host's tree.
            if root_identity()? != root {
                return Err(Pid1Error::Sys {
                    what: "the root after the create hooks is not the container's".into(),
                    source: Errno::EPERM,
                });
            }
        }
        prepare::prepare_rest(&spec)?;
        // The program is looked up as the process's user, below.
        let name = Path::new(spec.process.args.first().map_or("", String::as_str));
        let mut command = Command::new(&spec.process, name)?
            .session_keyring_joined()
            .with_start_hooks(spec.start_hooks.clone());
        command.look_up_before_start()?;
        prepare::finish_rootfs(&spec)?;
        Ok((gate, (spec, command)))
    });
    let ((dir, fifo), (spec, command)) = match prepared {
        Ok(ok) => {
            stdio::send_message(&mut sock, &InitMessage::Ready)?;
            ok
        }
        Err(e) => {
            let message = e.to_string();
            // The shim may have closed the socket first (it gave up).
            let _ = stdio::send_message(&mut sock, &InitMessage::Failed { message });
            return Err(e);
        }
    };
    // Step 4.
    let child_stdio = if spec.process.terminal {
        let slave = stdio::hand_over_new_pty(sock.as_fd(), spec.process.console_size)?;
        stdio::bind_console(&slave)?;
        Stdio::Terminal(slave)
    } else {
        Stdio::Fds(stdio::recv_fds(sock.as_fd(), STDIO_TAG, 3)?)
    };
    drop(sock);

    // Step 5.
    if let Some(code) = wait_for_start(&fifo, &signals)? {
        // Ended while created, as runc's would have been.
        write_exit(&dir, code)?;
        return Ok(code as i32);
    }
    // Step 6: become the OCI process, as runc's init does. Our signalfd
    // is close-on-exec and the mask is reset before execve. The start FIFO
    // (close-on-exec too) stays open until then: its last reader going is
    // how the shim's start knows the process runs.
    drop(signals);
    let _open_until_exec = fifo;
    command.exec(child_stdio, Runner::Pid1)
}

/// The device and inode of this process's root directory.
fn root_identity() -> Result<(u64, u64)> {
    let st = nix::sys::stat::stat("/").map_err(sys("stat /"))?;
    Ok((st.st_dev, st.st_ino))
}

/// Detaches the runtime directory: from here on the init reaches it only
/// through the fds it holds (the socket, the directory, the start FIFO),
/// and the OCI process never sees it. In a rootfs of its own the mount
/// point LXC made (`create=dir`) goes too, as runc leaves nothing of its
/// own there; one the image had with files in it stays as it was.
fn leave_runtime_dir(runtime: &Path, own_rootfs: bool) -> Result<()> {
    umount2(runtime, MntFlags::MNT_DETACH).map_err(sys(format!("detach {RUNTIME_DIR}")))?;
    if own_rootfs {
        let _ = std::fs::remove_dir(runtime);
    }
    Ok(())
}

/// Joins the cgroup namespace the shim sends (see
/// `InitSpec::join_runtime_cgroupns`).
fn join_runtime_cgroupns(sock: &UnixStream) -> Result<()> {
    let ns = stdio::recv_fds(sock.as_fd(), CGROUPNS_TAG, 1)?;
    setns(&ns[0], CloneFlags::CLONE_NEWCGROUP).map_err(sys("join the runtime's cgroup namespace"))
}

/// The runtime dir (for the exit report, once it is unmounted) and the
/// start FIFO.
fn open_gate(runtime: &Path) -> Result<(OwnedFd, OwnedFd)> {
    let dir = open(
        runtime,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(format!("open {RUNTIME_DIR}")))?;
    let fifo = open(
        &runtime.join(START_FIFO),
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(format!("open {RUNTIME_DIR}/{START_FIFO}")))?;
    Ok((dir, fifo))
}

fn load_spec(runtime: &Path) -> Result<InitSpec> {
    let text = std::fs::read(runtime.join(INIT_SPEC_FILE)).map_err(Pid1Error::ReadSpec)?;
    serde_json::from_slice(&text).map_err(Pid1Error::ParseSpec)
}

/// Block until the shim writes the start byte. Returns the exit status
/// if a signal that ends a created container arrives first
/// ([`signals::ends_before_start`]); others are dropped, as runc's init
/// drops them.
fn wait_for_start(fifo: &OwnedFd, signals: &Signals) -> Result<Option<u32>> {
    let faults = Signals::block_faults().map_err(sys("block the fault signals"))?;
    let pid1 = signals::is_pid1();
    loop {
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.fd(), PollFlags::POLLIN),
            PollFd::new(faults.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys("wait for start")(e)),
        }
        let fifo_ready = fds[0].any().unwrap_or(false);
        for (ready, set) in [(fds[1].any(), signals), (fds[2].any(), &faults)] {
            if ready.unwrap_or(false) {
                let signo = set.next().map_err(sys("read signal"))?;
                if let Some(code) = signals::ends_before_start(signo, pid1) {
                    return Ok(Some(code));
                }
            }
        }
        if fifo_ready {
            let mut byte = [0u8; 1];
            match nix::unistd::read(fifo, &mut byte) {
                Ok(1) => return Ok(None),
                Ok(_) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
                Err(e) => return Err(sys(format!("read {START_FIFO}"))(e)),
            }
        }
    }
}

/// Write the report atomically (temp file + rename) through the directory
/// fd: the runtime dir is no longer mounted anywhere we can see.
fn write_exit(dir: &OwnedFd, code: u32) -> Result<()> {
    let report = ExitReport {
        status: code,
        exited_at_ns: status::now_ns(),
    };
    let json = serde_json::to_vec(&report).expect("ExitReport always serializes");
    let tmp = format!(".{EXIT_FILE}.tmp");
    let fd = openat(
        dir,
        tmp.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_TRUNC | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    )
    .map_err(Pid1Error::ExitFile)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&json)
        .and_then(|()| file.sync_all())
        .map_err(|e| Pid1Error::ExitFile(Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))))?;
    drop(file);
    renameat(dir, tmp.as_str(), dir, EXIT_FILE).map_err(Pid1Error::ExitFile)?;
    nix::unistd::fsync(dir).map_err(Pid1Error::ExitFile)?;
    Ok(())
}
