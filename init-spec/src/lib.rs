//! The contract between the lxcri shim and `lxcri-init`.
//!
//! The shim prepares a per-container runtime directory on the host
//! (`/run/lxcri/<namespace>/<id>/`) and LXC bind-mounts it read-write at
//! [`RUNTIME_DIR`] inside the container. `lxc.init.cmd` is
//! `/.lxcri/lxcri-init`, so the init starts as PID 1 of the container and:
//!
//! 1. opens [`EXIT_FILE`]'s directory and the [`START_FIFO`] (`O_RDWR`, so
//!    it never sees EOF) before anything is reported: the shim may write
//!    the start byte and close its end as soon as it has seen `Ready`, and
//!    a FIFO nobody holds open drops what was written to it; reads
//!    [`InitSpec`] from [`INIT_SPEC_FILE`];
//! 2. makes the container's `/dev`, symlinks and mount propagation and
//!    connects to [`INIT_SOCKET`];
//! 3. with [`InitSpec::join_runtime_cgroupns`] receives the shim's cgroup
//!    namespace (one fd, one [`CGROUPNS_TAG`] byte, sent as soon as the
//!    shim accepted) and joins it; detaches the [`RUNTIME_DIR`] mount and
//!    (with [`InitSpec::own_rootfs`]) removes its mount point, so the OCI
//!    process sees neither; with [`InitSpec::pause_after_mounts`] sends
//!    [`InitMessage::Mounted`] and waits for one [`CONTINUE_TAG`] byte (the shim plugs NICs, binds `rshared`
//!    volumes and runs the create hooks meanwhile: runc's hooks run before
//!    masked paths and a read-only rootfs too), and checks that its root
//!    is the one it had before (the hooks' [`HostView`] lifted); then makes masked and
//!    read-only paths, a read-only tmpfs read-only, looks the program up
//!    as the process's user (a child with its identity, cwd and
//!    capabilities), makes a read-only rootfs and sends [`InitMessage::Ready`] (or
//!    [`InitMessage::Failed`] and exits 255, at either step); an init that
//!    fails before it could connect writes the cause to
//!    [`INIT_ERROR_FILE`] instead; the shim learns the init's host pid from
//!    `SO_PEERCRED`;
//! 4. without a terminal it receives three fds (stdin, stdout, stderr) with
//!    one [`STDIO_TAG`] byte (`SCM_RIGHTS`); with a terminal it opens a pty
//!    and sends the master with one [`PTY_TAG`] byte;
//! 5. blocks reading one byte from the [`START_FIFO`]; a signal that
//!    would end a process ends the init here, and it writes an
//!    [`ExitReport`] (128 + the signal) to [`EXIT_FILE`] via the directory
//!    fd and exits with that code;
//! 6. on that byte runs the `startContainer` hooks ([`InitSpec::start_hooks`];
//!    one that fails ends the init with 255, as runc 1.2+'s, as does an
//!    `execve` that fails), then becomes the OCI
//!    process (`execve`): the process is PID 1
//!    of its container, as on runc, and its exit status is observed by the
//!    shim from the host (the kernel's process-events connector).
//!
//! Exec processes use the same binary on the host: the shim runs
//! `lxcri-init exec <spec.json>` with the [`ExecSpec`] and a unix socket at
//! the fd named by [`EXEC_SOCKET_FD_ENV`]; it joins the container's
//! namespaces and cgroups, forks, and the child sets the process up and
//! execs it. The helper then sends one [`ExecMessage`] on the socket:
//! `Started` with the process's host pid once the child's setup passed
//! (followed, with a terminal, by the pty master tagged [`PTY_TAG`]), or
//! `Failed` with why it could not start. An `execve` that refuses what the
//! setup found runnable (`exec format error`) comes after `Started`, as on
//! runc: the process exits 255 with the error on its stderr. After `Started` it reaps nothing
//! until the shim closes its end: the shim opens a pidfd on that pid first,
//! so the pid cannot name another process by then. A started process's
//! helper exits with its status (re-raising a fatal signal so the shim
//! sees 128+n).

use serde::{Deserialize, Serialize};

mod hooks;
pub mod legacy;
pub use hooks::{
    hooks_time, ContainerView, Hook, HookRun, HookState, HostView, HostViewStep, StartHooks,
    DEFAULT_HOOK_TIMEOUT_SECS,
};

