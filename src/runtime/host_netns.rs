//! Applies a [`HostNetnsSetup`]: as the node's root, on a thread inside the
//! pod's network namespace, mounts that namespace's sysfs in the container's
//! rootfs and writes its `net.*` sysctls, before LXC starts the container.
//!
//! The sysfs mounts sit on the rootfs lxcri mounted, so unmounting the
//! rootfs on delete or rollback takes them along.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};

use crate::network::netlink::in_netns;
use crate::plan::{HostNetnsSetup, SysfsFlags};

#[derive(Debug, thiserror::Error)]
pub enum HostNetnsError {
    #[error("mounting the pod network namespace's sysfs on {target}: {source}")]
    Sysfs {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing sysctl {key} in the pod network namespace: {source}")]
    Sysctl {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("opening the pod network namespace {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("entering the pod network namespace: {0}")]
    Enter(String),
    #[error("the pod network namespace's sysfs goes on the rootfs lxcri mounts, and {0} is not one (a rootfs lxcri cannot shift is refused under userns.unprivileged)")]
    UnmountedRootfs(PathBuf),
}

pub(super) fn apply(setup: &HostNetnsSetup, rootfs: &Path) -> Result<(), HostNetnsError> {
    let netns = File::open(&setup.netns).map_err(|source| HostNetnsError::Open {
        path: setup.netns.clone(),
        source,
    })?;
    in_netns(netns.as_fd(), || -> Result<(), HostNetnsError> {
        for sysfs in &setup.sysfs {
            mount_sysfs(&rootfs.join(&sysfs.destination), sysfs.flags)?;
        }
        for (key, value) in &setup.sysctls {
            fs::write(sysctl_path(key), value).map_err(|source| HostNetnsError::Sysctl {
                key: key.clone(),
                source,
            })?;
        }
        Ok(())
    })
    .map_err(|e| HostNetnsError::Enter(e.to_string()))
    .and_then(|r| r)
}

/// The new sysfs shows the devices of the calling thread's network
/// namespace (fs/sysfs/mount.c takes the current one).
fn mount_sysfs(target: &Path, flags: SysfsFlags) -> Result<(), HostNetnsError> {
    let err = |source| HostNetnsError::Sysfs {
        target: target.to_path_buf(),
        source,
    };
    // The destination was resolved inside the rootfs; nothing runs in it yet.
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(err(std::io::Error::other("exists and is not a directory"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::create_dir_all(target).map_err(err)?
        }
        Err(e) => return Err(err(e)),
    }
    let mut ms = MsFlags::empty();
    for (set, flag) in [
        (flags.read_only, MsFlags::MS_RDONLY),
        (flags.nosuid, MsFlags::MS_NOSUID),
        (flags.nodev, MsFlags::MS_NODEV),
        (flags.noexec, MsFlags::MS_NOEXEC),
    ] {
        if set {
            ms |= flag;
        }
    }
    mount(Some("sysfs"), target, Some("sysfs"), ms, None::<&str>).map_err(|e| err(e.into()))
}

/// `/proc/sys/<key>` with dots as separators, as LXC and runc write it.
fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_become_proc_paths() {
        assert_eq!(
            sysctl_path("net.ipv4.ip_unprivileged_port_start"),
            Path::new("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        );
    }
}
