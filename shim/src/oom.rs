//! TaskOOM for a container whose processes the kernel OOM-killed, as
//! containerd's runc shim publishes it (the CRI plugin then reports the
//! container's exit as `OOMKilled`). One watcher per container, from
//! create until the container's cgroup goes or the task is deleted.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use containerd_shim_protos::events::task::TaskOOM;
use lxcri::cgroup::{ContainerCgroup, OomWatch};
use tokio::io::unix::AsyncFd;
use tokio::task::AbortHandle;

use crate::error::chain;
use crate::events::EventSender;

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
        let opened = OomWatch::open(cgroup).and_then(|watch| {
            let fd = watch.fd().try_clone_to_owned().map_err(|source| {
                lxcri::cgroup::OomWatchError::Read {
                    path: "the OOM watch's fd".into(),
                    source,
                }
            })?;
            Ok((watch, fd))
        });
        let (watch, fd) = match opened {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!(container_id, error = %chain(&e), "not watching for OOM kills");
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

    /// Publishes TaskOOM now if there were kills not yet reported: the
    /// exit watcher calls it before TaskExit, so the CRI plugin has the
    /// reason when it records the exit.
    pub fn check(&self) {
        self.shared.check();
    }
}

impl Drop for OomMonitor {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl Shared {
    /// `false` once the cgroup is gone: nothing more to watch.
    fn check(&self) -> bool {
        let mut watch = self.watch.lock().unwrap_or_else(|p| p.into_inner());
        let found = watch.check();
        if found.oom {
            tracing::info!(container_id = %self.container_id, "the container ran out of memory");
            self.events.oom(TaskOOM {
                container_id: self.container_id.clone(),
                ..Default::default()
            });
        }
        !found.gone
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
    loop {
        let Ok(mut ready) = fd.readable().await else {
            return;
        };
        ready.clear_ready();
        // Cleared before the check drains: a change after the drain
        // wakes the loop again.
        if !shared.check() {
            return;
        }
    }
}