/// Where the runtime directory appears inside the container.
pub const RUNTIME_DIR: &str = "/.lxcri";
/// The init binary inside [`RUNTIME_DIR`].
pub const INIT_BINARY: &str = "lxcri-init";
/// JSON [`InitSpec`] inside [`RUNTIME_DIR`].
pub const INIT_SPEC_FILE: &str = "init.json";
/// Unix stream socket the shim listens on, inside [`RUNTIME_DIR`].
pub const INIT_SOCKET: &str = "init.sock";
/// FIFO the shim writes one byte to on `start`, inside [`RUNTIME_DIR`].
pub const START_FIFO: &str = "start";
/// JSON [`ExitReport`] the init writes when the OCI process has ended.
pub const EXIT_FILE: &str = "exit";
/// Where the init writes why it failed when it cannot say so on
/// [`INIT_SOCKET`] (it could not connect): its stderr is `/dev/null` under
/// `lxc-start -d`. Made empty by the shim, owned by the container's root.
pub const INIT_ERROR_FILE: &str = "init.err";
/// Data byte sent with the three stdio fds (shim -> init).
pub const STDIO_TAG: u8 = b'S';
/// Data byte sent with a pty master fd (init/exec helper -> shim).
pub const PTY_TAG: u8 = b'T';
/// Data byte sent with the shim's cgroup namespace (shim -> init).
pub const CGROUPNS_TAG: u8 = b'C';
/// Data byte (no fds) that lets the init go on after
/// [`InitMessage::Mounted`] (shim -> init).
pub const CONTINUE_TAG: u8 = b'G';
/// Environment variable naming the fd of the unix socket the exec helper
/// reports on (an [`ExecMessage`], then the pty master if any).
pub const EXEC_SOCKET_FD_ENV: &str = "LXCRI_EXEC_SOCKET_FD";

/// Everything the init needs to run the container's OCI process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    pub process: ProcessSpec,
    /// Remount `/` read-only before the process runs (OCI `root.readonly`).
    #[serde(default)]
    pub rootfs_readonly: bool,
    /// OCI `linux.maskedPaths`: files get `/dev/null` bound over them,
    /// directories a read-only empty tmpfs. Missing paths are skipped.
    #[serde(default)]
    pub masked_paths: Vec<String>,
    /// OCI `linux.readonlyPaths`: bind-remounted read-only. Missing paths are skipped.
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Mount propagation of the whole tree (OCI `linux.rootfsPropagation`,
    /// `rslave` when unset, as on runc), applied once LXC has mounted
    /// everything; then each mount's own, in order.
    #[serde(default)]
    pub rootfs_propagation: Option<Propagation>,
    #[serde(default)]
    pub mount_propagation: Vec<MountPropagation>,
    /// The spec's `/dev` tmpfs: LXC mounts `/dev` itself (`lxc.autodev`,
    /// which fills it with the standard nodes), and the init remounts it
    /// with these, as runc would have mounted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_tmpfs: Option<DevTmpfs>,
    /// The spec's `/dev/pts` devpts: LXC mounts a new instance there with
    /// options of its own (`max=` from `lxc.pty.max`), and the init
    /// remounts it with these, which resets every option to the spec's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev_pts: Option<DevPts>,
    /// OCI `linux.devices` the init makes (`mknod`), as runc does outside a
    /// user namespace; inside one they are binds of the host's nodes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceNode>,
    /// The spec asks for no cgroup namespace, but LXC made one (it does for
    /// every container that joins another's namespace: lxc 5.0.2
    /// src/lxc/start.c `resolve_cgroup_clone_flags`): join the shim's,
    /// which is where runc's process would be.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub join_runtime_cgroupns: bool,
    /// Symlinks the init makes once LXC has mounted everything (a cgroup
    /// v1 controller's name pointing at its co-mounted hierarchy, as runc
    /// makes them: `/sys/fs/cgroup/cpu -> cpu,cpuacct`). One that exists
    /// is left as it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<Symlink>,
    /// Binds LXC made whose options name a per-mount flag, set or cleared
    /// ([`BindFlags`]): runc 1.2+ remounts such a bind with exactly the
    /// spec's flags, where LXC keeps what the source has (lxc 5.0.2
    /// src/lxc/conf.c `mount_entry`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind_flags: Vec<BindFlags>,
    /// The spec's read-only tmpfs mounts (absolute, in the container):
    /// mounted writable, as runc mounts them, and made read-only per mount
    /// last (runc's `finalizeRootfs`), so the filesystem stays `rw` and
    /// mount points inside it can be made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub readonly_tmpfs: Vec<String>,
    /// An older shim's ([`legacy`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remount_flags: Vec<legacy::RemountFlags>,
    /// An older shim's ([`legacy`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs_modes: Vec<legacy::TmpfsMode>,
    /// Binds LXC made whose options ask for recursive mount attributes
    /// (`rro`, `rnosuid`, ...): the init sets them on the bind and every
    /// mount below it before the shim's own binds go in, so a volume bound
    /// into it later keeps its own flags, as runc's mounts made after the
    /// attributes are set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recursive_attrs: Vec<RecursiveAttrs>,
    /// The rootfs is this container's alone (a mount made for it: a
    /// snapshot or a clone), so the init removes the [`RUNTIME_DIR`] mount
    /// point LXC made in it. A directory the spec names may be another
    /// container's rootfs too, and removing a directory detaches the mounts
    /// on it in every namespace: that container's runtime directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub own_rootfs: bool,
    /// `startContainer` hooks, run after the start byte, before `execve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_hooks: Option<StartHooks>,
    /// Send [`InitMessage::Mounted`] and wait for [`CONTINUE_TAG`] (step 3).
    /// Set by every shim that knows the pause; an init copied in by a
    /// newer package for a shim started before it (a pod's shim lives as
    /// long as the pod) reports `Ready` at once, as that shim expects.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pause_after_mounts: bool,
}

