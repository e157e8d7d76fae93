//! A rootfs shifted into a container's id range without copying it:
//! containerd's overlay with each image layer an idmapped mount
//! (`MOUNT_ATTR_IDMAP`, Linux 5.12; overlayfs accepts idmapped layers
//! since 5.19). A file owned by uid 0 in a layer appears owned by the
//! range's first host id, so the container's root owns its image; the
//! container's own upper layer belongs to that id on disk, as containerd
//! 2.x's overlay snapshotter does for user-namespaced pods. The overlay
//! mount itself cannot be idmapped (the kernel refuses `EINVAL`).
//!
//! An idmapping is taken from a user namespace: a short-lived child
//! process unshares one, its `uid_map`/`gid_map` are written, and its
//! `ns/user` fd is kept for `mount_setattr`.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{RootfsError, RootfsMount};
use crate::userns::{Enter, HeldChild, IdRange};

// <linux/mount.h>; not all are in the libc crate.
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn err(what: impl Into<String>) -> impl FnOnce(Errno) -> RootfsError {
    let what = what.into();
    move |errno| RootfsError::Idmap { what, errno }
}

/// A user namespace whose only purpose is its mapping.
struct MappingNamespace(OwnedFd);

impl MappingNamespace {
    fn new(range: IdRange) -> Result<Self, RootfsError> {
        let io = |what: String| {
            move |e: std::io::Error| err(what)(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        };
        let child = HeldChild::spawn(Enter::New).map_err(|(what, errno)| err(what)(errno))?;
        let line = format!("0 {} {}\n", range.host_start, range.len);
        for map in ["uid_map", "gid_map"] {
            let path = child.proc_path(map);
            std::fs::write(&path, &line).map_err(io(format!("write {path}")))?;
        }
        let ns = File::open(child.proc_path("ns/user"))
            .map_err(io("open the child's user namespace".into()))?;
        Ok(MappingNamespace(ns.into()))
    }
}

/// Mounts `source` at `target` (an existing directory) shifted by the
/// namespace's mapping.
fn idmapped_bind(source: &Path, target: &Path, ns: &MappingNamespace) -> Result<(), RootfsError> {
    let bad = |p: &Path| RootfsError::BadOption(p.display().to_string());
    let src = super::c_path(source).map_err(|_| bad(source))?;
    let dst = super::c_path(target).map_err(|_| bad(target))?;
    let what = |op: &str| format!("{op} {}", source.display());
    // SAFETY: plain syscalls with NUL-terminated paths and a live fd.
    let tree = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            src.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint,
        )
    };
    if tree < 0 {
        return Err(err(what("open_tree"))(Errno::last()));
    }
    // SAFETY: open_tree returned a new fd we now own.
    let tree = unsafe { OwnedFd::from_raw_fd(tree as i32) };
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.0.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: attr lives across the call; its size is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(err(what("idmap (mount_setattr)"))(Errno::last()));
    }
    // SAFETY: as above.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            dst.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(err(what("move_mount"))(Errno::last()));
    }
    Ok(())
}

/// containerd's one overlay mount, parsed.
struct OverlayParts {
    lower: Vec<PathBuf>,
    upper: PathBuf,
    work: PathBuf,
    /// Options other than the three dirs (`index=off`, ...).
    rest: Vec<String>,
}

fn overlay_parts(mounts: &[RootfsMount]) -> Result<OverlayParts, RootfsError> {
    let unsupported = || RootfsError::UnshiftedRootfs {
        kinds: mounts.iter().map(|m| m.kind.clone()).collect(),
    };
    let [m] = mounts else {
        return Err(unsupported());
    };
    if m.kind != "overlay" {
        return Err(unsupported());
    }
    let (mut lower, mut upper, mut work, mut rest) = (Vec::new(), None, None, Vec::new());
    for o in &m.options {
        if let Some(l) = o.strip_prefix("lowerdir=") {
            lower = l.split(':').map(PathBuf::from).collect();
        } else if let Some(u) = o.strip_prefix("upperdir=") {
            upper = Some(PathBuf::from(u));
        } else if let Some(w) = o.strip_prefix("workdir=") {
            work = Some(PathBuf::from(w));
        } else if super::snapshot_idmap::is_idmap_option(o) {
            // containerd's request for this very shift: no overlay option.
        } else {
            rest.push(o.clone());
        }
    }
    match (lower.is_empty(), upper, work) {
        (false, Some(upper), Some(work)) => Ok(OverlayParts {
            lower,
            upper,
            work,
            rest,
        }),
        // A read-only view (no upper) has nothing for the container to own.
        _ => Err(unsupported()),
    }
}

