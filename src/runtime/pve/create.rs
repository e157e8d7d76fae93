//! The pve backend's steps of a create, and the PVE calls they make:
//!
//! - new: in zfs mode, `pve.storage` checked against `zfs.pool`;
//! - configure: the CT's API parameters and lxcri's LXC fragment, checked
//!   (and `GET /version` once per shim) before PVE hears of the CT;
//! - reserve: with the warm pool on, a member claimed (see `warm_pool`)
//!   and made the container's with one `PUT .../config`; else (or when no
//!   member fits) `GET /cluster/nextid` + `POST /nodes/{node}/lxc` until a
//!   VMID of the range is won;
//! - write_config: the node-local `VMID.conf` edit under PVE's lock: the
//!   rootfs (overlay: the bundle's directory; zfs: PVE's new volume swapped
//!   for the container's clone of its image) and the include;
//! - start: `POST .../status/start`, its task watched while the init is
//!   awaited (see `start_watch`); with the warm pool on, a refill starts
//!   in the background once the init is ready.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::api::{failure_text, CtApi};
use super::node_config::{allocated_rootfs_volume, attach_include, attach_node_local};
use super::start_watch::StartWatch;
use super::{api_err, stderr_file, PveBackend, FRAGMENT_FILE};
use crate::lxc::render_lines;
use crate::plan::pve::{ct_config, CtInputs};
use crate::plan::{NetnsTarget, NetworkPlan};
use crate::pve::client::PveError;
use crate::pve::config::{update_node_config, CreateParams, PoolClaim};
use crate::pve::vmid::{is_vmid_taken_message, ApiError, CreateOutcome, VmidApi, VmidError};
use crate::rootfs::zfs::{volume_leaf, ZfsRootfs};
use crate::runtime::backend::CreateSteps;
use crate::runtime::bundle::{write_file, BundleUndo, PreparedBundle};
use crate::runtime::container::CreateRequest;
use crate::runtime::error::{PveBackendError, Result, RuntimeError};
use crate::state::ContainerRecord;

/// The inner cgroup PVE puts a CT's processes in.
const PVE_CGROUP_INNER_DIR: &str = "ns";

/// One create on the pve backend.
pub(super) struct PveCreate<'a> {
    pve: &'a PveBackend,
    req: &'a CreateRequest,
    /// From `configure`: the API, the checked create parameters and the
    /// fragment `VMID.conf` will include.
    api: Option<Arc<dyn CtApi>>,
    params: Option<CreateParams>,
    /// With the warm pool on: which members fit, and what makes one this
    /// container's CT.
    claim: Option<PoolClaim>,
    /// The CT is privileged (`unprivileged=0`): no user namespace.
    privileged: bool,
    fragment: PathBuf,
    /// A CT that is, or may be, this container's.
    vmid: Option<u32>,
    /// From `start`: the CT's start task.
    started: Option<StartWatch>,
}

impl<'a> PveCreate<'a> {
    /// Starts a create. In zfs mode `pve.storage` must be `zfs.pool` (see
    /// [`PveBackend::check_zfs_storage`]), otherwise a storage that can
    /// allocate an empty root volume; that is checked first, before the
    /// image is filled into the pool or PVE hears of the CT.
    pub(super) fn new(pve: &'a PveBackend, req: &'a CreateRequest) -> Result<Self> {
        let create = Self {
            pve,
            req,
            api: None,
            params: None,
            claim: None,
            privileged: false,
            fragment: PathBuf::new(),
            vmid: None,
            started: None,
        };
        match create.zfs() {
            Some(zfs) => pve.check_zfs_storage(zfs)?,
            None => pve.check_empty_volume_storage()?,
        }
        Ok(create)
    }

    /// The image's dataset to clone, in zfs mode. `ctr run --rootfs DIR`
    /// has no image: its directory is used as it is.
    fn zfs(&self) -> Option<&'a ZfsRootfs> {
        let pve: &'a PveBackend = self.pve;
        pve.rootfs
            .zfs()
            .filter(|_| !self.req.rootfs_mounts.is_empty())
    }

    fn api(&self) -> &dyn CtApi {
        self.api.as_deref().expect("configure runs first")
    }

    fn vmid(&self) -> u32 {
        self.vmid.expect("reserve runs first")
    }
}

