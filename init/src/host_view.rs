//! Mode 5, `lxcri-init host-view <spec.json>` ([`HostView`]), run by the
//! shim on the host around a container's create hooks.
//!
//! runc runs `prestart`, `createRuntime` and `createContainer` hooks while
//! its init is in the container's mount namespace but before `pivot_root`:
//! that namespace's root is then the host's tree, with the container's
//! mounts under `root.path`. A hook that enters it (`nsenter -m -t PID`,
//! NVIDIA's legacy hook) works on `root.path`, and what it mounts there is
//! the container's. lxcri's init is past LXC's `pivot_root` by then, so
//! `lay` gives its namespace that root for the hooks' time: a copy of the
//! host's tree (see [`host_copy`]) becomes the root and the container's own tree is
//! moved (not copied) to `root.path` in it. `lift` makes the container's
//! tree the root again, with whatever the hooks mounted in it, and drops
//! the copy. The init checks that its root is its own before it goes on.

use std::path::Path;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use lxcri_init_spec::{HostView, HostViewStep};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use nix::sys::wait::waitpid;
use nix::unistd::{chdir, fchdir, fork, pivot_root, ForkResult};

use crate::init_proc::{InitProc, InitProcError};
use crate::mount_tree;
use crate::spec_file::{self, SpecFileError};

#[derive(Debug, thiserror::Error)]
pub enum HostViewError {
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
    #[error(transparent)]
    SpecFile(#[from] SpecFileError),
    #[error("root.path {0} is not absolute")]
    RelativeRoot(String),
    #[error("root.path is the host's root")]
    HostRoot,
    #[error("copy the host's mount tree in the container's user namespace: {0}")]
    Child(String),
}

impl From<InitProcError> for HostViewError {
    fn from(e: InitProcError) -> Self {
        Self::Sys {
            what: e.what,
            source: e.source,
        }
    }
}

/// The propagation of the root mount alone (not its submounts).
fn root_propagation(flag: MsFlags) -> Result<(), Errno> {
    mount(None::<&str>, "/", None::<&str>, flag, None::<&str>)
}

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> HostViewError {
    let what = what.into();
    move |source| HostViewError::Sys { what, source }
}

/// 0 when the step was taken, else 1 with the cause on stderr.
pub fn run(spec_path: &Path) -> i32 {
    match spec_file::read(spec_path)
        .map_err(HostViewError::from)
        .and_then(|view| take(&view))
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn take(view: &HostView) -> Result<(), HostViewError> {
    let below_root = match view.root_path.strip_prefix('/') {
        None => return Err(HostViewError::RelativeRoot(view.root_path.clone())),
        Some("") => return Err(HostViewError::HostRoot),
        Some(p) => p,
    };
    let init = InitProc::open(view.init_pid, view.init_start_time)?;
    let mnt = init.namespace("mnt")?;
    let host = match view.step {
        HostViewStep::Lay => Some(host_copy(&init, view.user_ns)?),
        HostViewStep::Lift => None,
    };
    // As the host's root, not the container's: it may search every
    // directory on the way to root.path. It owns the container's user
    // namespace, and so its mount namespace too.
    setns(&mnt, CloneFlags::CLONE_NEWNS).map_err(sys("join the container's mount namespace"))?;
    match host {
        Some(tree) => lay(&tree, below_root, view),
        None => lift(view),
    }
}

/// A detached copy of the host's mount tree, its mounts slaves of the
/// host's (so an unmount on the host reaches it, a mount made in it does
/// not reach the host). For a container with a user namespace of its own
/// it is copied from a mount namespace that user namespace owns, where
/// the kernel locks what came from the host (no unmount to reveal what a
/// mount covers, no read-only or nosuid mount made writable), as the
/// mount namespace runc's hooks see is.
fn host_copy(init: &InitProc, user_ns: bool) -> Result<OwnedFd, HostViewError> {
    if !user_ns {
        let tree = mount_tree::clone_tree("/", true).map_err(sys("copy the host's mount tree"))?;
        mount_tree::make_slave(&tree).map_err(sys("make the copy a slave of the host's"))?;
        return Ok(tree);
    }
    let user = init.namespace("user")?;
    // A user namespace cannot be left again: a child joins it, makes the
    // copy there and hands it over.
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("socketpair"))?;
    // SAFETY: this helper is single-threaded; the child only makes
    // syscalls and exits.
    match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop(ours);
            let code = match locked_copy(&user) {
                Ok(tree) => match send_fd(&theirs, &tree) {
                    Ok(()) => 0,
                    Err(_) => 1,
                },
                Err(e) => {
                    let _ = nix::unistd::write(&theirs, e.to_string().as_bytes());
                    1
                }
            };
            // SAFETY: leaves the forked child at once.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(theirs);
            let received = recv_fd(&ours);
            let _ = waitpid(child, None);
            received
        }
    }
}

/// In the child: the copy, from a new mount namespace of the container's
/// user namespace (a locked, slave copy of the host's).
fn locked_copy(user: &OwnedFd) -> Result<OwnedFd, HostViewError> {
    setns(user, CloneFlags::CLONE_NEWUSER).map_err(sys("join the container's user namespace"))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(sys("unshare a mount namespace there"))?;
    mount_tree::clone_tree("/", true).map_err(sys("copy the host's mount tree"))
}

fn send_fd(sock: &OwnedFd, fd: &OwnedFd) -> Result<(), Errno> {
    let fds = [fd.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [std::io::IoSlice::new(b"T")];
    sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None).map(|_| ())
}

/// The copy the child sent, or its error.
fn recv_fd(sock: &OwnedFd) -> Result<OwnedFd, HostViewError> {
    let mut buf = [0u8; 512];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive the copy"))?;
    let fd = msg
        .cmsgs()
        .ok()
        .into_iter()
        .flatten()
        .find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
    let n = msg.bytes;
    match fd {
        // SAFETY: the kernel just installed this fd for us.
        Some(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        None => Err(HostViewError::Child(
            String::from_utf8_lossy(&buf[..n]).into_owned(),
        )),
    }
}

/// Puts the copy over the container's root and makes it the namespace's
/// root, the container's tree moved to root.path inside it. A failure
/// after the copy is attached detaches it again.
fn lay(tree: &OwnedFd, below_root: &str, view: &HostView) -> Result<(), HostViewError> {
    if view.root_shared {
        root_propagation(MsFlags::MS_SLAVE).map_err(sys("make the container's root a slave"))?;
    }
    mount_tree::attach(tree, "/").map_err(sys("attach the host's tree over /"))?;
    let pivoted = fchdir(tree)
        .map_err(sys("chdir into the host's tree"))
        .and_then(|()| {
            pivot_root(".", below_root).map_err(sys(format!(
                "pivot the container's root to {}",
                view.root_path
            )))
        });
    if pivoted.is_err() {
        let _ = fchdir(tree).and_then(|()| umount2(".", MntFlags::MNT_DETACH));
        if view.root_shared {
            let _ = root_propagation(MsFlags::MS_SHARED);
        }
    }
    pivoted
}

/// Makes the container's tree the root again and drops the copy.
fn lift(view: &HostView) -> Result<(), HostViewError> {
    chdir(view.root_path.as_str()).map_err(sys(format!("chdir {}", view.root_path)))?;
    // runc's way without a put_old directory: the old root ends up over
    // the new one and is detached from there.
    pivot_root(".", ".").map_err(sys("pivot back to the container's root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the host's tree"))?;
    if view.root_shared {
        root_propagation(MsFlags::MS_SHARED)
            .map_err(sys("make the container's root shared again"))?;
    }
    Ok(())
}
