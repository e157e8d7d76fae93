//! The task logic, free of ttrpc plumbing: every method takes a plain
//! request and returns a plain result, so it can be driven from tests.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use containerd_shim::ExitSignal;
use containerd_shim_protos::api::{
    CreateTaskRequest, DeleteRequest, DeleteResponse, KillRequest, StartRequest, StartResponse,
    StateRequest, StateResponse, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskIO, TaskStart};
use containerd_shim_protos::protobuf::MessageField;
use lxcri::config::Config;
use lxcri::proc_events::ExitMonitor;
use lxcri::rootfs::RootfsMount;
use lxcri::runtime::{Container, CreateRequest, Runtime, RuntimeError, SignalNumber};
use tokio::sync::Mutex;

use crate::error::{chain, Result, ShimError};
use crate::events::EventSender;
use crate::exits::{watch_init, Shared};
use crate::io::{hand_over_stdio, StdioPaths};
use crate::listen_socket::ListenSocket;
use crate::log_binary::{LoggedProcess, Logger, STOP_TIMEOUT};
use crate::oom::OomMonitor;
use crate::op_metrics;
use crate::options;
use crate::output_copier::{wait_done, DELETE_TIMEOUT};
use crate::process::{wait_exit, ExitInfo, Process, ProcessStatus};
use crate::task::Task;

mod control;
mod exec_process;

use exec_process::lock_exec;

pub struct Service {
    namespace: String,
    /// The runtime of the node's configuration, or why it did not load.
    runtime: std::result::Result<Arc<Runtime>, String>,
    /// How each container's PID 1 ended (the kernel's process events);
    /// why not, when this kernel cannot tell.
    exits: std::result::Result<Arc<ExitMonitor>, String>,
    tasks: Mutex<HashMap<String, Shared>>,
    events: EventSender,
    socket: ListenSocket,
    exit: Arc<ExitSignal>,
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ShimError::Failed(format!("internal task failed: {e}")))
}

/// Stops the logging binaries of deleted processes, as runc's shim does in
/// its delete: each gets SIGTERM and up to [`STOP_TIMEOUT`] to end.
async fn stop_loggers(loggers: Vec<Logger>) {
    if loggers.is_empty() {
        return;
    }
    let _ = blocking(move || {
        std::thread::scope(|s| {
            for logger in loggers {
                s.spawn(move || logger.stop(STOP_TIMEOUT));
            }
        })
    })
    .await;
}

/// A runtime failure as containerd should see it.
fn runtime_error(op: &str, e: RuntimeError) -> ShimError {
    match e {
        RuntimeError::ProcessGone { .. } => ShimError::NotFound(format!("{op}: {}", chain(&e))),
        e if e.is_invalid_input() => ShimError::InvalidArgument(format!("{op}: {}", chain(&e))),
        e => ShimError::failed(op, &e),
    }
}

impl Service {
    pub fn new(
        namespace: String,
        runtime: std::result::Result<Arc<Runtime>, String>,
        events: EventSender,
        socket: ListenSocket,
        exit: Arc<ExitSignal>,
    ) -> Self {
        let exits = ExitMonitor::open().map(Arc::new).inspect(|m| {
            let from = if m.uses_pidfs() {
                "pidfs"
            } else {
                "the process-events connector"
            };
            tracing::debug!("exit statuses from {from}");
        });
        let exits = exits.map_err(|e| {
            format!("no pidfs exit statuses (Linux 6.15) and the kernel's process-events connector is unavailable ({e}): lxcri cannot learn how a container's PID 1 ends")
        });
        Self {
            namespace,
            runtime,
            exits,
            tasks: Mutex::new(HashMap::new()),
            events,
            socket,
            exit,
        }
    }

    async fn get(&self, id: &str) -> Result<Shared> {
        self.tasks
            .lock()
            .await
            .get(id)
            .cloned()
            .ok_or_else(|| ShimError::NotFound(format!("container {id} not found")))
    }

