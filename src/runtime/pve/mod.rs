//! The `pve` backend: each container is a Proxmox VE CT.
//!
//! The CT is made and driven through the PVE API (create, start, stop,
//! update, delete), so PVE knows it, shows it and accounts for it. What the
//! API keeps for `root@pam` (the container's rootfs, a host directory, and
//! one `lxc.include` of lxcri's LXC fragment) lxcri writes into the
//! node-local `VMID.conf` under PVE's config lock. On the node the CT is the
//! LXC container `VMID`; stdio, exec, the init's pid and cgroup stats work
//! on it exactly as on the lxc backend, because `lxcri-init` is its init.

mod api;
mod create;
mod gc;
mod hotplug;
mod node_config;
mod start_watch;
mod stderr_file;
mod warm_pool;

use std::sync::{Arc, Mutex};

use oci_spec::runtime::LinuxResources;

pub use api::{
    ct_lock, is_ct_busy, is_missing_ct, is_not_running, ClientApi, CtApi, PendingTask, TaskTimeouts,
};
pub use gc::{CtVerdict, GcEntry};
pub use node_config::{allocated_rootfs_volume, attach_include, attach_node_local};
pub use warm_pool::{finish_refills, is_refilling, pool_dir, PoolState, WarmPoolError};

use super::backend::{Backend, CreateSteps};
use super::container::{Container, CreateRequest};
use super::control::{self, CgroupUpdate, SignalNumber};
use super::error::{PveBackendError, Result, RuntimeError};
use crate::config::{BackendKind, Config};
use crate::lxc::LxcTools;
use crate::plan::pve::pve_resources;
use crate::plan::Limits;
use crate::pve::client::{ClientOptions, ClientStats, PveError};
use crate::pve::config::{
    update_node_config, ConfigLock, Description, MemberFingerprint, NodePaths, PveConfigError,
    PveConfigFile, PveVersion,
};
use crate::pve::storage_cfg::StorageCfg;
use crate::pve::storage_check::{check_empty_volume_storage, check_zfs_storage, OurPool};
use crate::pve::vmid::VmidAllocator;
use crate::rootfs::zfs::{volume_leaf, ZfsRootfs};
use crate::rootfs::RootfsProvider;
use crate::state::{ContainerRecord, StateStore};

/// lxcri's LXC fragment of a CT, in the container's runtime directory (so
/// it goes with it); `VMID.conf` includes it.
pub const FRAGMENT_FILE: &str = "pve-lxc.conf";

fn api_err(action: impl Into<String>) -> impl FnOnce(PveError) -> RuntimeError {
    let action = action.into();
    move |source| PveBackendError::Api { action, source }.into()
}

/// Whether a backend error is PVE refusing a call because the CT is locked,
/// or its worker timing out on the CT's config lock (another task holds it).
fn is_lock_error(e: &PveBackendError) -> bool {
    matches!(e, PveBackendError::Api { source, .. } if is_ct_busy(source))
}

/// Whose a CT is, by the description lxcri wrote into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtOwner {
    /// No config on this node: destroyed, or never created.
    Gone,
    /// Not written by lxcri (or edited beyond recognition).
    Foreign,
    /// PVE's create task has not written it yet: the config holds only
    /// `lock: create` (pve-container src/PVE/API2/LXC.pm: the API makes it
    /// with `create_and_lock_config`, the worker writes the rest).
    BeingCreated,
    /// The container `namespace/id`.
    Container { namespace: String, id: String },
    /// A member of the warm pool, nobody's yet (see `warm_pool`).
    PoolMember(MemberFingerprint),
}

/// Whose CT `vmid` is, from the description in its node-local config.
fn read_owner(paths: &NodePaths, vmid: u32) -> Result<CtOwner> {
    let path = paths.config_file(vmid);
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
    let description = file.description();
    Ok(match Description::owner(&description) {
        Some((namespace, id)) => CtOwner::Container { namespace, id },
        None => match Description::pool_fingerprint(&description) {
            Some(fp) => CtOwner::PoolMember(fp),
            None if file.get("lock") == Some("create") => CtOwner::BeingCreated,
            None => CtOwner::Foreign,
        },
    })
}

