//! One output copier: a thread copying a process's stdout or stderr (a
//! pipe, or a pty master) into its target (containerd's FIFO, a file)
//! until EOF, or until the process's delete stops it. And the two waits on
//! it, placed as runc's shim places them: the exit is reported once what
//! the process wrote has reached containerd ([`wait_settled`]), without
//! waiting for a child that still holds the output; the delete waits,
//! bounded, for the copy to end ([`wait_done`]), then stops it.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::{Result, ShimError};

/// How long the exit may wait for the output to reach containerd.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(2);

/// The exit's wait ends early when nothing moves for this long: nobody
/// reads the FIFO (`ctr run -d` left it), so waiting longer loses nothing.
const STALL: Duration = Duration::from_millis(200);

/// How long a delete waits for the copy to end: a child of the process may
/// hold its output open. containerd-shim-runc-v2's delete waits 10 s for
/// its copiers since containerd 2.1.5 (`waitTimeout(ctx, &e.wg,
/// 10*time.Second)`, "fix container logs lost because io close too
/// quickly"), 2 s before.
pub const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running copier, kept by the process's IO until its delete.
pub struct Copier {
    /// Dropped at the delete: hangs up the copier's stop pipe.
    _stop: OwnedFd,
    /// One message when the copy has ended.
    done: Option<mpsc::Receiver<()>>,
    progress: Arc<Progress>,
}

/// What the exit's wait looks at, shared with the copier's thread.
pub struct Progress {
    /// A second read end of the process's side, to see what is unread.
    source: File,
    /// The target, if it is a FIFO: what containerd has not read yet.
    fifo: Option<File>,
    /// Set from a read until its bytes were written out.
    busy: Arc<AtomicBool>,
}

impl Copier {
    /// Starts copying `from` into `to` on a thread of its own.
    pub fn spawn(from: File, to: File) -> Result<Self> {
        let failed = |what: &str, e: std::io::Error| {
            ShimError::Failed(format!("starting an output copier: {what}: {e}"))
        };
        let (stop_read, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| failed("stop pipe", e.into()))?;
        let source = from.try_clone().map_err(|e| failed("dup source", e))?;
        // A reader of its own, not a copy of the writer: containerd sees
        // EOF once the copier lets go of the FIFO.
        let fifo = if is_fifo(&to) {
            let path = format!("/proc/self/fd/{}", to.as_raw_fd());
            let reader = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
                .open(path)
                .map_err(|e| failed("FIFO reader", e))?;
            Some(reader)
        } else {
            None
        };
        let busy = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Progress {
            source,
            fifo,
            busy: busy.clone(),
        });
        let (done_tx, done) = mpsc::channel();
        // The thread holds no copy of the source: once it let go of its
        // end at a stop, a writer left gets EPIPE.
        std::thread::spawn(move || {
            copy_until_eof(from, to, stop_read, &busy);
            let _ = done_tx.send(());
        });
        Ok(Self {
            _stop: stop,
            done: Some(done),
            progress,
        })
    }

    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// The end-of-copy message, to wait on without holding the process.
    pub fn take_done(&mut self) -> Option<mpsc::Receiver<()>> {
        self.done.take()
    }
}

impl Progress {
    /// What the process wrote that has not reached containerd, in bytes
    /// still in the pipe (or a copy in flight) and bytes still in the FIFO.
    fn pending(&self) -> (usize, bool, usize) {
        // The source first: bytes read after this look are in flight, and
        // the busy flag below shows them.
        let source = unread(&self.source);
        let busy = self.busy.load(Ordering::SeqCst);
        let fifo = self.fifo.as_ref().map_or(0, unread);
        (source, busy, fifo)
    }
}

