//! The first part of every create, whatever the backend: the bundle loaded
//! and planned, the container's state record saved, its runtime directory
//! holding the init and its spec, the rootfs in place; and its undo.

use std::fs;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lxcri_init_spec::{INIT_BINARY, INIT_ERROR_FILE, INIT_SPEC_FILE, START_FIFO};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::container::CreateRequest;
use super::error::{Result, RuntimeError};
use super::init_copy::link_init_copy;
use super::{host_netns, node_userns, staged_binds};
use crate::cgroup::HostCgroups;
use crate::cgroup::{CgroupPlacement, OwnCgroup};
use crate::config::{BackendKind, Config};
use crate::lxc::LxcAppArmor;
use crate::plan::{plan_container, ContainerPlan, PlanContext};
use crate::rootfs::{RootfsProvider, RootfsRequest};
use crate::security::lsm::HostLsm;
use crate::spec::{load_bundle_spec, CriAnnotations};
use crate::state::{now_ns, ContainerRecord, StateStore, CONTAINER_RUN_DIR};

/// A bundle ready for its container: loaded, planned, the rootfs in place
/// and the runtime directory holding the init and its spec.
#[derive(Debug)]
pub struct PreparedBundle {
    pub spec: Spec,
    pub cri: CriAnnotations,
    /// The directory bind-mounted at `/.lxcri` in the container.
    pub run_dir: PathBuf,
    /// Host path of the container's root filesystem.
    pub rootfs: PathBuf,
    pub plan: ContainerPlan,
    /// The ids `userns.unprivileged` chose for the container.
    pub userns: Option<crate::userns::IdRange>,
}

/// What the bundle step made, undone last when a create fails: the rootfs
/// (mount and volume) and the runtime directory (with everything lxcri
/// wrote into it, the state record included).
#[derive(Debug, Default)]
pub struct BundleUndo {
    state_dir: bool,
    /// The mounted rootfs target.
    rootfs: Option<PathBuf>,
    /// The container's volume, when the rootfs provider may have made one.
    pub volume: Option<String>,
    /// The slot of `userns.pool` taken for the container.
    pub userns_slot: Option<u32>,
    /// Whether bind sources may have been staged ([`staged_binds`]).
    staged_binds: bool,
}

impl BundleUndo {
    pub fn undo(&self, rootfs: &dyn RootfsProvider, store: &StateStore, req: &CreateRequest) {
        if self.rootfs.is_some() || self.volume.is_some() {
            let release =
                rootfs.release(self.rootfs.as_deref(), &req.owner(), self.volume.as_deref());
            if let Err(e) = release {
                tracing::warn!(error = %crate::error_chain(&e), "rollback: releasing rootfs");
            }
        }
        if let Some(slot) = self.userns_slot {
            if let Err(e) = node_userns::release(store, &req.namespace, &req.id, slot) {
                tracing::warn!(error = %e, "rollback: freeing the container's id range");
            }
        }
        if self.staged_binds {
            let unstaged = match store.container_dir(&req.namespace, &req.id) {
                Ok(dir) => staged_binds::unstage(&dir).map_err(RuntimeError::from),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = unstaged {
                // Removing the directory would reach into a still-mounted source.
                tracing::warn!(error = %e, "rollback: unmounting staged bind sources; the runtime directory stays for `lxcri gc`");
                return;
            }
        }
        if self.state_dir {
            if let Err(e) = store.remove(&req.namespace, &req.id) {
                tracing::warn!(error = %e, "rollback: removing runtime directory");
            }
        }
    }
}

/// What [`prepare_bundle`] works with.
pub struct BundleInputs<'a> {
    pub config: &'a Config,
    pub store: &'a StateStore,
    pub rootfs: &'a dyn RootfsProvider,
    pub backend: BackendKind,
    /// The container's own rootfs volume when it can be named now (the
    /// pve backend names it after the VMID, made later).
    pub volume: Option<String>,
    /// See [`super::backend::CreateSteps::lxc_monitor_cgroup`].
    pub lxc_monitor_cgroup: Option<crate::cgroup::CgroupPath>,
}

