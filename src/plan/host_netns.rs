//! What a container cannot set up in a network namespace its user
//! namespace does not own (a pod's under `userns.unprivileged`: CNI made it
//! as the node's root before the sandbox existed), done by the node's root
//! from the host before start ([`HostNetnsSetup`]). The kernel allows both
//! only to a holder of `CAP_SYS_ADMIN`/`CAP_NET_ADMIN` over the namespace's
//! owner: mounting its sysfs (fs/sysfs/mount.c `sysfs_init_fs_context`) and
//! writing its `net.*` sysctls (net/sysctl_net.c `net_ctl_permissions`).

use std::path::PathBuf;

use super::{unsupported, Result};
use crate::lxc::LxcConfig;

/// Done from the host in `netns` before the container starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostNetnsSetup {
    pub netns: PathBuf,
    /// The spec's sysfs mounts, as that namespace's sysfs.
    pub sysfs: Vec<HostSysfs>,
    /// The spec's `net.*` sysctls, sorted.
    pub sysctls: Vec<(String, String)>,
}

/// A sysfs mount made on the host inside the container's rootfs, which LXC
/// then binds with the rootfs (the kernel locks it and its flags there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SysfsFlags {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSysfs {
    /// Relative to the rootfs, resolved inside it.
    pub destination: String,
    pub flags: SysfsFlags,
}

/// Takes the sysfs mounts and `net.*` sysctls out of `lxc` (LXC would fail
/// on them from inside) into the setup for `netns`.
pub(super) fn take_from(lxc: &mut LxcConfig, netns: PathBuf) -> Result<HostNetnsSetup> {
    let mut sysfs = Vec::new();
    for entry in lxc.mounts.iter().filter(|m| m.fstype == "sysfs") {
        let mut flags = SysfsFlags::default();
        for opt in &entry.options {
            match opt.as_str() {
                "ro" => flags.read_only = true,
                "rw" => flags.read_only = false,
                "nosuid" => flags.nosuid = true,
                "suid" => flags.nosuid = false,
                "nodev" => flags.nodev = true,
                "dev" => flags.nodev = false,
                "noexec" => flags.noexec = true,
                "exec" => flags.noexec = false,
                // lxcri's own, for LXC.
                "create=dir" => {}
                other => {
                    return Err(unsupported(
                        &format!("mounts (sysfs at /{})", entry.destination),
                        &format!(
                            "option {other:?}: the pod's network namespace belongs to the node, \
                             so its sysfs is mounted from the host, with ro, nosuid, nodev, noexec \
                             and their opposites only"
                        ),
                    ))
                }
            }
        }
        sysfs.push(HostSysfs {
            destination: entry.destination.clone(),
            flags,
        });
    }
    lxc.mounts.retain(|m| m.fstype != "sysfs");
    let (sysctls, others) = std::mem::take(&mut lxc.sysctls)
        .into_iter()
        .partition(|(k, _)| k.starts_with("net."));
    lxc.sysctls = others;
    Ok(HostNetnsSetup {
        netns,
        sysfs,
        sysctls,
    })
}