/// Copies until EOF on `from` (or EIO on a pty master); or, once `stop`'s
/// writer is gone (the delete), ends at once.
fn copy_until_eof(mut from: File, to: File, stop: OwnedFd, busy: &AtomicBool) {
    let mut buf = [0u8; 32 * 1024];
    let mut out = &to;
    loop {
        let mut fds = [
            PollFd::new(from.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => break,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            // The pipe first: a writer left gets EPIPE by the time
            // containerd sees EOF.
            drop(from);
            return;
        }
        busy.store(true, Ordering::SeqCst);
        let copied = match from.read(&mut buf) {
            // EIO: every slave fd is closed, the terminal is done.
            Ok(0) | Err(_) => false,
            Ok(n) => out.write_all(&buf[..n]).is_ok(),
        };
        busy.store(false, Ordering::SeqCst);
        if !copied {
            break;
        }
    }
}

/// Waits (bounded) until what the processes wrote so far has been copied
/// and containerd has read it from its FIFOs. The exit is reported after
/// it: containerd's client closes its FIFO readers as soon as it handles
/// the exit (containerd 1.6 `task.Delete` closes the IO first), and output
/// still in a pipe or FIFO would be lost, a fast container's log in CRI.
/// A child that keeps the output open does not hold it: only what was
/// written counts, not EOF. Ends early when nothing moves for [`STALL`]
/// (no reader).
pub fn wait_settled(progress: &[Arc<Progress>], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    let mut moved = Instant::now();
    loop {
        let now: Vec<_> = progress.iter().map(|p| p.pending()).collect();
        if now
            .iter()
            .all(|&(unread, busy, fifo)| unread == 0 && !busy && fifo == 0)
        {
            return;
        }
        let at = Instant::now();
        if last.as_ref() != Some(&now) {
            last = Some(now);
            moved = at;
        } else if at.duration_since(moved) >= STALL {
            return;
        }
        if at >= deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits (bounded) until the copiers have copied everything (their
/// source's EOF).
pub fn wait_done(done: Vec<mpsc::Receiver<()>>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    for rx in done {
        let _ = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Bytes waiting to be read in a pipe, FIFO or pty; 0 for anything else
/// (FIONREAD on a file counts what lies past this fd's position).
fn unread(f: &File) -> usize {
    if !is_fifo(f) && !is_char_device(f) {
        return 0;
    }
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through a valid pointer.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::FIONREAD, &mut n) };
    if rc < 0 {
        0
    } else {
        n.max(0) as usize
    }
}

pub fn is_fifo(f: &File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    f.metadata().is_ok_and(|m| m.file_type().is_fifo())
}

fn is_char_device(f: &File) -> bool {
    use std::os::unix::fs::FileTypeExt;
    f.metadata().is_ok_and(|m| m.file_type().is_char_device())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fifo_pair(dir: &std::path::Path) -> (File, File) {
        let path = dir.join("out");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // The shim's end read-write, as `open_output` opens it.
        let shim = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        (shim, reader)
    }

    fn process_pipe() -> (File, File) {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        (File::from(r), File::from(w))
    }

    fn read_some(mut f: &File, want: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < want && Instant::now() < deadline {
            match f.read(&mut buf) {
                Ok(n) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        got
    }

    #[test]
    fn the_exit_waits_until_containerd_read_what_was_written() {
        let tmp = tempfile::tempdir().unwrap();
        let (shim_fifo, reader) = fifo_pair(tmp.path());
        let (from, mut process) = process_pipe();
        let copier = Copier::spawn(from, shim_fifo).unwrap();
        process.write_all(b"hello").unwrap();
        let reading = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            read_some(&reader, 5, Duration::from_secs(10))
        });
        let started = Instant::now();
        wait_settled(&[copier.progress()], Duration::from_secs(10));
        // Not before the reader took it (its read comes after 100 ms).
        assert!(started.elapsed() >= Duration::from_millis(90));
        assert_eq!(reading.join().unwrap(), b"hello");
    }

    #[test]
    fn a_child_holding_the_output_does_not_hold_the_exit() {
        let tmp = tempfile::tempdir().unwrap();
        let (shim_fifo, reader) = fifo_pair(tmp.path());
        let (from, mut child) = process_pipe();
        let mut copier = Copier::spawn(from, shim_fifo).unwrap();
        child.write_all(b"early\n").unwrap();
        assert_eq!(read_some(&reader, 6, Duration::from_secs(10)), b"early\n");
        // The child keeps its end open and writes nothing more.
        let started = Instant::now();
        wait_settled(&[copier.progress()], Duration::from_secs(10));
        assert!(started.elapsed() < STALL, "{:?}", started.elapsed());
        // The copy has not ended: the delete waits for it, bounded.
        let done = copier.take_done().unwrap();
        assert!(done.recv_timeout(Duration::from_millis(50)).is_err());
        drop(child);
        wait_done(vec![done], Duration::from_secs(10));
    }

    #[test]
    fn nobody_reading_ends_the_exits_wait_early() {
        let tmp = tempfile::tempdir().unwrap();
        let (shim_fifo, _reader) = fifo_pair(tmp.path());
        let (from, mut process) = process_pipe();
        let copier = Copier::spawn(from, shim_fifo).unwrap();
        process.write_all(b"nobody reads this").unwrap();
        let started = Instant::now();
        wait_settled(&[copier.progress()], Duration::from_secs(10));
        let waited = started.elapsed();
        assert!(
            waited >= STALL && waited < Duration::from_secs(5),
            "{waited:?}"
        );
    }

    #[test]
    fn only_pipes_fifos_and_ptys_have_unread_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(unread(&File::open(&path).unwrap()), 0);
        let (r, mut w) = process_pipe();
        w.write_all(b"abc").unwrap();
        assert_eq!(unread(&r), 3);
    }
}
