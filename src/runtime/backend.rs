//! The seam where backends plug in: `lxc` (liblxc on any Linux host) and
//! `pve` (CTs made through the Proxmox VE API). The shim only talks to
//! this trait.

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use lxcri_init_spec::ExitReport;

use super::container::{ContainerError, CreateRequest, CreatedContainer, LxcRuntime};
use super::pve::PveRuntime;
use crate::config::{Backend as BackendKind, Config};

/// A way of running containers on this node.
pub trait Backend: Send + Sync + Debug {
    /// The backend's name, as in `backend = "..."`.
    fn name(&self) -> &'static str;

    /// The configuration this backend was built from.
    fn config(&self) -> &Config;

    /// Creates the container and starts its init, which waits for `start`.
    /// Fails without leaving anything behind.
    fn create(&self, req: &CreateRequest) -> Result<CreatedContainer, ContainerError>;

    /// Kills every process of the container; stopping a stopped one is fine.
    fn stop(&self, namespace: &str, id: &str) -> Result<(), ContainerError>;

    /// Removes everything made for the container (idempotent).
    fn destroy(&self, namespace: &str, id: &str, bundle: &Path) -> Result<(), ContainerError>;

    /// The exit status the container's init wrote into its runtime
    /// directory, if any (the same file on every backend).
    fn read_exit(&self, run_dir: &Path) -> Option<ExitReport> {
        let body = std::fs::read(run_dir.join(lxcri_init_spec::EXIT_FILE)).ok()?;
        serde_json::from_slice(&body).ok()
    }

    /// Whether SIGKILL to a container's init goes through [`Backend::stop`]
    /// (PVE's stop endpoint, so PVE logs and sees it) instead of a signal.
    fn stops_on_kill(&self) -> bool {
        false
    }
}

/// The backend `config.backend` names.
pub fn backend_for(config: Config) -> Arc<dyn Backend> {
    match config.backend {
        BackendKind::Lxc => Arc::new(LxcRuntime::new(config)),
        BackendKind::Pve => Arc::new(PveRuntime::new(config)),
    }
}
