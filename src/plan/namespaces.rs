//! OCI `linux.namespaces`, id mappings and `hostname` -> LXC namespaces,
//! `lxc.idmap` and `lxc.uts.name`.

use std::path::PathBuf;

use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType, Spec};

use super::{invalid, unsupported, Result};
use crate::lxc::{IdKind, IdMap, Namespace, Namespaces, Network};
use crate::userns::IdRange;

/// What the container gets for one namespace type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Absent from the spec: the host's.
    Host,
    New,
    /// Joined by path (e.g. a pod's network namespace).
    Joined,
}

/// The user namespace the node gives a container whose spec asks for none
/// (`userns.unprivileged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeUserns {
    /// Host ids 0.. inside map to.
    pub range: IdRange,
    /// A pod container's: its sandbox's namespace, joined by path (the
    /// sandbox's range). `None`: a new one.
    pub join: Option<PathBuf>,
}

pub(super) struct NamespacePlan {
    pub namespaces: Namespaces,
    /// A joined network namespace the container's user namespace does not
    /// own (the node's: a pod's under [`NodeUserns`]).
    pub foreign_netns: Option<PathBuf>,
    pub network: Option<Network>,
    pub idmaps: Vec<IdMap>,
    /// A user namespace the spec joins and states mappings for (as
    /// containerd 2.x does for a user-namespaced pod; they are `idmaps`),
    /// to be checked against the namespace's own before the start, as
    /// runc checks them.
    pub joined_userns: Option<PathBuf>,
    pub uts_name: Option<String>,
    /// The container's user namespace, the node's choice included.
    pub user: Mode,
    pub cgroup: Mode,
    pub net: Mode,
    pub ipc: Mode,
    pub uts: Mode,
}

fn lxc_name(t: LinuxNamespaceType) -> Namespace {
    match t {
        LinuxNamespaceType::Mount => Namespace::Mnt,
        LinuxNamespaceType::Pid => Namespace::Pid,
        LinuxNamespaceType::Network => Namespace::Net,
        LinuxNamespaceType::Ipc => Namespace::Ipc,
        LinuxNamespaceType::Uts => Namespace::Uts,
        LinuxNamespaceType::User => Namespace::User,
        LinuxNamespaceType::Cgroup => Namespace::Cgroup,
        LinuxNamespaceType::Time => Namespace::Time,
    }
}