/// A symlink at `path` (absolute, in the container) to `target` (as
/// written into the link).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Symlink {
    pub path: String,
    pub target: String,
}

/// The per-mount flags of the bind at `destination` (absolute, in the
/// container) as runc 1.2+ sets them (libcontainer/rootfs_linux.go
/// `mountToRootfs`, case "bind"): a bind remount with exactly `flags`
/// (`MS_*` bits), dropping what the source had; where the kernel refuses
/// (flags locked in a user namespace) again with the locked ones kept,
/// unless `cleared` (what the spec turns off: `rw`, `suid`, ...) names one
/// of them or `flags` asks for another atime than the locked one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindFlags {
    pub destination: String,
    pub flags: u64,
    pub cleared: u64,
}

/// `mount_setattr(2)` attributes (`MOUNT_ATTR_*` bits) to set and to
/// clear, with `AT_RECURSIVE`: what runc's recursive mount options
/// (`rro`, `rnosuid`, `rnoatime`, ...) ask of a bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountAttrs {
    pub set: u64,
    pub clear: u64,
}

/// [`MountAttrs`] for the bind at `destination` (absolute, in the
/// container) and every mount below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecursiveAttrs {
    pub destination: String,
    pub attrs: MountAttrs,
}

/// A device node to make in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceNode {
    /// Absolute, in the container.
    pub path: String,
    pub kind: DeviceNodeKind,
    pub major: u32,
    pub minor: u32,
    /// Permission bits (`fileMode`, 0666 when the spec gives none).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceNodeKind {
    Char,
    Block,
    Fifo,
}

/// How `/dev` is mounted: per-mount flags and tmpfs options, both checked
/// when the spec was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevTmpfs {
    /// `MS_*` bits: `MS_RDONLY`, `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, the
    /// atime ones, `MS_SYNCHRONOUS`, `MS_DIRSYNC`.
    pub flags: u64,
    /// tmpfs options (`size=65536k`, `mode=755`, `nr_inodes=...`).
    pub options: Vec<String>,
    /// The mode of `/dev`'s root: `mode=`'s, else that of the image's
    /// `/dev` directory (runc 1.2+ gives a tmpfs over a directory its
    /// mode), else a new tmpfs's 1777. LXC made the tmpfs with its own.
    /// Always written; an older shim ([`legacy`]) left it out to keep
    /// LXC's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// How `/dev/pts` is mounted: per-mount flags and devpts options, both
/// checked when the spec was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevPts {
    /// `MS_*` bits, as [`DevTmpfs::flags`].
    pub flags: u64,
    /// devpts options (`newinstance`, `ptmxmode=0666`, `mode=0620`,
    /// `gid=5`, `max=...`).
    pub options: Vec<String>,
}

/// A mount propagation type (`mount --make-[r]private` ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Propagation {
    pub kind: PropagationKind,
    /// The `r` forms: the mount and every mount below it.
    pub recursive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PropagationKind {
    Private,
    Slave,
    Shared,
    Unbindable,
}

