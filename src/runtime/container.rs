//! The node-local container lifecycle on the lxc backend, as one
//! synchronous sequence with rollback: a create that fails at any step
//! leaves no LXC container, mount, runtime directory or state behind.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lxcri_init_spec::{
    ExecSpec, ProcessSpec, INIT_BINARY, INIT_SOCKET, INIT_SPEC_FILE, START_FIFO,
};
use oci_spec::runtime::Spec;

use super::backend::Backend;
use super::init_channel::{InitConnection, InitListener};
use super::lxc::LxcBackend;
use super::pidfd;
use crate::cgroup::{ContainerCgroup, HostCgroups};
use crate::config::Config;
use crate::config::RootfsMode;
use crate::plan::{plan_container, ContainerPlan, PlanContext};
use crate::rootfs::zfs::{volume_leaf, ZfsRootfs};
use crate::rootfs::{OverlayRootfs, RootfsMount, RootfsProvider, RootfsRequest};
use crate::spec::{load_bundle_spec, CriAnnotations};
use crate::state::{now_ns, ContainerRecord, StateStore, CONTAINER_RUN_DIR};

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
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
    Lxc(#[from] super::lxc::LxcError),
    #[error(transparent)]
    Init(#[from] super::init_channel::InitChannelError),
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
    #[error("the container's init: {0}")]
    InitProcess(std::io::Error),
    #[error(transparent)]
    Pve(Box<super::pve::PveBackendError>),
}

pub type Result<T> = std::result::Result<T, ContainerError>;

/// What `create` needs to know.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub namespace: String,
    pub id: String,
    pub bundle: PathBuf,
    pub rootfs_mounts: Vec<RootfsMount>,
}

/// A created container: its init is running and waits for `start`.
#[derive(Debug)]
pub struct CreatedContainer {
    pub record: ContainerRecord,
    pub spec: Spec,
    pub run_dir: PathBuf,
    /// The live connection to the init: stdio is handed over next.
    pub init: InitConnection,
    /// The start FIFO, opened read-write and kept so the init's open and
    /// the shim's later write never block or fail.
    pub start_gate: File,
    pub terminal: bool,
}

/// The lxc backend's view of the node: where state and containers live.
#[derive(Debug)]
pub struct LxcRuntime {
    pub config: Config,
    pub store: StateStore,
    pub lxc: LxcBackend,
    pub rootfs: Box<dyn RootfsProvider>,
}

impl LxcRuntime {
    pub fn new(config: Config) -> Self {
        let store = StateStore::new(&config.runtime_root);
        let lxc = LxcBackend::new(&config.lxc.lxcpath, config.lxc.log_level.lxc_name());
        let rootfs = rootfs_provider(&config);
        Self {
            config,
            store,
            lxc,
            rootfs,
        }
    }

    /// Creates the container and starts its init; on error, undoes every step.
    pub fn create(&self, req: &CreateRequest) -> Result<CreatedContainer> {
        let name = super::lxc::container_name(&req.namespace, &req.id);
        let dir = self.store.container_dir(&req.namespace, &req.id)?;
        if dir.exists() || self.lxc.container_dir(&name).exists() {
            return Err(ContainerError::Exists(format!(
                "{}/{}",
                req.namespace, req.id
            )));
        }
        let mut rollback = Rollback::new(self, req, &name);
        let result = self.create_steps(req, &name, &dir, &mut rollback);
        if result.is_ok() {
            rollback.disarm();
        }
        result
    }

