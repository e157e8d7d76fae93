//! The container's root filesystem. In `overlay` mode (the default)
//! containerd's snapshot mounts from `CreateTaskRequest.rootfs` are mounted
//! as they are on `<bundle>/rootfs` (no copy), and unmounted on delete.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

mod idmap;
mod image_key;
pub mod mountinfo;
mod provider;
pub mod shift;
mod snapshot_idmap;
pub mod zfs;
pub use image_key::{ImageKey, ImageKeyError, ImageLayers};
pub use provider::{provider_for, OverlayRootfs, RootfsProvider, RootfsRequest};
pub use snapshot_idmap::snapshot_idmap;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("rootfs mount {index}: unsupported mount type {kind:?} (expected overlay, bind or a block filesystem)")]
    UnsupportedType { index: usize, kind: String },
    #[error("rootfs mount {index} ({kind} {source_path} on {target}): {errno}")]
    Mount {
        index: usize,
        kind: String,
        source_path: String,
        target: PathBuf,
        #[source]
        errno: nix::Error,
    },
    #[error("unmounting rootfs {target}: {errno}")]
    Unmount {
        target: PathBuf,
        #[source]
        errno: nix::Error,
    },
    #[error("rootfs mount option {0:?} contains a NUL byte")]
    BadOption(String),
    #[error(transparent)]
    Zfs(Box<zfs::ZfsRootfsError>),
    #[error("shifting the rootfs into the container's id range: {what}: {errno}")]
    Idmap {
        what: String,
        #[source]
        errno: nix::Error,
    },
    #[error("rootfs mount {index}: option {option:?}: {why}")]
    SnapshotIdmap {
        index: usize,
        option: String,
        why: String,
    },
    #[error("userns.unprivileged: lxcri shifts a rootfs into the container's id range only from containerd's overlay snapshot (one overlay mount with an upper layer), not from {kinds:?} (`ctr run --rootfs DIR` included)")]
    UnshiftedRootfs { kinds: Vec<String> },
}

pub type Result<T> = std::result::Result<T, RootfsError>;

impl From<zfs::ZfsRootfsError> for RootfsError {
    fn from(e: zfs::ZfsRootfsError) -> Self {
        RootfsError::Zfs(Box::new(e))
    }
}

/// One mount from containerd (`containerd.types.Mount`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsMount {
    pub kind: String,
    pub source: String,
    pub options: Vec<String>,
}

/// Splits mount options into flags and the filesystem data string, the
/// way mount(8) does.
pub fn parse_options(options: &[String]) -> Result<(MsFlags, String)> {
    let mut flags = MsFlags::empty();
    let mut data: Vec<&str> = Vec::new();
    for opt in options {
        if opt.contains('\0') {
            return Err(RootfsError::BadOption(opt.clone()));
        }
        match opt.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "suid" => flags &= !MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "dev" => flags &= !MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "exec" => flags &= !MsFlags::MS_NOEXEC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "defaults" => {}
            other => data.push(other),
        }
    }
    Ok((flags, data.join(",")))
}

/// Mounts containerd's rootfs mounts on `target`, in order. On failure,
/// whatever this call mounted is unmounted again.
pub fn mount_all(mounts: &[RootfsMount], target: &Path) -> Result<()> {
    for (index, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(index, m, target) {
            for _ in 0..index {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(index: usize, m: &RootfsMount, target: &Path) -> Result<()> {
    let (mut flags, data) = parse_options(&m.options)?;
    let fstype = match m.kind.as_str() {
        "bind" | "rbind" => {
            flags |= MsFlags::MS_BIND;
            if m.kind == "rbind" {
                flags |= MsFlags::MS_REC;
            }
            None
        }
        "overlay" | "ext4" | "xfs" | "btrfs" | "tmpfs" => Some(m.kind.as_str()),
        _ => {
            return Err(RootfsError::UnsupportedType {
                index,
                kind: m.kind.clone(),
            })
        }
    };
    let err = |errno| RootfsError::Mount {
        index,
        kind: m.kind.clone(),
        source_path: m.source.clone(),
        target: target.to_path_buf(),
        errno,
    };
    // A read-only bind needs a second, remounting call.
    let ro_bind = flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY);
    let data_opt = if data.is_empty() {
        None
    } else {
        Some(data.as_str())
    };
    mount(Some(m.source.as_str()), target, fstype, flags, data_opt).map_err(err)?;
    if ro_bind {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// `path` for a syscall; a path with a NUL byte cannot be one.
pub(crate) fn c_path(path: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}

/// Unmounts everything on `target` (stacked mounts included). Not mounted
/// is not an error.
pub fn unmount_all(target: &Path) -> Result<()> {
    for _ in 0..16 {
        match umount2(target, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(nix::Error::EBUSY) => {
                umount2(target, MntFlags::MNT_DETACH).map_err(|errno| RootfsError::Unmount {
                    target: target.to_path_buf(),
                    errno,
                })?;
            }
            Err(errno) => {
                return Err(RootfsError::Unmount {
                    target: target.to_path_buf(),
                    errno,
                })
            }
        }
    }
    Ok(())
}

/// Whether anything is mounted exactly at `path` (per /proc/self/mountinfo).
pub fn is_mountpoint(path: &Path) -> bool {
    mountinfo::read().iter().any(|m| m.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn overlay_options_become_data() {
        let (flags, data) = parse_options(&opts(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/l1:/l2",
        ]))
        .unwrap();
        assert!(flags.is_empty());
        assert_eq!(data, "index=off,workdir=/w,upperdir=/u,lowerdir=/l1:/l2");
    }

    #[test]
    fn flags_are_parsed_and_later_ones_win() {
        let (flags, data) = parse_options(&opts(&["rbind", "ro", "nosuid", "rw"])).unwrap();
        assert!(flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID));
        assert!(!flags.contains(MsFlags::MS_RDONLY));
        assert!(data.is_empty());
        assert!(parse_options(&opts(&["a\0b"])).is_err());
    }

    #[test]
    fn unknown_type_is_rejected_by_index() {
        let tmp = tempfile::tempdir().unwrap();
        let err = mount_all(
            &[RootfsMount {
                kind: "9p".into(),
                source: "x".into(),
                options: vec![],
            }],
            tmp.path(),
        )
        .unwrap_err();
        assert!(err
            .to_string()
            .contains("rootfs mount 0: unsupported mount type \"9p\""));
    }

    #[test]
    fn proc_is_a_mountpoint() {
        assert!(is_mountpoint(Path::new("/proc")) || !Path::new("/proc/self").exists());
    }
}
