//! containerd's shim lifecycle: `start` (spawn or reuse the pod's shim
//! process and print its address), `delete` (clean up after a dead shim),
//! and serving the task API.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use containerd_shim::api::DeleteResponse;
use containerd_shim::publisher::RemotePublisher;
use containerd_shim::{Config as ShimConfig, ExitSignal, Flags, Shim, StartOpts};
use containerd_shim_protos::protobuf::MessageField;
use lxcri::config::{BackendKind, Config};
use lxcri::runtime::Runtime;

use crate::events::EventSender;
use crate::listen_socket::ListenSocket;
use crate::logging;
use crate::options;
use crate::process::timestamp;
use crate::service::Service;
use crate::task_service::TaskService;
use lxcri::state::now_ns;

pub struct LxcriShim {
    namespace: String,
    id: String,
    bundle: PathBuf,
    socket: ListenSocket,
    /// containerd's address (`-address`): the `delete` action finds a
    /// killed shim's socket by it.
    containerd_address: String,
    exit: Arc<ExitSignal>,
    config: Result<Config, String>,
    /// The serving shim's event queue, drained before it exits.
    events: OnceLock<EventSender>,
}

/// How long an exiting shim waits for its last events to reach
/// containerd: a live containerd takes one in a millisecond; a gone one
/// (the shim was sent SIGTERM at a node's shutdown) must not hold it up.
const EXIT_DRAIN: Duration = Duration::from_secs(2);

fn other(msg: String) -> containerd_shim::Error {
    containerd_shim::Error::Other(msg)
}

#[async_trait]
impl Shim for LxcriShim {
    type T = TaskService;

    async fn new(_runtime_id: &str, flags: &Flags, _shim_config: &mut ShimConfig) -> Self {
        let bundle = if flags.bundle.is_empty() {
            std::env::current_dir().unwrap_or_default()
        } else {
            PathBuf::from(&flags.bundle)
        };
        // The container's own configuration once it was created (the
        // `delete` action), else the node's.
        let config = options::config_snapshot(&bundle)
            .unwrap_or_else(|| Config::load(None))
            .map_err(|e| crate::error::chain(&e));
        // Only the serving process logs: during `start` containerd reads
        // everything on stderr as part of the address.
        if flags.action.is_empty() {
            let level = config
                .as_ref()
                .map(|c| c.shim_log_level(flags.debug))
                .unwrap_or(lxcri::config::LogLevel::Info);
            logging::init(level, &flags.namespace, &flags.id);
        }
        Self {
            namespace: flags.namespace.clone(),
            id: flags.id.clone(),
            bundle,
            socket: ListenSocket::from_address(&flags.socket),
            containerd_address: flags.address.clone(),
            exit: Arc::new(ExitSignal::default()),
            config,
            events: OnceLock::new(),
        }
    }

    async fn start_shim(&mut self, opts: StartOpts) -> containerd_shim::Result<String> {
        let grouping =
            lxcri::spec::bundle_sandbox_id(&self.bundle).unwrap_or_else(|| opts.id.clone());
        let address = containerd_shim::spawn(opts, &grouping, Vec::new()).await?;
        std::fs::write(self.bundle.join("address"), &address)
            .map_err(|e| other(format!("writing the address file: {e}")))?;
        Ok(address)
    }

    /// Cleans up after a dead shim from the state on disk, with the
    /// configuration the container was created with, whatever the config
    /// file says now. Idempotent.
    async fn delete_shim(&mut self) -> containerd_shim::Result<DeleteResponse> {
        let response = |pid: i32| DeleteResponse {
            pid: pid.max(0) as u32,
            exit_status: 137,
            exited_at: MessageField::some(timestamp(now_ns())),
            ..Default::default()
        };
        let grouping =
            lxcri::spec::bundle_sandbox_id(&self.bundle).unwrap_or_else(|| self.id.clone());
        ListenSocket::of(&self.containerd_address, &self.namespace, &grouping).remove_if_dead();
        let Some(config) = options::config_snapshot(&self.bundle) else {
            // Create keeps its configuration before it makes anything:
            // without one, nothing of this container was made.
            return Ok(response(0));
        };
        let config = config.map_err(|e| other(crate::error::chain(&e)))?;
        let pid = lxcri::state::StateStore::new(&config.runtime_root)
            .load(&self.namespace, &self.id)
            .ok()
            .flatten()
            .and_then(|r| r.pid)
            .unwrap_or(0);
        let runtime = Runtime::new(config);
        let (ns, id, bundle) = (self.namespace.clone(), self.id.clone(), self.bundle.clone());
        tokio::task::spawn_blocking(move || runtime.destroy(&ns, &id, &bundle, None))
            .await
            .map_err(|e| other(e.to_string()))?
            .map_err(|e| other(crate::error::chain(&e)))?;
        Ok(response(pid))
    }

    async fn wait(&mut self) {
        self.exit.wait().await;
        if let Some(events) = self.events.get() {
            if !events.drain(EXIT_DRAIN).await {
                tracing::warn!("exiting with events containerd did not take");
            }
        }
    }

    async fn create_task_service(&self, publisher: RemotePublisher) -> TaskService {
        if let Err(e) = &self.config {
            // Every create reports it; the shim still answers containerd.
            tracing::error!(error = %e, "loading the lxcri configuration");
        }
        if matches!(&self.config, Ok(c) if c.backend == BackendKind::Lxc) {
            // A shim is started for a create that follows at once: the
            // grace period its `lxc-start` would wait for starts now.
            lxcri::cgroup::attach_lock::prime();
        }
        exit_on_termination(self.socket.clone(), self.exit.clone());
        let runtime = self.config.clone().map(|c| Arc::new(Runtime::new(c)));
        let events = EventSender::spawn(publisher, self.namespace.clone());
        let _ = self.events.set(events.clone());
        TaskService::new(Service::new(
            self.namespace.clone(),
            runtime,
            events,
            self.socket.clone(),
            self.exit.clone(),
        ))
    }
}

/// Ends serving on SIGTERM or SIGINT (a node's shutdown, an operator's
/// `kill`), as runc's shim does (containerd `pkg/shim/shim_unix.go`
/// `handleExitSignals`): the socket goes, the process exits, and its
/// containers are left to containerd, which sees the connection close and
/// runs the `delete` action for each. The shim library only logs them.
fn exit_on_termination(socket: ListenSocket, exit: Arc<ExitSignal>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (term, int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => (term, int),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!(error = %e, "listening for SIGTERM and SIGINT");
            return;
        }
    };
    tokio::spawn(async move {
        let (mut term, mut int) = (term, int);
        let signal = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal, "asked to end: the shim stops serving");
        socket.remove();
        exit.signal();
    });
}
