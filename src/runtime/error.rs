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
    #[error(transparent)]
    InitCopy(#[from] super::init_copy::InitCopyError),
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
    #[error("binding mounts into the container from the host (rshared, id-mapped or inside another bind): {detail}")]
    SharedMounts { detail: String },
    /// An OCI hook failed: `detail` names it (`hooks.prestart[0] (...)`).
    #[error("OCI hook failed: {detail}")]
    Hook { detail: String },
    #[error(transparent)]
    MqueueOwner(#[from] super::mqueue_owner::MqueueOwnerError),
    #[error("root.path {path}: {reason}")]
    RootPath { path: PathBuf, reason: String },
    #[error(transparent)]
    Pve(Box<PveBackendError>),
    #[error("opening the network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    StagedBind(Box<super::staged_binds::StagedBindError>),
    #[error(transparent)]
    HostNetns(Box<super::host_netns::HostNetnsError>),
    #[error("the node's network: {0}")]
    HostNetwork(#[source] Box<crate::network::host::HostError>),
    #[error(transparent)]
    Plug(Box<crate::network::plug::PlugError>),
    #[error(transparent)]
    NetDevice(Box<crate::network::net_device::NetDeviceError>),
    #[error(transparent)]
    UsernsSlot(#[from] crate::userns::SlotError),
    #[error("userns.unprivileged does not cover Kubernetes pods on the pve backend: PVE starts a CT's lxc-start itself, in the node's network namespace, and LXC joins the sandbox's user namespace before the pod's network namespace (lxc 5.0.2 start.c do_share_ns), which a process inside a user namespace may no longer join; run pods on the lxc backend or set userns.unprivileged = false")]
    UsernsPodOnPve,
    #[error("pod sandbox {sandbox}: {reason} (under userns.unprivileged a pod's containers join their sandbox's user namespace)")]
    UsernsSandbox { sandbox: String, reason: String },
}

impl RuntimeError {
    /// The init's own words when the container's process could not be
    /// started (not found, not executable, bad user or cwd...): runc's
    /// "unable to start container process".
    pub fn process_start_failure(&self) -> Option<&str> {
        match self {
            RuntimeError::Init(InitChannelError::InitFailed(message)) => Some(message),
            _ => None,
        }
    }

    /// A short, bounded name of what failed, for metrics labels.
    pub fn cause(&self) -> &'static str {
        use RuntimeError as E;
        match self {
            E::Spec(_) | E::Plan(_) | E::LxcConfig(_) | E::RootPath { .. } => "spec",
            E::Config(_) => "config",
            E::State(_) | E::RunDir { .. } | E::InitCopy(_) | E::Exists(_) => "state",
            E::Rootfs(_) => "rootfs",
            E::LxcTools(_) => "lxc",
            E::Init(_) | E::SharedMounts { .. } | E::ProcessGone { .. } | E::Signal { .. } => {
                "init"
            }
            E::Cgroup(_) | E::HostCgroup(_) | E::NoCgroup(_) => "cgroup",
            E::Pve(_) => "pve",
            E::Netns { .. }
            | E::HostNetns(_)
            | E::HostNetwork(_)
            | E::Plug(_)
            | E::NetDevice(_) => "network",
            E::StagedBind(_) | E::MqueueOwner(_) => "mounts",
            E::Hook { .. } => "hook",
            E::UsernsSlot(_) | E::UsernsPodOnPve | E::UsernsSandbox { .. } => "userns",
        }
    }
}

impl From<super::host_netns::HostNetnsError> for RuntimeError {
    fn from(e: super::host_netns::HostNetnsError) -> Self {
        Self::HostNetns(Box::new(e))
    }
}

impl From<super::staged_binds::StagedBindError> for RuntimeError {
    fn from(e: super::staged_binds::StagedBindError) -> Self {
        Self::StagedBind(Box::new(e))
    }
}

impl From<crate::network::plug::PlugError> for RuntimeError {
    fn from(e: crate::network::plug::PlugError) -> Self {
        Self::Plug(Box::new(e))
    }
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
    /// A cgroup file PVE's hotplug writes and an update does not set
    /// (`pve/hotplug.rs`) could not be read before the `PUT` or written
    /// back after it.
    #[error("CT {vmid}: {step} {file}, which PVE's hotplug writes and the update does not set")]
    Hotplug {
        vmid: u32,
        /// "reading" or "putting back".
        step: &'static str,
        file: &'static str,
        #[source]
        source: crate::cgroup::CgroupError,
    },
    #[error("CT {vmid} stopped before its init was ready{lxc_start_said}")]
    CtStopped { vmid: u32, lxc_start_said: String },
    #[error("PVE API: starting CT {vmid}{lxc_start_said}")]
    Start {
        vmid: u32,
        /// The end of `/run/pve/ct-VMID.stderr`, as ` (PATH: TEXT)`.
        lxc_start_said: String,
        #[source]
        source: PveError,
    },
    #[error("the node's storage.cfg")]
    StorageCfg(#[source] crate::pve::storage_cfg::StorageCfgError),
    #[error("pve.storage and zfs.pool disagree")]
    Storage(#[source] crate::pve::storage_check::StorageMismatch),
    /// The CT kept a lock of PVE's through destroy's whole wait.
    #[error(
        "CT {vmid} is locked ({lock}) by PVE (a create, backup, snapshot, mount or migration holds it) and stayed locked for {}s; it is left as it is: delete again once the lock is gone, or, if containerd no longer knows the container, `lxcri gc --force` removes the CT then. Backup jobs should exclude lxcri's CTs (see `pve.pool`)",
        waited.as_secs()
    )]
    CtLocked {
        vmid: u32,
        lock: String,
        waited: std::time::Duration,
    },
    /// PVE creates a privileged CT only for a token with `Sys.Modify` on
    /// `/` (pve-container src/PVE/API2/LXC.pm, `create_vm`).
    #[error(
        "the container has no user namespace, so its CT is privileged (unprivileged=0), and PVE creates privileged CTs only for a token with Sys.Modify on /; {token} lacks it. Either grant it (`pveum role add LxcriPrivileged --privs Sys.Modify` and `pveum acl modify / --users {user} --roles LxcriPrivileged --propagate 0`, and with --tokens '{token}' too for a privilege-separated token), or run the container unprivileged in a user namespace (Kubernetes: `hostUsers: false`)"
    )]
    PrivilegedNeedsSysModify {
        token: String,
        user: String,
        #[source]
        source: PveError,
    },
    /// PVE's bare 403 of `create_vm` (`raise_perm_exc()` without a path).
    #[error(
        "PVE refused to create CT {vmid}: the token needs VM.Allocate on /vms/{vmid}{pool_hint}"
    )]
    CreateForbidden {
        vmid: u32,
        pool_hint: String,
        #[source]
        source: PveError,
    },
}

impl From<PveBackendError> for RuntimeError {
    fn from(e: PveBackendError) -> Self {
        RuntimeError::Pve(Box::new(e))
    }
}
