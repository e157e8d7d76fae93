//! Mode 5, `lxcri-init host-view <spec.json>` ([`HostView`]), run by the
//! shim on the host around a container's create hooks.
//!
//! runc runs `prestart`, `createRuntime` and `createContainer` hooks while
//! its init is in the container's mount namespace but before `pivot_root`:
//! that namespace's root is then the host's tree, with the container's
//! mounts under `root.path`. A hook that enters it (`nsenter -m -t PID`,
//! NVIDIA's legacy hook) works on `root.path`, and what it mounts there is
//! the container's. lxcri's init is past LXC's `pivot_root` by then, so
//! `lay` gives its namespace that root for the hooks' time: a private copy
//! of the host's tree becomes the root and the container's own tree is
//! moved (not copied) to `root.path` in it. `lift` makes the container's
//! tree the root again, with whatever the hooks mounted in it, and drops
//! the copy. The init checks that its root is its own before it goes on.

use std::path::Path;

use lxcri_init_spec::{HostView, HostViewStep};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::unistd::{chdir, fchdir, pivot_root, setresgid, setresuid};

use crate::init_proc::{InitProc, InitProcError};
use crate::mount_tree;

#[derive(Debug, thiserror::Error)]
pub enum HostViewError {
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
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
    #[error("root.path {0} is not absolute")]
    RelativeRoot(String),
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
    match load(spec_path).and_then(|view| take(&view)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

fn load(spec_path: &Path) -> Result<HostView, HostViewError> {
    let path = spec_path.display().to_string();
    let text = std::fs::read(spec_path).map_err(|source| HostViewError::ReadSpec {
        path: path.clone(),
        source,
    })?;
    serde_json::from_slice(&text).map_err(|source| HostViewError::ParseSpec { path, source })
}

fn take(view: &HostView) -> Result<(), HostViewError> {
    let below_root = view
        .root_path
        .strip_prefix('/')
        .filter(|p| !p.is_empty())
        .ok_or_else(|| HostViewError::RelativeRoot(view.root_path.clone()))?;
    let init =
        InitProc::open(view.init_pid, view.init_start_time).map_err(|e| HostViewError::Sys {
            what: e.what,
            source: e.source,
        })?;
    let mnt = init.namespace("mnt").map_err(|e| HostViewError::Sys {
        what: e.what,
        source: e.source,
    })?;
    let user = match view.user_ns {
        true => Some(init.namespace("user").map_err(|e| HostViewError::Sys {
            what: e.what,
            source: e.source,
        })?),
        false => None,
    };
    // The copy is made here, in the host's namespace, before any is left.
    let host = match view.step {
        HostViewStep::Lay => {
            let tree = mount_tree::clone_tree("/").map_err(sys("copy the host's mount tree"))?;
            mount_tree::make_private(&tree).map_err(sys("make the copy private"))?;
            Some(tree)
        }
        HostViewStep::Lift => None,
    };
    // The user namespace owns the mount namespace: its root may change it.
    if let Some(user) = &user {
        setns(user, CloneFlags::CLONE_NEWUSER)
            .map_err(sys("join the container's user namespace"))?;
        setresgid(0.into(), 0.into(), 0.into()).map_err(sys("setresgid(0)"))?;
        setresuid(0.into(), 0.into(), 0.into()).map_err(sys("setresuid(0)"))?;
    }
    setns(&mnt, CloneFlags::CLONE_NEWNS).map_err(sys("join the container's mount namespace"))?;
    match host {
        Some(tree) => {
            if view.root_shared {
                root_propagation(MsFlags::MS_SLAVE)
                    .map_err(sys("make the container's root a slave"))?;
            }
            // Over the container's root, then the namespace's root, with
            // the container's tree moved to root.path inside it.
            mount_tree::attach(&tree, "/").map_err(sys("attach the host's tree over /"))?;
            fchdir(&tree).map_err(sys("chdir into the host's tree"))?;
            pivot_root(".", below_root).map_err(sys(format!(
                "pivot the container's root to {}",
                view.root_path
            )))?;
        }
        None => {
            chdir(view.root_path.as_str()).map_err(sys(format!("chdir {}", view.root_path)))?;
            // runc's way without a put_old directory: the old root ends
            // up over the new one and is detached from there.
            pivot_root(".", ".").map_err(sys("pivot back to the container's root"))?;
            umount2(".", MntFlags::MNT_DETACH).map_err(sys("detach the host's tree"))?;
            if view.root_shared {
                root_propagation(MsFlags::MS_SHARED)
                    .map_err(sys("make the container's root shared again"))?;
            }
        }
    }
    Ok(())
}