/// The `pve` backend of one node.
#[derive(Debug)]
pub struct PveBackend {
    config: Config,
    store: StateStore,
    /// The node's LXC, where CT `VMID` is the container `VMID`.
    lxc: LxcTools,
    rootfs: Arc<dyn RootfsProvider>,
    node: String,
    paths: NodePaths,
    allocator: VmidAllocator,
    /// Connected on first use: a shim that only answers containerd's
    /// `delete` for a container that never reached PVE needs no API.
    api: Mutex<Option<Arc<dyn CtApi>>>,
    /// The connected client's counters, for the metrics journal.
    api_stats: Mutex<Option<Arc<ClientStats>>>,
    version: Mutex<Option<PveVersion>>,
}

impl PveBackend {
    pub fn new(config: Config, rootfs: Arc<dyn RootfsProvider>) -> Self {
        Self::build(config, rootfs, None)
    }

    /// A backend that talks to `api` instead of connecting (tests, tools).
    pub fn with_api(config: Config, rootfs: Arc<dyn RootfsProvider>, api: Arc<dyn CtApi>) -> Self {
        Self::build(config, rootfs, Some(api))
    }

    fn build(config: Config, rootfs: Arc<dyn RootfsProvider>, api: Option<Arc<dyn CtApi>>) -> Self {
        let pve = &config.pve;
        let paths = NodePaths {
            config_dir: pve.config_dir.clone(),
            lock_dir: pve.lock_dir.clone(),
        };
        Self {
            store: StateStore::new(&config.runtime_root),
            lxc: LxcTools::new(&pve.lxcpath, config.lxc.log_level.lxc_name()),
            rootfs,
            node: pve.node.clone().unwrap_or_default(),
            paths,
            allocator: VmidAllocator::new(pve.vmid_range),
            api: Mutex::new(api),
            api_stats: Mutex::new(None),
            version: Mutex::new(None),
            config,
        }
    }

    /// The API, connecting on first use.
    fn api(&self) -> Result<Arc<dyn CtApi>> {
        let mut slot = self.api.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(api) = slot.as_ref() {
            return Ok(Arc::clone(api));
        }
        let client = self
            .config
            .pve
            .connect(ClientOptions::default())
            .map_err(PveBackendError::Connect)?;
        *self.api_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(client.stats());
        let api: Arc<dyn CtApi> = Arc::new(ClientApi {
            client,
            timeouts: TaskTimeouts::default(),
        });
        *slot = Some(Arc::clone(&api));
        Ok(api)
    }

    /// The node's PVE release, asked once per process, or read from the
    /// warm pool's state when the pool is on (see `warm_pool`).
    fn pve_version(&self, api: &dyn CtApi) -> Result<PveVersion> {
        let mut slot = self.version.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = *slot {
            return Ok(v);
        }
        if let Some(v) = self.cached_version() {
            return Ok(v);
        }
        let v = api.version().map_err(api_err("reading the PVE version"))?;
        *slot = Some(v);
        Ok(v)
    }

    /// The API token lxcri uses and its user, for messages.
    fn token_and_user(&self) -> (String, String) {
        match &self.config.pve.token_id {
            Some(t) => (t.to_string(), t.userid().to_string()),
            None => ("the token".into(), "USER@REALM".into()),
        }
    }

    /// Checks that `pve.storage` is `zfs.pool` as storage.cfg describes
    /// it (see [`check_zfs_storage`]).
    pub fn check_zfs_storage(&self, zfs: &ZfsRootfs) -> Result<()> {
        let (cfg, path) = self.storage_cfg()?;
        let mountpoint = zfs
            .pool_mountpoint()
            .map_err(crate::rootfs::RootfsError::from)?;
        check_zfs_storage(
            &cfg,
            &path,
            &self.config.pve.storage,
            &self.node,
            OurPool {
                pool: zfs.pool().as_str(),
                mountpoint: mountpoint.as_deref(),
            },
        )
        .map_err(|e| PveBackendError::Storage(e).into())
    }

    /// Outside zfs mode: `pve.storage` can allocate the CT's unused root
    /// volume, `<storage>:0` (see [`check_empty_volume_storage`]).
    pub fn check_empty_volume_storage(&self) -> Result<()> {
        let (cfg, path) = self.storage_cfg()?;
        check_empty_volume_storage(&cfg, &path, &self.config.pve.storage, &self.node)
            .map_err(|e| PveBackendError::Storage(e).into())
    }

    /// The node's storage.cfg and its path.
    fn storage_cfg(&self) -> Result<(StorageCfg, std::path::PathBuf)> {
        let path = self.paths.config_dir.join("storage.cfg");
        let cfg = StorageCfg::read(&path).map_err(PveBackendError::StorageCfg)?;
        Ok((cfg, path))
    }

