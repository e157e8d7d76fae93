//! A joined user namespace's mappings, checked against what the spec
//! states for it: containerd 2.x gives a user-namespaced pod's sandbox
//! its pinned namespace (an nsfs file) and the pod's mappings, and runc
//! refuses a spec whose mappings are not the namespace's.

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::lxc::{IdKind, IdMap};
use crate::plan::PlanError;
use crate::userns::{map_lines, Enter, HeldChild};

/// Fails naming `linux.uidMappings` (or `gidMappings`) when the namespace
/// at `path` maps other ids than `stated` (the spec's, both kinds).
pub fn check_joined_user_maps(path: &Path, stated: &[IdMap]) -> Result<(), PlanError> {
    let io = |source: std::io::Error| PlanError::Io {
        field: "linux.namespaces".into(),
        path: path.to_path_buf(),
        source,
    };
    let (uid_map, gid_map) = maps_of(path).map_err(io)?;
    for (kind, field, text) in [
        (IdKind::User, "linux.uidMappings", uid_map),
        (IdKind::Group, "linux.gidMappings", gid_map),
    ] {
        let mut actual = parse(kind, &text);
        let mut stated: Vec<IdMap> = stated.iter().filter(|m| m.kind == kind).cloned().collect();
        let key = |m: &IdMap| (m.container_id, m.host_id, m.size);
        actual.sort_by_key(key);
        stated.sort_by_key(key);
        if actual != stated {
            return Err(PlanError::Invalid {
                field: field.into(),
                message: format!(
                    "the user namespace the container joins ({}) maps {}, not what the spec states ({})",
                    path.display(),
                    lines(&actual),
                    lines(&stated)
                ),
            });
        }
    }
    Ok(())
}

fn lines(maps: &[IdMap]) -> String {
    let l: Vec<String> = maps
        .iter()
        .map(|m| format!("{} {} {}", m.container_id, m.host_id, m.size))
        .collect();
    l.join(", ")
}

fn parse(kind: IdKind, text: &str) -> Vec<IdMap> {
    map_lines(text)
        .map(|(container_id, host_id, size)| IdMap {
            kind,
            container_id,
            host_id,
            size,
        })
        .collect()
}

/// The `uid_map` and `gid_map` of the user namespace at `path`, read from
/// a child that joins it.
fn maps_of(path: &Path) -> std::io::Result<(String, String)> {
    let ns = open(path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())?;
    let child = HeldChild::spawn(Enter::Join(ns.as_fd()))
        .map_err(|(what, errno)| std::io::Error::other(format!("{what}: {errno}")))?;
    Ok((
        std::fs::read_to_string(child.proc_path("uid_map"))?,
        std::fs::read_to_string(child.proc_path("gid_map"))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_parse_as_the_kernel_prints_them() {
        let m = parse(IdKind::Group, "         0    2621440      65536\n");
        assert_eq!(
            m,
            [IdMap {
                kind: IdKind::Group,
                container_id: 0,
                host_id: 2621440,
                size: 65536
            }]
        );
        assert_eq!(lines(&m), "0 2621440 65536");
    }

    /// A user namespace of `unshare --map-root-user` (root to root, one
    /// id), joined by path; a spec stating another mapping is refused.
    #[test]
    fn a_mapping_the_namespace_does_not_have_is_refused_naming_the_field() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let mut child = std::process::Command::new("unshare")
            .args(["--user", "--map-root-user", "sleep", "30"])
            .spawn()
            .unwrap();
        let uid_map = format!("/proc/{}/uid_map", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mapped = || {
            std::fs::read_to_string(&uid_map)
                .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "1"])
        };
        while !mapped() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let root = |kind| IdMap {
            kind,
            container_id: 0,
            host_id: 0,
            size: 1,
        };
        let path = std::path::PathBuf::from(format!("/proc/{}/ns/user", child.id()));
        let same = check_joined_user_maps(&path, &[root(IdKind::User), root(IdKind::Group)]);
        let other = check_joined_user_maps(
            &path,
            &[
                IdMap {
                    host_id: 100000,
                    size: 65536,
                    ..root(IdKind::User)
                },
                root(IdKind::Group),
            ],
        );
        let _ = child.kill();
        let _ = child.wait();
        same.unwrap();
        let e = other.unwrap_err().to_string();
        assert!(
            e.starts_with("linux.uidMappings: ")
                && e.contains("maps 0 0 1, not what the spec states (0 100000 65536)"),
            "{e}"
        );
    }
}
