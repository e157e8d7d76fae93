//! `rootfs.mode = "zfs"`: one dataset per image, one `zfs clone` per
//! container, named and sized like PVE's own CT volumes.
//!
//! - The image dataset `<images>/img-<key>` is filled once, from the
//!   image's layers ([`ImageLayers`]: two tags of one image share it), and
//!   snapshotted `@lxcri`. Filling happens in `<images>/partial-<key>-<n>`
//!   under a per-image lock; only after the snapshot is it renamed to its
//!   final name, so a crash leaves a partial dataset nothing clones from
//!   (and `lxcri gc` removes), never a half-filled image.
//! - A container's volume `<pool>/subvol-<VMID>-disk-0` (lxc backend: its
//!   LXC name for the VMID) is a clone of that snapshot with PVE's
//!   properties (`refquota`, and where the pool has them `acltype=posixacl`,
//!   `xattr=sa`). Writes land in the clone only.
//! - Every dataset lxcri makes carries `lxcri:role`; lxcri never destroys
//!   or reuses one without it, nor a volume whose `lxcri:owner` is another
//!   container's.

mod copy;
mod gc;
mod image;
mod mounts;
mod shifted;
mod volume;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use crate::userns::IdRange;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use copy::{CopyError, LayerCopier, OverlayCopier};
pub use gc::{ImageGc, ImageGcReport};
pub use image::ImageRef;
pub use mounts::{MountEntry, ProcMounts, ZfsMounts};

use super::{is_mountpoint, mount_all, unmount_all, ImageKeyError, ImageLayers, RootfsMount};
use crate::config::ZfsSettings;
use crate::zfs::{DatasetName, DiskSize, Property, Zfs, ZfsCli, ZfsCommand, ZfsError};
use mounts::mount_of;
use volume::Replace;

/// User property on every dataset lxcri made: what it is.
pub const ROLE: &str = "lxcri:role";
/// `ROLE` of image datasets (complete or partial) and of the images parent.
pub const ROLE_IMAGE: &str = "image";
pub const ROLE_IMAGES: &str = "images";
/// `ROLE` of container volumes.
pub const ROLE_VOLUME: &str = "rootfs";
/// The image key of an image dataset.
pub const IMAGE_KEY: &str = "lxcri:image-key";
/// Unix seconds an image was last cloned from or let go of by a clone.
pub const LAST_USED: &str = "lxcri:last-used";
/// `namespace/id` of a volume's container.
pub const OWNER: &str = "lxcri:owner";
/// The image snapshot every clone comes from (never PVE's `__base__`).
pub const SNAPSHOT: &str = "lxcri";
/// Name prefixes below the images dataset.
pub const IMAGE_PREFIX: &str = "img-";
pub const PARTIAL_PREFIX: &str = "partial-";

