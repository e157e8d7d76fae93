//! Who owns the root of a container's POSIX message queue filesystem.
//!
//! The kernel makes an IPC namespace's mqueue filesystem when the namespace
//! is made, its root owned by the creator's fsuid (ipc/mqueue.c
//! `mqueue_fill_super`). runc makes the IPC namespace after it became root
//! in the container's user namespace, so `/dev/mqueue` belongs to the
//! container's root; LXC clones every namespace at once with the host's
//! credentials, so there it would belong to an id the container does not
//! map (`nobody`). The shim gives it to the container's root once the init
//! has mounted it: only the owner changes (runc's group stays the host's,
//! unmapped, as its setresuid comes first).

use super::namespaces::Mode;
use crate::lxc::MountEntry;

/// The mqueue mount to give to `uid` (a host id): its destination, relative
/// to the container's root as LXC mounted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqueueOwner {
    pub destination: String,
    pub uid: u32,
}

/// `Some` for a container with a user namespace and a new IPC namespace
/// whose spec mounts an mqueue filesystem; `root_uid` is the host id its
/// root maps to (`None` where lxcri writes no map: a joined user
/// namespace's is not lxcri's to read here, and it keeps LXC's owner).
pub(super) fn mqueue_owner(
    user: Mode,
    ipc: Mode,
    root_uid: Option<u32>,
    mounts: &[MountEntry],
) -> Option<MqueueOwner> {
    if user == Mode::Host || ipc != Mode::New {
        return None;
    }
    // Every mqueue mount of one IPC namespace is the same filesystem.
    let mount = mounts.iter().find(|m| m.fstype == "mqueue")?;
    Some(MqueueOwner {
        destination: mount.destination.clone(),
        uid: root_uid?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<MountEntry> {
        ["proc", "mqueue"]
            .iter()
            .map(|fstype| MountEntry {
                source: fstype.to_string(),
                destination: format!("dev/{fstype}"),
                fstype: fstype.to_string(),
                options: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_new_ipc_namespace_under_a_user_namespace_gives_it_to_root() {
        assert_eq!(
            mqueue_owner(Mode::New, Mode::New, Some(100_000), &mounts()),
            Some(MqueueOwner {
                destination: "dev/mqueue".into(),
                uid: 100_000
            })
        );
    }

    #[test]
    fn otherwise_the_owner_stays() {
        let m = mounts();
        // No user namespace: the host's root is the container's.
        assert_eq!(mqueue_owner(Mode::Host, Mode::New, None, &m), None);
        // A pod's IPC namespace was made by its sandbox.
        assert_eq!(
            mqueue_owner(Mode::New, Mode::Joined, Some(100_000), &m),
            None
        );
        assert_eq!(mqueue_owner(Mode::New, Mode::Host, Some(100_000), &m), None);
        // Nothing mounted.
        assert_eq!(
            mqueue_owner(Mode::New, Mode::New, Some(100_000), &m[..1]),
            None
        );
        // No map of lxcri's.
        assert_eq!(mqueue_owner(Mode::Joined, Mode::New, None, &m), None);
    }
}