impl CreateSteps for PveCreate<'_> {
    /// On pve the volume is named after the VMID: made once PVE gave one.
    fn volume(&self) -> Option<String> {
        None
    }

    /// PVE plugs a CT's own NICs (its `netN`); a pod's are lxcri's.
    fn backend_plugs(&self, network: &NetworkPlan) -> bool {
        network.netns == NetnsTarget::Own
    }

    fn configure(&mut self, bundle: &PreparedBundle) -> Result<()> {
        let pve = self.pve;
        let api = pve.api()?;
        let ct = ct_config(&CtInputs {
            version: pve.pve_version(api.as_ref())?,
            namespace: &self.req.namespace,
            id: &self.req.id,
            spec: &bundle.spec,
            cri: &bundle.cri,
            limits: &bundle.plan.limits,
            cgroup: bundle.plan.lxc.cgroup_version,
            init_cmd: &bundle.plan.lxc.init_cmd,
            template: &pve.config.pve.template,
            storage: &pve.config.pve.storage,
            pool: pve.config.pve.pool.as_ref(),
            rootfs_size: self.zfs().map(|_| pve.config.zfs.size),
            network: bundle.plan.network.as_ref(),
            user_namespace: bundle.plan.lxc.namespaces.has(crate::lxc::Namespace::User),
        })?;
        self.params = Some(ct.to_create_params().map_err(PveBackendError::CtConfig)?);
        if pve.config.pve.warm_pool_size > 0 {
            self.claim = Some(ct.pool_claim().map_err(PveBackendError::CtConfig)?);
        }
        self.privileged = !ct.unprivileged;
        let mut lxc = bundle.plan.lxc.clone();
        if bundle
            .plan
            .network
            .as_ref()
            .is_some_and(|n| self.backend_plugs(n))
        {
            // PVE's `lxc.net.N` lines for the CT's netN come before the
            // include: an empty network there would replace them.
            lxc.network = None;
        }
        let mut fragment = lxc.render_pve_fragment()?;
        let extra = ct.fragment_lines().map_err(PveBackendError::CtConfig)?;
        fragment.push_str(&render_lines(&extra)?);
        self.fragment = pve
            .store
            .container_dir(&self.req.namespace, &self.req.id)?
            .join(FRAGMENT_FILE);
        write_file(&self.fragment, fragment.as_bytes())?;
        self.api = Some(api);
        Ok(())
    }

    fn reserve(
        &mut self,
        record: &mut ContainerRecord,
        save: &dyn Fn(&ContainerRecord) -> Result<()>,
    ) -> Result<()> {
        if let Some(vmid) = self.claim_member(record, save)? {
            self.vmid = Some(vmid);
            record.backend_name = PveBackend::lxc_name(vmid);
            tracing::info!(vmid, node = %self.pve.node, "claimed a warm pool CT");
            return Ok(());
        }
        // Each VMID is recorded before PVE is asked for it: a shim killed
        // while PVE creates the CT leaves a record that names it, and
        // teardown destroys it once it is provably this container's.
        let intent = RefCell::new(record.clone());
        let save_failed = RefCell::new(None);
        let attempts = CreateAttempts {
            api: self.api(),
            node: &self.pve.node,
            params: self.params.as_ref().expect("configure runs first"),
            before_create: &|vmid| {
                let mut r = intent.borrow_mut();
                r.vmid = Some(vmid);
                r.node = Some(self.pve.node.clone());
                save(&r).map_err(|e| {
                    let text = e.to_string();
                    *save_failed.borrow_mut() = Some(e);
                    text
                })
            },
        };
        let allocated = self.pve.allocator.allocate(&attempts);
        if let Some(e) = save_failed.into_inner() {
            return Err(e);
        }
        let vmid = match allocated {
            Ok(vmid) => vmid,
            Err(VmidError::Create { vmid, source }) => {
                // A create that failed half-way (or timed out) may have left
                // a CT with that VMID; rollback removes it if it is ours.
                self.vmid = Some(vmid);
                return Err(self.create_refused(vmid, source).into());
            }
            Err(e) => return Err(PveBackendError::Vmid(e).into()),
        };
        self.vmid = Some(vmid);
        record.vmid = Some(vmid);
        record.backend_name = PveBackend::lxc_name(vmid);
        record.node = Some(self.pve.node.clone());
        tracing::info!(vmid, node = %self.pve.node, "created CT");
        Ok(())
    }

    fn write_config(&mut self, bundle: &PreparedBundle, undo: &mut BundleUndo) -> Result<()> {
        let vmid = self.vmid();
        let pve = self.pve;
        let zfs = self.zfs();
        let mut clone_failed = None;
        update_node_config(&pve.paths, vmid, |file| {
            let mut changed = match zfs {
                None => {
                    attach_node_local(file, &bundle.rootfs, &self.fragment, pve.store.root())?
                }
                Some(zfs) => {
                    let leaf = allocated_rootfs_volume(file, vmid, &pve.config.pve.storage)?;
                    if leaf != volume_leaf(&vmid.to_string()) {
                        tracing::warn!(vmid, volume = %leaf, "PVE allocated an unexpected volume name");
                    }
                    undo.volume = Some(leaf.clone());
                    if let Err(e) =
                        zfs.replace_volume(
                        &self.req.rootfs_mounts,
                        &leaf,
                        &self.req.owner(),
                        bundle.userns,
                    )
                    {
                        clone_failed = Some(e);
                        return Ok(false);
                    }
                    attach_include(file, &self.fragment, pve.store.root())?
                }
            };
            if let Some(cpus) = &bundle.plan.limits.cpu.cpus {
                changed |= file.set_raw_cpuset(bundle.plan.lxc.cgroup_version, cpus)?;
            }
            changed |= file.set_raw_idmaps(&bundle.plan.lxc.idmaps)?;
            Ok(changed)
        })
        .map_err(|source| PveBackendError::NodeConfig { vmid, source })?;
        match clone_failed {
            Some(e) => Err(crate::rootfs::RootfsError::from(e).into()),
            None => Ok(()),
        }
    }

    fn start(&mut self) -> Result<()> {
        let vmid = self.vmid();
        let task = self
            .api()
            .begin_start(&self.pve.node, vmid)
            .map_err(|source| self.start_failed(source))?;
        self.started = Some(StartWatch::new(task));
        Ok(())
    }

    /// The init's wait covers the start task's too: the init runs only
    /// once PVE's worker started the CT.
    fn ready_timeout(&self, init: Duration) -> Duration {
        init + self
            .started
            .as_ref()
            .map_or(Duration::ZERO, StartWatch::task_timeout)
    }

    fn is_running(&self) -> bool {
        let ct_running = || self.pve.lxc.is_running(&PveBackend::lxc_name(self.vmid()));
        match &self.started {
            Some(watch) => watch.still_starting(|upid| self.api().task_done(upid), ct_running),
            None => ct_running(),
        }
    }

    fn stopped_early(&self) -> RuntimeError {
        if let Some(source) = self.started.as_ref().and_then(StartWatch::take_failure) {
            return self.start_failed(source);
        }
        let vmid = self.vmid();
        PveBackendError::CtStopped {
            vmid,
            lxc_start_said: stderr_file::quote(&self.pve.config.pve.run_dir, vmid),
        }
        .into()
    }

    /// After the start: the refill's tasks do not compete with it. A start
    /// task that failed while the init came up anyway (PVE's post-start
    /// work, or its timeout at the same moment) is worth a warning.
    fn ready(&self) {
        if let Some(e) = self.started.as_ref().and_then(StartWatch::take_failure) {
            tracing::warn!(
                vmid = self.vmid(),
                error = %crate::error_chain(&e),
                "PVE's start task failed, but the CT's init is ready"
            );
        }
        self.refill();
    }

    /// PVE starts a CT with `lxc.cgroup.dir.container.inner = ns`: its
    /// processes are in `lxc/VMID/ns`, PVE's limits on `lxc/VMID`
    /// (pve-container src/PVE/LXC.pm, `update_lxc_config`).
    fn cgroup_inner_dir(&self) -> Option<&'static str> {
        Some(PVE_CGROUP_INNER_DIR)
    }

    /// Destroys the CT if its notes still name this container: a VMID
    /// whose create lost a race belongs to someone else.
    fn rollback(&mut self) {
        let Some(vmid) = self.vmid else {
            return;
        };
        // A start task still running holds the CT's config lock, which a
        // destroy's worker waits only 10 s for: let it end first.
        let unfinished = self.started.as_ref().and_then(StartWatch::unfinished);
        if let (Some(task), Some(api)) = (unfinished, &self.api) {
            if let Err(e) = api.finish(task) {
                tracing::debug!(vmid, error = %e, "rollback: the CT's start task");
            }
        }
        let (ns, id) = (&self.req.namespace, &self.req.id);
        let wait = self.pve.config.pve.lock_wait();
        if let Err(e) = self.pve.destroy_ct_if_ours(vmid, ns, id, wait) {
            tracing::warn!(vmid, error = %crate::error_chain(&e), "rollback: destroying CT");
        }
        // The pool may have given this create a member, now gone.
        self.refill();
    }
}