#[derive(Debug, thiserror::Error)]
pub enum ZfsRootfsError {
    #[error("rootfs.mode = \"zfs\" needs containerd's overlayfs snapshotter: {0}")]
    Layers(#[source] ImageKeyError),
    #[error("rootfs.mode = \"zfs\": the container's snapshot already has changes in its upper layer {0} (zfs mode builds the rootfs from the image layers alone)")]
    UpperNotEmpty(PathBuf),
    #[error("zfs.pool {pool:?} does not exist (zpool list shows the pools of this node)")]
    NoPool { pool: String },
    #[error("zfs.pool {dataset:?} does not exist (zfs list shows the datasets of this node)")]
    NoPoolDataset { dataset: String },
    #[error("{action} {dataset}")]
    Zfs {
        action: &'static str,
        dataset: String,
        #[source]
        source: ZfsError,
    },
    #[error("the image ({layers} layers) does not fit zfs.size = {size}: quota reached while filling {dataset} ({detail}); raise zfs.size")]
    ImageTooLarge {
        layers: usize,
        size: DiskSize,
        dataset: String,
        detail: String,
    },
    #[error("filling image dataset {dataset}: {detail}")]
    Fill { dataset: String, detail: String },
    #[error("dataset {dataset} exists and is not lxcri's for this container ({reason}); lxcri leaves it alone")]
    Foreign { dataset: String, reason: String },
    #[error("image lock {path}: {source}")]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("mounting {dataset} on {target}: {source}")]
    Mount {
        dataset: String,
        target: PathBuf,
        #[source]
        source: Box<super::RootfsError>,
    },
    #[error("{0}")]
    InvalidName(#[source] ZfsError),
}

pub type Result<T> = std::result::Result<T, ZfsRootfsError>;

/// A zfs failure with what lxcri was doing; a missing pool said plainly.
fn op(action: &'static str, dataset: &DatasetName) -> impl FnOnce(ZfsError) -> ZfsRootfsError {
    let dataset = dataset.to_string();
    move |source| match source {
        ZfsError::NoSuchPool { pool } => ZfsRootfsError::NoPool { pool },
        source => ZfsRootfsError::Zfs {
            action,
            dataset,
            source,
        },
    }
}

/// A unique-enough suffix for temporary names (pid and clock).
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:05x}", std::process::id(), nanos & 0xfffff)
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The container volume name PVE gives a CT's rootfs, `subvol-<X>-disk-0`,
/// with the VMID (pve) or the LXC name (lxc backend) as `X`.
pub fn volume_leaf(x: &str) -> String {
    format!("subvol-{x}-disk-0")
}

/// ZFS clones as container root filesystems.
#[derive(Debug)]
pub struct ZfsRootfs {
    zfs: Zfs<Box<dyn ZfsCommand>>,
    pool: DatasetName,
    images: DatasetName,
    size: DiskSize,
    /// Per-image lock files.
    lock_dir: PathBuf,
    copier: Box<dyn LayerCopier>,
    /// Where datasets are mounted (read instead of asked of `zfs`).
    mounts: Box<dyn ZfsMounts>,
    /// Whether the pool takes `acltype` and `xattr=sa` (OpenZFS on Linux
    /// does; zfs-fuse does not), found out once.
    linux_props: OnceLock<bool>,
}

impl ZfsRootfs {
    /// From `[zfs]`; `runtime_root` holds the image locks and scratch mounts.
    pub fn from_settings(settings: &ZfsSettings, runtime_root: &Path) -> Option<Self> {
        let pool = settings.pool.clone()?;
        let images = settings.images()?;
        let work = runtime_root.join("zfs");
        Some(Self::new(
            Box::new(ZfsCli::new(&settings.command)),
            pool,
            images,
            settings.size,
            work.join("locks"),
            Box::new(OverlayCopier {
                scratch: work.join("views"),
            }),
            Box::new(ProcMounts),
        ))
    }

    pub fn new(
        cmd: Box<dyn ZfsCommand>,
        pool: DatasetName,
        images: DatasetName,
        size: DiskSize,
        lock_dir: PathBuf,
        copier: Box<dyn LayerCopier>,
        mounts: Box<dyn ZfsMounts>,
    ) -> Self {
        Self {
            zfs: Zfs::new(cmd),
            pool,
            images,
            size,
            lock_dir,
            copier,
            mounts,
            linux_props: OnceLock::new(),
        }
    }

    pub fn size(&self) -> DiskSize {
        self.size
    }

    pub fn pool(&self) -> &DatasetName {
        &self.pool
    }

    /// Where `zfs.pool` is mounted (per the mount table, else its
    /// `mountpoint`): the directory PVE's ZFS storage must name, as
    /// volumes inherit it.
    pub fn pool_mountpoint(&self) -> Result<Option<PathBuf>> {
        if let Some(m) = mount_of(&self.mounts.list(), &self.pool) {
            return Ok(Some(m.path.clone()));
        }
        // `zfs get` says "dataset does not exist" for a missing pool too.
        let value = self
            .zfs
            .get(&self.pool, "mountpoint")
            .map_err(|e| match e {
                ZfsError::MissingDataset { .. } => ZfsRootfsError::NoPoolDataset {
                    dataset: self.pool.to_string(),
                },
                e => op("reading the mountpoint of", &self.pool)(e),
            })?;
        Ok(value.filter(|p| p.starts_with('/')).map(PathBuf::from))
    }

    /// `<pool>/<leaf>` for a container volume.
    pub fn volume(&self, leaf: &str) -> Result<DatasetName> {
        self.pool.child(leaf).map_err(ZfsRootfsError::InvalidName)
    }

    /// The properties PVE gives a CT volume, as far as the pool has them.
    fn pve_props(&self) -> Result<Vec<Property>> {
        let linux = *self.linux_props.get_or_init(|| {
            match mount_of(&self.mounts.list(), &self.pool) {
                // The kernel module's mounts are `zfs`, zfs-fuse's `fuse.zfs`.
                Some(m) => m.fstype == "zfs",
                // zfs-fuse refuses `acltype` as an unknown property.
                None => self.zfs.get(&self.pool, "acltype").is_ok(),
            }
        });
        let mut props = vec![prop("refquota", &self.size.to_string())?];
        if linux {
            props.push(prop("acltype", "posixacl")?);
            props.push(prop("xattr", "sa")?);
        }
        Ok(props)
    }

