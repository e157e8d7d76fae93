//! The typed LXC container configuration: one field per concern, no
//! strings keyed by `lxc.*` names (those live only in the renderer).

use std::path::PathBuf;

use crate::cgroup::{CgroupPath, CgroupSetting, CgroupVersion};

/// An LXC namespace identifier, as `lxc.namespace.*` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Namespace {
    Mnt,
    Pid,
    Net,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl Namespace {
    /// The name LXC uses (and `/proc/<pid>/ns/` uses).
    pub fn as_str(self) -> &'static str {
        match self {
            Namespace::Mnt => "mnt",
            Namespace::Pid => "pid",
            Namespace::Net => "net",
            Namespace::Ipc => "ipc",
            Namespace::Uts => "uts",
            Namespace::User => "user",
            Namespace::Cgroup => "cgroup",
            Namespace::Time => "time",
        }
    }
}

/// Which namespaces the container gets.
///
/// Namespaces in neither list are the host's. LXC refuses a config that sets
/// both `lxc.namespace.clone` and `lxc.namespace.keep` ("Cannot set both"),
/// and with `clone` set it creates exactly the listed ones, so "keep" is
/// expressed by leaving a namespace out of `clone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Namespaces {
    /// New namespaces (`lxc.namespace.clone`), in a fixed order.
    pub clone: Vec<Namespace>,
    /// Namespaces joined by path (`lxc.namespace.share.<ns>`).
    pub share: Vec<(Namespace, PathBuf)>,
    /// A network namespace `lxc-start` is run in, which the container
    /// keeps (it is in neither list). LXC joins shared namespaces user
    /// first (lxc 5.0.2 src/lxc/start.c `do_share_ns`, `ns_info` order),
    /// and a process inside a user namespace may no longer join a network
    /// namespace the node's root owns: a pod container that joins its
    /// sandbox's user namespace gets the pod's network namespace this way.
    pub inherit_net: Option<PathBuf>,
}

impl Namespaces {
    /// Whether the container has its own `ns`, new or joined.
    pub fn has(&self, ns: Namespace) -> bool {
        self.clone.contains(&ns)
            || self.share.iter().any(|(n, _)| *n == ns)
            || (ns == Namespace::Net && self.inherit_net.is_some())
    }
}

/// Network setup of a new network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Loopback only (`lxc.net.0.type = empty`); CNI or the backend adds more.
    Empty,
}

/// `u` or `g` in `lxc.idmap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    User,
    Group,
}

/// The AppArmor profile LXC puts the whole container in. The OCI process's
/// own profile is applied by the init at exec (as runc does), so that lxcri's
/// setup is not confined by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LxcAppArmor {
    /// As runc, whose containers run in the runtime's (unconfined) profile
    /// unless the spec names one. Without it LXC would pick its own default.
    #[default]
    Unconfined,
    /// LXC's `generated` profile, the one PVE gives every CT (pve-container
    /// src/PVE/LXC.pm `make_apparmor_config`).
    Generated,
}

impl LxcAppArmor {
    pub fn as_str(self) -> &'static str {
        match self {
            LxcAppArmor::Unconfined => "unconfined",
            LxcAppArmor::Generated => "generated",
        }
    }
}

/// One `lxc.idmap` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    pub kind: IdKind,
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl IdMap {
    /// The value of an `lxc.idmap` line: `u 0 100000 65536`.
    pub fn lxc_value(&self) -> String {
        let kind = match self.kind {
            IdKind::User => "u",
            IdKind::Group => "g",
        };
        format!(
            "{kind} {} {} {}",
            self.container_id, self.host_id, self.size
        )
    }
}

/// `lxc.cgroup.dir.container` and `lxc.cgroup.dir.monitor`: LXC takes
/// both or neither (lxc 5.0.2 src/lxc/cgroups/cgfsng.c
/// `check_cgroup_dir_config`), makes the last component of each itself and
/// fails if it exists (`__cgroup_tree_create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupDirs {
    pub container: CgroupPath,
    pub monitor: CgroupPath,
}

/// An offset of a clock in a new time namespace (`lxc.time.offset.boot`,
/// `lxc.time.offset.monotonic`). LXC 5.0 to 6.0 write either the seconds
/// or the nanoseconds (lxc start.c `do_start`, `timens_offset_write`), and
/// the kernel takes nanoseconds below one second only, so an offset is one
/// or the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOffset {
    Seconds(i64),
    /// Below 1e9.
    Nanoseconds(u32),
}

impl TimeOffset {
    /// The value LXC reads: `3600s`, `500ns`.
    pub fn lxc_value(self) -> String {
        match self {
            TimeOffset::Seconds(s) => format!("{s}s"),
            TimeOffset::Nanoseconds(ns) => format!("{ns}ns"),
        }
    }
}