/// Mounts containerd's overlay on `target` with every image layer shifted
/// into `range` and the upper layer owned by the range's root. `staging`
/// (made and removed here) holds the shifted layers until the overlay
/// holds them; nothing stays mounted but the overlay.
pub fn mount_shifted(
    mounts: &[RootfsMount],
    target: &Path,
    range: IdRange,
    staging: &Path,
) -> Result<(), RootfsError> {
    let parts = overlay_parts(mounts)?;
    let ns = MappingNamespace::new(range)?;
    let io = |what: String| {
        move |e: std::io::Error| err(what)(Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    };
    std::fs::create_dir_all(staging).map_err(io(format!("mkdir {}", staging.display())))?;
    let mut staged = Vec::new();
    let result = (|| {
        for (i, layer) in parts.lower.iter().enumerate() {
            let at = staging.join(i.to_string());
            std::fs::create_dir(&at).map_err(io(format!("mkdir {}", at.display())))?;
            // Before the mount: the cleanup below removes it even if that fails.
            staged.push(at.clone());
            idmapped_bind(layer, &at, &ns)?;
        }
        let root = Some(nix::unistd::Uid::from_raw(range.host_start));
        let group = Some(nix::unistd::Gid::from_raw(range.host_start));
        nix::unistd::chown(&parts.upper, root, group)
            .map_err(err(format!("chown {}", parts.upper.display())))?;
        let lower: Vec<String> = staged.iter().map(|p| p.display().to_string()).collect();
        let mut data = vec![
            format!("lowerdir={}", lower.join(":")),
            format!("upperdir={}", parts.upper.display()),
            format!("workdir={}", parts.work.display()),
        ];
        data.extend(parts.rest.iter().cloned());
        mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.join(",").as_str()),
        )
        .map_err(err(format!(
            "mount the shifted overlay on {}",
            target.display()
        )))
    })();
    // The overlay holds its layers; the staging mounts can go either way
    // (one whose mount failed is only a directory: its umount fails).
    for at in staged.iter().rev() {
        let _ = umount2(at, MntFlags::MNT_DETACH);
        let _ = std::fs::remove_dir(at);
    }
    let _ = std::fs::remove_dir(staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(options: &[&str]) -> RootfsMount {
        RootfsMount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn containerds_overlay_is_split_into_its_layers() {
        let p = overlay_parts(&[overlay(&[
            "index=off",
            "workdir=/s/4/work",
            "upperdir=/s/4/fs",
            "lowerdir=/s/3/fs:/s/1/fs",
            "uidmap=0:2621440:65536",
            "gidmap=0:2621440:65536",
        ])])
        .unwrap();
        assert_eq!(
            p.lower,
            [PathBuf::from("/s/3/fs"), PathBuf::from("/s/1/fs")]
        );
        assert_eq!(
            (p.upper, p.work),
            (PathBuf::from("/s/4/fs"), PathBuf::from("/s/4/work"))
        );
        assert_eq!(p.rest, ["index=off"]);
    }

    /// Needs root (a mapping of other ids); as another user the mapping
    /// fails before anything is made, which it checks as well.
    #[test]
    fn a_layer_that_cannot_be_mounted_leaves_no_staging_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (upper, work) = (dir.path().join("upper"), dir.path().join("work"));
        for d in [&upper, &work] {
            std::fs::create_dir(d).unwrap();
        }
        let mounts = [overlay(&[
            &format!("lowerdir={}", dir.path().join("no-such-layer").display()),
            &format!("upperdir={}", upper.display()),
            &format!("workdir={}", work.display()),
        ])];
        let staging = dir.path().join("bundle/.lxcri-layers");
        let range = IdRange {
            host_start: 1_000_000,
            len: 65536,
        };
        let target = dir.path().join("rootfs");
        let e = mount_shifted(&mounts, &target, range, &staging).unwrap_err();
        if nix::unistd::geteuid().is_root() {
            assert!(e.to_string().contains("open_tree"), "{e}");
        }
        assert!(!staging.exists(), "{e}");
        assert!(dir
            .path()
            .join("bundle")
            .read_dir()
            .unwrap()
            .next()
            .is_none());
    }

    #[test]
    fn anything_else_cannot_be_shifted() {
        let bind = RootfsMount {
            kind: "bind".into(),
            source: "/x".into(),
            options: vec!["rbind".into()],
        };
        for mounts in [
            vec![],
            vec![bind],
            // A view: no upper layer.
            vec![overlay(&["lowerdir=/s/2/fs:/s/1/fs"])],
            vec![overlay(&["lowerdir=/a", "upperdir=/b", "workdir=/c"]); 2],
        ] {
            let e = overlay_parts(&mounts).err().expect("refused");
            assert!(e.to_string().contains("userns.unprivileged"), "{e}");
        }
    }
}
