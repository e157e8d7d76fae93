//! Detached copies of mount trees (`open_tree`) and attaching them
//! (`move_mount`): how the share helper binds host volumes into a
//! container and how the host view puts a copy of the host's tree into a
//! container's mount namespace for its hooks; and attributes set on a
//! whole tree (`mount_setattr`), runc's recursive mount options.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use lxcri_init_spec::MountAttrs;
use nix::errno::Errno;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;
const MS_SLAVE: u64 = 1 << 19;

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Sets and clears `attrs` on the mount at `path` and every mount below it.
pub fn set_recursive(path: &str, attrs: MountAttrs) -> Result<(), Errno> {
    let c = CString::new(path).map_err(|_| Errno::EINVAL)?;
    let attr = MountAttr {
        attr_set: attrs.set,
        attr_clr: attrs.clear,
        propagation: 0,
        userns_fd: 0,
    };
    mount_setattr(libc::AT_FDCWD, &c, libc::AT_RECURSIVE, &attr)
}

/// `mount_setattr(2)` on `path` relative to `dirfd`.
fn mount_setattr(
    dirfd: libc::c_int,
    path: &CStr,
    flags: libc::c_int,
    attr: &MountAttr,
) -> Result<(), Errno> {
    // SAFETY: plain syscall with a valid C string and attribute struct of
    // the size passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// A detached copy of the mount at `source`, with every mount below it
/// when `recursive` (`rbind`), in the caller's mount namespace.
pub fn clone_tree(source: &str, recursive: bool) -> Result<OwnedFd, Errno> {
    let c = CString::new(source).map_err(|_| Errno::EINVAL)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: plain syscall with a valid C string; a non-negative return is
    // a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached tree `copy` over `dest` (in the caller's mount
/// namespace, wherever the tree was cloned).
pub fn attach(copy: &OwnedFd, dest: &str) -> Result<(), Errno> {
    let to = CString::new(dest).map_err(|_| Errno::EINVAL)?;
    let empty = CString::default();
    // SAFETY: plain syscall with a valid fd and C strings.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            copy.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Id-maps the detached tree `copy` (not yet attached, as the kernel
/// requires) with the mapping of user namespace `userns`: its top mount,
/// or every mount when `recursive`.
pub fn set_idmap(copy: &OwnedFd, userns: &OwnedFd, recursive: bool) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: libc::MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: userns.as_raw_fd() as u64,
    };
    let mut flags = libc::AT_EMPTY_PATH;
    if recursive {
        flags |= libc::AT_RECURSIVE;
    }
    mount_setattr(copy.as_raw_fd(), &CString::default(), flags, &attr)
}

/// Makes every mount of the detached tree `copy` a slave: a copy of
/// shared mounts is their peer until then, and mounts made on it would
/// reach the originals; as a slave it still gets their unmounts.
pub fn make_slave(copy: &OwnedFd) -> Result<(), Errno> {
    let attr = MountAttr {
        attr_set: 0,
        attr_clr: 0,
        propagation: MS_SLAVE,
        userns_fd: 0,
    };
    mount_setattr(
        copy.as_raw_fd(),
        &CString::default(),
        libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
        &attr,
    )
}
