//! What lxcri accepts, as an OCI runtime-spec `features` document (the
//! format of `runc features`). The shim reports it to containerd 2.x, whose
//! CRI plugin enables user-namespaced pods only for a runtime listing the
//! `user` namespace *and* id-mapped mounts.
//!
//! Each list is what the translation accepts and carries out; the tests
//! below hold every entry against the plan's own checks, so a list cannot
//! claim more than the plan does.

use oci_spec::runtime::{
    Apparmor, Arch, Cgroup, Features, IDMap, IntelRdt, LinuxFeature, LinuxNamespaceType,
    LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator, MemoryPolicy,
    MountExtensions, NetDevices, Seccomp, Selinux, VERSION,
};

use crate::security::capabilities;
use crate::spec::annotations::LXCRI_PREFIX;

/// The oldest runtime-spec a bundle may be written for (runc's choice too).
const OCI_VERSION_MIN: &str = "1.0.0";

/// Mount options LXC turns into mount flags on an `lxc.mount.entry` (its
/// `mount_opt` table in `conf.c`), less the ones it logs as ignored there
/// (`sync`, `async`, `dirsync`, `lazytime`, `mand`, `nomand`, `remount`)
/// and `move`, which is no OCI option.
const MOUNT_FLAGS: [&str; 20] = [
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "exec",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "rbind",
    "relatime",
    "ro",
    "rw",
    "strictatime",
    "suid",
];

/// Propagation options: the init re-applies them per mount
/// ([`lxcri_init_spec::Propagation::parse`]).
const PROPAGATION: [&str; 8] = [
    "private",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "shared",
    "slave",
    "unbindable",
];

/// Every namespace type: each can be new or joined by path, except mount,
/// which must be new (LXC builds the rootfs in it) but is still supported.
const NAMESPACES: [LinuxNamespaceType; 8] = [
    LinuxNamespaceType::Mount,
    LinuxNamespaceType::Cgroup,
    LinuxNamespaceType::Uts,
    LinuxNamespaceType::Ipc,
    LinuxNamespaceType::User,
    LinuxNamespaceType::Pid,
    LinuxNamespaceType::Network,
    LinuxNamespaceType::Time,
];

/// Every seccomp action but `SCMP_ACT_NOTIFY` (no user notification).
const SECCOMP_ACTIONS: [LinuxSeccompAction; 8] = [
    LinuxSeccompAction::ScmpActKill,
    LinuxSeccompAction::ScmpActKillThread,
    LinuxSeccompAction::ScmpActKillProcess,
    LinuxSeccompAction::ScmpActTrap,
    LinuxSeccompAction::ScmpActErrno,
    LinuxSeccompAction::ScmpActTrace,
    LinuxSeccompAction::ScmpActLog,
    LinuxSeccompAction::ScmpActAllow,
];

const SECCOMP_OPERATORS: [LinuxSeccompOperator; 7] = [
    LinuxSeccompOperator::ScmpCmpNe,
    LinuxSeccompOperator::ScmpCmpLt,
    LinuxSeccompOperator::ScmpCmpLe,
    LinuxSeccompOperator::ScmpCmpEq,
    LinuxSeccompOperator::ScmpCmpGe,
    LinuxSeccompOperator::ScmpCmpGt,
    LinuxSeccompOperator::ScmpCmpMaskedEq,
];

/// Every architecture name lxcri maps to libseccomp's, as runc lists them:
/// libseccomp still refuses, in one filter, those of the other byte order
/// than the host's (MIPS, PPC and S390 big-endian on x86_64).
const SECCOMP_ARCHS: [Arch; 18] = [
    Arch::ScmpArchNative,
    Arch::ScmpArchX86,
    Arch::ScmpArchX86_64,
    Arch::ScmpArchX32,
    Arch::ScmpArchArm,
    Arch::ScmpArchAarch64,
    Arch::ScmpArchMips,
    Arch::ScmpArchMips64,
    Arch::ScmpArchMips64n32,
    Arch::ScmpArchMipsel,
    Arch::ScmpArchMipsel64,
    Arch::ScmpArchMipsel64n32,
    Arch::ScmpArchPpc,
    Arch::ScmpArchPpc64,
    Arch::ScmpArchPpc64le,
    Arch::ScmpArchS390,
    Arch::ScmpArchS390x,
    Arch::ScmpArchRiscv64,
];

