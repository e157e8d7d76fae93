//! Shifting the owners of a tree into a container's id range, in place:
//! how a ZFS image dataset for one id range is made from a clone of the
//! image (only metadata changes; the data blocks stay shared).
//!
//! Each inode is shifted once (hard links are seen several times), symlinks
//! are not followed, and what `chown` clears is put back: the set-id mode
//! bits and file capabilities (`security.capability`), as a copy with
//! `cp -a` into the range would keep them. Ids at or above the range's
//! length have no place in it and become the host's overflow ids, which
//! no container's range holds: inside they show as `nobody` but belong to
//! no one there, as on the idmapped overlay, where such ids are unmapped.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::userns::IdRange;

/// The kernel's default overflow uid and gid (`DEFAULT_OVERFLOWUID`).
const DEFAULT_OVERFLOW_ID: u32 = 65534;
const CAPABILITY_XATTR: &std::ffi::CStr = c"security.capability";

#[derive(Debug, thiserror::Error)]
#[error("shifting owners of {path} into {start}..: {source}")]
pub struct ShiftError {
    pub path: PathBuf,
    pub start: u32,
    #[source]
    pub source: std::io::Error,
}

/// The host ids an id with no place in a range becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Overflow {
    uid: u32,
    gid: u32,
}

impl Overflow {
    /// The host's (`overflowuid`, `overflowgid` under `kernel_sysctls`).
    /// The sysctls only take 0..=65535, below every pool
    /// ([`crate::userns::MIN_POOL_START`]), so no container owns them; an
    /// unreadable one is taken at the kernel's default, as safe a choice.
    fn of_host(kernel_sysctls: &Path) -> Self {
        let read = |name: &str| {
            std::fs::read_to_string(kernel_sysctls.join(name))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(DEFAULT_OVERFLOW_ID)
        };
        Self {
            uid: read("overflowuid"),
            gid: read("overflowgid"),
        }
    }
}

/// The host id a container id becomes under `range`; `overflow` for an
/// id the range has no place for.
pub fn shifted(id: u32, range: IdRange, overflow: u32) -> u32 {
    if id < range.len {
        range.host_start + id
    } else {
        overflow
    }
}

/// Shifts every owner under `root` (itself included); returns how many
/// inodes changed.
pub fn shift_tree(root: &Path, range: IdRange) -> Result<u64, ShiftError> {
    let overflow = Overflow::of_host(Path::new("/proc/sys/kernel"));
    let mut seen = HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    let mut count = 0;
    while let Some(path) = stack.pop() {
        let err = |source| ShiftError {
            path: path.clone(),
            start: range.host_start,
            source,
        };
        let meta = std::fs::symlink_metadata(&path).map_err(err)?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(err)? {
                stack.push(entry.map_err(err)?.path());
            }
        }
        if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
            continue;
        }
        shift_one(&path, &meta, range, overflow).map_err(err)?;
        count += 1;
    }
    Ok(count)
}

fn shift_one(
    path: &Path,
    meta: &std::fs::Metadata,
    range: IdRange,
    overflow: Overflow,
) -> std::io::Result<()> {
    let symlink = meta.file_type().is_symlink();
    let caps = if symlink { None } else { capability(path)? };
    std::os::unix::fs::lchown(
        path,
        Some(shifted(meta.uid(), range, overflow.uid)),
        Some(shifted(meta.gid(), range, overflow.gid)),
    )?;
    if symlink {
        return Ok(());
    }
    // chown clears set-id bits (for root too, since Linux 2.2.13).
    if meta.mode() & 0o6000 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    if let Some(caps) = caps {
        set_capability(path, &caps)?;
    }
    Ok(())
}

/// The file's `security.capability`, if it has one.
fn capability(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let p = super::c_path(path)?;
    let mut buf = vec![0u8; 64];
    // SAFETY: buf outlives the call and its length is passed.
    let n = unsafe {
        libc::lgetxattr(
            p.as_ptr(),
            CAPABILITY_XATTR.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

fn set_capability(path: &Path, value: &[u8]) -> std::io::Result<()> {
    let p = super::c_path(path)?;
    // SAFETY: value outlives the call and its length is passed.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            CAPABILITY_XATTR.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RANGE: IdRange = IdRange {
        host_start: 1_000_000,
        len: 65536,
    };

    #[test]
    fn ids_move_into_the_range_and_strangers_to_the_hosts_overflow_id() {
        assert_eq!(shifted(0, RANGE, 65534), 1_000_000);
        assert_eq!(shifted(1000, RANGE, 65534), 1_001_000);
        assert_eq!(shifted(65534, RANGE, 65534), 1_065_534, "nobody inside");
        assert_eq!(shifted(65535, RANGE, 65534), 1_065_535);
        // Not the container's nobody (1_065_534), which would own them.
        assert_eq!(shifted(65536, RANGE, 65534), 65534);
        assert_eq!(shifted(u32::MAX - 1, RANGE, 65533), 65533);
    }

    #[test]
    fn the_overflow_ids_are_the_hosts_or_the_kernels_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Overflow::of_host(dir.path()),
            Overflow {
                uid: 65534,
                gid: 65534
            }
        );
        std::fs::write(dir.path().join("overflowuid"), "65533\n").unwrap();
        std::fs::write(dir.path().join("overflowgid"), "junk\n").unwrap();
        assert_eq!(
            Overflow::of_host(dir.path()),
            Overflow {
                uid: 65533,
                gid: 65534
            }
        );
        let host = Overflow::of_host(Path::new("/proc/sys/kernel"));
        assert!(host.uid < crate::userns::MIN_POOL_START, "{host:?}");
        assert!(host.gid < crate::userns::MIN_POOL_START, "{host:?}");
    }

    /// Needs root (chown to other ids); as another user it checks that the
    /// walk reports the failure with the path instead.
    #[test]
    fn a_tree_is_shifted_once_per_inode_keeping_set_id_bits() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("img");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        let tool = root.join("bin/tool");
        std::fs::write(&tool, "x").unwrap();
        std::fs::hard_link(&tool, root.join("bin/tool-link")).unwrap();
        std::os::unix::fs::symlink("tool", root.join("bin/sym")).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
        let stranger = root.join("stranger");
        std::fs::write(&stranger, "x").unwrap();
        let as_root = nix::unistd::geteuid().is_root();
        if as_root {
            // An owner the range has no place for.
            std::os::unix::fs::lchown(&stranger, Some(70_000), Some(70_001)).unwrap();
        }
        let result = shift_tree(&root, RANGE);
        if !as_root {
            let e = result.unwrap_err();
            assert!(e.path.starts_with(&root), "{e}");
            return;
        }
        // 5 inodes: img, bin, tool (linked twice), sym, stranger.
        assert_eq!(result.unwrap(), 5);
        for p in ["", "bin", "bin/tool", "bin/tool-link", "bin/sym"] {
            let m = std::fs::symlink_metadata(root.join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (1_000_000, 1_000_000), "{p}");
        }
        let host = Overflow::of_host(Path::new("/proc/sys/kernel"));
        let m = std::fs::symlink_metadata(&stranger).unwrap();
        assert_eq!((m.uid(), m.gid()), (host.uid, host.gid));
        let mode = std::fs::metadata(&tool).unwrap().mode() & 0o7777;
        assert_eq!(mode, 0o4755, "the setuid bit survives the chown");
    }
}