impl PveCreate<'_> {
    /// With the warm pool on, fills it again in the background.
    fn refill(&self) {
        if let (Some(claim), Some(api)) = (&self.claim, &self.api) {
            self.pve.start_refill(Arc::clone(api), claim);
        }
    }

    fn start_failed(&self, source: PveError) -> RuntimeError {
        let vmid = self.vmid();
        PveBackendError::Start {
            vmid,
            lxc_start_said: stderr_file::quote(&self.pve.config.pve.run_dir, vmid),
            source,
        }
        .into()
    }

    /// A warm pool member made this container's CT: claimed (recorded in
    /// `record` first), then given the container's settings with one `PUT
    /// .../config` (a stopped CT takes them at once). `None` without a
    /// pool or a fitting member.
    fn claim_member(
        &mut self,
        record: &mut ContainerRecord,
        save: &dyn Fn(&ContainerRecord) -> Result<()>,
    ) -> Result<Option<u32>> {
        let Some(claim) = &self.claim else {
            return Ok(None);
        };
        let Some(vmid) = self.pve.claim_member(claim, record, save)? else {
            return Ok(None);
        };
        // From here the CT is this container's: rollback destroys it.
        self.vmid = Some(vmid);
        self.api()
            .update_config(&self.pve.node, vmid, &claim.update)
            .map_err(api_err(format!("configuring claimed CT {vmid}")))?;
        Ok(Some(vmid))
    }

    /// A failed `POST /nodes/{node}/lxc`, with what PVE's 403s leave
    /// unsaid: which privilege, and what to do.
    fn create_refused(&self, vmid: u32, source: ApiError) -> PveBackendError {
        let e = match source.downcast::<PveError>() {
            Ok(e) => *e,
            Err(source) => return PveBackendError::Vmid(VmidError::Create { vmid, source }),
        };
        match &e {
            PveError::Forbidden {
                acl_path: Some(p),
                privilege: Some(v),
                ..
            } if self.privileged && p == "/" && v == "Sys.Modify" => {
                let (token, user) = self.pve.token_and_user();
                PveBackendError::PrivilegedNeedsSysModify {
                    token,
                    user,
                    source: e,
                }
            }
            PveError::Forbidden {
                acl_path: None,
                message,
                ..
            } if message.trim_end() == "Permission check failed" => {
                PveBackendError::CreateForbidden {
                    vmid,
                    pool_hint: match &self.pve.config.pve.pool {
                        Some(pool) => format!(" or on /pool/{pool}"),
                        None => String::new(),
                    },
                    source: e,
                }
            }
            _ => PveBackendError::Vmid(VmidError::Create {
                vmid,
                source: Box::new(e),
            }),
        }
    }
}