    fn create_steps(
        &self,
        req: &CreateRequest,
        name: &str,
        dir: &Path,
        rollback: &mut Rollback<'_>,
    ) -> Result<CreatedContainer> {
        let PreparedBundle {
            spec,
            cri,
            run_dir,
            plan,
            ..
        } = prepare_bundle(
            &self.config,
            self.rootfs.as_ref(),
            req,
            dir,
            name,
            Some(&volume_leaf(name)),
            &mut rollback.bundle,
        )?;
        let rendered = plan.lxc.render()?;
        rollback.lxc = true;
        self.lxc.write_config(name, &rendered)?;

        let rendezvous = InitRendezvous::prepare(&run_dir)?;
        let record = new_record(
            req,
            &cri,
            "lxc",
            name.to_string(),
            rollback.bundle.rootfs.is_some(),
        );
        // Saved before LXC starts anything, so a crash from here on is
        // cleaned up by the shim's `delete` action.
        self.store.save(&record)?;

        if let Err(e) = self.lxc.start(name) {
            // The init may have said why its container stopped at once.
            return Err(rendezvous.init_failure().unwrap_or_else(|| e.into()));
        }
        rendezvous.finish(
            &self.store,
            record,
            spec,
            run_dir,
            plan.init.process.terminal,
            self.config.lxc.start_timeout(),
            &|| self.lxc.is_running(name),
            || {
                super::lxc::LxcError::Failed {
                    command: format!("lxc-start -n {name}"),
                    status: "container stopped".into(),
                    detail: self.lxc.failure_detail(name, b""),
                }
                .into()
            },
        )
    }
}

/// The init's socket and the start gate, made before the container starts.
pub(super) struct InitRendezvous {
    listener: InitListener,
    /// The start FIFO, opened read-write and kept so the init's open and
    /// the shim's later write never block or fail.
    start_gate: File,
}

impl InitRendezvous {
    pub(super) fn prepare(run_dir: &Path) -> Result<Self> {
        let listener = InitListener::bind(&run_dir.join(INIT_SOCKET))?;
        let start_gate = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(run_dir.join(START_FIFO))
            .map_err(|source| ContainerError::RunDir {
                path: run_dir.join(START_FIFO),
                source,
            })?;
        Ok(Self {
            listener,
            start_gate,
        })
    }

    /// What the init said before its container stopped, when a start failed
    /// (a missing executable, a bad cwd...): a better cause than "the start
    /// failed". `None` when it said nothing.
    pub(super) fn init_failure(&self) -> Option<ContainerError> {
        match self
            .listener
            .accept_ready(std::time::Duration::from_millis(200), &|| false)
        {
            Err(e @ super::init_channel::InitChannelError::InitFailed(_)) => Some(e.into()),
            _ => None,
        }
    }

    /// Waits for the started container's init to report ready, records its
    /// pid, and hands back the created container. `gone` is the error when
    /// the container stopped before its init was ready.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn finish(
        self,
        store: &StateStore,
        mut record: ContainerRecord,
        spec: Spec,
        run_dir: PathBuf,
        terminal: bool,
        timeout: std::time::Duration,
        still_starting: &dyn Fn() -> bool,
        gone: impl FnOnce() -> ContainerError,
    ) -> Result<CreatedContainer> {
        let init = self
            .listener
            .accept_ready(timeout, still_starting)
            .map_err(|e| match e {
                super::init_channel::InitChannelError::ContainerGone => gone(),
                other => ContainerError::from(other),
            })?;
        record.pid = Some(init.pid());
        record.pid_start_time = pidfd::start_time(init.pid()).ok();
        store.save(&record)?;
        Ok(CreatedContainer {
            record,
            spec,
            run_dir,
            init,
            start_gate: self.start_gate,
            terminal,
        })
    }
}

/// A container's state record before its init runs.
pub(super) fn new_record(
    req: &CreateRequest,
    cri: &CriAnnotations,
    backend: &str,
    backend_name: String,
    rootfs_mounted: bool,
) -> ContainerRecord {
    ContainerRecord {
        id: req.id.clone(),
        namespace: req.namespace.clone(),
        bundle: req.bundle.clone(),
        backend: backend.into(),
        backend_name,
        pid: None,
        pid_start_time: None,
        sandbox_id: cri.sandbox_id.clone(),
        pod: cri.sandbox_name.clone(),
        pod_namespace: cri.sandbox_namespace.clone(),
        rootfs_mounted,
        created_at_ns: now_ns(),
        vmid: None,
        node: None,
    }
}

