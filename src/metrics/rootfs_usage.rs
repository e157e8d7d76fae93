//! Root filesystem usage per container, and lxcri's ZFS datasets.
//!
//! - `rootfs.mode = "zfs"`: one `zfs get -Hp -r` over the pool per scrape
//!   gives every volume's `used` and `refquota` (matched to containers by
//!   `lxcri:owner`) and counts the image datasets and clones.
//! - overlay: the bytes under the container's upper directory (found in
//!   `/proc/self/mountinfo`), walked without following links or leaving
//!   the file system. A walk is the costly part of a scrape, so its result
//!   is kept for [`WALK_TTL`], or until the directory itself changes (an
//!   entry made or removed at its top).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::rootfs::zfs::{IMAGE_PREFIX, OWNER, ROLE, ROLE_IMAGE, ROLE_VOLUME};
use crate::zfs::{DatasetName, Zfs, ZfsCommand, ZfsError};

/// How long an upper directory's walked size is reused.
pub const WALK_TTL: Duration = Duration::from_secs(60);

/// A container's root filesystem: where, how much, and its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsUsage {
    /// The ZFS volume, or the overlay's upper directory.
    pub device: String,
    pub used_bytes: u64,
    pub limit_bytes: Option<u64>,
}

/// What `zfs list` says of lxcri's datasets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZfsUsage {
    pub images: u64,
    pub clones: u64,
    /// `lxcri:owner` (`namespace/id`) -> the volume.
    pub volumes: BTreeMap<String, RootfsUsage>,
}

/// Reads lxcri's datasets below `parents` (the pool and, when it is not
/// below it, the images dataset).
pub fn zfs_usage<C: ZfsCommand>(
    zfs: &Zfs<C>,
    parents: &[&DatasetName],
) -> Result<ZfsUsage, ZfsError> {
    let mut usage = ZfsUsage::default();
    let mut all = BTreeMap::new();
    for parent in parents {
        all.extend(zfs.get_recursive(parent, &["used", "refquota", ROLE, OWNER])?);
    }
    for (name, props) in all.iter().filter(|(n, _)| !n.contains('@')) {
        let prop = |k: &str| props.get(k).map(String::as_str).unwrap_or("-");
        let leaf = name.rsplit('/').next().unwrap_or("");
        match prop(ROLE) {
            ROLE_IMAGE if leaf.starts_with(IMAGE_PREFIX) => usage.images += 1,
            ROLE_VOLUME => {
                usage.clones += 1;
                if prop(OWNER) != "-" {
                    usage.volumes.insert(
                        prop(OWNER).to_string(),
                        RootfsUsage {
                            device: name.clone(),
                            used_bytes: prop("used").parse().unwrap_or(0),
                            // 0 and "none" both mean no quota.
                            limit_bytes: prop("refquota").parse().ok().filter(|q| *q > 0),
                        },
                    );
                }
            }
            _ => {}
        }
    }
    Ok(usage)
}

/// Mount target -> overlay upper directory, from `/proc/self/mountinfo`.
pub fn overlay_uppers(mountinfo: &str) -> BTreeMap<PathBuf, PathBuf> {
    crate::rootfs::mountinfo::parse(mountinfo)
        .into_iter()
        .filter(|m| m.fstype == "overlay")
        .filter_map(|m| Some((m.path.clone(), PathBuf::from(m.super_option("upperdir")?))))
        .collect()
}

