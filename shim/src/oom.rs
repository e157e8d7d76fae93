//! TaskOOM for a container whose processes the kernel OOM-killed, as
//! containerd's runc shim publishes it (the CRI plugin then reports the
//! container's exit as `OOMKilled`). One watcher per container, from
//! create until the container's cgroup goes or the task is deleted.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use std::time::Duration;

use containerd_shim_protos::events::task::TaskOOM;
use lxcri::cgroup::{ContainerCgroup, OomCheck, OomWatch};
use tokio::io::unix::AsyncFd;
use tokio::task::AbortHandle;

use crate::error::chain;
use crate::events::EventSender;

/// How long an undecided v1 signal waits for the removal's, which the
/// kernel sends from its css offline work after an RCU grace period.
const REMOVAL_SIGNAL_WAIT: Duration = Duration::from_millis(500);

/// A container's OOM watch; aborts its watcher when dropped.
pub struct OomMonitor {
    shared: Arc<Shared>,
    watcher: AbortHandle,
}

struct Shared {
    container_id: String,
    watch: Mutex<OomWatch>,
    events: EventSender,
}

impl OomMonitor {
    /// Starts watching; `None` (logged) when the container's memory
    /// cgroup cannot be watched: the container runs on, as with runc's
    /// shim, only without OOM events.
    pub fn start(
        container_id: &str,
        cgroup: &ContainerCgroup,
        events: EventSender,
    ) -> Option<Self> {
        // The watcher waits on a duplicate; looks go through `watch`.
        let opened = OomWatch::open(cgroup)
            .map_err(|e| chain(&e))
            .and_then(|watch| match watch.fd().try_clone_to_owned() {
                Ok(fd) => Ok((watch, fd)),
                Err(e) => Err(format!("duplicating its fd: {e}")),
            });
        let (watch, fd) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!(container_id, error = %e, "not watching for OOM kills");
                return None;
            }
        };
        let shared = Arc::new(Shared {
            container_id: container_id.to_string(),
            watch: Mutex::new(watch),
            events,
        });
        let watcher = tokio::spawn(watch_loop(shared.clone(), fd)).abort_handle();
        Some(Self { shared, watcher })
    }

    /// For the exit watcher, which looks once more before TaskExit.
    pub fn handle(&self) -> OomExitCheck {
        OomExitCheck(self.shared.clone())
    }
}

/// The exit watcher's look at a container's OOM watch.
pub struct OomExitCheck(Arc<Shared>);

impl OomExitCheck {
    /// Publishes TaskOOM for an OOM signalled so far, without waiting. The
    /// exit watcher looks as soon as the init is gone: LXC removes the
    /// cgroup once it has reaped the init, and a signal read while the
    /// cgroup is there needs no removal signal to tell it from one.
    pub fn look(&self) {
        self.0.check();
    }

    /// Publishes TaskOOM now for an OOM not yet reported, so the CRI plugin
    /// has the reason when it records the exit (it takes one that comes
    /// after too). For an exit that looks like a kill (137), a v1 signal
    /// read after LXC removed the cgroup waits (bounded) for the next one,
    /// which tells an OOM's from the removal's; other exits do not wait.
    pub async fn check_before_exit(&self, status: u32) {
        let deadline = tokio::time::Instant::now() + REMOVAL_SIGNAL_WAIT;
        loop {
            let found = self.0.check();
            if !found.undecided || status != 137 || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for OomMonitor {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Shared {
    /// Publishes TaskOOM for what the watch found, and returns it.
    fn check(&self) -> OomCheck {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let found = watch.check();
        if found.oom {
            tracing::info!(container_id = %self.container_id, "the container ran out of memory");
            self.events.oom(TaskOOM {
                container_id: self.container_id.clone(),
                ..Default::default()
            });
        }
        found
    }

    fn settle(&self) {
        self.watch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .settle();
    }
}

async fn watch_loop(shared: Arc<Shared>, fd: OwnedFd) {
    // SAFETY: the OwnedFd stays owned by the AsyncFd until it is dropped.
    let fd = match unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from) {
        Ok(fd) => fd,
        Err(e) => {
            tracing::warn!(container_id = %shared.container_id, error = %e, "not watching for OOM kills");
            return;
        }
    };
    let mut wait = None;
    loop {
        let woken = match wait {
            None => fd.readable().await,
            Some(limit) => match tokio::time::timeout(limit, fd.readable()).await {
                Ok(woken) => woken,
                Err(_) => {
                    // No removal signal followed: the undecided one was it.
                    shared.settle();
                    return;
                }
            },
        };
        let Ok(mut ready) = woken else {
            return;
        };
        ready.clear_ready();
        // Cleared before the check drains: a change after the drain
        // wakes the loop again.
        let found = shared.check();
        wait = match (found.gone, found.undecided) {
            (true, false) => return,
            (_, true) => Some(REMOVAL_SIGNAL_WAIT),
            (false, false) => None,
        };
    }
}
