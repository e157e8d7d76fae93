//! Container volumes: clones of an image snapshot, owned by one container.

use super::mounts::mounts_of;
use super::{op, prop, ImageRef, Result, ZfsRootfs, ZfsRootfsError, OWNER, ROLE, ROLE_VOLUME};
use crate::zfs::{DatasetName, ZfsError};

/// Which dataset already named like the volume a clone may replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Replace {
    /// Only the same container's (a volume an earlier attempt left).
    Own,
    /// That, or one without lxcri's marks (PVE's freshly allocated one).
    OwnOrUnmarked,
}

impl ZfsRootfs {
    /// Clones `image` as `volume` for `owner` (`namespace/id`), with the
    /// marks set by the clone itself. The clone is tried first: a dataset
    /// already named so is then replaced if `replace` allows (one `zfs
    /// get` to judge it), else it is an error.
    pub(super) fn clone_volume(
        &self,
        image: &ImageRef,
        volume: &DatasetName,
        owner: &str,
        replace: Replace,
    ) -> Result<()> {
        let mut props = self.pve_props()?;
        props.push(prop(ROLE, ROLE_VOLUME)?);
        props.push(prop(OWNER, owner)?);
        let clone = || {
            self.zfs
                .clone_snapshot(&image.snapshot, volume, &props)
                .map_err(op("cloning the image as", volume))
        };
        match clone() {
            Err(ZfsRootfsError::Zfs {
                source: ZfsError::AlreadyExists { .. },
                ..
            }) => {
                let [role, found] = self.marks(volume, [ROLE, OWNER])?;
                if !(replace == Replace::OwnOrUnmarked && role.is_none()) {
                    owners(volume, owner, role, found)?;
                }
                self.destroy_unmounted(volume)
                    .map_err(op("destroying a leftover volume", volume))?;
                clone()
            }
            result => result,
        }
    }

    /// Destroys a volume after unmounting it here (see
    /// [`ZfsRootfs::unmount_here`]).
    pub(super) fn destroy_unmounted(&self, volume: &DatasetName) -> crate::zfs::Result<()> {
        self.unmount_here(volume);
        self.zfs.destroy(volume, true)
    }

    /// Unmounts `volume` ahead of its destroy: zfs-fuse refuses to destroy
    /// a dataset it has to unmount itself (busy) until asked again, one
    /// more round trip and a pause. What will not unmount is left to `zfs
    /// destroy` (and its retries).
    fn unmount_here(&self, volume: &DatasetName) {
        for m in mounts_of(&self.mounts.list(), volume) {
            if let Err(errno) = self.mounts.unmount(&m.path) {
                tracing::debug!(path = %m.path.display(), %errno, "unmounting a volume before its destroy");
            }
        }
    }

    /// Destroys `volume` if it is `owner`'s (gone already is fine), and
    /// marks its image used now: the image's idle time starts here.
    pub fn destroy_volume(&self, volume: &DatasetName, owner: &str) -> Result<()> {
        let origin = match self.owned(volume, owner, "origin") {
            Ok(origin) => origin,
            // Without the command or the pool, no volume can exist: a
            // create that failed for that reason has nothing to undo.
            Err(
                ZfsRootfsError::NoPool { .. }
                | ZfsRootfsError::Zfs {
                    source: ZfsError::MissingDataset { .. } | ZfsError::NotInstalled { .. },
                    ..
                },
            ) => return Ok(()),
            Err(e @ ZfsRootfsError::Foreign { .. }) => {
                // A VMID is reused once freed: that volume is someone else's now.
                tracing::warn!(error = %e, "not destroying a volume that is not this container's");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let image = origin
            .as_deref()
            .and_then(|o| o.split_once('@'))
            .and_then(|(d, _)| DatasetName::parse(d).ok());
        self.unmount_here(volume);
        // Marked between the unmount and the destroy: zfs-fuse lets go of
        // an unmounted dataset some milliseconds after the kernel did, and
        // a destroy right away is often refused as busy (then tried again
        // after a pause). Marked early, or also when the destroy fails,
        // changes nothing for gc: a clone keeps its image.
        if let Some(image) = &image {
            self.touch(image);
        }
        self.zfs
            .destroy(volume, true)
            .map_err(op("destroying volume", volume))
    }

    /// The image `leaf`'s volume was cloned from, if the volume is `owner`'s.
    pub fn origin_image(&self, leaf: &str, owner: &str) -> Option<DatasetName> {
        let volume = self.volume(leaf).ok()?;
        let origin = self.owned(&volume, owner, "origin").ok()??;
        DatasetName::parse(origin.split_once('@')?.0).ok()
    }

    /// Marks `image` used now (its idle time for `lxcri gc` starts again).
    pub fn mark_used(&self, image: &DatasetName) {
        self.touch(image);
    }

    /// Property `key` of `volume` if the volume is `owner`'s (one `zfs get`
    /// for the marks and the property), else [`ZfsRootfsError::Foreign`].
    fn owned(&self, volume: &DatasetName, owner: &str, key: &str) -> Result<Option<String>> {
        let [role, found, value] = self.marks(volume, [ROLE, OWNER, key])?;
        owners(volume, owner, role, found).map(|()| value)
    }

    /// The values of `keys` on `volume`, in one `zfs get`.
    fn marks<const N: usize>(
        &self,
        volume: &DatasetName,
        keys: [&str; N],
    ) -> Result<[Option<String>; N]> {
        let values = self
            .zfs
            .get_many(volume, &keys)
            .map_err(op("reading the lxcri marks of", volume))?;
        Ok(<[Option<String>; N]>::try_from(values)
            .unwrap_or_else(|_| std::array::from_fn(|_| None)))
    }
}

/// Whether a volume's marks (`lxcri:role`, `lxcri:owner`) say it is
/// `owner`'s; else [`ZfsRootfsError::Foreign`].
fn owners(
    volume: &DatasetName,
    owner: &str,
    role: Option<String>,
    found: Option<String>,
) -> Result<()> {
    if role.as_deref() == Some(ROLE_VOLUME) && found.as_deref() == Some(owner) {
        return Ok(());
    }
    Err(ZfsRootfsError::Foreign {
        dataset: volume.to_string(),
        reason: format!("lxcri:role {role:?}, lxcri:owner {found:?}, wanted {owner:?}"),
    })
}
