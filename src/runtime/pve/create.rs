//! `create` on the `pve` backend, as one sequence with rollback: a failure
//! at any step leaves no CT (nor its volume), no fragment, no mount and no
//! state behind.
//!
//! The steps, and the PVE calls they make:
//! 1. bundle, rootfs, plan, CT config: all checked before PVE hears of it;
//! 2. `GET /version` (once per shim), then `GET /cluster/nextid` +
//!    `POST /nodes/{node}/lxc` until a VMID of the range is won;
//! 3. node-local `VMID.conf` edit under PVE's lock: the rootfs (overlay:
//!    the bundle's directory; zfs: PVE's new volume swapped for the
//!    container's clone of its image) and the include;
//! 4. `POST .../status/start`; the init reports ready over its socket.

use std::path::Path;

use super::api::{failure_text, CtApi};
use super::ct::{allocated_rootfs_volume, attach_include, attach_node_local, ct_config, CtInputs};
use super::{api_err, PveBackendError, PveRuntime, FRAGMENT_FILE};
use crate::lxc::render_lines;
use crate::pve::client::PveError;
use crate::pve::config::update_node_config;
use crate::pve::vmid::{is_vmid_taken_message, ApiError, CreateOutcome, VmidApi, VmidError};
use crate::rootfs::zfs::volume_leaf;
use crate::runtime::container::{
    new_record, owner, prepare_bundle, write_file, BundleUndo, ContainerError, CreateRequest,
    CreatedContainer, InitRendezvous, PreparedBundle, Result,
};

pub(super) fn create(rt: &PveRuntime, req: &CreateRequest) -> Result<CreatedContainer> {
    let dir = rt.store.container_dir(&req.namespace, &req.id)?;
    if dir.exists() {
        return Err(ContainerError::Exists(format!(
            "{}/{}",
            req.namespace, req.id
        )));
    }
    let mut rollback = Rollback {
        rt,
        req,
        armed: true,
        bundle: BundleUndo::default(),
        ct: None,
    };
    let result = create_steps(rt, req, &dir, &mut rollback);
    if result.is_ok() {
        rollback.armed = false;
    }
    result
}