/// [`VmidApi`] for one create (a container's or a pool member's): each
/// attempt is `POST /nodes/{node}/lxc` with the candidate VMID, awaited to
/// the end of its task.
pub(super) struct CreateAttempts<'a> {
    pub(super) api: &'a dyn CtApi,
    pub(super) node: &'a str,
    pub(super) params: &'a CreateParams,
    /// Records the VMID about to be asked for; an error stops the create.
    pub(super) before_create: &'a dyn Fn(u32) -> std::result::Result<(), String>,
}

impl VmidApi for CreateAttempts<'_> {
    fn next_id_hint(&self, from: u32) -> std::result::Result<Option<u32>, ApiError> {
        Ok(self.api.next_id(from)?)
    }

    fn try_create(&self, vmid: u32) -> std::result::Result<CreateOutcome, ApiError> {
        let params = self.params.with_vmid(vmid)?;
        (self.before_create)(vmid)?;
        match self.api.create(self.node, &params) {
            Ok(()) => Ok(CreateOutcome::Created),
            Err(e) if vmid_taken(&e, vmid) => Ok(CreateOutcome::Exists),
            Err(e) => Err(Box::new(e)),
        }
    }
}

/// PVE refuses a taken VMID before its task starts (500) or, when two
/// creates race past that check, in the task.
fn vmid_taken(e: &PveError, vmid: u32) -> bool {
    failure_text(e).is_some_and(|t| is_vmid_taken_message(t, vmid))
}