impl Backend for LxcRuntime {
    fn name(&self) -> &'static str {
        "lxc"
    }

    fn config(&self) -> &Config {
        &self.config
    }

    fn create(&self, req: &CreateRequest) -> Result<CreatedContainer> {
        LxcRuntime::create(self, req)
    }

    fn stop(&self, namespace: &str, id: &str) -> Result<()> {
        Ok(self.lxc.stop(&super::lxc::container_name(namespace, id))?)
    }

    /// Stops and removes everything lxcri made for a container. Safe to
    /// call repeatedly and on partially created containers.
    fn destroy(&self, namespace: &str, id: &str, bundle: &Path) -> Result<()> {
        let name = super::lxc::container_name(namespace, id);
        let record = self.store.load(namespace, id).ok().flatten();
        self.lxc.stop(&name)?;
        self.lxc.remove(&name)?;
        let mounted = record.as_ref().map(|r| r.rootfs_mounted).unwrap_or(true);
        let target = bundle.join("rootfs");
        self.rootfs.release(
            mounted.then_some(target.as_path()),
            &owner(namespace, id),
            Some(&volume_leaf(&name)),
        )?;
        self.store.remove(namespace, id)?;
        Ok(())
    }
}

/// The rootfs provider `rootfs.mode` names.
pub(super) fn rootfs_provider(config: &Config) -> Box<dyn RootfsProvider> {
    match config.rootfs.mode {
        RootfsMode::Overlay => Box::new(OverlayRootfs),
        RootfsMode::Zfs => Box::new(
            ZfsRootfs::from_settings(&config.zfs, &config.runtime_root)
                .expect("a loaded config with rootfs.mode = zfs has zfs.pool"),
        ),
    }
}

/// A container's owner mark on what lxcri makes for it.
pub(super) fn owner(namespace: &str, id: &str) -> String {
    format!("{namespace}/{id}")
}

/// What `lxcri-init exec` needs to join a running container.
pub fn exec_spec(init_pid: i32, process: ProcessSpec) -> Result<ExecSpec> {
    let cgroup = ContainerCgroup::for_pid(init_pid)?;
    let mut cgroup_procs: Vec<String> = cgroup
        .all_dirs()
        .map(|d| d.join("cgroup.procs").to_string_lossy().into_owned())
        .collect();
    cgroup_procs.sort();
    cgroup_procs.dedup();
    Ok(ExecSpec {
        init_pid,
        namespaces: namespaces_to_join(init_pid),
        cgroup_procs,
        process,
    })
}

/// The namespaces of `pid` that differ from ours, `user` first and `mnt`
/// last (joining the mount namespace changes what `/proc` paths mean).
pub fn namespaces_to_join(pid: i32) -> Vec<String> {
    const ORDER: [&str; 8] = ["user", "cgroup", "ipc", "uts", "net", "pid", "time", "mnt"];
    ORDER
        .iter()
        .filter(|ns| {
            let theirs = fs::read_link(format!("/proc/{pid}/ns/{ns}"));
            let ours = fs::read_link(format!("/proc/self/ns/{ns}"));
            matches!((theirs, ours), (Ok(t), Ok(o)) if t != o)
        })
        .map(|s| s.to_string())
        .collect()
}

fn rootfs_path(bundle: &Path, spec: &Spec) -> PathBuf {
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

fn prepare_run_dir(run_dir: &Path, init_binary: &Path) -> Result<()> {
    let err = |source| ContainerError::RunDir {
        path: run_dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(run_dir).map_err(err)?;
    fs::set_permissions(run_dir, fs::Permissions::from_mode(0o711)).map_err(err)?;
    // A copy, not a bind: the container must not pin or see the host binary.
    let target = run_dir.join(INIT_BINARY);
    fs::copy(init_binary, &target).map_err(|source| ContainerError::RunDir {
        path: init_binary.to_path_buf(),
        source,
    })?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o555)).map_err(err)?;
    nix::unistd::mkfifo(
        &run_dir.join(START_FIFO),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| err(e.into()))?;
    Ok(())
}