impl Propagation {
    /// The OCI and mount(8) spelling: `rslave`, `private`, ...
    pub fn parse(s: &str) -> Option<Self> {
        let (recursive, name) = match s.strip_prefix('r') {
            Some(rest) if rest != "o" && rest != "w" => (true, rest),
            _ => (false, s),
        };
        let kind = match name {
            "private" => PropagationKind::Private,
            "slave" => PropagationKind::Slave,
            "shared" => PropagationKind::Shared,
            "unbindable" => PropagationKind::Unbindable,
            _ => return None,
        };
        Some(Self { kind, recursive })
    }
}

/// The propagation of one mount, by its path in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountPropagation {
    pub destination: String,
    pub propagation: Propagation,
}

/// What `lxcri-init share` does on the host for a created container: bind
/// each host source into the container's mount namespace, from the host,
/// once LXC has set the container up: as a peer of the host's mount (OCI
/// `rshared` binds, Kubernetes' `Bidirectional`), which LXC cannot (it
/// turns every mount it copies into a slave); and any bind that lies in
/// another bind (a volume), whose mount point LXC would create following
/// links the volume's content may hold, out of the container's root; and
/// id-mapped binds ([`MountIdmap`]), which only a bind made from the host
/// can be (the mapped root cannot set an idmapping).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareSpec {
    /// Host pid of the container's init: its mount namespace is joined.
    pub init_pid: i32,
    pub mounts: Vec<SharedMount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedMount {
    /// Host path (a directory or a file).
    pub source: String,
    /// Absolute path in the container, resolved inside its root (links in
    /// a volume it lies in resolve there too: the helper is in the
    /// container's mount namespace, whose root is the container's).
    pub destination: String,
    /// The per-mount flags (`MS_*` bits) the bind is remounted with,
    /// exactly, as runc 1.2+ does when its options name a flag, set or
    /// cleared (`rw` too), and the ones cleared (see [`BindFlags`]: a
    /// helper in a user namespace may find flags locked); `None`: they
    /// name none and the source's stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<(u64, u64)>,
    /// An older shim's flags ([`legacy`]): the bind remounted with those
    /// of them that are set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub readonly: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nosuid: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nodev: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub noexec: bool,
    /// The spec's propagation; `None` is a slave of the host's mount, as
    /// LXC makes its binds. `shared` makes a peer.
    #[serde(default)]
    pub propagation: Option<Propagation>,
    /// The mount point is made by the helper (a directory, or an empty
    /// file for a file source), not by LXC.
    #[serde(default)]
    pub create: bool,
    /// `rbind`: the mounts below the source come along; `bind`: the source's
    /// own mount alone.
    pub rbind: bool,
    /// An id-mapped bind (`MOUNT_ATTR_IDMAP`, OCI `uidMappings`/`gidMappings`
    /// or the `idmap`/`ridmap` options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idmap: Option<MountIdmap>,
    /// Recursive attributes, set after the flags above (runc's order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursive: Option<MountAttrs>,
}

/// How an id-mapped bind shows ids: a file owned by id `c` on disk appears
/// owned by the id the mapping gives `c` (as a user namespace maps its ids
/// to the host's), and a file made through the bind is stored with the id
/// mapped back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountIdmap {
    pub mapping: IdmapSource,
    /// `ridmap`: every mount below the bind is id-mapped too; otherwise
    /// the bind's own mount alone (runc's default).
    pub recursive: bool,
}

/// Where an id-mapped bind's mapping comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum IdmapSource {
    /// The container's user namespace (`idmap` without mappings).
    Container,
    /// These ranges, already checked as the kernel checks a `uid_map`.
    Ranges {
        uid: Vec<IdRange>,
        gid: Vec<IdRange>,
    },
}

/// One line of a `uid_map`/`gid_map`: `size` ids from `inside` map to
/// ids from `outside`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub size: u32,
}

