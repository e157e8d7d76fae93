//! A task: the container's init process plus its exec processes, and the
//! runtime that made the container.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use lxcri::runtime::{Container, Runtime};

use crate::error::{Result, ShimError};
use crate::oom::OomMonitor;
use crate::process::Process;

pub struct Task {
    pub container: Arc<Container>,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// The runtime (and configuration) this container was created with.
    pub runtime: Arc<Runtime>,
    /// Held open until start; see `CreatedContainer::start_gate`.
    pub start_gate: Option<File>,
    /// Publishes TaskOOM; `None` when the memory cgroup cannot be watched.
    pub oom: Option<OomMonitor>,
}

impl Task {
    pub fn id(&self) -> &str {
        self.container.id()
    }

    pub fn process(&self, exec_id: &str) -> Result<&Process> {
        if exec_id.is_empty() {
            return Ok(&self.init);
        }
        self.execs.get(exec_id).ok_or_else(|| {
            ShimError::NotFound(format!("exec {exec_id} not found in {}", self.id()))
        })
    }

    pub fn process_mut(&mut self, exec_id: &str) -> Result<&mut Process> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        let id = self.id().to_string();
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| ShimError::NotFound(format!("exec {exec_id} not found in {id}")))
    }

    /// Releases the init: one byte into the start FIFO. Returns once the
    /// init has become the OCI process (its end of the FIFO is close-on-exec
    /// and held until `execve`), as runc's start returns only after its
    /// init read the exec FIFO right before `execve`: whoever looks at the
    /// container next sees the process, not the init.
    pub fn release_init(&mut self) -> Result<()> {
        let id = self.id().to_string();
        let gate = self.start_gate.take().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("container {id} was already started"))
        })?;
        let failed =
            |e: std::io::Error| ShimError::Failed(format!("releasing the init of {id}: {e}"));
        // The gate is also a reader (opened read-write so create never
        // blocks); a write-only copy sees the FIFO lose its last reader.
        // No reader left (the init is gone): write through the gate as
        // before, and the exit watcher reports what happened.
        let writer = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(format!("/proc/self/fd/{}", gate.as_raw_fd()));
        let Ok(mut writer) = writer else {
            return (&gate).write_all(&[1]).map_err(failed);
        };
        drop(gate);
        writer.write_all(&[1]).map_err(failed)?;
        // The startContainer hooks run first: poststart follows the
        // process's execve, as the runtime spec orders them.
        let limit = EXEC_WAIT.saturating_add(self.container.start_hooks_time());
        wait_for_no_reader(&writer, limit);
        Ok(())
    }
}

/// How long a start waits for the init's `execve` (besides its
/// `startContainer` hooks); past it the start returns anyway (the process
/// runs or its exit is reported).
const EXEC_WAIT: Duration = Duration::from_secs(2);

/// Waits until the FIFO `writer` writes into has no reader left.
fn wait_for_no_reader(writer: &File, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tracing::warn!("the init did not exec within {limit:?} of its start");
            return;
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(writer.as_fd(), PollFlags::empty())];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => {
                let gone = PollFlags::POLLERR | PollFlags::POLLHUP;
                if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
                    return;
                }
            }
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_losing_its_last_reader_ends_the_wait() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let began = Instant::now();
        wait_for_no_reader(&writer, Duration::from_millis(100));
        assert!(
            began.elapsed() >= Duration::from_millis(100),
            "a reader is there"
        );
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(reader);
        });
        let began = Instant::now();
        wait_for_no_reader(&writer, Duration::from_secs(5));
        assert!(
            began.elapsed() < Duration::from_secs(2),
            "the close was seen"
        );
        closer.join().unwrap();
    }
}
