//! The user namespace an id-mapped bind takes its mapping from
//! (`mount_setattr(MOUNT_ATTR_IDMAP)` wants one as an fd): the container's
//! own when the mapping is the container's (a Kubernetes pod's volumes), a
//! new one made for the mapping otherwise, as runc makes one per mapping.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;

use lxcri_init_spec::{IdRange, IdmapSource};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, read, write, ForkResult, Pid};

#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("{what}: {source}")]
    Sys { what: String, source: Errno },
    #[error("the container has no user namespace of its own to take the mapping from")]
    NoContainerUserns,
}

fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> MappingError {
    let what = what.into();
    move |source| MappingError::Sys { what, source }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// An fd of a user namespace with `source`'s mapping. `init_pid` is the
/// container's init, on the host.
pub fn for_mapping(init_pid: i32, source: &IdmapSource) -> Result<OwnedFd, MappingError> {
    let container_ns = format!("/proc/{init_pid}/ns/user");
    let separate = differs_from_ours(&container_ns)?;
    match source {
        IdmapSource::Container if separate => open_ns(&container_ns),
        IdmapSource::Container => Err(MappingError::NoContainerUserns),
        IdmapSource::Ranges { uid, gid } => {
            if separate
                && same_ranges(&read_map(init_pid, "uid_map")?, uid)
                && same_ranges(&read_map(init_pid, "gid_map")?, gid)
            {
                return open_ns(&container_ns);
            }
            new_userns(uid, gid)
        }
    }
}

/// The host uid and gid of the root of the container's user namespace;
/// `None` when the container has none of its own (its root is the host's).
pub fn container_root(init_pid: i32) -> Result<Option<(u32, u32)>, MappingError> {
    if !differs_from_ours(&format!("/proc/{init_pid}/ns/user"))? {
        return Ok(None);
    }
    let root = |file: &str| -> Result<u32, MappingError> {
        read_map(init_pid, file)?
            .iter()
            .find(|r| r.inside == 0)
            .map(|r| r.outside)
            .ok_or_else(|| sys(format!("/proc/{init_pid}/{file} maps no id 0"))(Errno::EINVAL))
    };
    Ok(Some((root("uid_map")?, root("gid_map")?)))
}

fn open_ns(path: &str) -> Result<OwnedFd, MappingError> {
    open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys(format!("open {path}")))
}

/// Whether `ns` is another user namespace than the helper's (the host's):
/// an idmapping cannot be the initial namespace's.
fn differs_from_ours(ns: &str) -> Result<bool, MappingError> {
    let stat = |p: &str| std::fs::metadata(p).map_err(|e| sys(format!("stat {p}"))(io_errno(e)));
    let (theirs, ours) = (stat(ns)?, stat("/proc/self/ns/user")?);
    Ok((theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()))
}

/// `/proc/PID/uid_map` or `gid_map`, as ranges.
fn read_map(pid: i32, file: &str) -> Result<Vec<IdRange>, MappingError> {
    let path = format!("/proc/{pid}/{file}");
    let text =
        std::fs::read_to_string(&path).map_err(|e| sys(format!("read {path}"))(io_errno(e)))?;
    Ok(parse_map(&text))
}

fn parse_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let mut n = line.split_whitespace().map(|f| f.parse::<u32>().ok());
            Some(IdRange {
                inside: n.next()??,
                outside: n.next()??,
                size: n.next()??,
            })
        })
        .collect()
}

/// The same lines in any order (the kernel keeps them as written).
fn same_ranges(a: &[IdRange], b: &[IdRange]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

/// What `uid_map`/`gid_map` take, in one write.
fn map_text(ranges: &[IdRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("{} {} {}\n", r.inside, r.outside, r.size))
        .collect()
}

/// A new user namespace with these maps: a child unshares one and waits
/// while its maps are written and its namespace opened, then exits. The
/// helper is single-threaded, so forking is safe.
fn new_userns(uid: &[IdRange], gid: &[IdRange]) -> Result<OwnedFd, MappingError> {
    let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let (done_r, done_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    // SAFETY: single-threaded process; the child only unshares, writes,
    // reads and exits.
    let child = match unsafe { fork() }.map_err(sys("fork"))? {
        ForkResult::Child => {
            drop((ready_r, done_w));
            let ok = [u8::from(
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok(),
            )];
            let _ = write(&ready_w, &ok);
            let mut b = [0u8];
            // Returns at EOF, when the helper is done with the namespace.
            let _ = read(&done_r, &mut b);
            // SAFETY: leaves the child without running the helper's exit path.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => child,
    };
    drop((ready_w, done_r));
    let result = map_child(child, &ready_r, uid, gid);
    drop(done_w);
    let _ = waitpid(child, None);
    result
}

fn map_child(
    child: Pid,
    ready: &OwnedFd,
    uid: &[IdRange],
    gid: &[IdRange],
) -> Result<OwnedFd, MappingError> {
    let mut ok = [0u8];
    let n = read(ready, &mut ok).map_err(sys("wait for the mapping child"))?;
    if n != 1 || ok[0] != 1 {
        return Err(sys("unshare(CLONE_NEWUSER) in the mapping child")(
            Errno::EPERM,
        ));
    }
    for (file, ranges) in [("uid_map", uid), ("gid_map", gid)] {
        let path = format!("/proc/{child}/{file}");
        std::fs::write(&path, map_text(ranges))
            .map_err(|e| sys(format!("write {path}"))(io_errno(e)))?;
    }
    open_ns(&format!("/proc/{child}/ns/user"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(inside: u32, outside: u32, size: u32) -> IdRange {
        IdRange {
            inside,
            outside,
            size,
        }
    }

    #[test]
    fn proc_maps_parse_into_ranges() {
        let text = "         0     100000      65536\n     65536          7          1\n";
        assert_eq!(parse_map(text), [r(0, 100000, 65536), r(65536, 7, 1)]);
        assert_eq!(map_text(&parse_map(text)), "0 100000 65536\n65536 7 1\n");
    }

    #[test]
    fn ranges_compare_in_any_order() {
        let a = [r(0, 100000, 10), r(10, 5, 1)];
        let b = [r(10, 5, 1), r(0, 100000, 10)];
        assert!(same_ranges(&a, &b));
        assert!(!same_ranges(&a, &a[..1]));
        assert!(!same_ranges(&a, &[r(0, 100000, 10), r(10, 6, 1)]));
    }
}