/// Bytes allocated under `dir` (blocks, as `du` counts), on its file system.
pub fn dir_usage(dir: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = top.blocks() * 512;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// Walked sizes: when walked, the directory's own mtime then, the bytes.
#[derive(Debug, Default)]
pub struct WalkCache {
    entries: Mutex<HashMap<PathBuf, (Instant, i64, u64)>>,
}

impl WalkCache {
    pub fn usage(&self, dir: &Path) -> u64 {
        let now = Instant::now();
        let mtime = std::fs::symlink_metadata(dir)
            .map(|m| m.mtime_nsec() + m.mtime() * 1_000_000_000)
            .unwrap_or(0);
        {
            let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, (at, _, _)| now.duration_since(*at) < WALK_TTL);
            if let Some((_, _, bytes)) = map.get(dir).filter(|(_, m, _)| *m == mtime) {
                return *bytes;
            }
        }
        // Walked without the lock: other containers' sizes need not wait.
        let bytes = dir_usage(dir);
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(dir.to_path_buf(), (now, mtime, bytes));
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `zfs get -Hp -r ...` of a pool with one image, its partial twin,
    /// two volumes (one of another tool) and a snapshot.
    #[derive(Debug)]
    struct Listing;

    impl ZfsCommand for Listing {
        fn run(&self, args: &[String]) -> crate::zfs::Result<String> {
            assert_eq!(args[..3], ["get", "-Hp", "-r"].map(String::from));
            let rows = [
                ("tank/ct", "-", "-", "-", "1000"),
                ("tank/ct/lxcri-images", "images", "-", "0", "900"),
                (
                    "tank/ct/lxcri-images/img-abc",
                    "image",
                    "-",
                    "1073741824",
                    "800",
                ),
                ("tank/ct/lxcri-images/img-abc@lxcri", "-", "-", "-", "0"),
                (
                    "tank/ct/lxcri-images/partial-def-1",
                    "image",
                    "-",
                    "0",
                    "10",
                ),
                (
                    "tank/ct/subvol-101-disk-0",
                    "rootfs",
                    "k8s.io/c1",
                    "1073741824",
                    "4096",
                ),
                ("tank/ct/subvol-102-disk-0", "-", "-", "none", "5"),
            ];
            let mut out = String::new();
            for (name, role, owner, quota, used) in rows {
                for (prop, value) in [
                    ("used", used),
                    ("refquota", quota),
                    (ROLE, role),
                    (OWNER, owner),
                ] {
                    out.push_str(&format!("{name}\t{prop}\t{value}\n"));
                }
            }
            Ok(out)
        }
    }

    #[test]
    fn zfs_volumes_by_owner_and_dataset_counts() {
        let zfs = Zfs::new(Listing);
        let pool = DatasetName::parse("tank/ct").unwrap();
        let u = zfs_usage(&zfs, &[&pool]).unwrap();
        assert_eq!((u.images, u.clones), (1, 1));
        assert_eq!(
            u.volumes["k8s.io/c1"],
            RootfsUsage {
                device: "tank/ct/subvol-101-disk-0".into(),
                used_bytes: 4096,
                limit_bytes: Some(1 << 30),
            }
        );
        // The same parent twice counts once.
        assert_eq!(zfs_usage(&zfs, &[&pool, &pool]).unwrap(), u);
    }

    #[test]
    fn overlay_upper_dirs_from_mountinfo() {
        let info = "\
36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue
99 30 0:50 / /run/containerd/b/c1/rootfs rw,relatime - overlay overlay rw,lowerdir=/l1:/l2,upperdir=/snap/7/fs,workdir=/snap/7/work
100 30 0:51 / /run/my\\040dir rw - overlay overlay rw,lowerdir=/l,upperdir=/up\\040per,workdir=/w
";
        let m = overlay_uppers(info);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[Path::new("/run/containerd/b/c1/rootfs")],
            Path::new("/snap/7/fs")
        );
        assert_eq!(m[Path::new("/run/my dir")], Path::new("/up per"));
    }

    #[test]
    fn walked_sizes_count_blocks_and_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("d")).unwrap();
        std::fs::write(tmp.path().join("d/f"), vec![1u8; 64 * 1024]).unwrap();
        let cache = WalkCache::default();
        let first = cache.usage(tmp.path());
        assert!(first >= 64 * 1024, "{first}");
        // Deeper down: the cached size stays (the walk is what is saved).
        std::fs::write(tmp.path().join("d/g"), vec![1u8; 64 * 1024]).unwrap();
        assert_eq!(cache.usage(tmp.path()), first, "cached");
        assert!(dir_usage(tmp.path()) >= first + 64 * 1024);
        // At the top: walked again.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(tmp.path().join("h"), vec![1u8; 64 * 1024]).unwrap();
        assert!(cache.usage(tmp.path()) >= first + 128 * 1024);
        assert_eq!(dir_usage(&tmp.path().join("missing")), 0);
    }
}
