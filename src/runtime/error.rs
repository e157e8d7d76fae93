//! What can go wrong running a container, on either backend.

use std::path::PathBuf;

use super::init_channel::InitChannelError;
use crate::config::ConnectError;
use crate::pve::client::PveError;
use crate::pve::config::PveConfigError;
use crate::pve::vmid::VmidError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    LxcConfig(#[from] crate::lxc::LxcConfigError),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error(transparent)]
    Rootfs(#[from] crate::rootfs::RootfsError),
    #[error(transparent)]
    LxcTools(#[from] crate::lxc::LxcToolsError),
    #[error(transparent)]
    Init(#[from] InitChannelError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error(transparent)]
    HostCgroup(#[from] crate::cgroup::HostCgroupError),
    #[error("preparing runtime directory {path}: {source}")]
    RunDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} has no cgroup (its init was gone before it was found)")]
    NoCgroup(String),
    #[error("process {pid} already finished: {source}")]
    ProcessGone {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("signalling process {pid}: {source}")]
    Signal {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("binding the shared (Bidirectional) mounts into the container: {detail}")]
    SharedMounts { detail: String },
    #[error(transparent)]
    Pve(Box<PveBackendError>),
}

impl RuntimeError {
    /// Whether the request itself was wrong (a field of the spec or of an
    /// update), not the node: containerd's `InvalidArgument`.
    pub fn is_invalid_input(&self) -> bool {
        matches!(self, RuntimeError::Spec(_) | RuntimeError::Plan(_))
            || matches!(self, RuntimeError::Pve(e) if matches!(**e, PveBackendError::CtConfig(_)))
    }
}

pub type Result<T> = std::result::Result<T, RuntimeError>;

/// The pve backend's failures: the PVE API and the CT's config.
#[derive(Debug, thiserror::Error)]
pub enum PveBackendError {
    #[error("connecting to the PVE API")]
    Connect(#[source] ConnectError),
    #[error("PVE API: {action}")]
    Api {
        action: String,
        #[source]
        source: PveError,
    },
    #[error("allocating a VMID and creating the CT")]
    Vmid(#[source] VmidError),
    #[error("the CT's PVE config")]
    CtConfig(#[source] PveConfigError),
    #[error("CT {vmid}: editing the node-local config")]
    NodeConfig {
        vmid: u32,
        #[source]
        source: PveConfigError,
    },
    #[error("CT {vmid} stopped before its init was ready (see the PVE task log and `lxc-start` log of CT {vmid})")]
    CtStopped { vmid: u32 },
}

impl From<PveBackendError> for RuntimeError {
    fn from(e: PveBackendError) -> Self {
        RuntimeError::Pve(Box::new(e))
    }
}
