//! Container volumes: clones of an image snapshot, owned by one container.

use std::path::PathBuf;

use super::{op, prop, ImageRef, Result, ZfsRootfs, ZfsRootfsError, OWNER, ROLE, ROLE_VOLUME};
use crate::zfs::{DatasetName, ZfsError};

impl ZfsRootfs {
    /// Clones `image` as `volume` for `owner` (`namespace/id`) and returns
    /// where it is mounted. A volume left by an earlier attempt of the same
    /// container is replaced; anyone else's is an error.
    pub(super) fn clone_volume(
        &self,
        image: &ImageRef,
        volume: &DatasetName,
        owner: &str,
    ) -> Result<PathBuf> {
        if self
            .zfs
            .exists(volume)
            .map_err(op("looking for volume", volume))?
        {
            self.check_owner(volume, owner)?;
            self.zfs
                .destroy(volume, true)
                .map_err(op("destroying a leftover volume", volume))?;
        }
        let mut props = self.pve_props()?;
        props.push(prop(ROLE, ROLE_VOLUME)?);
        props.push(prop(OWNER, owner)?);
        self.zfs
            .clone_snapshot(&image.snapshot, volume, &props)
            .map_err(op("cloning the image as", volume))?;
        // (ensure_image has just marked the image used.)
        let mounted = self.mounted_path(volume, "mounting volume");
        if mounted.is_err() {
            let _ = self.zfs.destroy(volume, true);
        }
        mounted
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
        self.zfs
            .destroy(volume, true)
            .map_err(op("destroying volume", volume))?;
        if let Some(image) = origin
            .as_deref()
            .and_then(|o| o.split_once('@'))
            .and_then(|(d, _)| DatasetName::parse(d).ok())
        {
            self.touch(&image);
        }
        Ok(())
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

    fn check_owner(&self, volume: &DatasetName, owner: &str) -> Result<()> {
        self.owned(volume, owner, ROLE).map(drop)
    }

    /// Property `key` of `volume` if the volume is `owner`'s (one `zfs get`
    /// for the marks and the property), else [`ZfsRootfsError::Foreign`].
    fn owned(&self, volume: &DatasetName, owner: &str, key: &str) -> Result<Option<String>> {
        let props = self
            .zfs
            .get_many(volume, &[ROLE, OWNER, key])
            .map_err(op("reading the lxcri marks of", volume))?;
        let [role, found, value] = <[Option<String>; 3]>::try_from(props).unwrap_or_default();
        if role.as_deref() == Some(ROLE_VOLUME) && found.as_deref() == Some(owner) {
            return Ok(value);
        }
        Err(ZfsRootfsError::Foreign {
            dataset: volume.to_string(),
            reason: format!("lxcri:role {role:?}, lxcri:owner {found:?}, wanted {owner:?}"),
        })
    }
}