/// The OCI process, already validated and translated by the shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    /// `KEY=VALUE` strings, in order.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
    #[serde(default)]
    pub terminal: bool,
    /// Initial terminal size (rows, columns).
    #[serde(default)]
    pub console_size: Option<ConsoleSize>,
    pub capabilities: CapabilitySets,
    #[serde(default)]
    pub no_new_privileges: bool,
    /// Applied with `setrlimit` in the process before exec.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// A seccomp filter compiled by the shim with libseccomp.
    #[serde(default)]
    pub seccomp: Option<SeccompProgram>,
    /// `/proc/self/attr/exec` AppArmor profile to apply at exec, if any.
    #[serde(default)]
    pub apparmor_profile: Option<String>,
    /// SELinux label written to `/proc/self/attr/exec` right before exec, if any.
    #[serde(default)]
    pub selinux_label: Option<String>,
    /// `/proc/self/oom_score_adj` for exec processes (the init's own is set by LXC).
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
    /// `sched_setattr(2)` before the identity changes (`process.scheduler`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<SchedAttr>,
    /// `ioprio_set(2)` value, class and level combined (`process.ioPriority`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_priority: Option<u16>,
    /// `personality(2)` domain, set last before exec (`linux.personality`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personality: Option<u32>,
    /// `set_mempolicy(2)` for the process (`linux.memoryPolicy`), the
    /// container's first process and every exec alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_policy: Option<MemoryPolicy>,
    /// The CPUs an exec process runs on (`process.execCPUAffinity`; not
    /// for the container's own process, as runc). Without it every process
    /// gets all the CPUs its cgroup allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec_cpu_affinity: Option<ExecCpuAffinity>,
    /// The session keyring the process joins before anything else, as
    /// runc's init and exec do; `None` keeps the one it was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_keyring: Option<SessionKeyring>,
}

/// A named session keyring (`keyctl(KEYCTL_JOIN_SESSION_KEYRING)`): made
/// by the container's first process (runc's `_ses.<container id>`) and
/// joined by its execs, so no process of the container shares the
/// session keyring of the host processes that started it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionKeyring {
    pub name: String,
    /// Permission bits added once joined (runc's init makes the keyring
    /// searchable for its execs: `KEY_USR_SEARCH`, or `KEY_OTH_SEARCH` in
    /// a user namespace); 0 for an exec, which leaves them.
    #[serde(default)]
    pub add_permissions: u32,
}

impl SessionKeyring {
    /// `KEY_USR_SEARCH` (include/uapi/linux/keyctl.h: user bits << 16).
    pub const USER_SEARCH: u32 = 0x0008_0000;
    /// `KEY_OTH_SEARCH`.
    pub const OTHER_SEARCH: u32 = 0x0000_0008;

    /// runc's name for a container's session keyring.
    fn name_for(container_id: &str) -> String {
        format!("_ses.{container_id}")
    }

    /// The container's first process: makes it, searchable by its execs.
    pub fn for_first_process(container_id: &str, user_namespace: bool) -> Self {
        Self {
            name: Self::name_for(container_id),
            add_permissions: if user_namespace {
                Self::OTHER_SEARCH
            } else {
                Self::USER_SEARCH
            },
        }
    }

    /// An exec process: joins the container's.
    pub fn for_exec(container_id: &str) -> Self {
        Self {
            name: Self::name_for(container_id),
            add_permissions: 0,
        }
    }
}

/// A NUMA memory policy as `set_mempolicy(2)` takes it: the mode with its
/// flags (include/uapi/linux/mempolicy.h), and the nodes of its mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryPolicy {
    pub mode: u32,
    #[serde(default)]
    pub nodes: Vec<u32>,
}

/// The bits of the node mask the init hands to `set_mempolicy(2)` (runc's
/// `unix.CPUSet`, 1024).
pub const MEMORY_POLICY_MAX_NODES: u32 = 1024;

/// `process.execCPUAffinity` as CPU numbers. runc starts an exec process on
/// `initial` before it joins the container's cgroup (which masks it) and
/// moves it to `final` after; lxcri's exec processes are born in the cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExecCpuAffinity {
    #[serde(default)]
    pub initial: Option<Vec<u32>>,
    #[serde(default, rename = "final")]
    pub last: Option<Vec<u32>>,
}

/// The fields of the kernel's `struct sched_attr` lxcri sets, checked and
/// encoded by the shim (policy and flag numbers of
/// include/uapi/linux/sched.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SchedAttr {
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSize {
    pub rows: u16,
    pub cols: u16,
}

/// The five capability sets, as canonical upper-case names (`CAP_CHOWN`).
/// Every name has been checked by the shim; the init applies them exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CapabilitySets {
    pub bounding: Vec<String>,
    pub effective: Vec<String>,
    pub inheritable: Vec<String>,
    pub permitted: Vec<String>,
    pub ambient: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    /// Canonical name, e.g. `RLIMIT_NOFILE`.
    pub resource: String,
    pub soft: u64,
    pub hard: u64,
}

