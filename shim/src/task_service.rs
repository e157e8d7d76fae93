//! The ttrpc `Task` service: a thin adapter from protocol to [`Service`].

use async_trait::async_trait;
use containerd_shim::api::{self as api, Empty};
use containerd_shim::{Task, TtrpcContext};
use containerd_shim_protos::ttrpc;

use crate::error::ShimError;
use crate::footprint::Trimmer;
use crate::service::Service;

pub struct TaskService {
    service: Service,
    /// Create, start, delete and exec run code once per container: the
    /// shim gives its pages back once such a call is over.
    trimmer: Trimmer,
}

impl TaskService {
    pub fn new(service: Service) -> Self {
        Self {
            service,
            trimmer: Trimmer::default(),
        }
    }

    /// Runs `call`, then lets the trimmer know a one-off call is over.
    async fn trimmed<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let result = call.await;
        self.trimmer.after_operation();
        result
    }
}

type R<T> = ttrpc::Result<T>;

#[async_trait]
impl Task for TaskService {
    async fn state(&self, _: &TtrpcContext, req: api::StateRequest) -> R<api::StateResponse> {
        Ok(self.service.state(req).await?)
    }
    async fn create(
        &self,
        _: &TtrpcContext,
        req: api::CreateTaskRequest,
    ) -> R<api::CreateTaskResponse> {
        let id = req.id.clone();
        match self.trimmed(self.service.create(req)).await {
            Ok(pid) => Ok(api::CreateTaskResponse {
                pid,
                ..Default::default()
            }),
            Err(e) => {
                tracing::error!(%id, error = %e, "create failed");
                Err(e.into())
            }
        }
    }
    async fn start(&self, _: &TtrpcContext, req: api::StartRequest) -> R<api::StartResponse> {
        Ok(self.trimmed(self.service.start(req)).await?)
    }
    async fn delete(&self, _: &TtrpcContext, req: api::DeleteRequest) -> R<api::DeleteResponse> {
        Ok(self.trimmed(self.service.delete(req)).await?)
    }
    async fn pids(&self, _: &TtrpcContext, req: api::PidsRequest) -> R<api::PidsResponse> {
        Ok(self.service.pids(req).await?)
    }
    async fn pause(&self, _: &TtrpcContext, req: api::PauseRequest) -> R<Empty> {
        self.service.pause(req).await?;
        Ok(Empty::new())
    }
    async fn resume(&self, _: &TtrpcContext, req: api::ResumeRequest) -> R<Empty> {
        self.service.resume(req).await?;
        Ok(Empty::new())
    }
    async fn checkpoint(&self, _: &TtrpcContext, _: api::CheckpointTaskRequest) -> R<Empty> {
        Err(ShimError::Unimplemented("checkpoint is not supported by lxcri".into()).into())
    }
    async fn kill(&self, _: &TtrpcContext, req: api::KillRequest) -> R<Empty> {
        self.service.kill(req).await?;
        Ok(Empty::new())
    }
    async fn exec(&self, _: &TtrpcContext, req: api::ExecProcessRequest) -> R<Empty> {
        self.trimmed(self.service.exec(req)).await?;
        Ok(Empty::new())
    }
    async fn resize_pty(&self, _: &TtrpcContext, req: api::ResizePtyRequest) -> R<Empty> {
        self.service.resize_pty(req).await?;
        Ok(Empty::new())
    }
    async fn close_io(&self, _: &TtrpcContext, req: api::CloseIORequest) -> R<Empty> {
        self.service.close_io(req).await?;
        Ok(Empty::new())
    }
    async fn update(&self, _: &TtrpcContext, req: api::UpdateTaskRequest) -> R<Empty> {
        self.service.update(req).await?;
        Ok(Empty::new())
    }
    async fn wait(&self, _: &TtrpcContext, req: api::WaitRequest) -> R<api::WaitResponse> {
        Ok(self.service.wait(req).await?)
    }
    async fn stats(&self, _: &TtrpcContext, req: api::StatsRequest) -> R<api::StatsResponse> {
        Ok(self.service.stats(req).await?)
    }
    async fn connect(&self, _: &TtrpcContext, req: api::ConnectRequest) -> R<api::ConnectResponse> {
        Ok(self.service.connect(req).await?)
    }
    async fn shutdown(&self, _: &TtrpcContext, req: api::ShutdownRequest) -> R<Empty> {
        self.service.shutdown(req).await?;
        Ok(Empty::new())
    }
}