    /// Makes the rootfs of a container appear at `target`: its own clone
    /// (`volume` = `Some(leaf)`), or, when the volume is made later (pve:
    /// the VMID is not known yet), the image read-only so the bundle can
    /// be planned. Returns whether `target` was mounted.
    pub fn prepare(
        &self,
        mounts: &[RootfsMount],
        target: &Path,
        owner: &str,
        volume: Option<&str>,
        idmap: Option<IdRange>,
    ) -> Result<bool> {
        if mounts.is_empty() {
            // `ctr run --rootfs DIR`: the directory is used as it is.
            return Ok(false);
        }
        let layers = ImageLayers::from_mounts(mounts).map_err(ZfsRootfsError::Layers)?;
        match volume {
            Some(leaf) => {
                let volume = self.volume(leaf)?;
                let path = self.clone_for(&layers, idmap, &volume, owner)?;
                if let Err(e) = bind(&path, target, false, &volume) {
                    let _ = self.destroy_volume(&volume, owner);
                    return Err(e);
                }
            }
            None => {
                let (image, path) = self.image_mounted(&layers, idmap)?;
                bind(&path, target, true, &image.dataset)?;
            }
        }
        Ok(true)
    }

    /// Clones the image of `layers` as the container's `volume` and
    /// returns where the clone is mounted. In the common case (the image
    /// exists, no leftover volume) that is one `zfs clone`.
    fn clone_for(
        &self,
        layers: &ImageLayers,
        idmap: Option<IdRange>,
        volume: &DatasetName,
        owner: &str,
    ) -> Result<PathBuf> {
        self.with_image(layers, idmap, |image| {
            self.clone_volume(image, volume, owner, Replace::Own)
        })?;
        let mounted = self.mounted_path(volume, "mounting volume");
        if mounted.is_err() {
            let _ = self.destroy_unmounted(volume);
        }
        mounted
    }

    /// The image of `layers` (made if missing) and where it is mounted.
    fn image_mounted(
        &self,
        layers: &ImageLayers,
        idmap: Option<IdRange>,
    ) -> Result<(ImageRef, PathBuf)> {
        self.with_image(layers, idmap, |image| {
            let path = self.mounted_path(&image.dataset, "mounting image")?;
            Ok((image.clone(), path))
        })
    }

    /// Undoes [`ZfsRootfs::prepare`]: unmounts `target` and destroys the
    /// container's volume if it is still its own. Idempotent.
    pub fn release(&self, target: Option<&Path>, owner: &str, volume: Option<&str>) -> Result<()> {
        if let Some(target) = target.filter(|t| is_mountpoint(t)) {
            unmount_all(target).map_err(|e| ZfsRootfsError::Mount {
                dataset: String::new(),
                target: target.to_path_buf(),
                source: Box::new(e),
            })?;
        }
        if let Some(leaf) = volume {
            self.destroy_volume(&self.volume(leaf)?, owner)?;
        }
        Ok(())
    }

    /// Replaces the freshly allocated volume `leaf` (PVE's, empty) with a
    /// clone of the container's image under the same name, so the CT's
    /// `rootfs` keeps pointing at it. The caller holds the CT's config lock.
    pub fn replace_volume(
        &self,
        mounts: &[RootfsMount],
        leaf: &str,
        owner: &str,
        idmap: Option<IdRange>,
    ) -> Result<()> {
        let layers = ImageLayers::from_mounts(mounts).map_err(ZfsRootfsError::Layers)?;
        let volume = self.volume(leaf)?;
        // PVE's own allocation carries no lxcri mark: nothing of the
        // container is in it yet. It stays until the image is there.
        self.with_image(&layers, idmap, |image| {
            self.clone_volume(image, &volume, owner, Replace::OwnOrUnmarked)
        })
    }
}

fn prop(key: &str, value: &str) -> Result<Property> {
    Property::new(key, value).map_err(ZfsRootfsError::InvalidName)
}

/// Bind-mounts a dataset's mountpoint on `target`.
fn bind(path: &Path, target: &Path, read_only: bool, dataset: &DatasetName) -> Result<()> {
    let mut options = vec!["bind".to_string()];
    if read_only {
        options.push("ro".into());
    }
    let m = RootfsMount {
        kind: "bind".into(),
        source: path.to_string_lossy().into_owned(),
        options,
    };
    mount_all(&[m], target).map_err(|e| ZfsRootfsError::Mount {
        dataset: dataset.to_string(),
        target: target.to_path_buf(),
        source: Box::new(e),
    })
}
