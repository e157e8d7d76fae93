//! Whether `pve.storage` can hold lxcri's CTs.
//!
//! Outside zfs mode a CT's root volume is one PVE insists on allocating and
//! lxcri leaves unused, `rootfs=<storage>:0`: pve-container src/PVE/LXC.pm
//! `alloc_disk` makes size 0 an empty subvolume only on a `rootdir`
//! storage with a `path` (dir, nfs, cifs, cephfs, btrfs) or a zfspool;
//! on any other (lvmthin, lvm, rbd...) it allocates a raw image of size 0,
//! which fails there ([`check_empty_volume_storage`]).
//!
//! In zfs mode it must be the ZFS pool lxcri clones containers into: PVE
//! finds a CT's volume `subvol-VMID-disk-0` at the storage's
//! `mountpoint` (default `/<pool>`, pve-storage
//! src/PVE/Storage/ZFSPoolPlugin.pm, `path`), and destroys it in the
//! storage's `pool`, while lxcri clones it into `zfs.pool`. Both must be
//! the same dataset, or PVE starts the CT on a directory that is not the
//! clone and destroys nothing (or something else) ([`check_zfs_storage`]).

use std::path::{Path, PathBuf};

use super::storage_cfg::{StorageCfg, StorageEntry};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageMismatch {
    #[error("pve.storage {storage:?} is not defined in {cfg}")]
    Missing { storage: String, cfg: PathBuf },
    #[error("pve.storage {storage:?} is a {kind} storage; rootfs.mode = \"zfs\" needs a zfspool storage on zfs.pool")]
    NotZfs { storage: String, kind: String },
    #[error("pve.storage {storage:?} is pool {pool:?} in {cfg}, but zfs.pool is {ours:?}: PVE would not find the container's clone")]
    OtherPool {
        storage: String,
        pool: String,
        ours: String,
        cfg: PathBuf,
    },
    #[error("pve.storage {storage:?} has its volumes under {theirs} (storage.cfg `mountpoint`, default /POOL), but zfs.pool {ours_pool:?} is mounted at {}: PVE would bind another directory as the rootfs", ours.as_ref().map_or("nowhere".to_string(), |p| p.display().to_string()))]
    OtherMountpoint {
        storage: String,
        theirs: PathBuf,
        ours_pool: String,
        ours: Option<PathBuf>,
    },
    #[error("pve.storage {storage:?} is disabled or not enabled on node {node:?} in storage.cfg")]
    NotOnNode { storage: String, node: String },
    #[error("pve.storage {storage:?} does not hold container directories (add `rootdir` to its content)")]
    NoRootdir { storage: String },
    #[error("pve.storage {storage:?} is a {kind} storage without a path: PVE makes a CT's root volume there a raw image, which at size 0 (the unused volume lxcri asks for outside zfs mode) it cannot allocate (pve-container LXC.pm alloc_disk); use a directory or ZFS storage with content rootdir")]
    NoEmptyVolume { storage: String, kind: String },
}

/// The storage `storage`, defined, enabled on `node` and holding `rootdir`.
fn rootdir_storage<'c>(
    cfg: &'c StorageCfg,
    cfg_path: &Path,
    storage: &str,
    node: &str,
) -> Result<&'c StorageEntry, StorageMismatch> {
    let entry = cfg.get(storage).ok_or_else(|| StorageMismatch::Missing {
        storage: storage.into(),
        cfg: cfg_path.into(),
    })?;
    if entry.is_disabled() || !entry.serves_node(node) {
        return Err(StorageMismatch::NotOnNode {
            storage: storage.into(),
            node: node.into(),
        });
    }
    if !entry.has_content("rootdir") {
        return Err(StorageMismatch::NoRootdir {
            storage: storage.into(),
        });
    }
    Ok(entry)
}

/// Outside zfs mode: `pve.storage` turns `rootfs=<storage>:0` into an
/// empty subvolume (see the module's comment).
pub fn check_empty_volume_storage(
    cfg: &StorageCfg,
    cfg_path: &Path,
    storage: &str,
    node: &str,
) -> Result<(), StorageMismatch> {
    let entry = rootdir_storage(cfg, cfg_path, storage, node)?;
    if entry.option("path").is_some() || entry.kind == "zfspool" {
        return Ok(());
    }
    Err(StorageMismatch::NoEmptyVolume {
        storage: storage.into(),
        kind: entry.kind.clone(),
    })
}

/// What lxcri knows of its pool, to compare with storage.cfg.
#[derive(Debug, Clone, Copy)]
pub struct OurPool<'a> {
    pub pool: &'a str,
    /// `zfs get mountpoint` of the pool.
    pub mountpoint: Option<&'a Path>,
}

