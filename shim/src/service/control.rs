//! The calls on a task that neither make nor end a process: its
//! processes, stats, resource updates, pause and resume, terminal size,
//! stdin, and the shim's own connect and shutdown.

use std::collections::HashMap;

use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, PauseRequest, PidsRequest, PidsResponse,
    ResizePtyRequest, ResumeRequest, ShutdownRequest, StatsRequest, StatsResponse,
    UpdateTaskRequest,
};
use containerd_shim_protos::events::task::{TaskPaused, TaskResumed};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::{Message, MessageField};
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::types::task::ProcessInfo;

use super::{blocking, lock_exec, runtime_error, Service};
use crate::error::{Result, ShimError};
use crate::process::ProcessStatus;

impl Service {
    pub async fn pids(&self, req: PidsRequest) -> Result<PidsResponse> {
        let shared = self.get(&req.id).await?;
        let (rt, container, execs) = {
            let c = shared.lock().await;
            if c.init.has_ended() {
                // Its cgroup may be gone with it; runc's shim lists nothing.
                return Ok(PidsResponse::default());
            }
            // A finished exec's pid may be another process's by now.
            let execs = c.execs.values().filter(|p| !p.has_ended());
            let execs = execs.map(|p| (p.pid, p.id.clone())).collect();
            (c.runtime.clone(), c.container.clone(), execs)
        };
        let pids = blocking(move || rt.processes(&container))
            .await?
            .map_err(|e| runtime_error("pids", e))?;
        Ok(PidsResponse {
            processes: process_infos(pids, &execs)?,
            ..Default::default()
        })
    }

    pub async fn stats(&self, req: StatsRequest) -> Result<StatsResponse> {
        let (rt, container) = self.runtime_of(&req.id).await?;
        let stats = blocking(move || rt.stats(&container))
            .await?
            .map_err(|e| runtime_error("stats", e))?;
        Ok(StatsResponse {
            stats: MessageField::some(crate::metrics::to_any(&stats)),
            ..Default::default()
        })
    }

    pub async fn update(&self, req: UpdateTaskRequest) -> Result<()> {
        let (rt, container) = {
            let shared = self.get(&req.id).await?;
            let c = shared.lock().await;
            if c.init.has_ended() {
                // Its cgroup may be gone; runc's shim's words.
                return Err(ShimError::FailedPrecondition(
                    "cannot update a stopped container".into(),
                ));
            }
            (c.runtime.clone(), c.container.clone())
        };
        let any = req.resources.as_ref().ok_or_else(|| {
            ShimError::InvalidArgument("update: no resources in the request".into())
        })?;
        let res: oci_spec::runtime::LinuxResources = serde_json::from_slice(&any.value)
            .map_err(|e| ShimError::InvalidArgument(format!("update: resources: {e}")))?;
        blocking(move || rt.update(&container, &res))
            .await?
            .map_err(|e| runtime_error("update", e))
    }

    pub async fn pause(&self, req: PauseRequest) -> Result<()> {
        let shared = self.get(&req.id).await?;
        let mut c = shared.lock().await;
        c.init.ensure(&[ProcessStatus::Running], "pause")?;
        let (rt, container) = (c.runtime.clone(), c.container.clone());
        blocking(move || rt.pause(&container))
            .await?
            .map_err(|e| runtime_error("pause", e))?;
        c.init.status = ProcessStatus::Paused;
        self.events.paused(TaskPaused {
            container_id: req.id,
            ..Default::default()
        });
        Ok(())
    }

    pub async fn resume(&self, req: ResumeRequest) -> Result<()> {
        let shared = self.get(&req.id).await?;
        let mut c = shared.lock().await;
        c.init.ensure(&[ProcessStatus::Paused], "resume")?;
        let (rt, container) = (c.runtime.clone(), c.container.clone());
        blocking(move || rt.resume(&container))
            .await?
            .map_err(|e| runtime_error("resume", e))?;
        c.init.status = ProcessStatus::Running;
        self.events.resumed(TaskResumed {
            container_id: req.id,
            ..Default::default()
        });
        Ok(())
    }

    /// A process without a terminal answers Ok (see `ProcessIo::resize`).
    pub async fn resize_pty(&self, req: ResizePtyRequest) -> Result<()> {
        let shared = self.get(&req.id).await?;
        let _exec_lock = lock_exec(&shared, &req.exec_id).await;
        let c = shared.lock().await;
        let p = c.process(&req.exec_id)?;
        if !req.exec_id.is_empty() && p.has_ended() {
            return Err(ShimError::FailedPrecondition(
                "cannot resize a stopped container".into(),
            ));
        }
        p.io.resize(req.width, req.height)
    }

    /// An exec's stdin is closed once its start has opened it.
    pub async fn close_io(&self, req: CloseIORequest) -> Result<()> {
        let shared = self.get(&req.id).await?;
        let _exec_lock = lock_exec(&shared, &req.exec_id).await;
        let mut c = shared.lock().await;
        if req.stdin {
            c.process_mut(&req.exec_id)?.io.close_stdin();
        }
        Ok(())
    }

    pub async fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse> {
        let task_pid = match self.get(&req.id).await {
            Ok(shared) => shared.lock().await.init.pid.max(0) as u32,
            Err(_) => 0,
        };
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    pub async fn shutdown(&self, _req: ShutdownRequest) -> Result<()> {
        if self.tasks.lock().await.is_empty() {
            // Before answering: containerd deletes the bundle right after
            // (see listen_socket.rs).
            self.socket.remove();
            self.exit.signal();
        }
        Ok(())
    }
}

/// `ProcessDetails`' type as containerd's typeurl names it (the message's
/// full name), which `ctr task ps` decodes.
const PROCESS_DETAILS_TYPE: &str = "containerd.runc.v1.ProcessDetails";

/// The container's processes as runc's shim lists them: an exec's process
/// (by pid, from `execs`) carries its exec id.
fn process_infos(pids: Vec<i32>, execs: &HashMap<i32, String>) -> Result<Vec<ProcessInfo>> {
    pids.into_iter()
        .map(|pid| {
            let info = match execs.get(&pid) {
                Some(exec_id) => {
                    let details = ProcessDetails {
                        exec_id: exec_id.clone(),
                        ..Default::default()
                    };
                    let value = details.write_to_bytes().map_err(|e| {
                        ShimError::Failed(format!("pids: encoding process {pid}'s details: {e}"))
                    })?;
                    MessageField::some(Any {
                        type_url: PROCESS_DETAILS_TYPE.to_string(),
                        value,
                        ..Default::default()
                    })
                }
                None => MessageField::none(),
            };
            Ok(ProcessInfo {
                pid: pid as u32,
                info,
                ..Default::default()
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_process_carries_its_exec_id() {
        let execs = HashMap::from([(20, "probe".to_string())]);
        let infos = process_infos(vec![10, 20], &execs).unwrap();
        assert_eq!(infos.iter().map(|p| p.pid).collect::<Vec<_>>(), [10, 20]);
        assert!(infos[0].info.is_none());
        let any = infos[1].info.as_ref().unwrap();
        assert_eq!(any.type_url, "containerd.runc.v1.ProcessDetails");
        let details = ProcessDetails::parse_from_bytes(&any.value).unwrap();
        assert_eq!(details.exec_id, "probe");
    }
}
