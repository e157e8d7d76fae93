//! Where ZFS datasets are mounted, read from the kernel's mount table
//! instead of asked of `zfs`: every `zfs` call is a round trip to the ZFS
//! daemon (5-20 ms on zfs-fuse), the table is a file read. OpenZFS (`zfs`)
//! and zfs-fuse (`fuse.zfs`) both name the dataset as the mount's source.
//! What the table does not show (a dataset not mounted, or mounted
//! elsewhere than its own mountpoint) is still asked of `zfs`.

use std::path::Path;

use nix::mount::{umount2, MntFlags};

pub use crate::rootfs::mountinfo::MountEntry;
use crate::zfs::DatasetName;

impl MountEntry {
    fn is_whole_zfs(&self) -> bool {
        self.root == "/" && (self.fstype == "zfs" || self.fstype == "fuse.zfs")
    }
}

/// The mount table, behind a trait so the logic above it is unit-tested
/// with the fake ZFS.
pub trait ZfsMounts: Send + Sync + std::fmt::Debug {
    /// Every mount, in mount order; empty when the table cannot be read
    /// (then `zfs` is asked instead).
    fn list(&self) -> Vec<MountEntry>;
    /// Unmounts what is on top at `path`; not lazily, so a mount still in
    /// use stays and says so.
    fn unmount(&self, path: &Path) -> nix::Result<()>;
}

/// This process's mount table.
#[derive(Debug, Default)]
pub struct ProcMounts;

impl ZfsMounts for ProcMounts {
    fn list(&self) -> Vec<MountEntry> {
        crate::rootfs::mountinfo::read()
    }

    fn unmount(&self, path: &Path) -> nix::Result<()> {
        umount2(path, MntFlags::empty())
    }
}

/// A dataset's own mount: the first whole mount of it (ZFS mounts it
/// before anything can bind it), if nothing covers it.
pub fn mount_of<'a>(table: &'a [MountEntry], dataset: &DatasetName) -> Option<&'a MountEntry> {
    let (i, m) = table
        .iter()
        .enumerate()
        .find(|(_, m)| m.source == dataset.as_str() && m.is_whole_zfs())?;
    is_top(table, i).then_some(m)
}

/// Every whole mount of `dataset` not covered by another mount, latest
/// first (the order to unmount them in).
pub fn mounts_of<'a>(table: &'a [MountEntry], dataset: &DatasetName) -> Vec<&'a MountEntry> {
    table
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, m)| m.source == dataset.as_str() && m.is_whole_zfs() && is_top(table, *i))
        .map(|(_, m)| m)
        .collect()
}

/// Whether no later mount sits on the same path as `table[i]`.
fn is_top(table: &[MountEntry], i: usize) -> bool {
    !table[i + 1..].iter().any(|m| m.path == table[i].path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rootfs::mountinfo::parse;
    use std::path::PathBuf;

    const TABLE: &str = "\
22 1 0:21 / /proc rw,nosuid - proc proc rw
64 27 0:63 / /tmp/zfsm/mnt rw,relatime - fuse.zfs tank rw,user_id=0
77 64 0:64 / /tmp/zfsm/mnt/img rw,relatime shared:5 - fuse.zfs tank/img rw,user_id=0
78 64 0:65 / /tank/with\\040space rw - zfs tank/sp rw,xattr
80 27 0:64 / /run/b/rootfs rw - fuse.zfs tank/img rw
81 27 0:64 /etc /run/b/etc rw - fuse.zfs tank/img rw
90 64 0:70 / /tmp/zfsm/mnt/hidden rw - zfs tank/hidden rw
91 64 0:71 / /tmp/zfsm/mnt/hidden rw - tmpfs tmpfs rw
";

    fn name(s: &str) -> DatasetName {
        DatasetName::parse(s).unwrap()
    }

    #[test]
    fn a_dataset_is_found_at_its_own_mount_not_at_binds_of_it() {
        let table = parse(TABLE);
        assert_eq!(table.len(), 8);
        let img = mount_of(&table, &name("tank/img")).unwrap();
        assert_eq!(img.path, PathBuf::from("/tmp/zfsm/mnt/img"));
        assert_eq!(img.fstype, "fuse.zfs");
        let sp = mount_of(&table, &name("tank/sp")).unwrap();
        assert_eq!(sp.path, PathBuf::from("/tank/with space"));
        assert_eq!(sp.fstype, "zfs");
        assert!(mount_of(&table, &name("tank/none")).is_none());
        // Covered by another mount: its files are not what the path shows.
        assert!(mount_of(&table, &name("tank/hidden")).is_none());
    }

    #[test]
    fn every_whole_mount_of_a_dataset_is_listed_latest_first() {
        let table = parse(TABLE);
        let paths: Vec<&Path> = mounts_of(&table, &name("tank/img"))
            .iter()
            .map(|m| m.path.as_path())
            .collect();
        assert_eq!(
            paths,
            [Path::new("/run/b/rootfs"), Path::new("/tmp/zfsm/mnt/img")]
        );
        assert!(mounts_of(&table, &name("tank/hidden")).is_empty());
    }
}
