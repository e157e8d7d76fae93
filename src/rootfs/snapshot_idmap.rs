//! containerd 2's overlay snapshotter marks a user-namespaced pod's rootfs
//! (`hostUsers: false`) with `uidmap=`/`gidmap=` options: its image layers
//! are to be id-mapped when mounted, as containerd's own mount code does
//! for runc (its upper layer already belongs to the mapped root). lxcri
//! reads the mapping from the options and shifts the layers into it as
//! for `userns.unprivileged` ([`super::idmap`], which leaves the options
//! out of the overlay it mounts).

use super::{RootfsError, RootfsMount};
use crate::userns::IdRange;

const UIDMAP: &str = "uidmap=";
const GIDMAP: &str = "gidmap=";

/// Whether `option` is one of containerd's id-mapping requests.
pub(super) fn is_idmap_option(option: &str) -> bool {
    option.starts_with(UIDMAP) || option.starts_with(GIDMAP)
}

/// The range `mounts`' `uidmap=`/`gidmap=` options map container ids
/// `0..len` to. Both must be there, alike, and one range from container
/// id 0 (what the kubelet hands out), or the rootfs is refused naming the
/// option.
pub fn snapshot_idmap(mounts: &[RootfsMount]) -> Result<Option<IdRange>, RootfsError> {
    let mut found: Option<IdRange> = None;
    for (index, m) in mounts.iter().enumerate() {
        let uid = m.options.iter().find_map(|o| o.strip_prefix(UIDMAP));
        let gid = m.options.iter().find_map(|o| o.strip_prefix(GIDMAP));
        let (uid, gid) = match (uid, gid) {
            (None, None) => continue,
            (Some(u), Some(g)) => (u.to_string(), g.to_string()),
            (u, _) => {
                let missing = if u.is_some() { GIDMAP } else { UIDMAP };
                return Err(refused(
                    index,
                    missing,
                    "",
                    "both uidmap and gidmap are needed",
                ));
            }
        };
        if uid != gid {
            return Err(refused(
                index,
                GIDMAP,
                &gid,
                "differs from uidmap; lxcri shifts a rootfs by one mapping",
            ));
        }
        let range = parse_range(&uid).ok_or_else(|| {
            refused(
                index,
                UIDMAP,
                &uid,
                "expected one range from container id 0, `0:HOST:SIZE`",
            )
        })?;
        if found.is_some_and(|earlier| earlier != range) {
            return Err(refused(
                index,
                UIDMAP,
                &uid,
                "differs from an earlier mount's",
            ));
        }
        found = Some(range);
    }
    Ok(found)
}

fn refused(index: usize, option: &str, value: &str, why: &str) -> RootfsError {
    RootfsError::SnapshotIdmap {
        index,
        option: format!("{option}{value}"),
        why: why.to_string(),
    }
}

fn parse_range(text: &str) -> Option<IdRange> {
    let mut n = text.split(':').map(|f| f.parse::<u32>().ok());
    let (inside, host_start, len) = (n.next()??, n.next()??, n.next()??);
    (n.next().is_none() && inside == 0 && len > 0 && host_start.checked_add(len).is_some())
        .then_some(IdRange { host_start, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn overlay(extra: &[&str]) -> RootfsMount {
        let mut options = vec!["index=off".to_string(), "lowerdir=/l".to_string()];
        options.extend(extra.iter().map(|s| s.to_string()));
        RootfsMount {
            kind: "overlay".into(),
            source: "overlay".into(),
            options,
        }
    }

    #[test]
    fn the_snapshotters_mapping_is_read_from_the_options() {
        let mounts = [overlay(&[
            "uidmap=0:2621440:65536",
            "gidmap=0:2621440:65536",
        ])];
        let range = snapshot_idmap(&mounts).unwrap();
        assert_eq!(
            range,
            Some(IdRange {
                host_start: 2621440,
                len: 65536
            })
        );
        assert_eq!(snapshot_idmap(&[overlay(&[])]).unwrap(), None);
    }

    #[test]
    fn mappings_lxcri_cannot_shift_by_are_refused_naming_the_option() {
        for (extra, named) in [
            (&["uidmap=0:100000:65536"][..], "gidmap="),
            (&["gidmap=0:100000:65536"][..], "uidmap="),
            (
                &["uidmap=0:100000:65536", "gidmap=0:200000:65536"][..],
                "gidmap=0:200000:65536",
            ),
            (
                &["uidmap=0:100000:10,10:5:1", "gidmap=0:100000:10,10:5:1"][..],
                "uidmap=0:100000:10,10:5:1",
            ),
            (
                &["uidmap=1:100000:10", "gidmap=1:100000:10"][..],
                "uidmap=1:100000:10",
            ),
            (&["uidmap=0:x:10", "gidmap=0:x:10"][..], "uidmap=0:x:10"),
        ] {
            let e = snapshot_idmap(&[overlay(extra)]).unwrap_err().to_string();
            assert!(
                e.contains("rootfs mount 0") && e.contains(named),
                "{extra:?}: {e}"
            );
        }
    }
}