/// `lxc.mount.auto` cgroup choice (replaces an OCI `cgroup` mount).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupAuto {
    ReadOnly,
    ReadWrite,
}

/// One `lxc.mount.entry` in fstab format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Host path for binds, or the pseudo source (`proc`, `tmpfs`, ...).
    pub source: String,
    /// Path relative to the container's rootfs, without a leading `/`.
    pub destination: String,
    /// Filesystem type (`none` for binds).
    pub fstype: String,
    /// Mount options including LXC's `create=dir|file`; never empty when rendered
    /// (the renderer writes `defaults` for an empty list).
    pub options: Vec<String>,
}

/// One `lxc.prlimit.<name>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prlimit {
    /// LXC's name: the lower-case RLIMIT suffix (`nofile`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Device type of a device cgroup rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    All,
    Char,
    Block,
}

/// One device cgroup rule (`lxc.cgroup[2].devices.allow|deny`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None` is the `*` wildcard.
    pub major: Option<u64>,
    pub minor: Option<u64>,
    /// Subset of `rwm`.
    pub access: String,
}

/// Everything lxcri writes into a container's LXC config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LxcConfig {
    /// `lxc.uts.name`, only with a new UTS namespace.
    pub uts_name: Option<String>,
    /// Host path of the (already mounted) rootfs: `lxc.rootfs.path = dir:<path>`.
    pub rootfs: PathBuf,
    /// `lxc.init.cmd`: path of the init inside the container.
    pub init_cmd: String,
    pub init_uid: u32,
    pub init_gid: u32,
    pub init_cwd: String,
    /// `lxc.mount.auto`: nothing but (optionally) the cgroup tree.
    pub mount_auto_cgroup: Option<CgroupAuto>,
    /// `lxc.autodev`: LXC makes `/dev` a tmpfs with the standard nodes.
    pub autodev: bool,
    /// `lxc.pty.max`: LXC mounts a new devpts instance at `/dev/pts`.
    pub pty_max: u32,
    /// `lxc.tty.max`.
    pub tty_max: u32,
    /// `lxc.console.path`; `None` renders `none` (the init owns stdio).
    pub console_path: Option<PathBuf>,
    /// `lxc.apparmor.profile` for the container as a whole.
    pub apparmor: LxcAppArmor,
    pub namespaces: Namespaces,
    pub network: Option<Network>,
    pub idmaps: Vec<IdMap>,
    /// `lxc.mount.entry` lines in order.
    pub mounts: Vec<MountEntry>,
    pub prlimits: Vec<Prlimit>,
    /// `lxc.proc.oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// `lxc.time.offset.boot` and `lxc.time.offset.monotonic`.
    pub time_offset_boot: Option<TimeOffset>,
    pub time_offset_monotonic: Option<TimeOffset>,
    /// `lxc.sysctl.<key>`, sorted by key.
    pub sysctls: Vec<(String, String)>,
    /// Where LXC makes the container's and its monitor's cgroups; `None`:
    /// LXC's own `lxc.payload.<name>` and `lxc.monitor.<name>`.
    pub cgroup_dirs: Option<CgroupDirs>,
    /// Selects `lxc.cgroup.*` (v1) or `lxc.cgroup2.*` (v2) keys.
    pub cgroup_version: CgroupVersion,
    pub cgroup_settings: Vec<CgroupSetting>,
    pub device_rules: Vec<DeviceRule>,
}

impl LxcConfig {
    /// The host uid and gid the container's root (id 0) runs as under
    /// its user namespace; `None` without one (or without a map of 0).
    pub fn root_host_ids(&self) -> Option<(u32, u32)> {
        let host_of_0 = |kind: IdKind| {
            self.idmaps
                .iter()
                .find(|m| m.kind == kind && m.container_id == 0 && m.size > 0)
                .map(|m| m.host_id)
        };
        Some((host_of_0(IdKind::User)?, host_of_0(IdKind::Group)?))
    }

    /// A config with lxcri's fixed settings and nothing container-specific.
    pub fn new(rootfs: PathBuf, init_cmd: String, cgroup_version: CgroupVersion) -> Self {
        Self {
            uts_name: None,
            rootfs,
            init_cmd,
            init_uid: 0,
            init_gid: 0,
            init_cwd: "/".into(),
            mount_auto_cgroup: None,
            autodev: true,
            pty_max: 1024,
            tty_max: 0,
            console_path: None,
            apparmor: LxcAppArmor::Unconfined,
            namespaces: Namespaces::default(),
            network: None,
            idmaps: Vec::new(),
            mounts: Vec::new(),
            prlimits: Vec::new(),
            oom_score_adj: None,
            time_offset_boot: None,
            time_offset_monotonic: None,
            sysctls: Vec::new(),
            cgroup_dirs: None,
            cgroup_version,
            cgroup_settings: Vec::new(),
            device_rules: Vec::new(),
        }
    }
}