/// Loads and plans the bundle, saves the container's first state record
/// (before anything is mounted, so a crash from here on is cleaned up by
/// the shim's `delete` action), and puts the rootfs in place. `undo`
/// learns what to undo as each step is done.
pub fn prepare_bundle(
    i: &BundleInputs<'_>,
    req: &CreateRequest,
    undo: &mut BundleUndo,
) -> Result<(PreparedBundle, ContainerRecord)> {
    let dir = i.store.container_dir(&req.namespace, &req.id)?;
    if dir.exists() {
        return Err(RuntimeError::Exists(req.owner()));
    }
    let mut spec = load_bundle_spec(&req.bundle)?;
    let maps_filled = super::joined_userns::fill_joined_user_maps(&mut spec)?;
    check_time_namespace(&spec, Path::new("/proc/self/timens_offsets"))?;
    let cri = CriAnnotations::from_spec(&spec)?;
    let rootfs_path = rootfs_path(&req.bundle, &spec);
    check_root_path(&rootfs_path)?;
    let mut record = ContainerRecord {
        id: req.id.clone(),
        namespace: req.namespace.clone(),
        bundle: req.bundle.clone(),
        backend: i.backend.as_str().into(),
        backend_name: String::new(),
        pid: None,
        pid_start_time: None,
        sandbox_id: cri.sandbox_id.clone(),
        pod: cri.sandbox_name.clone(),
        pod_namespace: cri.sandbox_namespace.clone(),
        // `ctr run --rootfs DIR` brings its own: nothing is mounted on it.
        rootfs_mounted: !req.rootfs_mounts.is_empty(),
        rootfs: Some(rootfs_path.clone()),
        created_at_ns: now_ns(),
        vmid: None,
        node: None,
        nics: Vec::new(),
        userns_slot: None,
        container_name: cri.container_name.clone(),
        image: cri.image_name.clone(),
        poststop_hooks: spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().as_ref())
            .is_some_and(|l| !l.is_empty()),
    };
    undo.state_dir = true;
    i.store.save(&record)?;
    let run_dir = dir.join(CONTAINER_RUN_DIR);
    let init_binary = dir.join(INIT_BINARY);
    prepare_run_dir(&run_dir)?;
    link_init_copy(
        &i.config.init_binary()?,
        &i.config.runtime_root,
        &init_binary,
    )?;
    let chosen = node_userns::choose(i.config, i.store, i.backend, &spec, &cri, &mut record)?;
    undo.userns_slot = chosen.as_ref().and_then(|c| c.slot);
    let node_userns = chosen.map(|c| c.userns);
    let userns = node_userns.as_ref().map(|u| u.range);

    // A user-namespaced pod's snapshot, shifted into the pod's ids
    // (node_userns chose none: the spec has a user namespace).
    let snapshot_idmap = crate::rootfs::snapshot_idmap(&req.rootfs_mounts)?;

    undo.volume = i.volume.clone();
    let mounted = i.rootfs.prepare(&RootfsRequest {
        mounts: &req.rootfs_mounts,
        target: &rootfs_path,
        owner: &req.owner(),
        volume: i.volume.as_deref(),
        idmap: userns.or(snapshot_idmap),
    })?;
    if mounted {
        undo.rootfs = Some(rootfs_path.clone());
    }
    let host_cgroups = HostCgroups::detect();
    let mut plan = plan_container(
        &spec,
        &PlanContext {
            id: req.id.clone(),
            bundle: req.bundle.clone(),
            rootfs: rootfs_path.clone(),
            rootfs_mounted: mounted,
            run_dir: run_dir.clone(),
            init_binary,
            cgroup: host_cgroups.version(),
            cri: cri.container_type,
            default_nics: i.config.network.nics().cloned().collect(),
            userns: node_userns,
            nested_userns: crate::userns::runs_in_user_namespace(),
            lxc_monitor_cgroup: i.lxc_monitor_cgroup.clone(),
            cgroup_v1_hierarchies: host_cgroups.v1_hierarchies(),
            own_cgroup: own_cgroup(&spec, host_cgroups.version()),
            lsm: HostLsm::host(),
            apparmor: match i.backend {
                BackendKind::Pve => i.config.pve.apparmor,
                BackendKind::Lxc => LxcAppArmor::Unconfined,
            },
        },
    )?;
    if i.backend == BackendKind::Pve && plan.lxc.oom_score_adj.is_none() {
        // runc's process inherits its shim's score (containerd's + 1), as
        // lxc-start's does here on the lxc backend; a CT starts from PVE's
        // service manager, at 0.
        plan.lxc.oom_score_adj = own_oom_score_adj();
    }
    if let Some(path) = plan.joined_userns.as_ref().filter(|_| !maps_filled) {
        super::joined_userns::check_joined_user_maps(path, &plan.lxc.idmaps)?;
    }
    host_cgroups.adapt(&mut plan.lxc.cgroup_settings)?;
    if let Some(dirs) = &plan.lxc.cgroup_dirs {
        host_cgroups.prepare_cpuset(&dirs.container, &mut plan.lxc.cgroup_settings)?;
    } else if plan.cgroup != CgroupPlacement::RuntimeDefault {
        // Not an error: the container runs, in the cgroup LXC or PVE names
        // (docs/kubernetes.md, "cgroup driver").
        let why = match i.backend {
            BackendKind::Pve => "PVE places a CT's cgroups itself (lxc/VMID)",
            BackendKind::Lxc => {
                "lxcri makes no systemd units; the container's cgroup is LXC's own lxc.payload.<name>"
            }
        };
        tracing::warn!(cgroups_path = ?plan.cgroup, "linux.cgroupsPath is not followed: {why}");
    }
    if let Some(setup) = &plan.host_netns {
        if !mounted {
            return Err(RuntimeError::HostNetns(Box::new(
                host_netns::HostNetnsError::UnmountedRootfs(rootfs_path.clone()),
            )));
        }
        // On the rootfs mounted above: the rootfs's undo unmounts it too.
        host_netns::apply(setup, &rootfs_path)?;
    }
    if let Some((_, gid)) = plan.lxc.root_host_ids() {
        undo.staged_binds = true;
        staged_binds::stage(&mut plan.lxc.mounts, &dir, gid)?;
    }
    let init_json = serde_json::to_vec(&plan.init).expect("init spec serializes");
    write_file(&run_dir.join(INIT_SPEC_FILE), &init_json)?;
    if let Some(ids) = plan.lxc.root_host_ids() {
        // The init runs as the mapped root: it must reach its spec and the
        // start gate, and write its exit report.
        for path in [
            run_dir.clone(),
            run_dir.join(INIT_SPEC_FILE),
            run_dir.join(START_FIFO),
            run_dir.join(INIT_ERROR_FILE),
        ] {
            hand_to_container_root(&path, ids)?;
        }
    }
    let bundle = PreparedBundle {
        spec,
        cri,
        run_dir,
        rootfs: rootfs_path,
        plan,
        userns,
    };
    Ok((bundle, record))
}

