//! A joined user namespace's mappings, checked against what the spec
//! states for it: containerd 2.x gives a user-namespaced pod's sandbox
//! its pinned namespace (an nsfs file) and the pod's mappings, and runc
//! refuses a spec whose mappings are not the namespace's. A spec that
//! states none gets the namespace's, as runc 1.2+ reads them
//! (libcontainer/specconv `setupUserNamespace`): LXC maps ids only as it
//! is told, and without them could not start the container.

use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use oci_spec::runtime::{LinuxIdMapping, LinuxIdMappingBuilder, LinuxNamespaceType, Spec};

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

/// Gives a spec that joins a user namespace by path and states no
/// mappings for it the namespace's own. Returns whether it did: the
/// mappings then need no [`check_joined_user_maps`].
pub fn fill_joined_user_maps(spec: &mut Spec) -> Result<bool, PlanError> {
    let Some(linux) = spec.linux_mut() else {
        return Ok(false);
    };
    let path = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find_map(|n| {
            (n.typ() == LinuxNamespaceType::User)
                .then(|| n.path().clone())
                .flatten()
        });
    let Some(path) = path else {
        return Ok(false);
    };
    let stated = |m: &Option<Vec<LinuxIdMapping>>| m.as_ref().is_some_and(|m| !m.is_empty());
    if stated(linux.uid_mappings()) || stated(linux.gid_mappings()) {
        return Ok(false);
    }
    let (uid_map, gid_map) = maps_of(&path).map_err(|source| PlanError::Io {
        field: "linux.namespaces".into(),
        path: path.clone(),
        source,
    })?;
    let specs = |text: &str| -> Vec<LinuxIdMapping> {
        map_lines(text)
            .map(|(container_id, host_id, size)| {
                LinuxIdMappingBuilder::default()
                    .container_id(container_id)
                    .host_id(host_id)
                    .size(size)
                    .build()
                    .expect("every field of an id mapping is set")
            })
            .collect()
    };
    linux.set_uid_mappings(Some(specs(&uid_map)));
    linux.set_gid_mappings(Some(specs(&gid_map)));
    Ok(true)
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

    /// A process of `unshare --map-root-user` (root to root, one id),
    /// once its namespace is mapped.
    fn mapped_root_userns() -> std::process::Child {
        let child = std::process::Command::new("unshare")
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
        child
    }

    fn spec_joining(path: &str, maps: serde_json::Value) -> Spec {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "linux": {
                "namespaces": [{"type": "mount"}, {"type": "user", "path": path}],
                "uidMappings": maps,
            }
        }))
        .unwrap()
    }

    /// A spec joining a namespace and stating no mappings gets the
    /// namespace's; one that states any, or joins none, is left alone.
    #[test]
    fn a_joined_namespace_without_stated_mappings_lends_its_own() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let mut child = mapped_root_userns();
        let path = format!("/proc/{}/ns/user", child.id());
        let mut bare = spec_joining(&path, serde_json::Value::Null);
        let filled = fill_joined_user_maps(&mut bare);
        let stated = serde_json::json!([{"containerID": 0, "hostID": 5, "size": 1}]);
        let mut with_maps = spec_joining(&path, stated);
        let left = fill_joined_user_maps(&mut with_maps);
        let _ = child.kill();
        let _ = child.wait();
        assert!(filled.unwrap());
        let linux = bare.linux().as_ref().unwrap();
        for maps in [linux.uid_mappings(), linux.gid_mappings()] {
            let m = maps.as_ref().unwrap();
            assert_eq!(m.len(), 1);
            assert_eq!(
                (m[0].container_id(), m[0].host_id(), m[0].size()),
                (0, 0, 1)
            );
        }
        assert!(!left.unwrap());
        let linux = with_maps.linux().as_ref().unwrap();
        assert_eq!(linux.uid_mappings().as_ref().unwrap()[0].host_id(), 5);
        assert!(linux.gid_mappings().is_none());

        let mut none: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "rootfs"}, "linux": {}
        }))
        .unwrap();
        assert!(!fill_joined_user_maps(&mut none).unwrap());
    }

    #[test]
    fn a_path_that_is_no_user_namespace_is_named() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let mut spec = spec_joining("/proc/self/ns/net", serde_json::Value::Null);
        let e = fill_joined_user_maps(&mut spec).unwrap_err().to_string();
        assert!(
            e.contains("linux.namespaces") && e.contains("/proc/self/ns/net"),
            "{e}"
        );
    }

    /// A user namespace of `unshare --map-root-user` (root to root, one
    /// id), joined by path; a spec stating another mapping is refused.
    #[test]
    fn a_mapping_the_namespace_does_not_have_is_refused_naming_the_field() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let mut child = mapped_root_userns();
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
