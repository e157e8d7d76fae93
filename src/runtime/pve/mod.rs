//! The `pve` backend: each container is a Proxmox VE CT.
//!
//! The CT is made and driven through the PVE API (create, start, stop,
//! delete), so PVE knows it, shows it and accounts for it. What the API
//! keeps for `root@pam` (the container's rootfs, a host directory, and one
//! `lxc.include` of lxcri's LXC fragment) lxcri writes into the node-local
//! `VMID.conf` under PVE's config lock. On the node the CT is the LXC
//! container `VMID`; stdio, exec, the init's pid and cgroup stats work on
//! it exactly as on the lxc backend, because `lxcri-init` is its init.

mod api;
mod create;
mod ct;
mod gc;

use std::path::Path;
use std::sync::{Arc, Mutex};

pub use api::{is_locked_by_create, is_missing_ct, is_not_running, ClientApi, CtApi, TaskTimeouts};
pub use ct::{attach_node_local, ct_config, CtInputs, IMAGE_NAME_ANNOTATION};
pub use gc::{CtVerdict, GcEntry};

use super::backend::Backend;
use super::container::{ContainerError, CreateRequest, CreatedContainer, Result};
use super::lxc::LxcBackend;
use crate::config::Config;
use crate::pve::client::PveError;
use crate::pve::config::{Description, NodePaths, PveConfigError, PveConfigFile, PveVersion};
use crate::pve::connect::{connect, shim_options, ConnectError};
use crate::pve::vmid::{VmidAllocator, VmidError};
use crate::rootfs::zfs::volume_leaf;
use crate::rootfs::RootfsProvider;
use crate::runtime::container::{owner, rootfs_provider};
use crate::state::StateStore;

/// lxcri's LXC fragment of a CT, in the container's runtime directory (so
/// it goes with it); `VMID.conf` includes it.
pub const FRAGMENT_FILE: &str = "pve-lxc.conf";

/// How long destroy waits for a CT locked by a task (a create in flight).
const LOCKED_DESTROY_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

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

impl From<PveBackendError> for ContainerError {
    fn from(e: PveBackendError) -> Self {
        ContainerError::Pve(Box::new(e))
    }
}

fn api_err(action: impl Into<String>) -> impl FnOnce(PveError) -> ContainerError {
    let action = action.into();
    move |source| PveBackendError::Api { action, source }.into()
}

/// Whose a CT is, by the description lxcri wrote into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtOwner {
    /// No config on this node: destroyed, or never created.
    Gone,
    /// Not written by lxcri (or edited beyond recognition).
    Foreign,
    /// The container `namespace/id`.
    Container { namespace: String, id: String },
}

/// The `pve` backend of one node.
#[derive(Debug)]
pub struct PveRuntime {
    pub config: Config,
    pub store: StateStore,
    /// The node's LXC, where CT `VMID` is the container `VMID`.
    pub lxc: LxcBackend,
    pub rootfs: Box<dyn RootfsProvider>,
    pub node: String,
    pub paths: NodePaths,
    allocator: VmidAllocator,
    /// Connected on first use: a shim that only answers containerd's
    /// `delete` for a container that never reached PVE needs no API.
    api: Mutex<Option<Arc<dyn CtApi>>>,
    version: Mutex<Option<PveVersion>>,
}

impl PveRuntime {
    pub fn new(config: Config) -> Self {
        Self::build(config, None)
    }

    /// A runtime that talks to `api` instead of connecting (tests, tools).
    pub fn with_api(config: Config, api: Arc<dyn CtApi>) -> Self {
        Self::build(config, Some(api))
    }

    fn build(config: Config, api: Option<Arc<dyn CtApi>>) -> Self {
        let pve = &config.pve;
        let paths = NodePaths {
            config_dir: pve.config_dir.clone(),
            lock_dir: pve.lock_dir.clone(),
        };
        let rootfs = rootfs_provider(&config);
        Self {
            store: StateStore::new(&config.runtime_root),
            lxc: LxcBackend::new(&pve.lxcpath, config.lxc.log_level.lxc_name()),
            rootfs,
            node: pve.node.clone().unwrap_or_default(),
            paths,
            allocator: VmidAllocator::new(pve.vmid_range),
            api: Mutex::new(api),
            version: Mutex::new(None),
            config,
        }
    }

    /// The API, connecting on first use.
    pub fn api(&self) -> Result<Arc<dyn CtApi>> {
        let mut slot = self.api.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(api) = slot.as_ref() {
            return Ok(Arc::clone(api));
        }
        let client = connect(&self.config.pve, shim_options()).map_err(PveBackendError::Connect)?;
        let api: Arc<dyn CtApi> = Arc::new(ClientApi {
            client,
            timeouts: TaskTimeouts::default(),
        });
        *slot = Some(Arc::clone(&api));
        Ok(api)
    }

