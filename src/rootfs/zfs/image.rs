//! One dataset per image, filled once under a per-image lock.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::mounts::mount_of;
use super::{
    now_secs, op, prop, unique_suffix, CopyError, Result, ZfsRootfs, ZfsRootfsError, IMAGE_KEY,
    IMAGE_PREFIX, LAST_USED, PARTIAL_PREFIX, ROLE, ROLE_IMAGE, ROLE_IMAGES, SNAPSHOT,
};
use crate::rootfs::{ImageKey, ImageLayers};
use crate::userns::IdRange;
use crate::zfs::{DatasetName, Property, ZfsError};

/// A complete image: its key, its dataset and the snapshot clones come
/// from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub key: ImageKey,
    pub dataset: DatasetName,
    pub snapshot: DatasetName,
}

impl ImageRef {
    /// Whether `e` says this image is not there (its dataset or snapshot
    /// does not exist): then it is made, and the use tried again.
    fn missing_in(&self, e: &ZfsRootfsError) -> bool {
        matches!(e, ZfsRootfsError::Zfs { source: ZfsError::MissingDataset { name }, .. }
            if *name == self.snapshot.as_str() || *name == self.dataset.as_str())
    }
}

/// An image's lock, held until dropped: whoever holds it alone may fill,
/// destroy or judge the image's datasets; shared, it keeps the image as it
/// is while containers clone it.
#[derive(Debug)]
pub(super) struct ImageLock {
    _lock: Flock<File>,
}

impl ImageLock {
    fn path(dir: &Path, key: &ImageKey) -> PathBuf {
        dir.join(format!("image-{}.lock", key.as_str()))
    }

    fn open(dir: &Path, key: &ImageKey) -> Result<(File, PathBuf)> {
        let path = Self::path(dir, key);
        let err = |source| ZfsRootfsError::Lock {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(dir).map_err(err)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(err)?;
        Ok((file, path))
    }

    /// Waits for the lock (a fill by another shim can take a while).
    pub(super) fn acquire(dir: &Path, key: &ImageKey) -> Result<Self> {
        Self::wait(dir, key, FlockArg::LockExclusive)
    }

    /// Waits for the lock, shared with other holders of it shared.
    fn acquire_shared(dir: &Path, key: &ImageKey) -> Result<Self> {
        Self::wait(dir, key, FlockArg::LockShared)
    }

    fn wait(dir: &Path, key: &ImageKey, how: FlockArg) -> Result<Self> {
        let (file, path) = Self::open(dir, key)?;
        Flock::lock(file, how)
            .map(|l| Self { _lock: l })
            .map_err(|(_, errno)| ZfsRootfsError::Lock {
                path,
                source: errno.into(),
            })
    }

    /// The lock if nobody holds it (gc passes over busy images).
    pub(super) fn try_acquire(dir: &Path, key: &ImageKey) -> Result<Option<Self>> {
        let (file, path) = Self::open(dir, key)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => Ok(Some(Self { _lock: l })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(ZfsRootfsError::Lock {
                path,
                source: errno.into(),
            }),
        }
    }
}

impl ZfsRootfs {
    fn image_ref(&self, key: &ImageKey) -> Result<ImageRef> {
        let dataset = self
            .images
            .child(&format!("{IMAGE_PREFIX}{}", key.as_str()))
            .map_err(ZfsRootfsError::InvalidName)?;
        let snapshot = dataset
            .snapshot(SNAPSHOT)
            .map_err(ZfsRootfsError::InvalidName)?;
        Ok(ImageRef {
            key: key.clone(),
            dataset,
            snapshot,
        })
    }

