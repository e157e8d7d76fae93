//! The pure translation OCI spec -> [`ContainerPlan`]: the typed LXC config
//! plus the [`InitSpec`] the in-container init runs, and ([`pve`]) the CT a
//! PVE node gets for it. Both backends' translations read one checked
//! [`Limits`], so a value is validated in one place.
//!
//! Nothing here starts, mounts or writes anything; the only host reads are
//! `stat`s of bind sources and device nodes and the symlink resolution of
//! mount destinations inside the rootfs. Every OCI field lxcri cannot
//! honour fails with an error naming it; nothing is silently dropped.
//!
//! `linux.cgroupsPath` places the container's cgroup where runc would
//! (`lxc.cgroup.dir.container`) when the backend lets lxcri name it
//! ([`PlanContext::lxc_monitor_cgroup`]); systemd's `slice:prefix:name` and
//! the pve backend keep LXC's or PVE's own names (see
//! [`ContainerPlan::cgroup`]).

mod cgroup_mounts;
mod dev_pts;
mod dev_tmpfs;
mod devices;
mod features;
mod helper_mounts;
mod hooks;
mod host_netns;
mod limits;
mod memory_policy;
mod mount_flags;
mod mounts;
mod mqueue;
mod namespaces;
mod net_devices;
mod network;
mod proc_mount;
mod process;
pub mod pve;
mod pve_nics;
mod resolve;
mod resources;
mod scheduling;
mod sysctl;
mod time_offsets;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use lxcri_init_spec::{
    InitSpec, Propagation, PropagationKind, SessionKeyring, SharedMount, INIT_BINARY, RUNTIME_DIR,
};
use oci_spec::runtime::{Linux, Spec};

use crate::cgroup::{CgroupPath, CgroupPlacement, CgroupVersion, OwnCgroup};
use crate::lxc::{CgroupDirs, LxcAppArmor, LxcConfig, LxcConfigError, MountEntry, Prlimit};
use crate::network::net_device::NetDevice;
use crate::network::nic::NicSpec;
use crate::security::lsm::HostLsm;
use crate::security::{rlimits, CapabilityError, RlimitError, SeccompError};
use crate::spec::CriContainerType;

pub use crate::cgroup::CgroupSetting;
pub use features::runtime_features;
pub use hooks::{plan_hooks, HookPlan};
pub use host_netns::{HostNetnsSetup, HostSysfs, SysfsFlags};
pub use limits::{CpuLimits, CpuSet, Limit, Limits, MemoryLimits};
pub use mqueue::MqueueOwner;
pub use namespaces::NodeUserns;
pub use network::{NetnsTarget, NetworkPlan};
pub use process::plan_process;
pub use resolve::{resolve_in_root, ResolveError};
pub use resources::{blkio_to_io_weight, cgroup_settings, device_rules, shares_to_weight};

/// Host-side facts the translation needs besides the spec.
#[derive(Debug, Clone)]
pub struct PlanContext {
    /// The container's id and bundle, for the state hooks read.
    pub id: String,
    pub bundle: PathBuf,
    /// Host path where the rootfs is mounted (bundle/rootfs); absolute.
    pub rootfs: PathBuf,
    /// The rootfs was mounted for this container (a snapshot, a clone), so
    /// it is this container's alone ([`InitSpec::own_rootfs`]).
    pub rootfs_mounted: bool,
    /// Host dir bind-mounted read-write at [`RUNTIME_DIR`]: the init's
    /// spec, socket and start FIFO.
    pub run_dir: PathBuf,
    /// Host file bound read-only over [`RUNTIME_DIR`]/[`INIT_BINARY`]: the
    /// init the container starts (a link to the node's copy).
    pub init_binary: PathBuf,
    /// Which cgroup keys to write (`lxc.cgroup.*` or `lxc.cgroup2.*`).
    pub cgroup: CgroupVersion,
    /// `io.kubernetes.cri.container-type`; `None` for a `ctr` container.
    pub cri: Option<CriContainerType>,
    /// `network.netN`: NICs of a `ctr` container whose spec names none.
    pub default_nics: Vec<NicSpec>,
    /// The host's AppArmor and SELinux, which the spec's profile and labels
    /// are checked against.
    pub lsm: HostLsm,
    /// The container's AppArmor profile when its spec names none.
    pub apparmor: LxcAppArmor,
    /// The user namespace the node gives a container whose spec asks for
    /// none (`userns.unprivileged`).
    pub userns: Option<NodeUserns>,
    /// lxcri itself runs in a user namespace (nested in an unprivileged
    /// CT): device nodes must be binds, as runc does there.
    pub nested_userns: bool,
    /// The LXC monitor's cgroup when the container's own goes where
    /// `linux.cgroupsPath` says (LXC places both or neither). `None`: the
    /// backend names the container's cgroups itself (pve: `lxc/VMID`).
    pub lxc_monitor_cgroup: Option<CgroupPath>,
    /// The cgroup lxcri runs in: a relative `linux.cgroupsPath` is below it
    /// (the runtime reads it only for such a path).
    pub own_cgroup: OwnCgroup,
    /// A cgroup v1 host's hierarchy directories (`/sys/fs/cgroup/memory`,
    /// `.../cpu,cpuacct`...): a spec's cgroup mount binds the container's
    /// own from each, as runc does. Empty on v2.
    pub cgroup_v1_hierarchies: Vec<PathBuf>,
}