/// This process's `oom_score_adj`; `None` where /proc does not say.
fn own_oom_score_adj() -> Option<i32> {
    fs::read_to_string("/proc/self/oom_score_adj")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The cgroup a relative `linux.cgroupsPath` is below, read only for one:
/// any other placement does not look at it.
fn own_cgroup(spec: &Spec, version: crate::cgroup::CgroupVersion) -> OwnCgroup {
    let path = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref());
    if !path.is_some_and(|p| p.is_relative()) {
        return OwnCgroup::Uniform(String::new());
    }
    match fs::read_to_string("/proc/self/cgroup") {
        Ok(content) => OwnCgroup::from_proc_cgroup(&content, version),
        Err(e) => OwnCgroup::Unknown(format!("/proc/self/cgroup: {e}")),
    }
}

/// The host path of the container's rootfs: `root.path`, relative to the
/// bundle unless absolute.
pub fn rootfs_path(bundle: &Path, spec: &Spec) -> PathBuf {
    let root = spec
        .root()
        .as_ref()
        .map(|r| r.path().clone())
        .unwrap_or_else(|| PathBuf::from("rootfs"));
    if root.is_absolute() {
        root
    } else {
        bundle.join(root)
    }
}

/// runc's rule (libcontainer/configs/validate `rootfs`): the rootfs must
/// exist and its path must be the real one, with no symlink on the way,
/// so that nothing resolving it later (LXC, the hooks' view of it) can be
/// led elsewhere.
fn check_root_path(path: &Path) -> Result<()> {
    let refuse = |reason: String| RuntimeError::RootPath {
        path: path.to_path_buf(),
        reason,
    };
    let real = fs::canonicalize(path).map_err(|e| refuse(e.to_string()))?;
    let lexical: PathBuf = path.components().collect();
    if real != lexical {
        return Err(refuse(format!(
            "not the real path or a symlink (it resolves to {})",
            real.display()
        )));
    }
    Ok(())
}