pub(super) fn write_file(path: &Path, body: &[u8]) -> Result<()> {
    fs::write(path, body).map_err(|source| ContainerError::RunDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Undo list for a create in progress.
struct Rollback<'a> {
    rt: &'a LxcRuntime,
    req: &'a CreateRequest,
    name: String,
    armed: bool,
    bundle: BundleUndo,
    lxc: bool,
}

impl<'a> Rollback<'a> {
    fn new(rt: &'a LxcRuntime, req: &'a CreateRequest, name: &str) -> Self {
        Self {
            rt,
            req,
            name: name.to_string(),
            armed: true,
            bundle: BundleUndo::default(),
            lxc: false,
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for Rollback<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if self.lxc {
            if let Err(e) = self.rt.lxc.stop(&self.name) {
                tracing::warn!(error = %e, "rollback: stopping LXC container");
            }
            if let Err(e) = self.rt.lxc.remove(&self.name) {
                tracing::warn!(error = %e, "rollback: removing LXC container");
            }
        }
        self.bundle
            .undo(self.rt.rootfs.as_ref(), &self.rt.store, self.req);
    }
}

/// What both backends undo of a failed create, last: the rootfs (mount
/// and volume) and the runtime directory (with all lxcri wrote into it).
#[derive(Debug, Default)]
pub(super) struct BundleUndo {
    pub(super) state_dir: bool,
    /// The mounted rootfs target.
    pub(super) rootfs: Option<PathBuf>,
    /// The container's volume, when the rootfs provider may have made one.
    pub(super) volume: Option<String>,
}

impl BundleUndo {
    pub(super) fn undo(
        &self,
        rootfs: &dyn RootfsProvider,
        store: &StateStore,
        req: &CreateRequest,
    ) {
        if self.rootfs.is_some() || self.volume.is_some() {
            let owner = owner(&req.namespace, &req.id);
            if let Err(e) = rootfs.release(self.rootfs.as_deref(), &owner, self.volume.as_deref()) {
                tracing::warn!(error = %crate::error_chain(&e), "rollback: releasing rootfs");
            }
        }
        if self.state_dir {
            if let Err(e) = store.remove(&req.namespace, &req.id) {
                tracing::warn!(error = %e, "rollback: removing runtime directory");
            }
        }
    }
}

/// A bundle ready for its container: loaded, planned, the rootfs mounted
/// and the runtime directory holding the init and its spec.
pub(super) struct PreparedBundle {
    pub(super) spec: Spec,
    pub(super) cri: CriAnnotations,
    pub(super) run_dir: PathBuf,
    /// Host path of the container's root filesystem.
    pub(super) rootfs: PathBuf,
    pub(super) plan: ContainerPlan,
}

/// The first steps of every backend's create; `undo` learns what to undo
/// as each step is done. `lxc_name` is the name the plan checks; `volume`
/// names the container's own rootfs volume when it can be made now.
pub(super) fn prepare_bundle(
    config: &Config,
    rootfs: &dyn RootfsProvider,
    req: &CreateRequest,
    dir: &Path,
    lxc_name: &str,
    volume: Option<&str>,
    undo: &mut BundleUndo,
) -> Result<PreparedBundle> {
    let spec = load_bundle_spec(&req.bundle)?;
    let cri = CriAnnotations::from_spec(&spec)?;
    let run_dir = dir.join(CONTAINER_RUN_DIR);
    undo.state_dir = true;
    prepare_run_dir(&run_dir, &config.init_binary()?)?;

    let rootfs_path = rootfs_path(&req.bundle, &spec);
    undo.volume = volume.map(str::to_string);
    let mounted = rootfs.prepare(&RootfsRequest {
        mounts: &req.rootfs_mounts,
        target: &rootfs_path,
        owner: &owner(&req.namespace, &req.id),
        volume,
    })?;
    if mounted {
        undo.rootfs = Some(rootfs_path.clone());
    }
    let host_cgroups = HostCgroups::detect();
    let mut plan = plan_container(
        &spec,
        &PlanContext {
            lxc_name: lxc_name.to_string(),
            rootfs: rootfs_path.clone(),
            run_dir: run_dir.clone(),
            cgroup: host_cgroups.version(),
        },
    )?;
    host_cgroups.adapt(&mut plan.lxc.cgroup_settings)?;
    let init_json = serde_json::to_vec(&plan.init).expect("init spec serializes");
    write_file(&run_dir.join(INIT_SPEC_FILE), &init_json)?;
    Ok(PreparedBundle {
        spec,
        cri,
        run_dir,
        rootfs: rootfs_path,
        plan,
    })
}
