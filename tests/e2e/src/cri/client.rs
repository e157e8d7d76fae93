//! A blocking CRI (v1) client for containerd's CRI plugin.
//!
//! Built on `k8s-cri`'s generated tonic clients, connected to containerd's
//! gRPC unix socket. The client owns a current-thread tokio runtime and
//! every method is a blocking `block_on`, so tests written with std threads
//! can use it (also from several threads at once: tokio hands the runtime's
//! driver from one `block_on` to the next). Each call has a deadline
//! ([`DEFAULT_TIMEOUT`], see [`CriClient::with_timeout`]).

use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;
use tonic::transport::{Channel, Endpoint, Uri};

pub use k8s_cri::v1 as api;
/// gRPC status codes, as [`CriError::code`] holds them.
pub use tonic::Code;

use api::image_service_client::ImageServiceClient;
use api::runtime_service_client::RuntimeServiceClient;

/// Deadline of one call unless [`CriClient::with_timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`CriClient::connect`] waits for containerd to come up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest message accepted: containerd caps each ExecSync stream at 16 MiB,
/// tonic's own default (4 MiB) would refuse a full one.
const MAX_MESSAGE: usize = 64 << 20;

/// A failed CRI call: the gRPC status code and message (containerd's error
/// text) and which call it was. Deadlines are `DeadlineExceeded`, transport
/// failures `Unavailable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriError {
    /// The CRI method, e.g. `RunPodSandbox`.
    pub call: &'static str,
    pub code: Code,
    pub message: String,
}

impl CriError {
    fn new(call: &'static str, code: Code, message: impl Into<String>) -> Self {
        CriError {
            call,
            code,
            message: message.into(),
        }
    }

    fn from_status(call: &'static str, status: tonic::Status) -> Self {
        let mut message = status.message().to_string();
        // Transport failures carry their cause as the source only.
        let mut source = status.source();
        while let Some(err) = source {
            let text = err.to_string();
            if !message.contains(&text) {
                if !message.is_empty() {
                    message.push_str(": ");
                }
                message.push_str(&text);
            }
            source = err.source();
        }
        CriError::new(call, status.code(), message)
    }

    pub fn is_not_found(&self) -> bool {
        self.code == Code::NotFound
    }
}

impl fmt::Display for CriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CRI {}: {:?}: {}", self.call, self.code, self.message)
    }
}

impl std::error::Error for CriError {}

/// A blocking CRI client on one containerd socket.
pub struct CriClient {
    rt: Runtime,
    runtime: RuntimeServiceClient<Channel>,
    image: ImageServiceClient<Channel>,
    socket: PathBuf,
    timeout: Duration,
}

impl fmt::Debug for CriClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CriClient")
            .field("socket", &self.socket)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Opens an HTTP/2 channel on the unix socket (the URI is a placeholder:
/// the connector ignores it). tonic reconnects through the same connector
/// when the connection drops, e.g. across a containerd restart.
async fn open_channel(socket: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://containerd.sock")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(socket).await?)) }
        }))
        .await
}

fn transport_message(err: &tonic::transport::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = e.source();
    }
    message
}

/// Whether a Version failure right after connecting is containerd still
/// starting (worth another try) rather than a final answer.
fn starting_up(err: &CriError) -> bool {
    matches!(err.code, Code::Unavailable | Code::DeadlineExceeded)
        || err.message.contains("not initialized")
}