fn create_steps(
    rt: &PveRuntime,
    req: &CreateRequest,
    dir: &Path,
    rollback: &mut Rollback<'_>,
) -> Result<CreatedContainer> {
    // Only checked by the plan: the CT's LXC name is its VMID.
    let name = crate::runtime::lxc::container_name(&req.namespace, &req.id);
    let PreparedBundle {
        spec,
        cri,
        run_dir,
        rootfs,
        plan,
    } = prepare_bundle(
        &rt.config,
        rt.rootfs.as_ref(),
        req,
        dir,
        &name,
        // On pve the volume is named after the VMID: made once PVE gave one.
        None,
        &mut rollback.bundle,
    )?;

    let api = rt.api()?;
    let version = rt.pve_version(api.as_ref())?;
    // `ctr run --rootfs DIR` has no image to clone: its directory is used.
    let zfs = rt.rootfs.zfs().filter(|_| !req.rootfs_mounts.is_empty());
    let zfs_clone = zfs.is_some();
    let ct = ct_config(&CtInputs {
        version,
        namespace: &req.namespace,
        id: &req.id,
        spec: &spec,
        cri: &cri,
        init_cmd: &plan.lxc.init_cmd,
        template: &rt.config.pve.template,
        storage: &rt.config.pve.storage,
        rootfs_size: zfs_clone.then_some(rt.config.zfs.size),
    })
    .map_err(PveBackendError::CtConfig)?;
    let params = ct.to_api_params().map_err(PveBackendError::CtConfig)?;
    let mut fragment = plan.lxc.render_pve_fragment()?;
    let extra = ct.fragment_lines().map_err(PveBackendError::CtConfig)?;
    fragment.push_str(&render_lines(&extra)?);
    let fragment_path = dir.join(FRAGMENT_FILE);
    write_file(&fragment_path, fragment.as_bytes())?;

    let rendezvous = InitRendezvous::prepare(&run_dir)?;
    let mut record = new_record(
        req,
        &cri,
        "pve",
        String::new(),
        rollback.bundle.rootfs.is_some(),
    );
    record.node = Some(rt.node.clone());
    // Saved before PVE hears of the CT: from here on a crash is cleaned up
    // by the shim's `delete` action or, for the CT, by `lxcri gc`.
    rt.store.save(&record)?;

    let attempts = CreateAttempts {
        api: api.as_ref(),
        node: &rt.node,
        params: &params,
    };
    let vmid = match rt.allocator.allocate(&attempts) {
        Ok(vmid) => vmid,
        Err(e) => {
            // A create that failed half-way (or timed out) may have left a
            // CT with that VMID; rollback removes it if it is ours.
            if let VmidError::Create { vmid, .. } = &e {
                rollback.ct = Some(*vmid);
            }
            return Err(PveBackendError::Vmid(e).into());
        }
    };
    rollback.ct = Some(vmid);
    record.vmid = Some(vmid);
    record.backend_name = PveRuntime::lxc_name(vmid);
    rt.store.save(&record)?;
    tracing::info!(vmid, node = %rt.node, "created CT");

    let mut clone_failed = None;
    update_node_config(&rt.paths, vmid, |file| match zfs {
        None => attach_node_local(file, &rootfs, &fragment_path, rt.store.root()),
        Some(zfs) => {
            let leaf = allocated_rootfs_volume(file, vmid, &rt.config.pve.storage)?;
            if leaf != volume_leaf(&vmid.to_string()) {
                tracing::warn!(vmid, volume = %leaf, "PVE allocated an unexpected volume name");
            }
            rollback.bundle.volume = Some(leaf.clone());
            let owner = owner(&req.namespace, &req.id);
            if let Err(e) = zfs.replace_volume(&req.rootfs_mounts, &leaf, &owner) {
                clone_failed = Some(e);
                return Ok(false);
            }
            attach_include(file, &fragment_path, rt.store.root())
        }
    })
    .map_err(|source| PveBackendError::NodeConfig { vmid, source })?;
    if let Some(e) = clone_failed {
        return Err(crate::rootfs::RootfsError::from(e).into());
    }

    if let Err(e) = api.start(&rt.node, vmid) {
        // A start task fails when the CT stops at once; the init may have
        // said why (e.g. the process's executable is missing).
        return Err(rendezvous
            .init_failure()
            .unwrap_or_else(|| api_err(format!("starting CT {vmid}"))(e)));
    }
    let name = PveRuntime::lxc_name(vmid);
    rendezvous.finish(
        &rt.store,
        record,
        spec,
        run_dir,
        plan.init.process.terminal,
        rt.config.lxc.start_timeout(),
        &|| rt.lxc.is_running(&name),
        || PveBackendError::CtStopped { vmid }.into(),
    )
}

/// [`VmidApi`] for one create: each attempt is `POST /nodes/{node}/lxc`
/// with the candidate VMID, awaited to the end of its task.
struct CreateAttempts<'a> {
    api: &'a dyn CtApi,
    node: &'a str,
    params: &'a [(String, String)],
}

impl VmidApi for CreateAttempts<'_> {
    fn next_id_hint(&self, from: u32) -> std::result::Result<Option<u32>, ApiError> {
        Ok(self.api.next_id(from)?)
    }

    fn try_create(&self, vmid: u32) -> std::result::Result<CreateOutcome, ApiError> {
        let mut params = Vec::with_capacity(self.params.len() + 1);
        params.push(("vmid".to_string(), vmid.to_string()));
        params.extend_from_slice(self.params);
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

/// Undo list for a create in progress.
struct Rollback<'a> {
    rt: &'a PveRuntime,
    req: &'a CreateRequest,
    armed: bool,
    bundle: BundleUndo,
    /// A CT that is, or may be, ours.
    ct: Option<u32>,
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(vmid) = self.ct {
            // Ownership is checked by the description: a VMID whose create
            // lost a race belongs to someone else.
            if let Err(e) = self
                .rt
                .destroy_ct_if_ours(vmid, &self.req.namespace, &self.req.id)
            {
                tracing::warn!(vmid, error = %crate::error_chain(&e), "rollback: destroying CT");
            }
        }
        self.bundle
            .undo(self.rt.rootfs.as_ref(), &self.rt.store, self.req);
    }
}