    /// The runtime of a task and its container, for a call made outside
    /// the task's lock.
    async fn runtime_of(&self, id: &str) -> Result<(Arc<Runtime>, Arc<Container>)> {
        let shared = self.get(id).await?;
        let c = shared.lock().await;
        Ok((c.runtime.clone(), c.container.clone()))
    }

    pub async fn create(&self, req: CreateTaskRequest) -> Result<u32> {
        if !req.checkpoint.is_empty() || !req.parent_checkpoint.is_empty() {
            return Err(ShimError::Unimplemented(
                "create: restoring from a checkpoint is not supported by lxcri".into(),
            ));
        }
        if self.tasks.lock().await.contains_key(&req.id) {
            return Err(ShimError::AlreadyExists(format!(
                "container {} already exists",
                req.id
            )));
        }
        let exits = self
            .exits
            .clone()
            .map_err(|e| ShimError::Failed(format!("create: {e}")))?;
        let bundle = PathBuf::from(&req.bundle);
        let runtime = match options::config_path(req.options.as_ref())? {
            Some(path) => {
                let config =
                    Config::load(Some(&path)).map_err(|e| ShimError::failed("create", &e))?;
                Arc::new(Runtime::new(config))
            }
            // A config file that does not load fails the create: never the
            // defaults in its place.
            None => self.runtime.clone().map_err(|e| {
                ShimError::Failed(format!("create: loading the lxcri configuration: {e}"))
            })?,
        };
        // Before anything is made: containerd's cleanup of this container
        // uses what it was created with.
        options::save_config_snapshot(&bundle, runtime.config())?;
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
        };
        let create = CreateRequest {
            namespace: self.namespace.clone(),
            id: req.id.clone(),
            bundle: bundle.clone(),
            rootfs_mounts: req
                .rootfs
                .iter()
                .map(|m| RootfsMount {
                    kind: m.type_.clone(),
                    source: m.source.clone(),
                    options: m.options.clone(),
                })
                .collect(),
        };
        let rt = runtime.clone();
        let io_paths = stdio.clone();
        let process = LoggedProcess::new(&self.namespace, &req.id);
        let watch = exits.clone();
        let began = std::time::Instant::now();
        let created = blocking(move || {
            let created = rt
                .create(&create)
                .map_err(|e| (ShimError::create_failed(&e), e.cause()))?;
            // Before start, so the OCI process's exit cannot be missed.
            let watched = watch
                .watch(created.init.pid())
                .map_err(|e| ShimError::Failed(format!("create: watching the init's exit: {e}")));
            let handoff = if let Err(e) = watched {
                Err(e)
            } else if created.terminal != io_paths.terminal {
                Err(ShimError::InvalidArgument(format!(
                    "create: process.terminal is {} in config.json but the request says terminal={}",
                    created.terminal, io_paths.terminal
                )))
            } else {
                hand_over_stdio(&created, &io_paths, &process)
            };
            match handoff {
                Ok(io) => Ok((created, io)),
                Err(e) => {
                    if let Err(d) = rt.destroy(
                        &create.namespace,
                        &create.id,
                        &create.bundle,
                        Some(&created.container.record),
                    ) {
                        tracing::warn!(error = %chain(&d), "create: cleaning up after a failed stdio handoff");
                    }
                    // No longer ours to watch.
                    let _ = watch.take_exit(created.init.pid(), std::time::Duration::ZERO);
                    Err((e, "shim"))
                }
            }
        })
        .await?;
        let (created, io) = match created {
            Ok(created) => {
                op_metrics::record(&runtime, "create", began, None);
                created
            }
            Err((e, cause)) => {
                op_metrics::record(&runtime, "create", began, Some(cause));
                return Err(e);
            }
        };
        let pid = created.init.pid();
        let run_dir = created.container.run_dir.clone();
        // From create, as runc's shim: a kill is counted from here on.
        let oom = created
            .container
            .cgroup
            .as_ref()
            .and_then(|cgroup| OomMonitor::start(&req.id, cgroup, self.events.clone()));
        let task = Task {
            container: Arc::new(created.container),
            init: Process::new(req.id.clone(), pid, stdio, io),
            execs: HashMap::new(),
            start_gate: Some(created.start_gate),
            runtime: runtime.clone(),
            oom,
        };
        let shared = Arc::new(Mutex::new(task));
        self.tasks
            .lock()
            .await
            .insert(req.id.clone(), shared.clone());
        self.events.create(TaskCreate {
            container_id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: req.rootfs.clone(),
            io: MessageField::some(TaskIO {
                stdin: req.stdin,
                stdout: req.stdout,
                stderr: req.stderr,
                terminal: req.terminal,
                ..Default::default()
            }),
            pid: pid as u32,
            ..Default::default()
        });
        tokio::spawn(watch_init(shared, pid, run_dir, exits, self.events.clone()));
        Ok(pid as u32)
    }

    pub async fn start(&self, req: StartRequest) -> Result<StartResponse> {
        let shared = self.get(&req.id).await?;
        if !req.exec_id.is_empty() {
            return self.start_exec(&shared, &req).await;
        }
        let mut c = shared.lock().await;
        c.init.ensure(&[ProcessStatus::Created], "start")?;
        let began = std::time::Instant::now();
        let released = c.release_init();
        if released.is_err() {
            op_metrics::record(&c.runtime, "start", began, Some("init"));
        }
        released?;
        c.init.status = ProcessStatus::Running;
        let (rt, container) = (c.runtime.clone(), c.container.clone());
        let hooks = if container.has_poststart_hooks() {
            blocking(move || {
                rt.poststart(&container).inspect_err(|_| {
                    // As runc: a failed poststart hook stops the container.
                    let _ = rt.kill(&container, SignalNumber::KILL, false);
                })
            })
            .await?
        } else {
            Ok(())
        };
        let failed = hooks.as_ref().err().map(|e| e.cause());
        op_metrics::record(&c.runtime, "start", began, failed);
        hooks.map_err(|e| ShimError::failed("start", &e))?;
        let pid = c.init.pid as u32;
        self.events.start(TaskStart {
            container_id: req.id.clone(),
            pid,
            ..Default::default()
        });
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }

    pub async fn kill(&self, req: KillRequest) -> Result<()> {
        let shared = self.get(&req.id).await?;
        let _exec_lock = lock_exec(&shared, &req.exec_id).await;
        let c = shared.lock().await;
        let p = c.process(&req.exec_id)?;
        if req.all && req.exec_id.is_empty() && p.has_ended() {
            // Nothing left to signal, which runc's shim answers with success.
            return Ok(());
        }
        // Signal 0 only asks whether the process is there, as kill(2).
        let signal = match req.signal {
            0 => None,
            n => Some(kill_signal(n)?),
        };
        // Before the end check: an exec that failed to start is over but
        // was never created, and runc's shim says so.
        if !req.exec_id.is_empty() && p.status == ProcessStatus::Created {
            return Err(ShimError::FailedPrecondition(format!(
                "exec {} is not started",
                p.id
            )));
        }
        if p.has_ended() {
            return Err(ShimError::NotFound(format!(
                "process {} already finished",
                p.id
            )));
        }
        let Some(signal) = signal else {
            return Ok(());
        };
        if !req.exec_id.is_empty() {
            let pidfd = p.pidfd.as_ref().ok_or_else(|| {
                ShimError::FailedPrecondition(format!("exec {} is not started", p.id))
            })?;
            return send_signal(pidfd, p.pid, signal);
        }
        let paused = c.init.status == ProcessStatus::Paused;
        let (rt, container) = (c.runtime.clone(), c.container.clone());
        // Held until the kill is done: the exit watcher reports the exit
        // only after that, so on pve containerd's delete never races PVE's
        // stop task.
        let result = blocking(move || {
            rt.kill(&container, signal, req.all)?;
            if paused && signal == SignalNumber::KILL {
                // A frozen process dies only once thawed.
                let _ = rt.resume(&container);
            }
            Ok(())
        })
        .await?
        .map_err(|e| runtime_error("kill", e));
        drop(c);
        result
    }

    pub async fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse> {
        let shared = self.get(&req.id).await?;
        if !req.exec_id.is_empty() {
            let _exec_lock = lock_exec(&shared, &req.exec_id).await;
            let done = {
                let mut c = shared.lock().await;
                let p = c.process_mut(&req.exec_id)?;
                p.ensure(&[ProcessStatus::Created, ProcessStatus::Stopped], "delete")?;
                p.io.take_done()
            };
            // A child of the process may hold its output open: the copy
            // may end first, bounded, as runc's shim waits at the delete.
            wait_output_done(done).await;
            let mut c = shared.lock().await;
            let p = c.process_mut(&req.exec_id)?;
            // Never started: no exit time, as runc's shim.
            let exit = p.exit().unwrap_or(ExitInfo::NOT_EXITED);
            let pid = p.pid as u32;
            let logger = c.execs.remove(&req.exec_id).and_then(|mut p| {
                p.io.stop_copiers();
                p.io.take_logger()
            });
            let _ = std::fs::remove_file(
                c.container
                    .run_dir
                    .with_file_name(format!("exec-{}.json", req.exec_id)),
            );
            drop(c);
            stop_loggers(logger.into_iter().collect()).await;
            return Ok(DeleteResponse {
                pid,
                exit_status: exit.status,
                exited_at: MessageField::some(exit.timestamp()),
                ..Default::default()
            });
        }
        let began = std::time::Instant::now();
        let (rx, runtime, bundle, pid, record) = {
            let c = shared.lock().await;
            c.init
                .ensure(&[ProcessStatus::Created, ProcessStatus::Stopped], "delete")?;
            (
                c.init.exit_watch(),
                c.runtime.clone(),
                c.container.bundle().to_path_buf(),
                c.init.pid,
                c.container.record.clone(),
            )
        };
        let b = bundle.clone();
        if rx.borrow().is_none() {
            // A never-started init is still waiting: stopping kills it, and
            // the watcher records its exit.
            let (ns, id, rt) = (self.namespace.clone(), req.id.clone(), runtime.clone());
            blocking(move || rt.stop(&ns, &id))
                .await?
                .map_err(|e| ShimError::failed("delete", &e))?;
        }
        let exit = tokio::time::timeout(std::time::Duration::from_secs(10), wait_exit(rx))
            .await
            .unwrap_or_else(|_| ExitInfo::now(137));
        // The exit was reported once the output written by then reached
        // containerd (see exits.rs); the copy itself may still run.
        let done = shared.lock().await.init.io.take_done();
        wait_output_done(done).await;
        let ns = self.namespace.clone();
        let id = req.id.clone();
        let rt = runtime.clone();
        let destroyed = blocking(move || rt.destroy(&ns, &id, &b, Some(&record))).await?;
        op_metrics::record(
            &runtime,
            "delete",
            began,
            destroyed.as_ref().err().map(|e| e.cause()),
        );
        destroyed.map_err(|e| ShimError::failed("delete", &e))?;
        options::remove_config_snapshot(&bundle);
        let task = self.tasks.lock().await.remove(&req.id);
        if let Some(task) = task {
            let loggers: Vec<Logger> = {
                let mut guard = task.lock().await;
                let c = &mut *guard;
                std::iter::once(&mut c.init)
                    .chain(c.execs.values_mut())
                    .filter_map(|p| {
                        p.io.stop_copiers();
                        p.io.take_logger()
                    })
                    .collect()
            };
            stop_loggers(loggers).await;
        }
        self.events.delete(TaskDelete {
            container_id: req.id.clone(),
            pid: pid as u32,
            exit_status: exit.status,
            exited_at: MessageField::some(exit.timestamp()),
            // runc's shim leaves `id` empty in the init's TaskDelete.
            ..Default::default()
        });
        Ok(DeleteResponse {
            pid: pid as u32,
            exit_status: exit.status,
            exited_at: MessageField::some(exit.timestamp()),
            ..Default::default()
        })
    }

    pub async fn wait(&self, req: WaitRequest) -> Result<WaitResponse> {
        let rx = {
            let shared = self.get(&req.id).await?;
            let c = shared.lock().await;
            c.process(&req.exec_id)?.exit_watch()
        };
        let exit = wait_exit(rx).await;
        Ok(WaitResponse {
            exit_status: exit.status,
            exited_at: MessageField::some(exit.timestamp()),
            ..Default::default()
        })
    }

    pub async fn state(&self, req: StateRequest) -> Result<StateResponse> {
        let shared = self.get(&req.id).await?;
        let _exec_lock = lock_exec(&shared, &req.exec_id).await;
        let c = shared.lock().await;
        let p = c.process(&req.exec_id)?;
        let exit = p.exit();
        Ok(StateResponse {
            id: if req.exec_id.is_empty() {
                req.id.clone()
            } else {
                req.exec_id.clone()
            },
            bundle: c.container.bundle().to_string_lossy().into_owned(),
            pid: p.pid.max(0) as u32,
            status: p.status.to_proto().into(),
            stdin: p.stdio.stdin.clone(),
            stdout: p.stdio.stdout.clone(),
            stderr: p.stdio.stderr.clone(),
            terminal: p.stdio.terminal,
            exit_status: exit.map(|e| e.status).unwrap_or(0),
            exited_at: MessageField::some(exit.unwrap_or(ExitInfo::NOT_EXITED).timestamp()),
            exec_id: req.exec_id,
            ..Default::default()
        })
    }
}

