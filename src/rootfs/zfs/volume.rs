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
        self.touch(&image.dataset);
        let mounted = self
            .zfs
            .mount(volume)
            .map_err(op("mounting volume", volume))
            .and_then(|()| self.mountpoint(volume));
        if mounted.is_err() {
            let _ = self.zfs.destroy(volume, true);
        }
        mounted
    }

    /// Destroys `volume` if it is `owner`'s (gone already is fine), and
    /// marks its image used now: the image's idle time starts here.
    pub fn destroy_volume(&self, volume: &DatasetName, owner: &str) -> Result<()> {
        match self.zfs.exists(volume) {
            Ok(true) => {}
            // Without the command or the pool, no volume can exist: a
            // create that failed for that reason has nothing to undo.
            Ok(false) | Err(ZfsError::NotInstalled { .. } | ZfsError::NoSuchPool { .. }) => {
                return Ok(())
            }
            Err(e) => return Err(op("looking for volume", volume)(e)),
        }
        if let Err(e) = self.check_owner(volume, owner) {
            // A VMID is reused once freed: that volume is someone else's now.
            tracing::warn!(error = %e, "not destroying a volume that is not this container's");
            return Ok(());
        }
        let origin = self
            .zfs
            .get(volume, "origin")
            .map_err(op("reading the origin of", volume))?;
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
        self.check_owner(&volume, owner).ok()?;
        let origin = self.zfs.get(&volume, "origin").ok()??;
        DatasetName::parse(origin.split_once('@')?.0).ok()
    }

    /// Marks `image` used now (its idle time for `lxcri gc` starts again).
    pub fn mark_used(&self, image: &DatasetName) {
        self.touch(image);
    }

    fn check_owner(&self, volume: &DatasetName, owner: &str) -> Result<()> {
        let role = self
            .zfs
            .get(volume, ROLE)
            .map_err(op("reading lxcri:role of", volume))?;
        let found = self
            .zfs
            .get(volume, OWNER)
            .map_err(op("reading lxcri:owner of", volume))?;
        if role.as_deref() == Some(ROLE_VOLUME) && found.as_deref() == Some(owner) {
            return Ok(());
        }
        Err(ZfsRootfsError::Foreign {
            dataset: volume.to_string(),
            reason: format!("lxcri:role {role:?}, lxcri:owner {found:?}, wanted {owner:?}"),
        })
    }
}
