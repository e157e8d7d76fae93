//! An exec's creation and start. A start holds the exec's own lock, not
//! its task's, while its helper and a logging binary start (each waited
//! for up to 30 s), as runc's shim locks only the exec process: the
//! container's Kill, State and the other execs are answered meanwhile,
//! while the calls on this exec (kill, delete, state, resize, close) wait
//! for the start to end.

use containerd_shim_protos::api::{ExecProcessRequest, StartRequest, StartResponse};
use containerd_shim_protos::events::task::{TaskExecAdded, TaskExecStarted};
use lxcri_init_spec::{ProcessSpec, SessionKeyring};
use tokio::sync::OwnedMutexGuard;

use super::{blocking, runtime_error, Service};
use crate::error::{chain, Result, ShimError};
use crate::exec;
use crate::exits::{watch_exec, Shared};
use crate::io::{pipe_owner, ProcessIo, StdioPaths};
use crate::log_binary::LoggedProcess;
use crate::process::{Process, ProcessStatus};

/// Exec `exec_id`'s own lock, taken without holding the task's (so the
/// order is always exec, then task); `None` for the container's init or
/// an exec not there, whose lookup then fails under the task's lock.
pub(super) async fn lock_exec(shared: &Shared, exec_id: &str) -> Option<OwnedMutexGuard<()>> {
    if exec_id.is_empty() {
        return None;
    }
    let lock = shared.lock().await.execs.get(exec_id)?.exec_lock.clone();
    Some(lock.lock_owned().await)
}

impl Service {
    pub async fn exec(&self, req: ExecProcessRequest) -> Result<()> {
        let shared = self.get(&req.id).await?;
        let mut c = shared.lock().await;
        lxcri::state::validate_name("exec id", &req.exec_id)
            .map_err(|e| ShimError::InvalidArgument(format!("exec: {e}")))?;
        if c.execs.contains_key(&req.exec_id) {
            return Err(ShimError::AlreadyExists(format!(
                "exec {:?} already exists in {}",
                req.exec_id, req.id
            )));
        }
        c.init.ensure_exec_allowed()?;
        let any = req.spec.as_ref().ok_or_else(|| {
            ShimError::InvalidArgument("exec: the request has no process spec".into())
        })?;
        let mut process = lxcri::spec::parse_process("exec process spec", &any.value)
            .map_err(|e| ShimError::InvalidArgument(format!("exec: {}", chain(&e))))?;
        process.set_terminal(Some(req.terminal));
        let mut spec: ProcessSpec = lxcri::plan::plan_process(
            &process,
            &c.container.spec,
            &lxcri::security::lsm::HostLsm::host(),
        )
        .map_err(|e| ShimError::InvalidArgument(format!("exec: {}", chain(&e))))?;
        // The container's session keyring, not the shim's (as runc's exec).
        spec.session_keyring = Some(SessionKeyring::for_exec(c.container.id()));
        let stdio = StdioPaths {
            stdin: req.stdin,
            stdout: req.stdout,
            stderr: req.stderr,
            terminal: req.terminal,
        };
        let mut exec = Process::new(req.exec_id.clone(), 0, stdio, ProcessIo::default());
        exec.exec_spec = Some(spec);
        c.execs.insert(req.exec_id.clone(), exec);
        self.events.exec_added(TaskExecAdded {
            container_id: req.id,
            exec_id: req.exec_id,
            ..Default::default()
        });
        Ok(())
    }

    pub(super) async fn start_exec(
        &self,
        shared: &Shared,
        req: &StartRequest,
    ) -> Result<StartResponse> {
        let _exec_lock = lock_exec(shared, &req.exec_id).await;
        let c = shared.lock().await;
        c.init.ensure_exec_allowed()?;
        let exec = c.process(&req.exec_id)?;
        exec.ensure(&[ProcessStatus::Created], "start")?;
        if exec.has_ended() {
            return Err(ShimError::FailedPrecondition(format!(
                "cannot start exec {}: it failed to start already",
                req.exec_id
            )));
        }
        let stdio = exec.stdio.clone();
        let spec = exec.exec_spec.clone().ok_or_else(|| {
            ShimError::FailedPrecondition(format!("exec {} has no process spec", req.exec_id))
        })?;
        let (rt, container) = (c.runtime.clone(), c.container.clone());
        let init_binary = rt
            .config()
            .init_binary()
            .map_err(|e| ShimError::failed("exec", &e))?;
        drop(c);

        let spec_path = container
            .run_dir
            .with_file_name(format!("exec-{}.json", req.exec_id));
        let exec_spec = {
            let container = container.clone();
            blocking(move || rt.exec_spec(&container, spec))
                .await?
                .map_err(|e| runtime_error("exec", e))?
        };
        let logged = LoggedProcess::new(&self.namespace, &req.exec_id);
        let (relayed_io, ends) = if stdio.terminal {
            (None, None)
        } else {
            let owner = match container.record.pid {
                Some(pid) => pipe_owner(pid)?,
                None => None,
            };
            // Off the runtime's one thread: a logging binary is waited for.
            let (paths, process) = (stdio.clone(), logged.clone());
            let (io, ends) = blocking(move || ProcessIo::relay(&paths, owner, &process)).await??;
            (Some(io), Some(ends))
        };
        let start_failed = |e: ShimError| async move {
            // As runc's shim: no event, and the exec stays created but
            // over: not started again.
            shared
                .lock()
                .await
                .process_mut(&req.exec_id)?
                .set_start_failed();
            Err(e)
        };
        let mut spawned = match exec::spawn(&init_binary, spec_path, &exec_spec, ends).await {
            Ok(spawned) => spawned,
            Err(e) => return start_failed(e).await,
        };
        let pid = spawned.pid as u32;
        let io = match (relayed_io, spawned.console.take()) {
            (Some(io), _) => io,
            (None, Some(master)) => {
                let paths = stdio.clone();
                let console = blocking(move || ProcessIo::console(master, &paths, &logged))
                    .await
                    .and_then(|io| io);
                match console {
                    Ok(io) => io,
                    Err(e) => {
                        spawned.kill();
                        return start_failed(e).await;
                    }
                }
            }
            (None, None) => {
                spawned.kill();
                return Err(ShimError::Failed(
                    "exec: the exec helper sent no terminal".into(),
                ));
            }
        };

        let mut c = shared.lock().await;
        let p = c.process_mut(&req.exec_id)?;
        p.pid = spawned.pid;
        p.pidfd = Some(spawned.pidfd);
        p.status = ProcessStatus::Running;
        p.io = io;
        self.events.exec_started(TaskExecStarted {
            container_id: req.id.clone(),
            exec_id: req.exec_id.clone(),
            pid,
            ..Default::default()
        });
        tokio::spawn(watch_exec(
            shared.clone(),
            req.id.clone(),
            req.exec_id.clone(),
            spawned.child,
            self.events.clone(),
        ));
        Ok(StartResponse {
            pid,
            ..Default::default()
        })
    }
}