pub(super) fn plan_namespaces(
    spec: &Spec,
    linux: &Linux,
    node_userns: Option<&NodeUserns>,
) -> Result<NamespacePlan> {
    let mut ns = Namespaces::default();
    let mut seen = Vec::new();
    for (i, n) in linux.namespaces().iter().flatten().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let name = lxc_name(n.typ());
        if seen.contains(&name) {
            return Err(invalid(
                &format!("{field}.type"),
                &format!("{} namespace listed twice", name.as_str()),
            ));
        }
        seen.push(name);
        match n.path() {
            None => ns.clone.push(name),
            Some(path) => {
                if !path.is_absolute() {
                    return Err(invalid(
                        &format!("{field}.path"),
                        &format!("{path:?} must be an absolute path"),
                    ));
                }
                if name == Namespace::Mnt {
                    return Err(unsupported(
                        &format!("{field}.path"),
                        "LXC sets up the rootfs in a new mount namespace and cannot join one",
                    ));
                }
                ns.share.push((name, path.clone()));
            }
        }
    }
    ns.clone.sort();
    ns.share.sort();
    let mode = |name: Namespace| {
        if ns.clone.contains(&name) {
            Mode::New
        } else if ns.share.iter().any(|(n, _)| *n == name) {
            Mode::Joined
        } else {
            Mode::Host
        }
    };
    if mode(Namespace::Mnt) != Mode::New {
        return Err(unsupported(
            "linux.namespaces",
            "a new mount namespace is required (LXC always creates one for the rootfs)",
        ));
    }

    let user = mode(Namespace::User);
    let cgroup = mode(Namespace::Cgroup);
    let (net, ipc, uts) = (
        mode(Namespace::Net),
        mode(Namespace::Ipc),
        mode(Namespace::Uts),
    );
    let mut foreign_netns = None;
    let mut effective_user = user;
    let idmaps = match (user, node_userns) {
        // The node's choice for a spec that asks for no user namespace.
        (Mode::Host, Some(node)) => {
            // A pod's network namespace is the node's (CNI made it first).
            let net_path = ns.share.iter().find(|(n, _)| *n == Namespace::Net);
            foreign_netns = net_path.map(|(_, p)| p.clone());
            effective_user = if node.join.is_some() {
                Mode::Joined
            } else {
                Mode::New
            };
            match &node.join {
                None => {
                    ns.clone.push(Namespace::User);
                    ns.clone.sort();
                }
                Some(path) => {
                    ns.share.push((Namespace::User, path.clone()));
                    ns.share.sort();
                    if let Some(netns) = &foreign_netns {
                        ns.share.retain(|(n, _)| *n != Namespace::Net);
                        ns.inherit_net = Some(netns.clone());
                    }
                }
            }
            let range = node.range;
            [IdKind::User, IdKind::Group]
                .map(|kind| IdMap {
                    kind,
                    container_id: 0,
                    host_id: range.host_start,
                    size: range.len,
                })
                .to_vec()
        }
        _ => idmaps(linux, user)?,
    };
    // The spec's own join (not the node's choice, which lxcri made).
    let joined_userns = ns
        .share
        .iter()
        .find(|(n, _)| *n == Namespace::User)
        .filter(|_| user == Mode::Joined && !idmaps.is_empty())
        .map(|(_, path)| path.clone());
    Ok(NamespacePlan {
        foreign_netns,
        network: (net == Mode::New).then_some(Network::Empty),
        uts_name: uts_name(spec.hostname().as_deref(), uts)?,
        namespaces: ns,
        idmaps,
        joined_userns,
        user: effective_user,
        cgroup,
        net,
        ipc,
        uts,
    })
}

fn idmaps(linux: &Linux, user: Mode) -> Result<Vec<IdMap>> {
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    match user {
        Mode::New => {
            if uids.is_empty() || gids.is_empty() {
                return Err(invalid(
                    "linux.uidMappings",
                    "a new user namespace needs both uidMappings and gidMappings",
                ));
            }
        }
        // LXC maps ids as a joined namespace does only when it is told its
        // mappings; they are checked against it before the start.
        Mode::Joined => return Ok(joined_maps(linux)?.unwrap_or_default()),
        Mode::Host => {
            if !uids.is_empty() || !gids.is_empty() {
                return Err(invalid(
                    "linux.uidMappings",
                    "id mappings need a user namespace (linux.namespaces has none)",
                ));
            }
            return Ok(Vec::new());
        }
    }
    both_maps(uids, gids)
}

/// A user namespace's two lists. Each must map the container's root: runc
/// refuses the create otherwise (`HostRootUID`/`HostRootGID`,
/// libcontainer/configs/config_linux.go, in its words), where LXC would
/// fail deep in its start (chowning the cgroup to a root it cannot name).
fn both_maps(uids: &[LinuxIdMapping], gids: &[LinuxIdMapping]) -> Result<Vec<IdMap>> {
    let mut out = Vec::new();
    for (field, kind, list, id) in [
        ("linux.uidMappings", IdKind::User, uids, "uid"),
        ("linux.gidMappings", IdKind::Group, gids, "gid"),
    ] {
        let maps = idmap_list(field, kind, list)?;
        if !maps.iter().any(|m| m.container_id == 0) {
            return Err(invalid(
                field,
                &format!("user namespaces enabled, but no mapping found for {id} 0"),
            ));
        }
        out.extend(maps);
    }
    Ok(out)
}