    /// Runs `use_image` on the complete image of `layers` (shifted into
    /// `idmap` when given) under the image's lock, so `lxcri gc` cannot
    /// destroy it meanwhile. Nothing is asked of `zfs` beforehand: when
    /// `use_image` finds the image missing, it is made (filled from the
    /// layers) and `use_image` runs again. The lock is shared while the
    /// image is only used (containers of one image clone it side by side),
    /// and taken alone to make it.
    pub(super) fn with_image<T>(
        &self,
        layers: &ImageLayers,
        idmap: Option<IdRange>,
        use_image: impl Fn(&ImageRef) -> Result<T>,
    ) -> Result<T> {
        if let Some(upper) = &layers.upperdir {
            let has_changes = fs::read_dir(upper)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
            if has_changes {
                return Err(ZfsRootfsError::UpperNotEmpty(upper.clone()));
            }
        }
        match idmap {
            None => self.with_keyed(&layers.key, |image| self.fill(layers, image), use_image),
            Some(range) => self.with_keyed(
                &layers.key.shifted(range),
                |image| {
                    self.with_keyed(
                        &layers.key,
                        |base| self.fill(layers, base),
                        |base| self.make_shifted(base, image, range),
                    )
                },
                use_image,
            ),
        }
    }

    /// [`ZfsRootfs::with_image`] for the image `key`, made by `make`.
    fn with_keyed<T>(
        &self,
        key: &ImageKey,
        make: impl FnOnce(&ImageRef) -> Result<()>,
        use_image: impl Fn(&ImageRef) -> Result<T>,
    ) -> Result<T> {
        let image = self.image_ref(key)?;
        {
            let _shared = ImageLock::acquire_shared(&self.lock_dir, key)?;
            match use_image(&image) {
                Err(e) if image.missing_in(&e) => {}
                result => return result,
            }
        }
        let _alone = ImageLock::acquire(&self.lock_dir, key)?;
        // Another create may have made it while this one waited.
        match use_image(&image) {
            Err(e) if image.missing_in(&e) => {
                make(&image)?;
                use_image(&image)
            }
            result => result,
        }
    }

    /// Fills `image` from the image layers.
    fn fill(&self, layers: &ImageLayers, image: &ImageRef) -> Result<()> {
        self.make_keyed(
            image,
            |partial, props| {
                self.ensure_images_parent()?;
                let mut all = self.pve_props()?;
                all.extend(props);
                self.zfs
                    .create(partial, &all)
                    .map_err(op("creating image dataset", partial))
            },
            |partial, path| {
                tracing::info!(image = %partial, layers = layers.lowerdirs.len(), "filling ZFS image dataset");
                self.copier
                    .copy(&layers.lowerdirs, path)
                    .map_err(|e| match e {
                        CopyError::OutOfSpace(detail) => ZfsRootfsError::ImageTooLarge {
                            layers: layers.lowerdirs.len(),
                            size: self.size,
                            dataset: partial.to_string(),
                            detail,
                        },
                        CopyError::Failed(detail) => ZfsRootfsError::Fill {
                            dataset: partial.to_string(),
                            detail,
                        },
                    })
            },
        )
    }

    /// Makes the missing image `image`, under its lock: an
    /// image dataset without its snapshot (lost) is destroyed if lxcri's,
    /// `create` makes a partial dataset with the given marks, `fill` fills
    /// it where it is mounted, and it is snapshotted and renamed into
    /// place; on any failure the partial dataset is destroyed. Shared by
    /// the images of layers and their shifted clones (`shifted.rs`).
    pub(super) fn make_keyed(
        &self,
        image: &ImageRef,
        create: impl FnOnce(&DatasetName, Vec<Property>) -> Result<()>,
        fill: impl FnOnce(&DatasetName, &Path) -> Result<()>,
    ) -> Result<()> {
        let (key, dataset) = (&image.key, &image.dataset);
        if self
            .zfs
            .exists(dataset)
            .map_err(op("looking for image", dataset))?
        {
            // Without its snapshot nothing was cloned from it; it can
            // only be an image of lxcri's that lost its snapshot.
            self.check_role(dataset, ROLE_IMAGE)?;
            self.zfs
                .destroy(dataset, true)
                .map_err(op("destroying incomplete image", dataset))?;
        }
        let partial = self
            .images
            .child(&format!(
                "{PARTIAL_PREFIX}{}-{}",
                key.as_str(),
                unique_suffix()
            ))
            .map_err(ZfsRootfsError::InvalidName)?;
        // Used now: its idle time for `lxcri gc` starts here, and again
        // whenever a clone of it is destroyed (a clone keeps it meanwhile).
        let marks = vec![
            prop(ROLE, ROLE_IMAGE)?,
            prop(IMAGE_KEY, key.as_str())?,
            prop(LAST_USED, &now_secs().to_string())?,
        ];
        create(&partial, marks)?;
        let result = self.complete_partial(&partial, dataset, fill);
        if result.is_err() {
            if let Err(e) = self.zfs.destroy(&partial, true) {
                tracing::warn!(dataset = %partial, error = %crate::error_chain(&e), "destroying a partial image");
            }
        }
        result
    }