/// A classic BPF program as produced by `seccomp_export_bpf`:
/// `struct sock_filter` entries (8 bytes each), plus `seccomp(2)` flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeccompProgram {
    pub bpf: Vec<u8>,
    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(SECCOMP_SET_MODE_FILTER, ...)`.
    #[serde(default)]
    pub flags: u32,
}

/// What `lxcri-init exec` runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecSpec {
    /// Host pid of the container's init: namespaces are joined through
    /// `/proc/<pid>/ns/<name>`.
    pub init_pid: i32,
    /// Namespace names under `/proc/<pid>/ns/` to join, in this order
    /// (`user` first when present, `mnt` last before the fork).
    pub namespaces: Vec<String>,
    /// `cgroup.procs` files (host paths) the helper writes its pid into
    /// before forking, so the process is forked under the container's
    /// limits (`pids.max`) and accounted to it. The shim moves the helper
    /// back out once the process started.
    pub cgroup_procs: Vec<String>,
    pub process: ProcessSpec,
}

/// How the OCI process ended, written by the init to [`EXIT_FILE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitReport {
    /// Exit code, or 128 + signal number for a signal death.
    pub status: u32,
    /// Unix time in nanoseconds when the init saw the process end.
    pub exited_at_ns: u64,
}

/// One message on the init socket (init -> shim), sent as one line of JSON
/// before any fd is exchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InitMessage {
    /// The container's mounts are made; masked and read-only paths, the
    /// per-mount flags and a read-only rootfs are not yet. The shim does
    /// what needs the container's namespaces (NICs, `rshared` binds, the
    /// create hooks) and answers with one [`CONTINUE_TAG`] byte.
    Mounted,
    /// The container is prepared; the OCI process runs on `start`.
    Ready,
    /// Preparing the container failed; the init exits after sending this.
    Failed { message: String },
}

/// The outcome of an exec's start (exec helper -> shim), one line of JSON
/// like [`InitMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExecMessage {
    /// The process runs (or its `execve` failed after the setup, which it
    /// then reports as its exit, 255, as runc's). `pid` is its host pid
    /// (the helper stays in the host's pid namespace), which the shim
    /// reports as the exec's, as runc's shim does; a helper from before
    /// sends none, and the helper's own pid stands in for it.
    Started {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<i32>,
    },
    /// The process could not be started (not found, not executable, bad
    /// user or cwd...); the helper exits after sending this.
    Failed { message: String },
}

/// Encode a wait status the way shells and containerd report it.
pub fn exit_code_from_signal(signal: i32) -> u32 {
    128 + signal as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn propagation_spellings() {
        let p = |s| Propagation::parse(s);
        assert_eq!(
            p("rslave"),
            Some(Propagation {
                kind: PropagationKind::Slave,
                recursive: true
            })
        );
        assert_eq!(p("shared").map(|p| p.recursive), Some(false));
        assert_eq!(
            p("runbindable").map(|p| p.kind),
            Some(PropagationKind::Unbindable)
        );
        for not in ["ro", "rw", "rbind", "bind", "", "rshare"] {
            assert_eq!(p(not), None, "{not}");
        }
    }

    #[test]
    fn init_message_is_one_json_line() {
        let line = serde_json::to_string(&InitMessage::Failed {
            message: "exec: \"nope\": not found\nsecond".into(),
        })
        .unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(
            serde_json::from_str::<InitMessage>(&line).unwrap(),
            InitMessage::Failed {
                message: "exec: \"nope\": not found\nsecond".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&InitMessage::Ready).unwrap(),
            r#"{"kind":"ready"}"#
        );
    }

    #[test]
    fn started_carries_the_pid_and_parses_without_it() {
        let started = ExecMessage::Started { pid: Some(4242) };
        let line = serde_json::to_string(&started).unwrap();
        assert_eq!(line, r#"{"kind":"started","pid":4242}"#);
        assert_eq!(serde_json::from_str::<ExecMessage>(&line).unwrap(), started);
        // What a helper from before this field sends.
        assert_eq!(
            serde_json::from_str::<ExecMessage>(r#"{"kind":"started"}"#).unwrap(),
            ExecMessage::Started { pid: None }
        );
        assert!(serde_json::from_str::<ExecMessage>(r#"{"kind":"started","x":1}"#).is_err());
    }

    #[test]
    fn spec_rejects_unknown_fields() {
        let err = serde_json::from_str::<ExitReport>(r#"{"status":1,"exited_at_ns":2,"x":3}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field"));
    }

    #[test]
    fn signal_deaths_are_128_plus_n() {
        assert_eq!(exit_code_from_signal(9), 137);
        assert_eq!(exit_code_from_signal(15), 143);
    }
}
