//! Cluster quorum, read where PVE reads it: the mode of `/etc/pve/local` itself.
//!
//! pmxcfs shows `local` (a symlink to `nodes/NODE`) as mode 0777 while the node is
//! quorate and 0555 while it is not (pve-cluster src/pmxcfs/cfs-plug-link.c
//! `cfs_plug_link_getattr`), and PVE's `check_cfs_quorum` takes `lstat` of it, since
//! `-w` is always true for root (src/PVE/Cluster.pm). Without quorum pmxcfs refuses every
//! write under `/etc/pve` with EACCES, root's too (src/pmxcfs/dcdb.c
//! `dcdb_send_fuse_message`, memdb.c).
//!
//! The stand-in's `DATA/etc/pve/local` is a directory it makes at startup with mode 0755;
//! a test takes the node's quorum away with `chmod 0555` and gives it back with
//! `chmod 0755`. Symlink modes cannot be changed on Linux, hence a directory.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `check_cfs_quorum`'s message (pve-cluster src/PVE/Cluster.pm).
pub const NO_QUORUM: &str = "cluster not ready - no quorum?";

/// Makes `etc_pve/local` (quorate) unless it exists: a test may have taken quorum away
/// before a restart.
pub fn init(etc_pve: &Path) -> std::io::Result<()> {
    let local = etc_pve.join("local");
    match std::fs::create_dir(&local) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// `check_cfs_quorum(1)`: a missing `local` (pmxcfs not mounted) is no quorum too.
pub fn quorate(etc_pve: &Path) -> bool {
    std::fs::symlink_metadata(etc_pve.join("local")).is_ok_and(|m| m.mode() & 0o200 != 0)
}

/// `check_cfs_quorum()`.
pub fn check(etc_pve: &Path) -> Result<(), String> {
    if quorate(etc_pve) {
        Ok(())
    } else {
        Err(NO_QUORUM.into())
    }
}

/// What a write under `/etc/pve` meets without quorum: pmxcfs's EACCES.
pub fn check_write(etc_pve: &Path) -> std::io::Result<()> {
    if quorate(etc_pve) {
        Ok(())
    } else {
        Err(std::io::Error::from_raw_os_error(libc::EACCES))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_mode_of_local_is_the_quorum() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!quorate(tmp.path()), "no local: pmxcfs is not mounted");
        init(tmp.path()).unwrap();
        assert!(quorate(tmp.path()));
        let local = tmp.path().join("local");
        std::fs::set_permissions(&local, std::fs::Permissions::from_mode(0o555)).unwrap();
        assert_eq!(check(tmp.path()), Err(NO_QUORUM.to_string()));
        let e = check_write(tmp.path()).unwrap_err();
        assert_eq!(e.to_string(), "Permission denied (os error 13)");
        init(tmp.path()).unwrap();
        assert!(!quorate(tmp.path()), "init keeps a mode a test set");
    }
}
