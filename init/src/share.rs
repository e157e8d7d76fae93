//! Mode 3: `lxcri-init share <spec.json>`, run on the host by the shim once
//! a container's init is ready. Binds each host source into the
//! container's mount namespace as a peer of the host's mount (OCI `rshared`
//! binds, Kubernetes' `Bidirectional`): a copy made on the host side with
//! `open_tree(OPEN_TREE_CLONE)` joins the source's peer group, and
//! `move_mount` attaches it over the destination inside the container.
//! LXC cannot make such a bind: it turns every mount it copies into a
//! slave of the host's, so mounts would only propagate into the container.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use lxcri_init_spec::ShareSpec;
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;

use crate::status::EXIT_SETUP_FAILED;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

#[derive(Debug, thiserror::Error)]
enum ShareError {
    #[error("read {path}: {source}")]
    ReadSpec {
        path: String,
        source: std::io::Error,
    },
    #[error("parse {path}: {source}")]
    ParseSpec {
        path: String,
        source: serde_json::Error,
    },
    #[error("{what} {path}: {source}")]
    Sys {
        what: &'static str,
        path: String,
        source: Errno,
    },
}

pub fn run(spec_path: &Path) -> i32 {
    match share(spec_path) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("lxcri-init share: {e}");
            EXIT_SETUP_FAILED
        }
    }
}

fn sys(what: &'static str, path: &str) -> impl FnOnce(Errno) -> ShareError {
    let path = path.to_string();
    move |source| ShareError::Sys { what, path, source }
}

fn share(spec_path: &Path) -> Result<(), ShareError> {
    let path = spec_path.display().to_string();
    let text = std::fs::read(spec_path).map_err(|source| ShareError::ReadSpec {
        path: path.clone(),
        source,
    })?;
    let spec: ShareSpec =
        serde_json::from_slice(&text).map_err(|source| ShareError::ParseSpec { path, source })?;
    // Every copy is made on the host side, before the namespace changes.
    let mut copies = Vec::with_capacity(spec.mounts.len());
    for m in &spec.mounts {
        copies.push(clone_tree(&m.source)?);
    }
    let ns_path = format!("/proc/{}/ns/mnt", spec.init_pid);
    let ns = open(
        ns_path.as_str(),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open", &ns_path))?;
    // Root and cwd become the container's root: destinations resolve there.
    setns(&ns, CloneFlags::CLONE_NEWNS).map_err(sys("join the mount namespace of", &ns_path))?;
    for (m, copy) in spec.mounts.iter().zip(copies) {
        attach(&copy, &m.destination)?;
        let dest = m.destination.as_str();
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(sys("make shared", dest))?;
        if m.readonly {
            mount(
                None::<&str>,
                dest,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                None::<&str>,
            )
            .map_err(sys("remount read-only", dest))?;
        }
    }
    Ok(())
}

/// A detached copy of the mount tree at `source` (recursive, as `rbind`).
fn clone_tree(source: &str) -> Result<OwnedFd, ShareError> {
    let c = CString::new(source).map_err(|_| ShareError::Sys {
        what: "clone",
        path: source.to_string(),
        source: Errno::EINVAL,
    })?;
    let flags =
        OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | libc::AT_RECURSIVE as libc::c_uint;
    // SAFETY: plain syscall with a valid C string; a non-negative return is
    // a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(sys("clone", source)(Errno::last()));
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Attaches the detached tree `copy` over `dest` (in our mount namespace).
fn attach(copy: &OwnedFd, dest: &str) -> Result<(), ShareError> {
    let to = CString::new(dest).map_err(|_| ShareError::Sys {
        what: "attach",
        path: dest.to_string(),
        source: Errno::EINVAL,
    })?;
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
        return Err(sys("attach over", dest)(Errno::last()));
    }
    Ok(())
}
