//! The `[zfs]` section: where `rootfs.mode = "zfs"` keeps image datasets
//! and container clones. Required by that mode, ignored otherwise.
//!
//! Container volumes are `<pool>/subvol-<VMID>-disk-0` (lxc backend: the
//! container's LXC name in place of the VMID), so on PVE `pool` is the
//! dataset of the ZFS storage named by `pve.storage` (`rpool/data` for
//! `local-zfs`). Image datasets live under `images`, in the same pool (a
//! clone must be in the pool of its origin).

use std::path::PathBuf;

use serde::Deserialize;

use super::error::{ConfigError, Origin};
use super::{setting, Field};
use crate::zfs::{DatasetName, DiskSize};

/// Default `zfs.size`: PVE's default CT disk size.
pub const DEFAULT_SIZE: &str = "8G";
/// Default `zfs.image_ttl_secs`: an image dataset nothing was cloned from
/// for a day is destroyed by `lxcri gc`.
pub const DEFAULT_IMAGE_TTL_SECS: u64 = 24 * 3600;
/// Lower bound of `zfs.image_ttl_secs`: a create that filled an image
/// clones it moments later; gc must not destroy it in between.
pub const MIN_IMAGE_TTL_SECS: u64 = 60;
/// The dataset under `zfs.pool` that holds images when `zfs.images` is unset.
pub const DEFAULT_IMAGES_CHILD: &str = "lxcri-images";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ZfsField {
    Pool,
    Images,
    Size,
    ImageTtlSecs,
    Command,
}

/// The `[zfs]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZfsSettings {
    /// Parent of the container volumes.
    pub pool: Option<DatasetName>,
    /// Set explicitly; see [`ZfsSettings::images`].
    images: Option<DatasetName>,
    /// `refquota` of every clone and image dataset; PVE's `size=`.
    pub size: DiskSize,
    pub image_ttl_secs: u64,
    /// The `zfs` binary (a name looked up in `$PATH`, or a path).
    pub command: PathBuf,
    origins: Vec<(ZfsField, Origin)>,
}

impl Default for ZfsSettings {
    fn default() -> Self {
        Self {
            pool: None,
            images: None,
            size: DEFAULT_SIZE.parse().expect("the default size parses"),
            image_ttl_secs: DEFAULT_IMAGE_TTL_SECS,
            command: PathBuf::from("zfs"),
            origins: Vec::new(),
        }
    }
}

impl ZfsSettings {
    /// The images dataset: `zfs.images`, else `<pool>/lxcri-images`.
    pub fn images(&self) -> Option<DatasetName> {
        match (&self.images, &self.pool) {
            (Some(i), _) => Some(i.clone()),
            (None, Some(p)) => p.child(DEFAULT_IMAGES_CHILD).ok(),
            (None, None) => None,
        }
    }

    pub fn image_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.image_ttl_secs)
    }

    pub(super) fn apply(
        &mut self,
        field: ZfsField,
        value: &str,
        origin: Origin,
    ) -> Result<(), String> {
        match field {
            ZfsField::Pool => self.pool = Some(dataset(value)?),
            ZfsField::Images => self.images = Some(dataset(value)?),
            ZfsField::Size => self.size = value.parse()?,
            ZfsField::ImageTtlSecs => self.image_ttl_secs = ttl(value)?,
            ZfsField::Command => self.command = command(value)?,
        }
        self.origins.retain(|(f, _)| *f != field);
        self.origins.push((field, origin));
        Ok(())
    }

    fn origin(&self, field: ZfsField) -> Origin {
        self.origins
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, o)| o.clone())
            .unwrap_or(Origin::Default)
    }

    /// Rules between keys; `needed` when `rootfs.mode = "zfs"`.
    pub(super) fn validate(&self, needed: bool) -> Result<(), ConfigError> {
        let key = |f| setting(Field::Zfs(f));
        let Some(pool) = &self.pool else {
            if needed {
                let s = key(ZfsField::Pool);
                return Err(ConfigError::Missing {
                    key: s.key,
                    env: s.env,
                    because: "rootfs.mode = \"zfs\" clones container volumes under it".into(),
                });
            }
            return Ok(());
        };
        if let Some(images) = &self.images {
            let reason = if images.pool() != pool.pool() {
                Some("must be in the same pool as zfs.pool (a clone lives in the pool of its origin)")
            } else if images == pool {
                Some("must be a dataset of its own, not zfs.pool itself")
            } else {
                None
            };
            if let Some(reason) = reason {
                let s = key(ZfsField::Images);
                return Err(ConfigError::Invalid {
                    key: s.key,
                    env: s.env,
                    value: images.to_string(),
                    origin: self.origin(ZfsField::Images),
                    reason: reason.into(),
                });
            }
        }
        Ok(())
    }
}

fn dataset(value: &str) -> Result<DatasetName, String> {
    let name = DatasetName::parse(value).map_err(|e| e.to_string())?;
    if name.is_snapshot() {
        return Err("must be a dataset, not a snapshot".into());
    }
    Ok(name)
}

fn ttl(value: &str) -> Result<u64, String> {
    let n: u64 = value
        .parse()
        .map_err(|_| "must be a whole number of seconds".to_string())?;
    if n < MIN_IMAGE_TTL_SECS {
        return Err(format!(
            "must be at least {MIN_IMAGE_TTL_SECS} (a create clones the image it just filled moments later)"
        ));
    }
    Ok(n)
}

/// A command name (`zfs`) or an absolute path; nothing a shell would read.
fn command(value: &str) -> Result<PathBuf, String> {
    if value.starts_with('/') {
        return super::abs_path(value);
    }
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err("must be a command name like zfs or an absolute path".into());
    }
    Ok(PathBuf::from(value))
}

/// The `[zfs]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZfs {
    pool: Option<String>,
    images: Option<String>,
    size: Option<String>,
    image_ttl_secs: Option<u64>,
    command: Option<String>,
}

impl RawZfs {
    pub(super) fn values(self) -> Vec<(Field, Option<String>)> {
        [
            (ZfsField::Pool, self.pool),
            (ZfsField::Images, self.images),
            (ZfsField::Size, self.size),
            (
                ZfsField::ImageTtlSecs,
                self.image_ttl_secs.map(|n| n.to_string()),
            ),
            (ZfsField::Command, self.command),
        ]
        .into_iter()
        .map(|(f, v)| (Field::Zfs(f), v))
        .collect()
    }
}
