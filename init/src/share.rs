//! Mode 3: `lxcri-init share <spec.json>`, run on the host by the shim once
//! a container's init is ready. Binds each host source into the
//! container's mount namespace: a copy made on the host side with
//! `open_tree(OPEN_TREE_CLONE)` (which joins the source's peer group) is
//! attached with `move_mount` over the destination inside the container.
//! - `rshared` binds (Kubernetes' `Bidirectional`) stay peers of the
//!   host's mount. LXC cannot make such a bind: it turns every mount it
//!   copies into a slave of the host's.
//! - Binds inside other binds (volumes) get their mount point made here,
//!   in the container's namespace, whose root is the container's: a link
//!   the volume holds resolves inside the container, where LXC, making it
//!   before `pivot_root`, would follow it onto the host.
//! - Id-mapped binds get their mapping on the copy, before it is attached
//!   (as runc does): only the host's root can set one.

use std::path::Path;

use std::os::fd::OwnedFd;

use lxcri_init_spec::{
    BindFlags, IdmapSource, Propagation, PropagationKind, ShareSpec, SharedMount,
};
use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::stat::Mode;

use crate::mapping_userns::{self, MappingError};
use crate::mount_tree;
use crate::spec_file::{self, SpecFileError};
use crate::status::EXIT_SETUP_FAILED;