pub fn check_zfs_storage(
    cfg: &StorageCfg,
    cfg_path: &Path,
    storage: &str,
    node: &str,
    ours: OurPool<'_>,
) -> Result<(), StorageMismatch> {
    let entry = cfg.get(storage).ok_or_else(|| StorageMismatch::Missing {
        storage: storage.into(),
        cfg: cfg_path.into(),
    })?;
    if entry.kind != "zfspool" {
        return Err(StorageMismatch::NotZfs {
            storage: storage.into(),
            kind: entry.kind.clone(),
        });
    }
    let entry = rootdir_storage(cfg, cfg_path, storage, node)?;
    let pool = entry.option("pool").unwrap_or_default();
    if pool != ours.pool {
        return Err(StorageMismatch::OtherPool {
            storage: storage.into(),
            pool: pool.into(),
            ours: ours.pool.into(),
            cfg: cfg_path.into(),
        });
    }
    let theirs = entry
        .option("mountpoint")
        .map_or_else(|| PathBuf::from(format!("/{pool}")), PathBuf::from);
    if ours.mountpoint != Some(theirs.as_path()) {
        return Err(StorageMismatch::OtherMountpoint {
            storage: storage.into(),
            theirs,
            ours_pool: ours.pool.into(),
            ours: ours.mountpoint.map(Path::to_path_buf),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(cfg: &str, pool: &str, mountpoint: Option<&str>) -> Result<(), StorageMismatch> {
        let mp = mountpoint.map(PathBuf::from);
        check_zfs_storage(
            &StorageCfg::parse(cfg),
            Path::new("/etc/pve/storage.cfg"),
            "local-zfs",
            "pve1",
            OurPool {
                pool,
                mountpoint: mp.as_deref(),
            },
        )
    }

    const ZFS: &str = "zfspool: local-zfs\n\tpool rpool/data\n\tcontent rootdir,images\n";

    #[test]
    fn the_storage_must_be_our_pool_where_it_is_mounted() {
        check(ZFS, "rpool/data", Some("/rpool/data")).unwrap();
        let with_mp = format!("{ZFS}\tmountpoint /srv/data\n");
        check(&with_mp, "rpool/data", Some("/srv/data")).unwrap();
        let err = check(ZFS, "tank/lxcri", Some("/tank/lxcri")).unwrap_err();
        assert!(matches!(err, StorageMismatch::OtherPool { .. }), "{err}");
        assert!(
            err.to_string().contains("zfs.pool is \"tank/lxcri\""),
            "{err}"
        );
        let err = check(&with_mp, "rpool/data", Some("/rpool/data")).unwrap_err();
        assert!(err.to_string().contains("/srv/data"), "{err}");
        let err = check(ZFS, "rpool/data", None).unwrap_err();
        assert!(err.to_string().contains("mounted at nowhere"), "{err}");
    }

    /// A default ext4 install's `local-lvm` cannot take `<storage>:0`;
    /// `local` (a directory) and a zfspool can, given content rootdir.
    #[test]
    fn an_empty_root_volume_needs_a_path_or_a_zfspool() {
        let check = |cfg: &str, storage: &str| {
            check_empty_volume_storage(
                &StorageCfg::parse(cfg),
                Path::new("/etc/pve/storage.cfg"),
                storage,
                "pve1",
            )
        };
        let installed = "dir: local\n\tpath /var/lib/vz\n\tcontent iso,vztmpl,backup\n\n\
                         lvmthin: local-lvm\n\tthinpool data\n\tvgname pve\n\tcontent rootdir,images\n\n\
                         nfs: shared\n\texport /ct\n\tpath /mnt/pve/shared\n\tserver 10.0.0.9\n\tcontent rootdir\n";
        let err = check(installed, "local-lvm").unwrap_err();
        assert_eq!(
            err,
            StorageMismatch::NoEmptyVolume {
                storage: "local-lvm".into(),
                kind: "lvmthin".into()
            }
        );
        assert!(err.to_string().contains("alloc_disk"), "{err}");
        assert!(matches!(
            check(installed, "local"),
            Err(StorageMismatch::NoRootdir { .. })
        ));
        check(installed, "shared").unwrap();
        check(ZFS, "local-zfs").unwrap();
        assert!(matches!(
            check(installed, "nope"),
            Err(StorageMismatch::Missing { .. })
        ));
    }

    #[test]
    fn a_storage_pve_would_not_use_here_is_named() {
        let missing = check("dir: local\n\tpath /x\n", "p", None).unwrap_err();
        assert!(matches!(missing, StorageMismatch::Missing { .. }));
        let dir = check("dir: local-zfs\n\tpath /x\n\tcontent rootdir\n", "p", None);
        assert!(matches!(dir, Err(StorageMismatch::NotZfs { .. })));
        let off = format!("{ZFS}\tdisable 1\n");
        assert!(matches!(
            check(&off, "rpool/data", Some("/rpool/data")),
            Err(StorageMismatch::NotOnNode { .. })
        ));
        let elsewhere = format!("{ZFS}\tnodes pve2\n");
        assert!(matches!(
            check(&elsewhere, "rpool/data", Some("/rpool/data")),
            Err(StorageMismatch::NotOnNode { .. })
        ));
        let images = "zfspool: local-zfs\n\tpool rpool/data\n\tcontent images\n";
        assert!(matches!(
            check(images, "rpool/data", Some("/rpool/data")),
            Err(StorageMismatch::NoRootdir { .. })
        ));
    }
}
