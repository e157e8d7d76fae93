//! Whether `pve.storage` is the ZFS pool lxcri clones containers into: in
//! zfs mode PVE finds a CT's volume `subvol-VMID-disk-0` at the storage's
//! `mountpoint` (default `/<pool>`, pve-storage
//! src/PVE/Storage/ZFSPoolPlugin.pm, `path`), and destroys it in the
//! storage's `pool`, while lxcri clones it into `zfs.pool`. Both must be
//! the same dataset, or PVE starts the CT on a directory that is not the
//! clone and destroys nothing (or something else).

use std::path::{Path, PathBuf};

use super::storage_cfg::StorageCfg;

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