impl CriClient {
    /// Connects to containerd's gRPC socket. Waits up to [`CONNECT_TIMEOUT`]
    /// for the socket to appear and accept, and for the CRI service to
    /// answer `Version` (containerd 1.6 answers "server is not initialized
    /// yet" while the CRI plugin starts).
    pub fn connect(socket: &Path) -> Result<Self, CriError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CriError::new("connect", Code::Internal, format!("tokio runtime: {e}")))?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let channel = rt.block_on(async {
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let err = match tokio::time::timeout(left, open_channel(socket.to_path_buf())).await
                {
                    Ok(Ok(channel)) => return Ok(channel),
                    Ok(Err(e)) => transport_message(&e),
                    Err(_) => "connect timed out".to_string(),
                };
                if Instant::now() >= deadline {
                    return Err(CriError::new(
                        "connect",
                        Code::Unavailable,
                        format!(
                            "{}: no connection within {:?}: {err}",
                            socket.display(),
                            CONNECT_TIMEOUT
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })?;
        let client = CriClient {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            image: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
            rt,
            socket: socket.to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
        };
        loop {
            match client.version() {
                Ok(_) => return Ok(client),
                Err(e) if starting_up(&e) && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100))
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The same client with another per-call deadline.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Runs one call's future under `timeout`.
    fn run<T, Fut>(&self, call: &'static str, timeout: Duration, fut: Fut) -> Result<T, CriError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.rt.block_on(async move {
            match tokio::time::timeout(timeout, fut).await {
                Ok(Ok(resp)) => Ok(resp.into_inner()),
                Ok(Err(status)) => Err(CriError::from_status(call, status)),
                Err(_) => Err(CriError::new(
                    call,
                    Code::DeadlineExceeded,
                    format!("no answer within {timeout:?}"),
                )),
            }
        })
    }

    /// A RuntimeService call: `f` gets its own clone of the (cheaply
    /// cloned) client, so `&self` is enough.
    fn rt_call<T, F, Fut>(&self, call: &'static str, f: F) -> Result<T, CriError>
    where
        F: FnOnce(RuntimeServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.run(call, self.timeout, f(self.runtime.clone()))
    }

    fn img_call<T, F, Fut>(&self, call: &'static str, f: F) -> Result<T, CriError>
    where
        F: FnOnce(ImageServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.run(call, self.timeout, f(self.image.clone()))
    }

    /// The deadline of a call that waits `secs` on the server side: the
    /// usual one, or `secs` plus slack when longer.
    fn stretched(&self, secs: i64) -> Duration {
        let server = Duration::from_secs(secs.max(0) as u64);
        self.timeout.max(server + Duration::from_secs(30))
    }

    // ---- RuntimeService: runtime ----

    pub fn version(&self) -> Result<api::VersionResponse, CriError> {
        let req = api::VersionRequest {
            version: "v1".into(),
        };
        self.rt_call("Version", |mut c| async move { c.version(req).await })
    }

    /// Status: the runtime's conditions and, from containerd 2.0 on, each
    /// runtime handler's features (what the kubelet reads).
    pub fn status(&self) -> Result<api::StatusResponse, CriError> {
        let req = api::StatusRequest { verbose: false };
        self.rt_call("Status", |mut c| async move { c.status(req).await })
    }

    // ---- RuntimeService: pod sandboxes ----

    /// RunPodSandbox; returns the pod sandbox id. `runtime_handler` names a
    /// `plugins."io.containerd.grpc.v1.cri".containerd.runtimes` entry
    /// (empty: the default runtime).
    pub fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String, CriError> {
        let req = api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: runtime_handler.into(),
        };
        self.rt_call("RunPodSandbox", |mut c| async move {
            c.run_pod_sandbox(req).await
        })
        .map(|r| r.pod_sandbox_id)
    }

    pub fn stop_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = api::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rt_call("StopPodSandbox", |mut c| async move {
            c.stop_pod_sandbox(req).await
        })
        .map(drop)
    }

    pub fn remove_pod_sandbox(&self, id: &str) -> Result<(), CriError> {
        let req = api::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.rt_call("RemovePodSandbox", |mut c| async move {
            c.remove_pod_sandbox(req).await
        })
        .map(drop)
    }

    /// PodSandboxStatus, verbose: `info["info"]` holds containerd's JSON
    /// (pid, runtime spec, runtime handler...).
    pub fn pod_sandbox_status(&self, id: &str) -> Result<api::PodSandboxStatusResponse, CriError> {
        let req = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: true,
        };
        self.rt_call("PodSandboxStatus", |mut c| async move {
            c.pod_sandbox_status(req).await
        })
    }

    pub fn list_pod_sandbox(&self) -> Result<Vec<api::PodSandbox>, CriError> {
        self.list_pod_sandbox_filtered(None)
    }

    /// ListPodSandbox with `filter` (id, state, labels), as cri-tools'
    /// `listPodSandbox`.
    pub fn list_pod_sandbox_filtered(
        &self,
        filter: Option<api::PodSandboxFilter>,
    ) -> Result<Vec<api::PodSandbox>, CriError> {
        let req = api::ListPodSandboxRequest { filter };
        self.rt_call("ListPodSandbox", |mut c| async move {
            c.list_pod_sandbox(req).await
        })
        .map(|r| r.items)
    }

    // ---- RuntimeService: containers ----

    /// CreateContainer in pod `pod_id`; `sandbox_config` is the config the
    /// pod was run with. Returns the container id.
    pub fn create_container(
        &self,
        pod_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> Result<String, CriError> {
        let req = api::CreateContainerRequest {
            pod_sandbox_id: pod_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        self.rt_call("CreateContainer", |mut c| async move {
            c.create_container(req).await
        })
        .map(|r| r.container_id)
    }

    pub fn start_container(&self, id: &str) -> Result<(), CriError> {
        let req = api::StartContainerRequest {
            container_id: id.into(),
        };
        self.rt_call("StartContainer", |mut c| async move {
            c.start_container(req).await
        })
        .map(drop)
    }

    /// StopContainer: SIGTERM (or the image's stop signal), SIGKILL after
    /// `timeout_secs`. The call's own deadline is stretched to cover it.
    pub fn stop_container(&self, id: &str, timeout_secs: i64) -> Result<(), CriError> {
        let req = api::StopContainerRequest {
            container_id: id.into(),
            timeout: timeout_secs,
        };
        let timeout = self.stretched(timeout_secs);
        let mut c = self.runtime.clone();
        self.run("StopContainer", timeout, async move {
            c.stop_container(req).await
        })
        .map(drop)
    }

    pub fn remove_container(&self, id: &str) -> Result<(), CriError> {
        let req = api::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.rt_call("RemoveContainer", |mut c| async move {
            c.remove_container(req).await
        })
        .map(drop)
    }

    /// ContainerStatus (not verbose). containerd always sends a status on
    /// success; a missing one is reported as an `Internal` error.
    pub fn container_status(&self, id: &str) -> Result<api::ContainerStatus, CriError> {
        let req = api::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.rt_call("ContainerStatus", |mut c| async move {
            c.container_status(req).await
        })?
        .status
        .ok_or_else(|| CriError::new("ContainerStatus", Code::Internal, "no status in answer"))
    }

    pub fn list_containers(&self) -> Result<Vec<api::Container>, CriError> {
        self.list_containers_filtered(None)
    }

    /// ListContainers with `filter` (id, state, pod, labels), as cri-tools'
    /// `listContainerForID`.
    pub fn list_containers_filtered(
        &self,
        filter: Option<api::ContainerFilter>,
    ) -> Result<Vec<api::Container>, CriError> {
        let req = api::ListContainersRequest { filter };
        self.rt_call("ListContainers", |mut c| async move {
            c.list_containers(req).await
        })
        .map(|r| r.containers)
    }

    /// UpdateContainerResources: the kubelet's in-place resize.
    pub fn update_container_resources(
        &self,
        id: &str,
        linux: api::LinuxContainerResources,
    ) -> Result<(), CriError> {
        let req = api::UpdateContainerResourcesRequest {
            container_id: id.into(),
            linux: Some(linux),
            ..Default::default()
        };
        self.rt_call("UpdateContainerResources", |mut c| async move {
            c.update_container_resources(req).await
        })
        .map(drop)
    }

    /// The host pid of container `id`'s process, from its verbose status
    /// (0 when containerd reports none).
    pub fn container_pid(&self, id: &str) -> Result<u32, CriError> {
        let req = api::ContainerStatusRequest {
            container_id: id.into(),
            verbose: true,
        };
        let info = self
            .rt_call("ContainerStatus", |mut c| async move {
                c.container_status(req).await
            })?
            .info;
        let info: serde_json::Value =
            serde_json::from_str(info.get("info").map(String::as_str).unwrap_or("{}"))
                .unwrap_or_default();
        Ok(info["pid"].as_u64().unwrap_or(0) as u32)
    }

    // ---- RuntimeService: exec ----

    /// ExecSync: runs `cmd` in container `id` and returns its stdout, stderr
    /// and exit code. `timeout_secs` is containerd's (0: none); the call's
    /// own deadline is stretched to cover it.
    pub fn exec_sync(
        &self,
        id: &str,
        cmd: &[&str],
        timeout_secs: i64,
    ) -> Result<api::ExecSyncResponse, CriError> {
        let req = api::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: timeout_secs,
        };
        let timeout = self.stretched(timeout_secs);
        let mut c = self.runtime.clone();
        self.run("ExecSync", timeout, async move { c.exec_sync(req).await })
    }

    /// Exec (streaming): returns the URL of containerd's streaming server
    /// for this exec; drive it with [`crate::cri::stream::exec_stream`].
    pub fn exec(&self, req: api::ExecRequest) -> Result<String, CriError> {
        self.rt_call("Exec", |mut c| async move { c.exec(req).await })
            .map(|r| r.url)
    }

    /// Attach to container `id`'s process: the streaming server's URL;
    /// drive it with [`crate::cri::stream::Attach`].
    pub fn attach(&self, req: api::AttachRequest) -> Result<String, CriError> {
        self.rt_call("Attach", |mut c| async move { c.attach(req).await })
            .map(|r| r.url)
    }

    /// PortForward to `ports` of pod `pod_id`: the streaming server's URL;
    /// drive it with [`crate::cri::port_forward`].
    pub fn port_forward(&self, pod_id: &str, ports: &[i32]) -> Result<String, CriError> {
        let req = api::PortForwardRequest {
            pod_sandbox_id: pod_id.into(),
            port: ports.to_vec(),
        };
        self.rt_call(
            "PortForward",
            |mut c| async move { c.port_forward(req).await },
        )
        .map(|r| r.url)
    }

    /// ReopenContainerLog: the kubelet's log rotation asks containerd to
    /// open the container's log path anew.
    pub fn reopen_container_log(&self, id: &str) -> Result<(), CriError> {
        let req = api::ReopenContainerLogRequest {
            container_id: id.into(),
        };
        self.rt_call("ReopenContainerLog", |mut c| async move {
            c.reopen_container_log(req).await
        })
        .map(drop)
    }

    // ---- RuntimeService: stats ----

    pub fn container_stats(&self, id: &str) -> Result<api::ContainerStats, CriError> {
        let req = api::ContainerStatsRequest {
            container_id: id.into(),
        };
        self.rt_call("ContainerStats", |mut c| async move {
            c.container_stats(req).await
        })?
        .stats
        .ok_or_else(|| CriError::new("ContainerStats", Code::Internal, "no stats in answer"))
    }

    pub fn list_container_stats(&self) -> Result<Vec<api::ContainerStats>, CriError> {
        self.list_container_stats_filtered(None)
    }

    /// ListContainerStats with a filter (by id, pod or labels).
    pub fn list_container_stats_filtered(
        &self,
        filter: Option<api::ContainerStatsFilter>,
    ) -> Result<Vec<api::ContainerStats>, CriError> {
        let req = api::ListContainerStatsRequest { filter };
        self.rt_call("ListContainerStats", |mut c| async move {
            c.list_container_stats(req).await
        })
        .map(|r| r.stats)
    }

    // ---- ImageService ----

    /// ImageStatus of `image_ref` (name, tag, digest or id); `None` when
    /// containerd does not have it (CRI answers an empty status, not an
    /// error).
    pub fn image_status(&self, image_ref: &str) -> Result<Option<api::Image>, CriError> {
        let req = api::ImageStatusRequest {
            image: Some(super::config::image_spec(image_ref)),
            verbose: false,
        };
        self.img_call(
            "ImageStatus",
            |mut c| async move { c.image_status(req).await },
        )
        .map(|r| r.image)
    }

    /// RemoveImage of `image_ref`; CRI answers success for an image it
    /// does not have.
    pub fn remove_image(&self, image_ref: &str) -> Result<(), CriError> {
        let req = api::RemoveImageRequest {
            image: Some(super::config::image_spec(image_ref)),
        };
        self.img_call(
            "RemoveImage",
            |mut c| async move { c.remove_image(req).await },
        )
        .map(drop)
    }

    /// The images in containerd's CRI namespace (`k8s.io`).
    pub fn list_images(&self) -> Result<Vec<api::Image>, CriError> {
        let req = api::ListImagesRequest { filter: None };
        self.img_call(
            "ListImages",
            |mut c| async move { c.list_images(req).await },
        )
        .map(|r| r.images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_shareable() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<CriClient>();
        send_sync::<CriError>();
    }

    #[test]
    fn error_display_has_code_and_message() {
        let e = CriError::new("StartContainer", Code::NotFound, "no such container");
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "CRI StartContainer: NotFound: no such container"
        );
    }
}