    fn complete_partial(
        &self,
        partial: &DatasetName,
        dataset: &DatasetName,
        fill: impl FnOnce(&DatasetName, &Path) -> Result<()>,
    ) -> Result<()> {
        let path = self.mounted_path(partial, "mounting image dataset")?;
        fill(partial, &path)?;
        // Unmounted first: renaming a mounted dataset can find it busy.
        self.zfs
            .unmount(partial)
            .map_err(op("unmounting image dataset", partial))?;
        let snap = partial
            .snapshot(SNAPSHOT)
            .map_err(ZfsRootfsError::InvalidName)?;
        self.zfs
            .snapshot(&snap)
            .map_err(op("snapshotting image", &snap))?;
        // The rename makes the image visible under its final name, all at once.
        self.zfs
            .rename(partial, dataset)
            .map_err(op("renaming image into place", partial))
    }

    /// The images dataset, created (and marked) if missing.
    fn ensure_images_parent(&self) -> Result<()> {
        if self
            .zfs
            .exists(&self.images)
            .map_err(op("looking for the images dataset", &self.images))?
        {
            return Ok(());
        }
        self.zfs
            .create(&self.images, &[prop(ROLE, ROLE_IMAGES)?])
            .map_err(op("creating the images dataset", &self.images))
    }

    /// Records that the image was just used (for `lxcri gc`'s TTL). Best
    /// effort: a failure only makes gc see the image as older.
    pub(super) fn touch(&self, image: &DatasetName) {
        let now = now_secs().to_string();
        let result = prop(LAST_USED, &now).and_then(|p| {
            self.zfs
                .set(image, &p)
                .map_err(op("marking image used", image))
        });
        if let Err(e) = result {
            tracing::warn!(error = %crate::error_chain(&e), "image last-used mark");
        }
    }

    /// Where `dataset` is mounted, mounting it first if it is not: from
    /// the mount table when it is there (no `zfs` call), else asked of
    /// `zfs` (one `zfs get`, and `zfs mount` when not mounted).
    pub(super) fn mounted_path(
        &self,
        dataset: &DatasetName,
        doing: &'static str,
    ) -> Result<PathBuf> {
        if let Some(m) = mount_of(&self.mounts.list(), dataset) {
            return Ok(m.path.clone());
        }
        let props = self
            .zfs
            .get_many(dataset, &["mounted", "mountpoint"])
            .map_err(op("reading the mountpoint of", dataset))?;
        let [mounted, mountpoint] = <[Option<String>; 2]>::try_from(props).unwrap_or_default();
        let path = match mountpoint {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            other => {
                return Err(ZfsRootfsError::Foreign {
                    dataset: dataset.to_string(),
                    reason: format!(
                        "mountpoint is {:?}; lxcri needs datasets under zfs.pool mounted",
                        other.unwrap_or_default()
                    ),
                })
            }
        };
        if mounted.as_deref() != Some("yes") {
            self.zfs.mount(dataset).map_err(op(doing, dataset))?;
        }
        Ok(path)
    }

    /// Fails unless `dataset` carries `lxcri:role=<role>`.
    pub(super) fn check_role(&self, dataset: &DatasetName, role: &str) -> Result<()> {
        let found = self
            .zfs
            .get(dataset, ROLE)
            .map_err(op("reading lxcri:role of", dataset))?;
        if found.as_deref() == Some(role) {
            Ok(())
        } else {
            Err(ZfsRootfsError::Foreign {
                dataset: dataset.to_string(),
                reason: format!("lxcri:role is {found:?}, not {role:?}"),
            })
        }
    }
}
