//! The binds lxcri's share helper makes from the host instead of LXC
//! ([`SharedMount`]): `rshared` binds, id-mapped binds and binds inside
//! other binds, in the spec's order.

use std::path::Path;

use oci_spec::runtime::Mount;

use lxcri_init_spec::{
    IdRange, IdmapSource, MountAttrs, MountIdmap, MountPropagation, Propagation, RecursiveAttrs,
    SharedMount,
};

use super::mount_flags::{bind_remount, is_bind_entry};
use super::namespaces::idmap_list;
use super::{invalid, unsupported, Result};
use crate::lxc::{IdKind, MountEntry};

/// runc's options for an id-mapped bind: of the bind's own mount, or of
/// every mount below it too. The share helper makes such binds.
pub(super) const IDMAP_OPTIONS: [&str; 2] = ["idmap", "ridmap"];

/// What the pass over LXC's entries ([`defer_to_helper`]) needs to know of
/// each.
pub(super) struct Origin {
    /// Its OCI field, for errors about it.
    pub field: String,
    /// Its recursive attributes (`rro`, ...).
    pub recursive: Option<MountAttrs>,
    /// An `rshared` bind: the helper's copy covers LXC's bind.
    pub shared: bool,
    /// An id-mapped bind, which the helper makes instead of LXC.
    pub idmap: Option<MountIdmap>,
}

/// LXC's entries split between LXC and the helper.
pub(super) struct HelperSplit {
    /// What LXC still mounts.
    pub entries: Vec<MountEntry>,
    /// What the helper binds, in the spec's order.
    pub shared: Vec<SharedMount>,
    /// The init's: recursive attributes of binds LXC makes, with the
    /// place of each bind in `entries`.
    pub recursive_attrs: Vec<(usize, RecursiveAttrs)>,
    /// Per entry: the helper's copy covers it (an `rshared` bind).
    pub helper_covers: Vec<bool>,
}

/// Takes the binds the share helper makes out of LXC's `entries` (made
/// from the spec's mounts `origins`), in the spec's order: id-mapped binds
/// (only a bind made from the host can be one), and mounts whose
/// destination lies in a bind
/// mounted before them: LXC makes mount points (`create=dir|file`) before
/// `pivot_root`, following any link on the way, and a volume's content is
/// the containers': a link `evil -> /` left in a volume would carry the
/// mount point, and the mount, onto the host. The helper works inside the
/// container's mount namespace, where links resolve in the container's
/// root (as runc resolves every destination). Other filesystems inside a
/// bind are refused. `rshared` binds stay LXC's too, the helper's copy on
/// top. The recursive attributes of the binds LXC keeps become the init's.
/// A deferred mount's propagation is taken out of `propagation` (the
/// init's: the helper sets it), and `cgroup_at`, the index of the cgroup
/// mount in `entries`, moves up with every entry taken out before it.
pub(super) fn defer_to_helper(
    entries: Vec<MountEntry>,
    origins: Vec<Origin>,
    propagation: &mut Vec<MountPropagation>,
    cgroup_at: &mut usize,
) -> Result<HelperSplit> {
    let mut split = HelperSplit {
        entries: Vec::new(),
        shared: Vec::new(),
        recursive_attrs: Vec::new(),
        helper_covers: Vec::new(),
    };
    let mut binds: Vec<String> = Vec::new();
    // With their place in the spec and field, to tell what covers what.
    let mut kept: Vec<(usize, String, MountEntry)> = Vec::with_capacity(entries.len());
    let mut helper: Vec<(usize, String)> = Vec::new();
    let cgroup_was = *cgroup_at;
    for (i, (entry, origin)) in entries.into_iter().zip(origins).enumerate() {
        let inside = binds
            .iter()
            .find(|b| {
                **b != entry.destination
                    && Path::new(&entry.destination).starts_with(Path::new(b.as_str()))
            })
            .cloned();
        let bind = is_bind_entry(&entry);
        if bind {
            binds.push(entry.destination.clone());
        }
        let destination = format!("/{}", entry.destination);
        if inside.is_none() && origin.idmap.is_none() {
            if origin.shared {
                let own = propagation
                    .iter()
                    .find(|p| p.destination == destination)
                    .map(|p| p.propagation);
                // The copy covers LXC's bind: the helper sets the recursive
                // attributes on it instead.
                split.shared.push(shared_mount(&entry, own, false, &origin));
                helper.push((i, origin.field.clone()));
            } else if let Some(attrs) = origin.recursive {
                split
                    .recursive_attrs
                    .push((kept.len(), RecursiveAttrs { destination, attrs }));
            }
            split.helper_covers.push(origin.shared);
            kept.push((i, origin.field, entry));
            continue;
        }
        if i < cgroup_was {
            *cgroup_at -= 1;
        }
        if !bind {
            let volume = inside.unwrap_or_default();
            return Err(unsupported(
                &format!("{}.destination", origin.field),
                &format!(
                    "a {} mount inside the bind mount at /{volume}: only binds can go there (its mount point would be made following links in that volume)",
                    entry.fstype
                ),
            ));
        }
        let own = propagation
            .iter()
            .position(|p| p.destination == destination)
            .map(|i| propagation.remove(i).propagation);
        split.shared.push(shared_mount(&entry, own, true, &origin));
        helper.push((i, origin.field));
    }
    // The helper binds after all of LXC's mounts, where runc made each in
    // the spec's order: a later mount at or above one of its binds would
    // end up beneath it instead of covering it.
    for ((at, field), shared) in helper.iter().zip(&split.shared) {
        let dest = Path::new(shared.destination.trim_start_matches('/'));
        if let Some((_, later, e)) = kept
            .iter()
            .find(|(j, _, e)| j > at && dest.starts_with(&e.destination))
        {
            return Err(unsupported(
                &format!("{field}.destination"),
                &format!(
                    "{} is bound by lxcri's share helper after the other mounts, so {later} at /{}, after it in the spec, cannot cover it",
                    shared.destination, e.destination
                ),
            ));
        }
    }
    split.entries = kept.into_iter().map(|(_, _, e)| e).collect();
    Ok(split)
}

