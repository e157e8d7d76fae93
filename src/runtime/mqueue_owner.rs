//! Gives the root of a created container's mqueue filesystem to the
//! container's root, as runc's is ([`crate::plan::MqueueOwner`] says why).
//! Done from the host (the container's root cannot take an inode of an id
//! its namespace does not map), through the init's root: the path resolves
//! inside the container, links included, and only an mqueue filesystem is
//! touched.

use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::{open, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::Mode;
use nix::sys::statfs::fstatfs;
use nix::unistd::{fchown, Uid};

use crate::plan::MqueueOwner;

/// `MQUEUE_MAGIC` of include/uapi/linux/magic.h.
const MQUEUE_MAGIC: i64 = 0x1980_0202;

#[derive(Debug, thiserror::Error)]
pub enum MqueueOwnerError {
    #[error("giving the mqueue filesystem at /{path} to the container's root: {what}: {source}")]
    Sys {
        path: String,
        what: &'static str,
        source: Errno,
    },
    #[error("/{0} in the container is not the mqueue filesystem the spec mounts there")]
    NotMqueue(String),
}

/// Makes the root of the mqueue filesystem at `owner.destination` in the
/// container whose init is `init_pid` belong to `owner.uid`.
pub fn give_mqueue(init_pid: i32, owner: &MqueueOwner) -> Result<(), MqueueOwnerError> {
    let path = owner.destination.as_str();
    let sys = |what| {
        move |source| MqueueOwnerError::Sys {
            path: path.to_string(),
            what,
            source,
        }
    };
    let root: OwnedFd = open(
        format!("/proc/{init_pid}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys("open the init's root"))?;
    let dir = openat2(
        &root,
        path,
        OpenHow::new()
            .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS),
    )
    .map_err(sys("open"))?;
    let fs = fstatfs(&dir).map_err(sys("statfs"))?;
    if fs.filesystem_type().0 as i64 != MQUEUE_MAGIC {
        return Err(MqueueOwnerError::NotMqueue(path.to_string()));
    }
    fchown(&dir, Some(Uid::from_raw(owner.uid)), None).map_err(sys("chown"))
}
