//! Where a container's root filesystem comes from: `overlay` uses
//! containerd's snapshot mounts as they are; `zfs` clones one dataset per
//! image ([`super::zfs::ZfsRootfs`]).

use std::fmt::Debug;
use std::path::Path;
use std::sync::Arc;

use super::zfs::ZfsRootfs;
use super::{is_mountpoint, mount_all, unmount_all, Result, RootfsMount};
use crate::config::{Config, RootfsMode};
use crate::userns::IdRange;

/// What a create asks of the rootfs.
#[derive(Debug, Clone, Copy)]
pub struct RootfsRequest<'a> {
    /// containerd's snapshot mounts (`CreateTaskRequest.rootfs`).
    pub mounts: &'a [RootfsMount],
    /// The bundle's rootfs directory.
    pub target: &'a Path,
    /// `namespace/id`, the owner mark of a container's own volume.
    pub owner: &'a str,
    /// The container's own volume (`subvol-<X>-disk-0`) when it can be
    /// named now; on pve it is named after the VMID, made later.
    pub volume: Option<&'a str>,
    /// The host ids the rootfs must belong to (`userns.unprivileged`):
    /// the image is shifted into them, not copied.
    pub idmap: Option<IdRange>,
}

pub trait RootfsProvider: Send + Sync + Debug {
    /// Makes the rootfs appear at `req.target`; returns whether anything
    /// was mounted there (and must be released).
    fn prepare(&self, req: &RootfsRequest<'_>) -> Result<bool>;

    /// Undoes [`RootfsProvider::prepare`]: unmounts `target` when given
    /// (what prepare mounted) and removes the container's volume. Releasing
    /// twice is fine.
    fn release(&self, target: Option<&Path>, owner: &str, volume: Option<&str>) -> Result<()>;

    /// The ZFS clones behind this provider, if that is what it is.
    fn zfs(&self) -> Option<&ZfsRootfs> {
        None
    }
}

/// The rootfs provider `rootfs.mode` names.
pub fn provider_for(config: &Config) -> Arc<dyn RootfsProvider> {
    match config.rootfs.mode {
        RootfsMode::Overlay => Arc::new(OverlayRootfs),
        RootfsMode::Zfs => Arc::new(
            ZfsRootfs::from_settings(&config.zfs, &config.runtime_root)
                .expect("a loaded config with rootfs.mode = zfs has zfs.pool"),
        ),
    }
}

/// containerd's snapshot mounts, mounted as they are (no copy).
#[derive(Debug, Default, Clone, Copy)]
pub struct OverlayRootfs;

impl RootfsProvider for OverlayRootfs {
    fn prepare(&self, req: &RootfsRequest<'_>) -> Result<bool> {
        if let Some(range) = req.idmap {
            let staging = req.target.with_file_name(".lxcri-layers");
            super::idmap::mount_shifted(req.mounts, req.target, range, &staging)?;
            return Ok(true);
        }
        if req.mounts.is_empty() {
            // `ctr run --rootfs DIR`: the bundle's root.path is used as it is.
            return Ok(false);
        }
        mount_all(req.mounts, req.target)?;
        Ok(true)
    }

    fn release(&self, target: Option<&Path>, _owner: &str, _volume: Option<&str>) -> Result<()> {
        if let Some(target) = target.filter(|t| is_mountpoint(t)) {
            unmount_all(target)?;
        }
        Ok(())
    }
}

impl RootfsProvider for ZfsRootfs {
    fn prepare(&self, req: &RootfsRequest<'_>) -> Result<bool> {
        if req.idmap.is_some() && req.mounts.is_empty() {
            return Err(super::RootfsError::UnshiftedRootfs { kinds: Vec::new() });
        }
        Ok(ZfsRootfs::prepare(
            self, req.mounts, req.target, req.owner, req.volume, req.idmap,
        )?)
    }

    fn release(&self, target: Option<&Path>, owner: &str, volume: Option<&str>) -> Result<()> {
        Ok(ZfsRootfs::release(self, target, owner, volume)?)
    }

    fn zfs(&self) -> Option<&ZfsRootfs> {
        Some(self)
    }
}