/// The mappings a spec that joins a user namespace states for it: none,
/// or both lists (runc then checks they are the namespace's).
fn joined_maps(linux: &Linux) -> Result<Option<Vec<IdMap>>> {
    let uids = linux.uid_mappings().as_deref().unwrap_or_default();
    let gids = linux.gid_mappings().as_deref().unwrap_or_default();
    match (uids.is_empty(), gids.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => both_maps(uids, gids).map(Some),
        (u, _) => Err(invalid(
            if u {
                "linux.uidMappings"
            } else {
                "linux.gidMappings"
            },
            "a joined user namespace's mappings need both uidMappings and gidMappings",
        )),
    }
}

/// The kernel's limit on the lines of one `uid_map`/`gid_map`
/// (`UID_GID_MAP_MAX_EXTENTS`, include/linux/user_namespace.h).
const MAX_EXTENTS: usize = 340;

/// One of `uid_map`/`gid_map`, checked as the kernel's `map_write`
/// (kernel/user_namespace.c) checks it, so a spec it would refuse fails
/// here naming the field instead of as `EINVAL` from inside `lxc-start`.
pub(super) fn idmap_list(field: &str, kind: IdKind, list: &[LinuxIdMapping]) -> Result<Vec<IdMap>> {
    if list.len() > MAX_EXTENTS {
        return Err(invalid(
            &format!("{field}[{MAX_EXTENTS}]"),
            &format!(
                "{} mappings, the kernel takes at most {MAX_EXTENTS}",
                list.len()
            ),
        ));
    }
    // Each side's ids, end exclusive (no overflow: `idmap` checked it).
    let sides = |m: &IdMap| {
        [("containerID", m.container_id), ("hostID", m.host_id)]
            .map(|(name, start)| (name, start, start + m.size))
    };
    let mut out: Vec<IdMap> = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let this = format!("{field}[{i}]");
        let map = idmap(&this, kind, m)?;
        // Each side must be one-to-one: an id with two meanings, inside or
        // on the host, is refused.
        for (j, prev) in out.iter().enumerate() {
            for ((name, start, end), (_, p_start, p_end)) in
                sides(&map).into_iter().zip(sides(prev))
            {
                if start < p_end && p_start < end {
                    return Err(invalid(
                        &format!("{this}.{name}"),
                        &format!(
                            "ids {start}-{} overlap {p_start}-{} of {field}[{j}]",
                            end - 1,
                            p_end - 1
                        ),
                    ));
                }
            }
        }
        out.push(map);
    }
    Ok(out)
}

fn idmap(field: &str, kind: IdKind, m: &LinuxIdMapping) -> Result<IdMap> {
    if m.size() == 0 {
        return Err(invalid(&format!("{field}.size"), "must not be 0"));
    }
    for (name, start) in [("containerID", m.container_id()), ("hostID", m.host_id())] {
        // The last id, 4294967295, is (uid_t)-1, "no id": the kernel maps
        // no range that reaches it.
        if u64::from(start) + u64::from(m.size()) > u64::from(u32::MAX) {
            return Err(invalid(
                &format!("{field}.{name}"),
                &format!(
                    "{} ids from {start} reach 4294967295, (uid_t)-1, which the kernel never maps",
                    m.size()
                ),
            ));
        }
    }
    Ok(IdMap {
        kind,
        container_id: m.container_id(),
        host_id: m.host_id(),
        size: m.size(),
    })
}

/// `lxc.uts.name` for a new UTS namespace. A joined one (a pod's) already
/// has the hostname the sandbox set; the host's cannot be changed (runc
/// refuses that too).
fn uts_name(hostname: Option<&str>, uts: Mode) -> Result<Option<String>> {
    let Some(h) = hostname.filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    validate_hostname(h)?;
    match uts {
        Mode::New => Ok(Some(h.to_string())),
        Mode::Joined => Ok(None),
        Mode::Host => Err(invalid(
            "hostname",
            "setting a hostname needs a UTS namespace in linux.namespaces",
        )),
    }
}

