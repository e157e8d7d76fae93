//! Doing something inside another network namespace.

use std::os::fd::BorrowedFd;

use nix::sched::{setns, CloneFlags};

use super::{NetlinkError, Result};

/// Runs `f` on a fresh thread that has joined the network namespace
/// `netns` and returns its result; a panic in `f` goes on in the caller.
///
/// `setns(CLONE_NEWNET)` moves only the calling thread, so the caller's
/// threads stay where they are and the helper thread ends with `f`.
/// Sockets `f` opens stay in `netns` after that: `in_netns(ns,
/// Netlink::open)` gives a [`Netlink`](super::Netlink) for the namespace.
pub fn in_netns<T: Send>(netns: BorrowedFd<'_>, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        let joined = s
            .spawn(move || {
                setns(netns, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| NetlinkError::Setns(e.into()))?;
                Ok(f())
            })
            .join();
        match joined {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}
