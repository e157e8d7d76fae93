//! Which image a container's rootfs comes from, as a key for the one ZFS
//! dataset per image: a hash of the image's layers as containerd's overlay
//! snapshotter mounts them. Layer snapshots are keyed by chain id, so two
//! tags of one image give the same `lowerdir` list (topmost layer first),
//! and a different image or layer order a different one. The key is only
//! stable within one containerd root: an image removed and pulled again
//! gets new snapshot directories, hence a new key (and the old image
//! dataset becomes unused).

use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::RootfsMount;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageKeyError {
    #[error("rootfs: no image layers to key a ZFS image dataset by (expected one overlay mount with lowerdir=, got {0})")]
    NoLayers(String),
}

/// 32 hex digits of SHA-256 over the image's layer directories.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageKey(String);

/// The image's layers and the container's own upper layer, as containerd's
/// overlay mount names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayers {
    pub key: ImageKey,
    /// Topmost layer first, as `lowerdir=` lists them.
    pub lowerdirs: Vec<PathBuf>,
    /// The container's writable layer (empty until the container writes).
    pub upperdir: Option<PathBuf>,
}

impl ImageLayers {
    /// From `CreateTaskRequest.rootfs`: one `overlay` mount whose
    /// `lowerdir=` names the image's layers (the `upperdir` is the
    /// container's own and is not part of the image).
    pub fn from_mounts(mounts: &[RootfsMount]) -> Result<Self, ImageKeyError> {
        let describe = || {
            let kinds: Vec<&str> = mounts.iter().map(|m| m.kind.as_str()).collect();
            format!("[{}]", kinds.join(", "))
        };
        let [m] = mounts else {
            return Err(ImageKeyError::NoLayers(describe()));
        };
        if m.kind != "overlay" {
            return Err(ImageKeyError::NoLayers(describe()));
        }
        let option = |name: &str| m.options.iter().find_map(|o| o.strip_prefix(name));
        let lower = option("lowerdir=")
            .filter(|l| !l.is_empty())
            .ok_or_else(|| ImageKeyError::NoLayers(describe()))?;
        let mut h = Sha256::new();
        for layer in lower.split(':') {
            h.update(layer.as_bytes());
            h.update([0u8]);
        }
        Ok(Self {
            key: ImageKey(hex::encode(&h.finalize()[..16])),
            lowerdirs: lower.split(':').map(PathBuf::from).collect(),
            upperdir: option("upperdir=").map(PathBuf::from),
        })
    }
}

impl ImageKey {
    pub fn from_mounts(mounts: &[RootfsMount]) -> Result<Self, ImageKeyError> {
        ImageLayers::from_mounts(mounts).map(|l| l.key)
    }

    /// The key of this image with its owners shifted into `range`: a
    /// dataset of its own, cloned from this one.
    pub fn shifted(&self, range: crate::userns::IdRange) -> Self {
        let mut h = Sha256::new();
        h.update(self.0.as_bytes());
        // `overflow`: ids past the range go to the host's overflow id since
        // (before, to the range's own 65534); images shifted the old way
        // are not reused, and `lxcri gc` removes them once unused.
        h.update(format!("/shifted/{}/{}/overflow", range.host_start, range.len).as_bytes());
        Self(hex::encode(&h.finalize()[..16]))
    }

    /// A key read back from a dataset name or property: 32 lowercase hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(lower: &str, upper: &str) -> RootfsMount {
        RootfsMount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: vec![
                "index=off".into(),
                format!("workdir={upper}/../work"),
                format!("upperdir={upper}"),
                format!("lowerdir={lower}"),
            ],
        }
    }

    #[test]
    fn same_layers_same_key_whatever_the_container() {
        let s = "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots";
        let a =
            ImageKey::from_mounts(&[overlay(&format!("{s}/2/fs:{s}/1/fs"), &format!("{s}/7/fs"))])
                .unwrap();
        let b =
            ImageKey::from_mounts(&[overlay(&format!("{s}/2/fs:{s}/1/fs"), &format!("{s}/9/fs"))])
                .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str().len(), 32);
        let reordered =
            ImageKey::from_mounts(&[overlay(&format!("{s}/1/fs:{s}/2/fs"), &format!("{s}/7/fs"))])
                .unwrap();
        assert_ne!(a, reordered);
        let single =
            ImageKey::from_mounts(&[overlay(&format!("{s}/1/fs"), &format!("{s}/7/fs"))]).unwrap();
        assert_ne!(a, single);
        // Joined differently, the same bytes must not collide.
        let x = ImageKey::from_mounts(&[overlay("/a:b/c", "/u")]).unwrap();
        let y = ImageKey::from_mounts(&[overlay("/a:b:/c", "/u")]).unwrap();
        assert_ne!(x, y);
    }

    #[test]
    fn no_layers_no_key() {
        let bind = RootfsMount {
            kind: "bind".into(),
            source: "/x".into(),
            options: vec!["rbind".into()],
        };
        assert!(ImageKey::from_mounts(&[]).is_err());
        let err = ImageKey::from_mounts(&[bind]).unwrap_err();
        assert!(err.to_string().contains("[bind]"), "{err}");
        let mut no_lower = overlay("/l", "/u");
        no_lower.options.retain(|o| !o.starts_with("lowerdir="));
        assert!(ImageKey::from_mounts(&[no_lower]).is_err());
        assert!(ImageKey::from_mounts(&[overlay("/a", "/u"), overlay("/b", "/u")]).is_err());
    }

    #[test]
    fn layers_and_upper_are_read_back() {
        let l = ImageLayers::from_mounts(&[overlay("/s/2/fs:/s/1/fs", "/s/7/fs")]).unwrap();
        assert_eq!(
            l.lowerdirs,
            vec![PathBuf::from("/s/2/fs"), PathBuf::from("/s/1/fs")]
        );
        assert_eq!(l.upperdir, Some(PathBuf::from("/s/7/fs")));
        assert_eq!(ImageKey::parse(l.key.as_str()), Some(l.key.clone()));
        assert_eq!(ImageKey::parse("ABC"), None);
        assert_eq!(ImageKey::parse(&"g".repeat(32)), None);
    }
}