/// Flags lxcri passes to `seccomp(2)`.
const SECCOMP_FLAGS: [LinuxSeccompFilterFlag; 3] = [
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
];

/// Known but refused: it only makes sense with user notification.
const SECCOMP_FLAGS_REFUSED: [LinuxSeccompFilterFlag; 1] =
    [LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv];

/// The modes and flags `linux.memoryPolicy` takes (all the spec names).
const MEMORY_POLICY_MODES: [&str; 7] = [
    "MPOL_BIND",
    "MPOL_DEFAULT",
    "MPOL_INTERLEAVE",
    "MPOL_LOCAL",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_WEIGHTED_INTERLEAVE",
];
const MEMORY_POLICY_FLAGS: [&str; 3] = [
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(T::to_string).collect()
}

/// The features of this build of lxcri. Booleans say what is implemented,
/// not what this host has (as the runtime-spec defines them).
pub fn runtime_features() -> Features {
    let mut cgroup = Cgroup::default();
    // LXC creates the container's cgroup, on either hierarchy, at
    // `linux.cgroupsPath` (lxc backend); systemd's `slice:prefix:name` is
    // not made as a unit (no systemd driver) and rdma limits are refused.
    cgroup
        .set_v1(Some(true))
        .set_v2(Some(true))
        .set_systemd(Some(false))
        .set_systemd_user(Some(false))
        .set_rdma(Some(false));

    let mut seccomp = Seccomp::default();
    let mut known_flags = strings(&SECCOMP_FLAGS);
    known_flags.extend(strings(&SECCOMP_FLAGS_REFUSED));
    seccomp
        .set_enabled(Some(true))
        .set_actions(Some(SECCOMP_ACTIONS.to_vec()))
        .set_operators(Some(strings(&SECCOMP_OPERATORS)))
        .set_archs(Some(SECCOMP_ARCHS.to_vec()))
        .set_known_flags(Some(known_flags))
        .set_supported_flags(Some(strings(&SECCOMP_FLAGS)));

    let mut apparmor = Apparmor::default();
    apparmor.set_enabled(Some(true));
    // Supported (the init applies the labels, as runc); a node without
    // SELinux refuses a label at create, naming the field.
    let mut selinux = Selinux::default();
    selinux.set_enabled(Some(true));
    let mut intel_rdt = IntelRdt::default();
    intel_rdt.set_enabled(Some(false));
    // `linux.memoryPolicy` is refused: no mode, no flag.
    // set_mempolicy(2) in the init (plan/memory_policy.rs).
    let mut memory_policy = MemoryPolicy::default();
    memory_policy
        .set_modes(Some(strings(&MEMORY_POLICY_MODES)))
        .set_flags(Some(strings(&MEMORY_POLICY_FLAGS)));
    // Per-mount uidMappings/gidMappings and the `idmap`/`ridmap` options:
    // binds the share helper id-maps (plan/mounts.rs).
    let mut idmap = IDMap::default();
    idmap.set_enabled(Some(true));
    let mut mount_extensions = MountExtensions::default();
    mount_extensions.set_idmap(Some(idmap));
    // Moved into the container's network namespace at create (plan/net_devices.rs).
    let mut net_devices = NetDevices::default();
    net_devices.set_enabled(Some(true));

    let mut linux = LinuxFeature::default();
    linux
        .set_namespaces(Some(NAMESPACES.to_vec()))
        .set_capabilities(Some(capabilities::names().map(String::from).collect()))
        .set_cgroup(Some(cgroup))
        .set_seccomp(Some(seccomp))
        .set_apparmor(Some(apparmor))
        .set_selinux(Some(selinux))
        .set_intel_rdt(Some(intel_rdt))
        .set_memory_policy(Some(memory_policy))
        .set_mount_extensions(Some(mount_extensions))
        .set_net_devices(Some(net_devices));

    let mut mount_options = strings(&MOUNT_FLAGS);
    mount_options.extend(strings(&PROPAGATION));
    // On binds (the init's mount_setattr); CRI's recursiveReadOnly.
    mount_options.extend(super::mount_flags::recursive_names().map(String::from));
    mount_options.extend(["idmap", "ridmap"].map(String::from));
    mount_options.sort();

    let mut features = Features::default();
    features
        .set_oci_version_min(OCI_VERSION_MIN.to_string())
        .set_oci_version_max(VERSION.to_string())
        // Every phase of the runtime spec (plan/hooks.rs).
        .set_hooks(Some(
            [
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop",
            ]
            .map(String::from)
            .to_vec(),
        ))
        .set_mount_options(Some(mount_options))
        .set_linux(Some(linux))
        // A pod's `io.lxcri.netN` plugs the container into host bridges
        // and VLANs, so whoever may set annotations should know.
        .set_potentially_unsafe_config_annotations(Some(vec![LXCRI_PREFIX.to_string()]));
    features
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use oci_spec::runtime::{Linux, LinuxSeccomp, Mount, Spec};
    use serde_json::{json, Value};

    use super::*;
    use crate::plan::mounts::plan_mounts;
    use crate::plan::namespaces::plan_namespaces;
    use crate::security::{compile_seccomp, SeccompError};

    fn features_json() -> Value {
        serde_json::to_value(runtime_features()).unwrap()
    }

    fn names(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    /// The fields containerd's CRI plugin and task manager read, by the
    /// names of the runtime-spec's Go struct.
    #[test]
    fn json_has_the_fields_containerd_reads() {
        let f = features_json();
        assert_eq!(f["ociVersionMin"], "1.0.0");
        assert_eq!(f["ociVersionMax"], VERSION);
        let linux = &f["linux"];
        let namespaces = names(&linux["namespaces"]);
        assert!(namespaces.contains(&"user"), "{namespaces:?}");
        assert!(namespaces.contains(&"mount"), "{namespaces:?}");
        assert!(namespaces.contains(&"network"), "{namespaces:?}");
        assert_eq!(linux["mountExtensions"]["idmap"]["enabled"], true);
        let options = names(&f["mountOptions"]);
        assert!(options.contains(&"rbind") && options.contains(&"rslave"));
        // CRI turns on recursive read-only mounts when it sees this.
        assert!(options.contains(&"rro"));
        assert_eq!(
            f["hooks"],
            json!([
                "prestart",
                "createRuntime",
                "createContainer",
                "startContainer",
                "poststart",
                "poststop"
            ])
        );
        assert_eq!(linux["apparmor"]["enabled"], true);
        assert_eq!(linux["selinux"]["enabled"], true);
        assert_eq!(linux["intelRdt"]["enabled"], false);
        assert_eq!(linux["cgroup"]["v2"], true);
        let seccomp = &linux["seccomp"];
        assert!(names(&seccomp["archs"]).contains(&"SCMP_ARCH_X86_64"));
        assert!(names(&seccomp["actions"]).contains(&"SCMP_ACT_ERRNO"));
        assert!(!names(&seccomp["actions"]).contains(&"SCMP_ACT_NOTIFY"));
        assert!(names(&seccomp["operators"]).contains(&"SCMP_CMP_MASKED_EQ"));
        assert!(names(&linux["capabilities"]).contains(&"CAP_SYS_ADMIN"));
        // A trailing dot makes it a prefix in the runtime-spec.
        assert_eq!(
            f["potentiallyUnsafeConfigAnnotations"],
            json!(["io.lxcri."])
        );
    }

    fn bind_json(source: &Path, options: &[&str]) -> Value {
        json!({
            "destination": "/mnt",
            "type": "bind",
            "source": source,
            "options": options,
        })
    }

    fn bind_mount(source: &Path, options: &[&str]) -> Mount {
        serde_json::from_value(bind_json(source, options)).unwrap()
    }

    /// In a container with a user namespace (whose mapping `idmap` takes).
    fn plan_one(mount: Mount) -> crate::plan::Result<()> {
        let tmp = tempfile::tempdir().unwrap();
        plan_mounts(&[mount], tmp.path(), Path::new("/.lxcri"), true).map(|_| ())
    }

    #[test]
    fn every_listed_mount_option_is_accepted_by_the_plan() {
        let src = tempfile::tempdir().unwrap();
        for opt in runtime_features().mount_options().as_deref().unwrap() {
            if let Err(e) = plan_one(bind_mount(src.path(), &[opt])) {
                panic!("{opt:?} is listed but refused: {e}");
            }
        }
    }

    #[test]
    fn options_the_plan_refuses_are_not_listed() {
        let src = tempfile::tempdir().unwrap();
        let listed = runtime_features().mount_options().clone().unwrap();
        for opt in ["tmpcopyup", "optional"] {
            assert!(plan_one(bind_mount(src.path(), &[opt])).is_err(), "{opt}");
            assert!(!listed.iter().any(|o| o == opt), "{opt} is listed");
        }
    }

    /// containerd's CRI reports user namespaces for a handler only with
    /// `idmap` on: the plan must take what it then sends.
    #[test]
    fn idmap_is_on_because_the_plan_takes_mount_mappings() {
        let src = tempfile::tempdir().unwrap();
        let mut mount = bind_json(src.path(), &[]);
        mount["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        mount["gidMappings"] = mount["uidMappings"].clone();
        assert!(plan_one(serde_json::from_value(mount).unwrap()).is_ok());
        for opt in ["idmap", "ridmap"] {
            let mut mount = bind_json(src.path(), &[opt]);
            mount["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            mount["gidMappings"] = mount["uidMappings"].clone();
            assert!(plan_one(serde_json::from_value(mount).unwrap()).is_ok());
        }
        let f = features_json();
        assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        let listed = runtime_features().mount_options().clone().unwrap();
        assert!(listed.iter().any(|o| o == "idmap") && listed.iter().any(|o| o == "ridmap"));
    }

    #[test]
    fn every_listed_namespace_is_accepted_by_the_plan() {
        for ns in runtime_features()
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_deref()
            .unwrap()
        {
            let mut list = vec![json!({"type": "mount"})];
            if *ns != LinuxNamespaceType::Mount {
                list.push(json!({"type": ns}));
            }
            let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
            let mut linux = json!({"namespaces": list});
            if *ns == LinuxNamespaceType::User {
                linux["uidMappings"] = map.clone();
                linux["gidMappings"] = map;
            }
            let linux: Linux = serde_json::from_value(linux).unwrap();
            let mut spec = Spec::default();
            spec.set_hostname(None);
            if let Err(e) = plan_namespaces(&spec, &linux, None) {
                panic!("{ns:?} is listed but refused: {e}");
            }
        }
    }

    fn compile(profile: Value) -> Result<(), SeccompError> {
        let profile: LinuxSeccomp = serde_json::from_value(profile).unwrap();
        compile_seccomp(&profile).map(|_| ())
    }

    #[test]
    fn every_listed_seccomp_item_compiles() {
        let features = runtime_features();
        let seccomp = features
            .linux()
            .as_ref()
            .unwrap()
            .seccomp()
            .clone()
            .unwrap();
        for action in seccomp.actions().as_deref().unwrap() {
            compile(json!({"defaultAction": action})).unwrap();
        }
        compile(json!({"defaultAction": "SCMP_ACT_NOTIFY"})).unwrap_err();
        for op in seccomp.operators().as_deref().unwrap() {
            compile(json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 8, "valueTwo": 8, "op": op}],
                }],
            }))
            .unwrap_or_else(|e| panic!("{op}: {e}"));
        }
        for arch in seccomp.archs().as_deref().unwrap() {
            match compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]})) {
                Ok(()) => {}
                // The other byte order: refused by the host's libseccomp.
                Err(SeccompError::Libseccomp { .. }) => {}
                Err(e) => panic!("{arch:?} is listed but refused by lxcri: {e}"),
            }
        }
        let host = if cfg!(target_arch = "aarch64") {
            "SCMP_ARCH_AARCH64"
        } else {
            "SCMP_ARCH_X86_64"
        };
        for arch in ["SCMP_ARCH_NATIVE", host] {
            compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]}))
                .unwrap_or_else(|e| panic!("{arch}: {e}"));
        }
        for flag in seccomp.known_flags().as_deref().unwrap() {
            let supported = seccomp.supported_flags().as_deref().unwrap().contains(flag);
            let result = compile(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]}));
            assert_eq!(result.is_ok(), supported, "{flag}");
        }
    }

    /// The refusals behind the `false`s and the empty lists.
    #[test]
    fn unsupported_features_are_refused_by_the_plan() {
        let linux = |v: Value| -> Linux { serde_json::from_value(v).unwrap() };
        assert!(super::super::unsupported_linux_fields(&linux(json!({
            "intelRdt": {"closID": "x"}
        })))
        .is_err());
        let spec: Spec = serde_json::from_value(json!({
            "ociVersion": "1.0.0",
            "vm": {"kernel": {"path": "/k"}},
        }))
        .unwrap();
        assert!(super::super::unsupported_spec_fields(&spec).is_err());
    }
}