/// Everything needed to create the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    pub lxc: LxcConfig,
    pub init: InitSpec,
    /// Binds to make from the host once the init is ready (see
    /// [`lxcri_init_spec::ShareSpec`]).
    pub shared_mounts: Vec<SharedMount>,
    /// The memory and CPU limits, checked; the pve backend's CT keys.
    pub limits: Limits,
    /// NICs lxcri plugs once the container's network namespace exists.
    pub network: Option<NetworkPlan>,
    /// Host devices moved into the container's network namespace then
    /// (`linux.netDevices`).
    pub net_devices: Vec<NetDevice>,
    /// What the node's root sets up in a network namespace the container's
    /// user namespace does not own.
    pub host_netns: Option<HostNetnsSetup>,
    /// What `linux.cgroupsPath` asked for; the LXC config places a path
    /// there when the context allows, else the backend's names stand.
    pub cgroup: CgroupPlacement,
    /// The OCI hooks (`startContainer`'s are in `init` too).
    pub hooks: HookPlan,
    /// The mqueue mount whose root the shim gives to the container's root.
    pub mqueue_owner: Option<MqueueOwner>,
    /// A user namespace the spec joins with its mappings stated (they are
    /// `lxc.idmaps`), for the runtime to check against the namespace.
    pub joined_userns: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{field}: not supported by lxcri: {reason}")]
    Unsupported { field: String, reason: String },
    #[error("{field}: {path}: {source}")]
    Io {
        field: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Capability(#[from] CapabilityError),
    #[error(transparent)]
    Rlimit(#[from] RlimitError),
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Lxc(#[from] LxcConfigError),
    #[error(transparent)]
    PveConfig(#[from] crate::pve::config::PveConfigError),
}

pub type Result<T> = std::result::Result<T, PlanError>;

pub(crate) fn invalid(field: &str, message: &str) -> PlanError {
    PlanError::Invalid {
        field: field.to_string(),
        message: message.to_string(),
    }
}

pub(crate) fn unsupported(field: &str, reason: &str) -> PlanError {
    PlanError::Unsupported {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

/// Translates a loaded spec (see [`crate::spec::load_bundle_spec`]).
pub fn plan_container(spec: &Spec, ctx: &PlanContext) -> Result<ContainerPlan> {
    check_context(ctx)?;
    unsupported_spec_fields(spec)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    unsupported_linux_fields(linux)?;

    let cgroup = cgroup_placement(linux)?;
    let mut init_process = process::plan_process(process, spec, &ctx.lsm)?;
    let ns = namespaces::plan_namespaces(spec, linux, ctx.userns.as_ref())?;
    // runc's keyring, joined by the init first thing (LXC makes none, see
    // `lxc.keyring.session` in the rendered config).
    init_process.session_keyring = Some(SessionKeyring::for_first_process(
        &ctx.id,
        ns.user != namespaces::Mode::Host,
    ));
    let network = network::plan_network(&network::NetworkInputs {
        spec,
        cri: ctx.cri,
        defaults: &ctx.default_nics,
        net: ns.net,
        net_path: ns
            .namespaces
            .share
            .iter()
            .find(|(n, _)| *n == crate::lxc::Namespace::Net)
            .map(|(_, p)| p.clone())
            .or_else(|| ns.namespaces.inherit_net.clone()),
    })?;

    let net_devices = net_devices::plan_net_devices(linux, ns.net)?;

    let reserved = Path::new(RUNTIME_DIR);
    let mut lxc = LxcConfig::new(
        ctx.rootfs.clone(),
        format!("{RUNTIME_DIR}/{INIT_BINARY}"),
        ctx.cgroup,
    );
    lxc.uts_name = ns.uts_name.clone();
    lxc.namespaces = ns.namespaces.clone();
    lxc.network = ns.network;
    lxc.idmaps = ns.idmaps.clone();
    if init_process.apparmor_profile.is_none() {
        lxc.apparmor = ctx.apparmor;
    }
    if let Some(monitor) = &ctx.lxc_monitor_cgroup {
        let container = cgroup
            .resolve(&ctx.own_cgroup)
            .map_err(|e| unsupported(CGROUPS_PATH, &e.to_string()))?;
        lxc.cgroup_dirs = container.map(|container| CgroupDirs {
            container,
            monitor: monitor.clone(),
        });
    }

    // The runtime dir first: the init must be reachable whatever the spec mounts.
    lxc.mounts.push(MountEntry {
        source: path_string("run_dir", &ctx.run_dir)?,
        destination: RUNTIME_DIR.trim_start_matches('/').to_string(),
        fstype: "none".into(),
        options: vec!["bind".into(), "create=dir".into()],
    });
    lxc.mounts.push(MountEntry {
        source: path_string("init_binary", &ctx.init_binary)?,
        destination: format!("{}/{INIT_BINARY}", RUNTIME_DIR.trim_start_matches('/')),
        fstype: "none".into(),
        options: vec!["bind".into(), "ro".into()],
    });
    let mut mount_plan = mounts::plan_mounts(
        spec.mounts().as_deref().unwrap_or_default(),
        &ctx.rootfs,
        reserved,
        ns.user != namespaces::Mode::Host,
    )?;
    let mut symlinks = Vec::new();
    if let (Some(mode), Some(dirs), CgroupVersion::V1) =
        (mount_plan.cgroup, &lxc.cgroup_dirs, ctx.cgroup)
    {
        // In a user namespace bind sources are staged before the start
        // (`runtime::staged_binds`), when the container's cgroup does not
        // exist yet: LXC's own mount stays there.
        if !ctx.cgroup_v1_hierarchies.is_empty() && lxc.idmaps.is_empty() {
            let v1 = cgroup_mounts::v1_mounts(&ctx.cgroup_v1_hierarchies, &dirs.container, mode);
            let at = mount_plan.cgroup_at;
            mount_plan.entries.splice(at..at, v1.entries);
            mount_plan.cgroup = None;
            symlinks = v1.symlinks;
        }
    }
    lxc.mounts.extend(mounts::label_tmpfs_mounts(
        mount_plan.entries,
        linux.mount_label().as_deref(),
        &ctx.lsm,
    )?);
    lxc.mount_auto_cgroup = mount_plan.cgroup;
    let rootfs_propagation = rootfs_propagation(linux)?;
    // mknod is EPERM in a user namespace: runc binds the host's nodes there.
    let in_userns = ctx.nested_userns || ns.user != namespaces::Mode::Host;
    let device_plan = devices::plan_devices(
        linux.devices().as_deref().unwrap_or_default(),
        &ctx.rootfs,
        if in_userns {
            devices::DeviceNodes::BindHost
        } else {
            devices::DeviceNodes::Mknod
        },
    )?;
    lxc.mounts.extend(device_plan.entries);

    lxc.prlimits = init_process
        .rlimits
        .iter()
        .map(|r| Prlimit {
            name: rlimits::lxc_name(&r.resource),
            soft: r.soft,
            hard: r.hard,
        })
        .collect();
    lxc.oom_score_adj = init_process.oom_score_adj;
    (lxc.time_offset_boot, lxc.time_offset_monotonic) =
        time_offsets::plan_time_offsets(linux, &ns.namespaces)?;
    lxc.sysctls = sysctl::plan_sysctls(linux.sysctl().as_ref(), ns.net, ns.ipc, ns.uts)?;
    sysctl::add_domainname(&mut lxc.sysctls, spec.domainname().as_deref(), ns.uts)?;
    let mut limits = Limits::default();
    if let Some(res) = linux.resources() {
        limits = Limits::from_oci(res)?;
        lxc.cgroup_settings = resources::cgroup_settings_within(res, &limits, ctx.cgroup)?;
    }
    lxc.device_rules = device_rules(linux.resources().as_ref(), &device_plan.rules)?;
    let host_netns = ns
        .foreign_netns
        .clone()
        .map(|netns| host_netns::take_from(&mut lxc, netns))
        .transpose()?;
    let hooks = hooks::plan_hooks(spec, &ctx.id, &ctx.bundle)?;

    let init = InitSpec {
        process: init_process,
        rootfs_readonly: root.readonly().unwrap_or(false),
        masked_paths: container_paths("linux.maskedPaths", linux.masked_paths().as_deref())?,
        readonly_paths: container_paths("linux.readonlyPaths", linux.readonly_paths().as_deref())?,
        rootfs_propagation: Some(rootfs_propagation),
        mount_propagation: mount_plan.propagation,
        dev_tmpfs: mount_plan.dev_tmpfs,
        dev_pts: mount_plan.dev_pts,
        bind_flags: mount_plan.bind_flags,
        readonly_tmpfs: mount_plan.readonly_tmpfs,
        // An older shim's; this one says the same in the fields above.
        remount_flags: Vec::new(),
        tmpfs_modes: Vec::new(),
        recursive_attrs: mount_plan.recursive_attrs,
        own_rootfs: ctx.rootfs_mounted,
        devices: device_plan.nodes,
        // Where LXC makes a cgroup namespace the spec did not ask for (see
        // the field); joining the shim's takes CAP_SYS_ADMIN over the
        // node's user namespace, which a container in one of its own, or a
        // nested lxcri, lacks. On v2 LXC has mounted cgroup2 inside its
        // namespace, rooted at the container's cgroup: joining would show
        // host paths against that mount, so LXC's namespace stays.
        join_runtime_cgroupns: ns.cgroup == namespaces::Mode::Host
            && ctx.cgroup == CgroupVersion::V1
            && !ns.namespaces.share.is_empty()
            && ns.user == namespaces::Mode::Host
            && !ctx.nested_userns,
        symlinks,
        start_hooks: hooks.start_hooks(),
        pause_after_mounts: true,
    };
    // Fail now, not when the runtime writes the config.
    lxc.render()?;
    let mqueue_owner = mqueue::mqueue_owner(
        ns.user,
        ns.ipc,
        lxc.root_host_ids().map(|(uid, _)| uid),
        &lxc.mounts,
    );
    Ok(ContainerPlan {
        lxc,
        init,
        shared_mounts: mount_plan.shared,
        limits,
        network,
        net_devices,
        host_netns,
        cgroup,
        hooks,
        mqueue_owner,
        joined_userns: ns.joined_userns.clone(),
    })
}

const CGROUPS_PATH: &str = "linux.cgroupsPath";

/// `linux.cgroupsPath`, checked ([`CgroupPlacement::from_oci`]).
fn cgroup_placement(linux: &Linux) -> Result<CgroupPlacement> {
    let text = match linux.cgroups_path() {
        None => None,
        Some(p) => Some(
            p.to_str()
                .ok_or_else(|| invalid(CGROUPS_PATH, "is not valid UTF-8"))?,
        ),
    };
    CgroupPlacement::from_oci(text).map_err(|e| invalid(CGROUPS_PATH, &e.to_string()))
}

/// `linux.rootfsPropagation`; unset is runc's default, `rslave`.
fn rootfs_propagation(linux: &Linux) -> Result<Propagation> {
    match linux.rootfs_propagation().as_deref() {
        None | Some("") => Ok(Propagation {
            kind: PropagationKind::Slave,
            recursive: true,
        }),
        Some(p) => Propagation::parse(p).ok_or_else(|| {
            invalid(
                "linux.rootfsPropagation",
                &format!(
                    "{p:?} is not one of private, slave, shared, unbindable (or their r- forms)"
                ),
            )
        }),
    }
}

fn check_context(ctx: &PlanContext) -> Result<()> {
    for (field, p) in [("rootfs", &ctx.rootfs), ("run_dir", &ctx.run_dir)] {
        if !p.is_absolute() {
            return Err(invalid(field, &format!("{p:?} must be absolute")));
        }
    }
    Ok(())
}

fn path_string(field: &str, p: &Path) -> Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| invalid(field, "is not valid UTF-8"))
}

/// Masked and read-only paths: absolute container paths for the init.
fn container_paths(field: &str, paths: Option<&[String]>) -> Result<Vec<String>> {
    let paths = paths.unwrap_or_default();
    for (i, p) in paths.iter().enumerate() {
        if !p.starts_with('/') || p.contains('\0') {
            return Err(invalid(
                &format!("{field}[{i}]"),
                &format!("{p:?} must be an absolute path"),
            ));
        }
    }
    Ok(paths.to_vec())
}

fn unsupported_spec_fields(spec: &Spec) -> Result<()> {
    let other_platforms = [
        ("solaris", spec.solaris().is_some()),
        ("windows", spec.windows().is_some()),
        ("vm", spec.vm().is_some()),
        ("zos", spec.zos().is_some()),
    ];
    for (field, present) in other_platforms {
        if present {
            return Err(unsupported(field, "lxcri runs Linux containers only"));
        }
    }
    Ok(())
}

fn unsupported_linux_fields(linux: &Linux) -> Result<()> {
    if linux.intel_rdt().is_some() {
        return Err(unsupported(
            "linux.intelRdt",
            "Intel RDT is not implemented",
        ));
    }
    Ok(())
}
