//! Where a container's root filesystem comes from. `overlay` uses
//! containerd's snapshot mounts as they are; `zfs` (clones of one dataset
//! per image) plugs in here later.

use std::fmt::Debug;
use std::path::Path;

use super::{is_mountpoint, mount_all, unmount_all, Result, RootfsMount};

pub trait RootfsProvider: Send + Sync + Debug {
    /// Makes the rootfs appear at `target`; returns whether anything was
    /// mounted there (and must be released).
    fn prepare(&self, mounts: &[RootfsMount], target: &Path) -> Result<bool>;

    /// Undoes [`RootfsProvider::prepare`]; releasing twice is fine.
    fn release(&self, target: &Path) -> Result<()>;
}

/// containerd's snapshot mounts, mounted as they are (no copy).
#[derive(Debug, Default, Clone, Copy)]
pub struct OverlayRootfs;

impl RootfsProvider for OverlayRootfs {
    fn prepare(&self, mounts: &[RootfsMount], target: &Path) -> Result<bool> {
        if mounts.is_empty() {
            // `ctr run --rootfs DIR`: the bundle's root.path is used as it is.
            return Ok(false);
        }
        mount_all(mounts, target)?;
        Ok(true)
    }

    fn release(&self, target: &Path) -> Result<()> {
        if is_mountpoint(target) {
            unmount_all(target)?;
        }
        Ok(())
    }
}
