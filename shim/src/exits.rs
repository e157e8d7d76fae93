//! Exit watchers: one task per process that records how it ended and
//! publishes TaskExit exactly once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim_protos::events::task::TaskExit;
use containerd_shim_protos::protobuf::MessageField;
use lxcri::pidfd;
use lxcri::proc_events::ExitMonitor;
use lxcri::runtime::Runtime;
use tokio::io::unix::AsyncFd;
use tokio::sync::Mutex;

use crate::error::chain;
use crate::events::EventSender;
use crate::exec;
use crate::output_copier::{wait_settled, Progress, SETTLE_TIMEOUT};
use crate::process::{ExitInfo, ProcessStatus};
use crate::task::Task;

pub type Shared = Arc<Mutex<Task>>;

/// Waits for the container's PID 1 to end (pidfd), then records how: the
/// status the init wrote if it ended before `start` (a signal while
/// created), else the exit the kernel reported for the OCI process.
/// Processes of a container that did not own its PID namespace are killed
/// then, as containerd's runc shim does: none outlives its container or
/// keeps its output open.
pub async fn watch_init(
    shared: Shared,
    pid: i32,
    run_dir: PathBuf,
    exits: Arc<ExitMonitor>,
    events: EventSender,
) {
    // Taken before the wait, so the look after it need not queue for the task.
    let oom = shared.lock().await.oom.as_ref().map(|o| o.handle());
    // SAFETY: the OwnedFd stays owned by the AsyncFd until it is dropped.
    let registered = pidfd::pidfd_open(pid)
        .and_then(|fd| unsafe { AsyncFd::register(fd) }.map_err(std::io::Error::from));
    match registered {
        Ok(fd) => {
            if let Err(e) = fd.readable().await {
                tracing::warn!(pid, error = %e, "waiting for the container's init");
            }
        }
        Err(e) => tracing::warn!(pid, error = %e, "init already gone"),
    }
    if let Some(oom) = &oom {
        oom.look();
    }
    let (runtime, container) = {
        let mut c = shared.lock().await;
        // Gone, though its exit is reported only after its output and its
        // execs' exits: Kill and Pids answer as for a finished process.
        c.init.set_reaped();
        (c.runtime.clone(), c.container.clone())
    };
    let rt = runtime.clone();
    let info = tokio::task::spawn_blocking(move || exit_info(&rt, &exits, pid, &run_dir))
        .await
        .unwrap_or_else(|_| ExitInfo::now(UNKNOWN_EXIT));
    // A kill that ended the init is published before its exit.
    if let Some(oom) = oom {
        oom.check_before_exit(info.status).await;
    }
    if !container.owns_pid_namespace() {
        let rt = runtime.clone();
        let c = container.clone();
        let killed = tokio::task::spawn_blocking(move || rt.kill_remaining(&c)).await;
        if let Ok(Err(e)) = killed {
            tracing::warn!(pid, error = %chain(&e), "killing the container's remaining processes");
        }
    }
    let progress = shared.lock().await.init.io.progress();
    hand_over_output(progress).await;
    // The init's exit comes last, after those of the execs that were
    // running (they die with it), as runc's shim publishes it since
    // containerd 1.6.29, 1.7.14 and 2.0 (containerd#9719: a client that tidies up
    // the execs at the container's exit would see their exits afterwards).
    loop {
        let mut c = shared.lock().await;
        let running: Vec<_> = c
            .execs
            .values()
            .filter(|p| p.status != ProcessStatus::Created && p.exit().is_none())
            .map(|p| p.exit_watch())
            .collect();
        if running.is_empty() {
            if c.init.set_exited(info) {
                events.exit(TaskExit {
                    container_id: c.id().to_string(),
                    id: c.id().to_string(),
                    pid: pid as u32,
                    exit_status: info.status,
                    exited_at: MessageField::some(info.timestamp()),
                    ..Default::default()
                });
            }
            return;
        }
        drop(c);
        for mut rx in running {
            // An exec's exit is recorded and published under the task's
            // lock in one go: once it shows here, its TaskExit is queued.
            let _ = rx.wait_for(Option::is_some).await;
        }
    }
}

/// What the process wrote first, then its exit: waits (bounded) until the
/// output written so far was copied and containerd read it (see
/// [`wait_settled`]), but not for a child that keeps the output open: the
/// delete waits for that, as runc's shim.
async fn hand_over_output(progress: Vec<Arc<Progress>>) {
    let _ = tokio::task::spawn_blocking(move || wait_settled(&progress, SETTLE_TIMEOUT)).await;
}

/// How long the exit status may trail the pidfd's readiness (the
/// connector's event, or the reap pidfs waits for).
const EXIT_EVENT_WAIT: Duration = Duration::from_secs(5);

fn exit_info(runtime: &Runtime, exits: &ExitMonitor, pid: i32, run_dir: &Path) -> ExitInfo {
    if let Some(r) = runtime.read_exit(run_dir) {
        // The init ended before `start` and said how; no need to wait.
        let _ = exits.take_exit(pid, Duration::ZERO);
        return ExitInfo {
            status: r.status,
            exited_at_ns: r.exited_at_ns,
        };
    }
    match exits.take_exit(pid, EXIT_EVENT_WAIT) {
        Ok(Some(exit)) => ExitInfo::now(exit.exit_status()),
        Ok(None) => {
            tracing::error!(pid, "the kernel reported no exit for the container's PID 1");
            ExitInfo::now(UNKNOWN_EXIT)
        }
        Err(e) => {
            tracing::error!(pid, error = %e, "reading process exits");
            ExitInfo::now(UNKNOWN_EXIT)
        }
    }
}

/// What containerd reports when a status is not known (as its own shims).
const UNKNOWN_EXIT: u32 = 255;

pub async fn watch_exec(
    shared: Shared,
    id: String,
    exec_id: String,
    mut child: tokio::process::Child,
    events: EventSender,
) {
    let status = match child.wait().await {
        Ok(s) => exec::exit_code(s),
        Err(e) => {
            tracing::warn!(%id, %exec_id, error = %e, "waiting for exec");
            255
        }
    };
    let info = ExitInfo::now(status);
    // Marked at once, in the poll that reaped: Kill answers NotFound from
    // now on, as runc's shim does for a finished process, even while the
    // exit waits for the output below.
    let progress = shared
        .lock()
        .await
        .process_mut(&exec_id)
        .map(|p| {
            p.set_reaped();
            p.io.progress()
        })
        .unwrap_or_default();
    hand_over_output(progress).await;
    let mut c = shared.lock().await;
    if let Ok(p) = c.process_mut(&exec_id) {
        let pid = p.pid as u32;
        if p.set_exited(info) {
            events.exit(TaskExit {
                container_id: id,
                id: exec_id,
                pid,
                exit_status: info.status,
                exited_at: MessageField::some(info.timestamp()),
                ..Default::default()
            });
        }
    }
}