    /// The PVE node this backend runs CTs on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The LXC name of a CT on the node.
    fn lxc_name(vmid: u32) -> String {
        vmid.to_string()
    }

    /// Whose CT `vmid` is, from the description in its node-local config.
    pub fn ct_owner(&self, vmid: u32) -> Result<CtOwner> {
        read_owner(&self.paths, vmid)
    }

    /// Destroys CT `vmid` if it (still) belongs to `namespace/id`: a VMID
    /// is reused once freed, and someone else's CT must never go. A CT
    /// PVE holds locked is tried again for up to `lock_wait`.
    pub fn destroy_ct_if_ours(
        &self,
        vmid: u32,
        namespace: &str,
        id: &str,
        lock_wait: std::time::Duration,
    ) -> Result<()> {
        match self.owner_once_created(vmid, lock_wait)? {
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
        self.destroy_ct(&api, vmid, lock_wait)?;
        self.remove_stale_lxc_leftovers(vmid)
    }

    /// The CT's owner once PVE's create task (if one runs) has written its
    /// config: a shim killed mid-create recorded the VMID before asking for
    /// it, and whose CT it is shows only then.
    fn owner_once_created(&self, vmid: u32, wait: std::time::Duration) -> Result<CtOwner> {
        let started = std::time::Instant::now();
        loop {
            let owner = self.ct_owner(vmid)?;
            if owner != CtOwner::BeingCreated {
                return Ok(owner);
            }
            let waited = started.elapsed();
            if waited >= wait {
                return Err(PveBackendError::CtLocked {
                    vmid,
                    lock: "create".into(),
                    waited,
                }
                .into());
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }

    /// PVE's destroy leaves an unprivileged CT's `rules.seccomp` and so its
    /// LXC directory (pve-container src/PVE/LXC.pm `destroy_lxc_container`
    /// only `rmdir`s it), and the CT's cgroups when its LXC monitor was
    /// killed (LXC removes them as the monitor exits). Removed under the
    /// CT's config lock once its config is gone, so a new CT that won the
    /// VMID keeps its own.
    fn remove_stale_lxc_leftovers(&self, vmid: u32) -> Result<()> {
        let Ok(_lock) = ConfigLock::acquire(&self.paths, vmid, ConfigLock::DEFAULT_TIMEOUT) else {
            return Ok(());
        };
        if self.paths.config_file(vmid).exists() {
            return Ok(());
        }
        let dir = self.config.pve.lxcpath.join(vmid.to_string());
        let _ = std::fs::remove_file(dir.join("rules.seccomp"));
        let _ = std::fs::remove_dir(&dir);
        let lxc = crate::lxc::LxcTools::new(&self.config.pve.lxcpath, "ERROR");
        Ok(lxc.remove_cgroups(&[format!("lxc/{vmid}"), format!("lxc.monitor/{vmid}")])?)
    }

    fn destroy_ct(
        &self,
        api: &Arc<dyn CtApi>,
        vmid: u32,
        lock_wait: std::time::Duration,
    ) -> Result<()> {
        // A create whose answer was lost may still be running its task
        // (the CT is locked `create`), a backup job or an admin's snapshot
        // may hold the CT, another of its tasks (a start's, finishing
        // after the CT runs) its config lock past PVE's 10 s: wait for the
        // lock to go rather than leak the CT.
        // A destroy whose forced stop found the CT stopping under it (the
        // task fails with lxc-stop's "not running") finds it stopped next.
        // An API that is away is asked again too: destroying is idempotent
        // (a destroy that did start shows as a lock, then as no CT).
        let started = std::time::Instant::now();
        loop {
            let waited = started.elapsed();
            match api.destroy(&self.node, vmid) {
                Ok(()) => return Ok(()),
                Err(e) if is_missing_ct(&e) => return Ok(()),
                Err(e) if is_ct_busy(&e) || is_not_running(&e) || e.is_transient() => {
                    if waited >= lock_wait {
                        return Err(match ct_lock(&e) {
                            Some(lock) => PveBackendError::CtLocked {
                                vmid,
                                lock: lock.to_string(),
                                waited,
                            }
                            .into(),
                            None => api_err(format!("destroying CT {vmid}"))(e),
                        });
                    }
                    tracing::debug!(vmid, error = %e, "CT busy; retrying destroy");
                    std::thread::sleep(std::time::Duration::from_millis(500));
                }
                Err(e) => return Err(api_err(format!("destroying CT {vmid}"))(e)),
            }
        }
    }
}

impl Backend for PveBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Pve
    }

    fn api_stats(&self) -> Option<Arc<ClientStats>> {
        self.api_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn begin_create<'a>(&'a self, req: &'a CreateRequest) -> Result<Box<dyn CreateSteps + 'a>> {
        Ok(Box::new(create::PveCreate::new(self, req)?))
    }

    /// `subvol-VMID-disk-0`, once the container has a VMID.
    fn volume(&self, _: &str, _: &str, record: Option<&ContainerRecord>) -> Option<String> {
        record
            .and_then(|r| r.vmid)
            .map(|v| volume_leaf(&v.to_string()))
    }

    /// `POST .../status/stop` when the CT runs; a stopped CT is fine.
    fn stop(&self, _: &str, _: &str, record: Option<&ContainerRecord>) -> Result<()> {
        let Some(vmid) = record.and_then(|r| r.vmid) else {
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
    /// mode the container's clone, whose image's idle time starts now).
    fn teardown(&self, namespace: &str, id: &str, record: Option<&ContainerRecord>) -> Result<()> {
        let Some(vmid) = record.and_then(|r| r.vmid) else {
            return Ok(());
        };
        // Read before PVE destroys the clone.
        let leaf = volume_leaf(&vmid.to_string());
        let owner = super::container::owner(namespace, id);
        let image = self
            .rootfs
            .zfs()
            .and_then(|z| z.origin_image(&leaf, &owner));
        self.destroy_ct_if_ours(vmid, namespace, id, self.config.pve.lock_wait())?;
        if let (Some(zfs), Some(image)) = (self.rootfs.zfs(), image) {
            zfs.mark_used(&image);
        }
        Ok(())
    }

    /// SIGKILL to the init goes through `POST .../status/stop` (`lxc-stop
    /// --kill`), so the stop is PVE's to see and log.
    fn kill(&self, c: &Container, signal: SignalNumber, all: bool) -> Result<()> {
        if signal == SignalNumber::KILL {
            return match self.stop(c.namespace(), c.id(), Some(&c.record)) {
                // PVE refuses to stop a CT a backup or snapshot holds
                // (`skiplock` is root@pam's), and a stop's worker gives up
                // on a config lock another task holds for more than 10 s;
                // a SIGKILL still kills.
                Err(RuntimeError::Pve(e)) if is_lock_error(&e) => {
                    tracing::warn!(vmid = ?c.record.vmid, error = %e, "CT locked; killing its processes directly");
                    control::signal(c, signal, all)
                }
                other => other,
            };
        }
        control::signal(c, signal, all)
    }

    /// Keeps PVE's view true: the CT's `memory`, `swap`, `cores`,
    /// `cpulimit` and `cpuunits` change through the API, then the cgroup
    /// gets the exact OCI values (PVE counts whole MiB and its own CPU
    /// units), as on the lxc backend. What PVE's hotplug writes besides
    /// (v2 `memory.high`; see `hotplug`) is put back as it was.
    fn update(&self, c: &Container, resources: &LinuxResources) -> Result<()> {
        // Everything checked before PVE hears of it.
        let update = CgroupUpdate::check(c, resources)?;
        let cgroup = c.cgroup()?;
        let version = cgroup.version();
        let limits = Limits::from_oci(resources)?;
        let ct = pve_resources(&limits, version)?;
        let params = ct.to_update_params().map_err(PveBackendError::CtConfig)?;
        let Some(vmid) = c.record.vmid else {
            return update.apply();
        };
        let pve_only = hotplug::left_to_pve(&params, version, |f| update.sets(f));
        let kept = hotplug::Kept::read(vmid, cgroup, &pve_only)?;
        if !params.is_empty() {
            let put = self.api()?.update_config(&self.node, vmid, &params);
            if let Err(e) = put {
                // PVE may have written some files before the one that failed.
                if let Err(undo) = kept.put_back(cgroup) {
                    tracing::warn!(vmid, error = %undo, "after a failed update");
                }
                return Err(api_err(format!("updating the resources of CT {vmid}"))(e));
            }
        }
        // The raw line keeps PVE and pvestatd off the new set too.
        if let Some(cpus) = &limits.cpu.cpus {
            update_node_config(&self.paths, vmid, |file| file.set_raw_cpuset(version, cpus))
                .map_err(|source| PveBackendError::NodeConfig { vmid, source })?;
        }
        update.apply()?;
        kept.put_back(cgroup)
    }
}