/// RFC 1123 labels (underscores tolerated), at most 64 bytes (the kernel's limit).
pub(super) fn validate_hostname(h: &str) -> Result<()> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if h.len() > 64 || !h.split('.').all(label_ok) {
        return Err(invalid(
            "hostname",
            &format!("{h:?} is not a valid hostname (letters, digits, '-', '.', at most 64 bytes)"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn map(container: u32, host: u32, size: u32) -> Value {
        json!({"containerID": container, "hostID": host, "size": size})
    }

    /// `uids` as `linux.uidMappings`, PVE's range as `gidMappings`.
    fn plan(uids: Vec<Value>) -> Result<Vec<IdMap>> {
        let linux: Linux = serde_json::from_value(json!({
            "uidMappings": uids,
            "gidMappings": [map(0, 100_000, 65536)],
        }))
        .unwrap();
        idmaps(&linux, Mode::New)
    }

    fn refused(uids: Vec<Value>) -> String {
        plan(uids).unwrap_err().to_string()
    }

    #[test]
    fn the_last_id_is_never_mapped() {
        // The kernel's edge: start + size up to 4294967295, on either side.
        let top = u32::MAX - 65536;
        let maps = plan(vec![map(0, top, 65536), map(top, 65536, 65536)]).unwrap();
        assert_eq!((maps[0].host_id, maps[0].size), (top, 65536));
        for (uids, field) in [
            (map(0, top + 1, 65536), "linux.uidMappings[0].hostID: "),
            (map(top + 1, 0, 65536), "linux.uidMappings[0].containerID: "),
            (map(0, u32::MAX, 1), "linux.uidMappings[0].hostID: "),
        ] {
            let err = refused(vec![uids]);
            assert!(err.starts_with(field), "{err}");
            assert!(err.contains("(uid_t)-1"), "{err}");
        }
    }

    #[test]
    fn overlapping_extents_are_refused_on_either_side() {
        // Adjacent on both sides: fine.
        plan(vec![map(0, 100_000, 1000), map(1000, 101_000, 1000)]).unwrap();
        for (uids, want) in [
            (
                vec![map(0, 100_000, 1000), map(999, 200_000, 10)],
                "linux.uidMappings[1].containerID: ids 999-1008 overlap 0-999 of linux.uidMappings[0]",
            ),
            (
                vec![map(0, 100_000, 1000), map(5000, 0, 10), map(2000, 100_500, 1)],
                "linux.uidMappings[2].hostID: ids 100500-100500 overlap 100000-100999 of linux.uidMappings[0]",
            ),
        ] {
            assert_eq!(refused(uids), want);
        }
        // The uid and gid maps are separate: the same host ids in both are fine.
        let linux: Linux = serde_json::from_value(json!({
            "uidMappings": [map(0, 100_000, 65536)],
            "gidMappings": [map(0, 100_000, 65536)],
        }))
        .unwrap();
        assert_eq!(idmaps(&linux, Mode::New).unwrap().len(), 2);
    }

    #[test]
    fn the_containers_root_must_be_mapped() {
        // cri-tools' "runtime should fail if container ID 0 is not mapped".
        assert_eq!(
            refused(vec![map(1, 1000, 100_000)]),
            "linux.uidMappings: user namespaces enabled, but no mapping found for uid 0"
        );
        // Anywhere in the list.
        plan(vec![map(1, 200_000, 10), map(0, 100_000, 1)]).unwrap();
        for user in [Mode::New, Mode::Joined] {
            let linux: Linux = serde_json::from_value(json!({
                "uidMappings": [map(0, 100_000, 65536)],
                "gidMappings": [map(5, 100_000, 65536)],
            }))
            .unwrap();
            assert_eq!(
                idmaps(&linux, user).unwrap_err().to_string(),
                "linux.gidMappings: user namespaces enabled, but no mapping found for gid 0",
                "{user:?}"
            );
        }
    }

    #[test]
    fn at_most_340_extents() {
        let many = |n: u32| (0..n).map(|i| map(i, 100_000 + i, 1)).collect::<Vec<_>>();
        assert_eq!(plan(many(340)).unwrap().len(), 341);
        assert_eq!(
            refused(many(341)),
            "linux.uidMappings[340]: 341 mappings, the kernel takes at most 340"
        );
    }
}
