//! Images for one id range (`userns.unprivileged`): a clone of the image's
//! snapshot with every owner shifted into the range, snapshotted in turn,
//! so its containers are clones of it. Only metadata is written: the file
//! data stays the image's. One per (image, range), made once under the
//! shifted key's lock and reused while the range comes round again.
//!
//! It is an image like the others for `lxcri gc` (role `image`, its own
//! key and last-used time); while it exists its base image has a clone and
//! is kept.

use super::image::{ImageLock, ImageRef};
use super::{
    op, prop, unique_suffix, Result, ZfsRootfs, ZfsRootfsError, IMAGE_KEY, PARTIAL_PREFIX, ROLE,
    ROLE_IMAGE, SNAPSHOT,
};
use crate::rootfs::shift::shift_tree;
use crate::rootfs::ImageKey;
use crate::userns::IdRange;

impl ZfsRootfs {
    /// The image `base` (keyed `key`) shifted into `range`, made if missing.
    pub(super) fn ensure_shifted(
        &self,
        base: &ImageRef,
        key: &ImageKey,
        range: IdRange,
    ) -> Result<ImageRef> {
        let key = key.shifted(range);
        let _lock = ImageLock::acquire(&self.lock_dir, &key)?;
        let dataset = self.image_dataset(&key)?;
        let snapshot = dataset
            .snapshot(SNAPSHOT)
            .map_err(ZfsRootfsError::InvalidName)?;
        if !self
            .zfs
            .exists(&snapshot)
            .map_err(op("looking for shifted image", &snapshot))?
        {
            if self
                .zfs
                .exists(&dataset)
                .map_err(op("looking for shifted image", &dataset))?
            {
                self.check_role(&dataset, ROLE_IMAGE)?;
                self.zfs
                    .destroy(&dataset, true)
                    .map_err(op("destroying incomplete image", &dataset))?;
            }
            self.make_shifted(base, &key, range, &dataset)?;
        }
        self.touch(&dataset);
        let path = self.mounted_path(&dataset, "mounting image")?;
        Ok(ImageRef {
            dataset,
            snapshot,
            path,
        })
    }

    /// Clones `base` as a partial dataset, shifts it, snapshots it and
    /// renames it to `dataset`; a failure destroys the partial one.
    fn make_shifted(
        &self,
        base: &ImageRef,
        key: &ImageKey,
        range: IdRange,
        dataset: &crate::zfs::DatasetName,
    ) -> Result<()> {
        let partial = self
            .images
            .child(&format!(
                "{PARTIAL_PREFIX}{}-{}",
                key.as_str(),
                unique_suffix()
            ))
            .map_err(ZfsRootfsError::InvalidName)?;
        let props = [prop(ROLE, ROLE_IMAGE)?, prop(IMAGE_KEY, key.as_str())?];
        self.zfs
            .clone_snapshot(&base.snapshot, &partial, &props)
            .map_err(op("cloning the image to shift it as", &partial))?;
        let result = (|| {
            let path = self.mounted_path(&partial, "mounting image dataset")?;
            tracing::info!(image = %dataset, start = range.host_start, "shifting ZFS image into an id range");
            shift_tree(&path, range).map_err(|e| ZfsRootfsError::Fill {
                dataset: partial.to_string(),
                detail: crate::error_chain(&e),
            })?;
            self.zfs
                .unmount(&partial)
                .map_err(op("unmounting image dataset", &partial))?;
            let snap = partial
                .snapshot(SNAPSHOT)
                .map_err(ZfsRootfsError::InvalidName)?;
            self.zfs
                .snapshot(&snap)
                .map_err(op("snapshotting image", &snap))?;
            self.zfs
                .rename(&partial, dataset)
                .map_err(op("renaming image into place", &partial))
        })();
        if result.is_err() {
            if let Err(e) = self.zfs.destroy(&partial, true) {
                tracing::warn!(dataset = %partial, error = %crate::error_chain(&e), "destroying a partial image");
            }
        }
        result
    }
}