    /// The node's PVE release, asked once per process.
    fn pve_version(&self, api: &dyn CtApi) -> Result<PveVersion> {
        let mut slot = self.version.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = *slot {
            return Ok(v);
        }
        let v = api.version().map_err(api_err("reading the PVE version"))?;
        *slot = Some(v);
        Ok(v)
    }

    /// The LXC name of a CT on the node.
    pub fn lxc_name(vmid: u32) -> String {
        vmid.to_string()
    }

    /// Whose CT `vmid` is, from the description in its node-local config.
    pub fn ct_owner(&self, vmid: u32) -> Result<CtOwner> {
        let path = self.paths.config_file(vmid);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CtOwner::Gone),
            Err(source) => {
                return Err(PveBackendError::NodeConfig {
                    vmid,
                    source: PveConfigError::Io { path, source },
                }
                .into())
            }
        };
        let file = PveConfigFile::parse(&text)
            .map_err(|source| PveBackendError::NodeConfig { vmid, source })?;
        Ok(match Description::owner(&file.description()) {
            Some((namespace, id)) => CtOwner::Container { namespace, id },
            None => CtOwner::Foreign,
        })
    }

    /// Destroys CT `vmid` if it (still) belongs to `namespace/id`: a VMID
    /// is reused once freed, and someone else's CT must never go.
    pub fn destroy_ct_if_ours(&self, vmid: u32, namespace: &str, id: &str) -> Result<()> {
        match self.ct_owner(vmid)? {
            CtOwner::Gone => return Ok(()),
            CtOwner::Container {
                namespace: ns,
                id: i,
            } if ns == namespace && i == id => {}
            owner => {
                tracing::warn!(
                    vmid,
                    ?owner,
                    "CT {vmid} is not {namespace}/{id}'s any more; leaving it"
                );
                return Ok(());
            }
        }
        let api = self.api()?;
        // A create whose answer was lost may still be running its task
        // (the CT is locked `create`): wait for it rather than leak the CT.
        let deadline = std::time::Instant::now() + LOCKED_DESTROY_WAIT;
        loop {
            match api.destroy(&self.node, vmid) {
                Ok(()) => return Ok(()),
                Err(e) if is_missing_ct(&e) => return Ok(()),
                Err(e) if is_locked_by_create(&e) && std::time::Instant::now() < deadline => {
                    tracing::debug!(vmid, error = %e, "CT locked; retrying destroy");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Err(e) => return Err(api_err(format!("destroying CT {vmid}"))(e)),
            }
        }
    }

    fn record_vmid(&self, namespace: &str, id: &str) -> Option<u32> {
        self.store
            .load(namespace, id)
            .ok()
            .flatten()
            .and_then(|r| r.vmid)
    }
}

impl Backend for PveRuntime {
    fn name(&self) -> &'static str {
        "pve"
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn create(&self, req: &CreateRequest) -> Result<CreatedContainer> {
        create::create(self, req)
    }

    /// `POST .../status/stop` when the CT runs; a stopped CT is fine.
    fn stop(&self, namespace: &str, id: &str) -> Result<()> {
        let Some(vmid) = self.record_vmid(namespace, id) else {
            return Ok(());
        };
        let name = Self::lxc_name(vmid);
        if !self.lxc.is_running(&name) {
            return Ok(());
        }
        match self.api()?.stop(&self.node, vmid) {
            Ok(()) => Ok(()),
            Err(e) if is_not_running(&e) || is_missing_ct(&e) || !self.lxc.is_running(&name) => {
                Ok(())
            }
            Err(e) => Err(api_err(format!("stopping CT {vmid}"))(e)),
        }
    }

    /// Destroys the CT (purging it from PVE's jobs, with its volume: in zfs
    /// mode the container's clone), releases the rootfs (and the clone, if
    /// PVE left it) and removes the runtime directory (with the fragment).
    /// Idempotent.
    fn destroy(&self, namespace: &str, id: &str, bundle: &Path) -> Result<()> {
        let record = self.store.load(namespace, id).ok().flatten();
        let vmid = record.as_ref().and_then(|r| r.vmid);
        let volume = vmid.map(|v| volume_leaf(&v.to_string()));
        let owner = owner(namespace, id);
        // Read before PVE destroys the clone: the image's idle time starts now.
        let image = match (self.rootfs.zfs(), &volume) {
            (Some(zfs), Some(leaf)) => zfs.origin_image(leaf, &owner),
            _ => None,
        };
        if let Some(vmid) = vmid {
            self.destroy_ct_if_ours(vmid, namespace, id)?;
        }
        let mounted = record.as_ref().map(|r| r.rootfs_mounted).unwrap_or(true);
        let target = bundle.join("rootfs");
        self.rootfs.release(
            mounted.then_some(target.as_path()),
            &owner,
            volume.as_deref(),
        )?;
        if let (Some(zfs), Some(image)) = (self.rootfs.zfs(), image) {
            zfs.mark_used(&image);
        }
        self.store.remove(namespace, id)?;
        Ok(())
    }

    fn stops_on_kill(&self) -> bool {
        true
    }
}