/// Any Linux signal containerd asks for, by number, as runc's shim.
fn kill_signal(number: u32) -> Result<SignalNumber> {
    SignalNumber::new(number).map_err(|e| ShimError::InvalidArgument(format!("kill: {e}")))
}

/// `signal` to the process behind `pidfd`, whose pid is `pid`.
fn send_signal(pidfd: &OwnedFd, pid: i32, signal: SignalNumber) -> Result<()> {
    lxcri::pidfd::pidfd_send_signal(pidfd, signal.number()).map_err(|e| match e.raw_os_error() {
        Some(libc::ESRCH) => ShimError::NotFound(format!("process {pid} already finished")),
        _ => ShimError::Failed(format!("kill {pid} with signal {}: {e}", signal.number())),
    })
}

/// Waits (bounded) for a process's output copiers to reach EOF, before its
/// delete stops them: runc's shim's delete waits for its copiers too.
async fn wait_output_done(done: Vec<std::sync::mpsc::Receiver<()>>) {
    if done.is_empty() {
        return;
    }
    let _ = blocking(move || wait_done(done, DELETE_TIMEOUT)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn real_time_signals_are_sent_and_others_refused_by_number() {
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let pidfd = lxcri::pidfd::pidfd_open(pid).unwrap();
        // SIGRTMIN+3, systemd's StopSignal; its default action ends `sleep`.
        send_signal(&pidfd, pid, kill_signal(37).unwrap()).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(37));
        assert!(matches!(
            send_signal(&pidfd, pid, SignalNumber::KILL),
            Err(ShimError::NotFound(_))
        ));
        for bad in [0, 65] {
            match kill_signal(bad) {
                Err(ShimError::InvalidArgument(m)) => assert!(m.contains(&bad.to_string()), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