/// The share helper's bind for LXC's `entry`.
fn shared_mount(
    entry: &MountEntry,
    propagation: Option<Propagation>,
    create: bool,
    origin: &Origin,
) -> SharedMount {
    SharedMount {
        source: entry.source.clone(),
        destination: format!("/{}", entry.destination),
        flags: bind_remount(&entry.options),
        readonly: false,
        nosuid: false,
        nodev: false,
        noexec: false,
        propagation,
        create,
        rbind: entry.options.iter().any(|o| o == "rbind"),
        idmap: origin.idmap.clone(),
        recursive: origin.recursive,
    }
}

/// The id mapping of mount `m`, as runc takes it: its `uidMappings` and
/// `gidMappings` (both or neither), or the container's with `idmap` or
/// `ridmap` alone; not recursive unless `ridmap` is the last of the two.
pub(super) fn mount_idmap(
    field: &str,
    m: &Mount,
    options: &[String],
    is_bind: bool,
    userns: bool,
) -> Result<Option<MountIdmap>> {
    let option = options
        .iter()
        .rev()
        .find(|o| IDMAP_OPTIONS.contains(&o.as_str()));
    let (uids, gids) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    if option.is_none() && uids.is_none() && gids.is_none() {
        return Ok(None);
    }
    if !is_bind {
        return Err(unsupported(
            field,
            "id-mapped mounts (uidMappings, gidMappings, idmap, ridmap) are bind mounts only",
        ));
    }
    let ranges = |list, name: &str, kind| -> Result<Vec<IdRange>> {
        Ok(idmap_list(&format!("{field}.{name}"), kind, list)?
            .into_iter()
            .map(|m| IdRange {
                inside: m.container_id,
                outside: m.host_id,
                size: m.size,
            })
            .collect())
    };
    let mapping = match (uids, gids) {
        (None, None) if userns => IdmapSource::Container,
        (None, None) => {
            return Err(invalid(
                &format!("{field}.uidMappings"),
                "an id-mapped mount without mappings takes the container's user namespace's, but the container has none",
            ))
        }
        (Some(u), Some(g)) if !u.is_empty() && !g.is_empty() => IdmapSource::Ranges {
            uid: ranges(u, "uidMappings", IdKind::User)?,
            gid: ranges(g, "gidMappings", IdKind::Group)?,
        },
        (u, _) => {
            let missing = if u.is_some_and(|u| !u.is_empty()) {
                "gidMappings"
            } else {
                "uidMappings"
            };
            return Err(invalid(
                &format!("{field}.{missing}"),
                "an id-mapped mount needs both uidMappings and gidMappings",
            ));
        }
    };
    Ok(Some(MountIdmap {
        mapping,
        recursive: option.is_some_and(|o| o == "ridmap"),
    }))
}