fn prepare_run_dir(run_dir: &Path) -> Result<()> {
    let err = |source| RuntimeError::RunDir {
        path: run_dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(run_dir).map_err(err)?;
    fs::set_permissions(run_dir, fs::Permissions::from_mode(0o711)).map_err(err)?;
    // Where the node's copy of the init is bound, read-only
    // (see `init_copy`); the container never sees a file of its own here.
    new_empty_file(&run_dir.join(INIT_BINARY), 0o444).map_err(err)?;
    nix::unistd::mkfifo(
        &run_dir.join(START_FIFO),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| err(e.into()))?;
    new_empty_file(&run_dir.join(INIT_ERROR_FILE), 0o600).map_err(err)
}

fn new_empty_file(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map(drop)
}

/// Gives `path` to the host ids the container's root runs as under its
/// user namespace (see [`crate::lxc::LxcConfig::root_host_ids`]).
pub fn hand_to_container_root(path: &Path, (uid, gid): (u32, u32)) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(|source| RuntimeError::RunDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a file lxcri made for the container (its init spec, a fragment).
pub fn write_file(path: &Path, body: &[u8]) -> Result<()> {
    crate::owner_only::write(path, body).map_err(|source| RuntimeError::RunDir {
        path: path.to_path_buf(),
        source,
    })
}

/// runc refuses a time namespace the kernel lacks (validator.go
/// `namespaces`); LXC would ignore the failed `unshare` and run the
/// container on the host's clocks, its offsets dropped (lxc start.c).
fn check_time_namespace(spec: &Spec, timens_offsets: &Path) -> Result<()> {
    let asks = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Time));
    if asks && !timens_offsets.exists() {
        return Err(crate::plan::unsupported(
            "linux.namespaces",
            "this kernel has no time namespaces",
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_path_must_be_real_as_for_runc() {
        let tmp = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(tmp.path()).unwrap().join("rootfs");
        fs::create_dir(&real).unwrap();
        assert!(check_root_path(&real).is_ok());
        let link = real.with_file_name("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let through = real.with_file_name("via");
        std::os::unix::fs::symlink(real.parent().unwrap(), &through).unwrap();
        for bad in [link, through.join("rootfs"), real.with_file_name("missing")] {
            let e = check_root_path(&bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("root.path {}: ", bad.display())),
                "{e}"
            );
        }
    }

    #[test]
    fn a_time_namespace_needs_the_kernels() {
        let tmp = tempfile::tempdir().unwrap();
        let (there, missing) = (tmp.path().join("timens_offsets"), tmp.path().join("none"));
        std::fs::write(&there, "").unwrap();
        let spec = |ns: serde_json::Value| -> Spec {
            serde_json::from_value(serde_json::json!({"ociVersion": "1.2.0",
                "linux": {"namespaces": ns}}))
            .unwrap()
        };
        let time = spec(serde_json::json!([{"type": "mount"}, {"type": "time"}]));
        check_time_namespace(&time, &there).unwrap();
        let e = check_time_namespace(&time, &missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("linux.namespaces") && e.contains("no time namespaces"),
            "{e}"
        );
        check_time_namespace(&spec(serde_json::json!([{"type": "mount"}])), &missing).unwrap();
    }
}