#[derive(Debug, thiserror::Error)]
enum ShareError {
    #[error(transparent)]
    SpecFile(#[from] SpecFileError),
    #[error("the capabilities of the share helper: {0}")]
    Caps(String),
    #[error("the id mapping of {path}: {source}")]
    Mapping { path: String, source: MappingError },
    #[error(transparent)]
    Flags(#[from] crate::bind_flags::BindFlagsError),
    #[error("{what} {path}: {source}{hint}")]
    Sys {
        what: &'static str,
        path: String,
        source: Errno,
        hint: &'static str,
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
    move |source| ShareError::Sys {
        what,
        path,
        source,
        hint: "",
    }
}

fn share(spec_path: &Path) -> Result<(), ShareError> {
    let spec: ShareSpec = spec_file::read(spec_path)?;
    // Every copy is made on the host side, before the namespace changes.
    let copies = host_copies(&spec)?;
    // Mount points are made as the container's root, as runc's are: owned
    // by it, and through an id-mapped bind stored as its mapping says.
    let root =
        mapping_userns::container_root(spec.init_pid).map_err(|source| ShareError::Mapping {
            path: format!("/proc/{}", spec.init_pid),
            source,
        })?;
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
        let dest = m.destination.as_str();
        if m.create {
            let is_dir = nix::sys::stat::fstat(&copy)
                .map(|st| st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .map_err(sys("stat the copy of", &m.source))?;
            as_container_root(root, || make_mount_point(dest, is_dir))?;
        }
        mount_tree::attach(&copy, dest).map_err(sys("attach over", dest))?;
        mount(
            None::<&str>,
            dest,
            None::<&str>,
            propagation_flags(m.propagation),
            None::<&str>,
        )
        .map_err(sys("set the propagation of", dest))?;
        if let Some((flags, cleared)) = bind_flags_of(m) {
            crate::bind_flags::set(&BindFlags {
                destination: dest.to_string(),
                flags,
                cleared,
            })?;
        }
        if let Some(attrs) = m.recursive {
            mount_tree::set_recursive(dest, attrs).map_err(sys(
                "set the recursive mount attributes (rro, ...) of",
                dest,
            ))?;
        }
    }
    Ok(())
}

/// The flags to set on `m`: the spec's exactly, as runc 1.2+; an older
/// shim's (see [`lxcri_init_spec::legacy`]) those of its four that are set.
fn bind_flags_of(m: &SharedMount) -> Option<(u64, u64)> {
    if m.flags.is_some() {
        return m.flags;
    }
    let legacy = [
        (m.readonly, libc::MS_RDONLY),
        (m.nosuid, libc::MS_NOSUID),
        (m.nodev, libc::MS_NODEV),
        (m.noexec, libc::MS_NOEXEC),
    ]
    .iter()
    .filter(|(set, _)| *set)
    .fold(0, |acc, (_, bit)| acc | bit);
    (legacy != 0).then_some((legacy, 0))
}

/// The copy of each mount's source, id-mapped where it asks.
fn host_copies(spec: &ShareSpec) -> Result<Vec<OwnedFd>, ShareError> {
    let mut copies = Vec::with_capacity(spec.mounts.len());
    // One namespace per mapping, however many binds use it.
    let mut namespaces: Vec<(&IdmapSource, OwnedFd)> = Vec::new();
    for m in &spec.mounts {
        let copy = mount_tree::clone_tree(&m.source, m.rbind).map_err(sys("clone", &m.source))?;
        if let Some(idmap) = &m.idmap {
            let at = match namespaces.iter().position(|(s, _)| **s == idmap.mapping) {
                Some(at) => at,
                None => {
                    let ns = mapping_userns::for_mapping(spec.init_pid, &idmap.mapping).map_err(
                        |source| ShareError::Mapping {
                            path: m.source.clone(),
                            source,
                        },
                    )?;
                    namespaces.push((&idmap.mapping, ns));
                    namespaces.len() - 1
                }
            };
            mount_tree::set_idmap(&copy, &namespaces[at].1, idmap.recursive).map_err(|source| {
                ShareError::Sys {
                    what: "id-map the copy of",
                    path: m.source.clone(),
                    source,
                    // As runc says it.
                    hint: if source == Errno::EINVAL {
                        " (maybe the filesystem does not support id-mapped mounts on this kernel)"
                    } else {
                        ""
                    },
                }
            })?;
        }
        copies.push(copy);
    }
    Ok(copies)
}

/// The spec's propagation; a slave of the host's mount when it names none
/// (what LXC makes of its binds).
fn propagation_flags(p: Option<Propagation>) -> MsFlags {
    let (kind, recursive) = match p {
        Some(p) => (p.kind, p.recursive),
        None => (PropagationKind::Slave, true),
    };
    let flag = match kind {
        PropagationKind::Private => MsFlags::MS_PRIVATE,
        PropagationKind::Slave => MsFlags::MS_SLAVE,
        PropagationKind::Shared => MsFlags::MS_SHARED,
        PropagationKind::Unbindable => MsFlags::MS_UNBINDABLE,
    };
    if recursive {
        flag | MsFlags::MS_REC
    } else {
        flag
    }
}

/// Runs `f` with the filesystem ids of the container's root (`root`, its
/// host uid and gid; `None`: the host's root already is). The file
/// capabilities the change drops from the effective set are raised again,
/// so permission checks stay the helper's; only new files' owners change.
fn as_container_root<T>(
    root: Option<(u32, u32)>,
    f: impl FnOnce() -> Result<T, ShareError>,
) -> Result<T, ShareError> {
    let Some((uid, gid)) = root else {
        return f();
    };
    let caps_err = |e: caps::errors::CapsError| ShareError::Caps(e.to_string());
    let effective = caps::read(None, caps::CapSet::Effective).map_err(caps_err)?;
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
    let result = caps::set(None, caps::CapSet::Effective, &effective)
        .map_err(caps_err)
        .and_then(|()| f());
    // Back to 0, the kernel gives the effective set its file capabilities.
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
    result
}

/// Makes `dest` (and its parents) in the container's namespace: a
/// directory, or an empty file for a source that is not one. Paths resolve
/// in the container's root, links included.
fn make_mount_point(dest: &str, is_dir: bool) -> Result<(), ShareError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |e: std::io::Error| ShareError::Sys {
            what: "make the mount point",
            path,
            source: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
            hint: "",
        }
    };
    let target = Path::new(dest);
    let dir = if is_dir {
        Some(target)
    } else {
        target.parent()
    };
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    if !is_dir {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(target)
            .map_err(io(target))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(flags: Option<(u64, u64)>) -> SharedMount {
        SharedMount {
            source: "/v".into(),
            destination: "/v".into(),
            flags,
            readonly: false,
            nosuid: false,
            nodev: false,
            noexec: false,
            propagation: None,
            create: false,
            rbind: true,
            idmap: None,
            recursive: None,
        }
    }

    #[test]
    fn the_spec_flags_or_an_older_shims_four() {
        assert_eq!(bind_flags_of(&mount(None)), None);
        let cleared_only = Some((0, libc::MS_RDONLY));
        assert_eq!(bind_flags_of(&mount(cleared_only)), cleared_only);
        let older = SharedMount {
            readonly: true,
            noexec: true,
            ..mount(None)
        };
        assert_eq!(
            bind_flags_of(&older),
            Some((libc::MS_RDONLY | libc::MS_NOEXEC, 0))
        );
    }
}
