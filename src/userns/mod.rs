//! Node-chosen user namespaces (`userns.unprivileged`): every container
//! whose spec asks for no user namespace gets one, with a range of host ids
//! of its own from a configured pool ([`IdPool`]), never shared with
//! another running container and freed when it is deleted ([`IdSlots`]).

mod held_child;
mod pool;
mod slots;

pub use held_child::{Enter, HeldChild};
pub use pool::{IdPool, IdPoolError, IdRange, MIN_POOL_START, PVE_CT_IDS};
pub use slots::{IdSlots, SlotError};

/// Whether a `uid_map` is not the initial user namespace's (`0 0
/// 4294967295`): lxcri itself runs nested (in an unprivileged CT, say),
/// where the kernel refuses `mknod` of devices, as runc's
/// `userns.RunningInUserNS` decides.
pub fn is_nested_uid_map(uid_map: &str) -> bool {
    let fields: Vec<&str> = uid_map.split_whitespace().collect();
    fields != ["0", "0", "4294967295"]
}

/// [`is_nested_uid_map`] of this process (not nested when unreadable),
/// read once: a process never changes its user namespace here.
pub fn runs_in_user_namespace() -> bool {
    static NESTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NESTED.get_or_init(|| {
        std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| is_nested_uid_map(&m))
    })
}

/// The id a `uid_map` or `gid_map` (`inside outside count` lines) gives
/// to the namespace's id 0, as seen by the reader: `None` when 0 is not
/// mapped.
pub fn host_id_of_root(map: &str) -> Option<u32> {
    map_lines(map)
        .find_map(|(inside, outside, count)| (inside == 0 && count > 0).then_some(outside))
}

/// The `inside outside count` lines of a `uid_map` or `gid_map`.
pub fn map_lines(map: &str) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
    map.lines().filter_map(|line| {
        let mut fields = line.split_whitespace().map(str::parse::<u32>);
        match (fields.next(), fields.next(), fields.next()) {
            (Some(Ok(inside)), Some(Ok(outside)), Some(Ok(count))) => {
                Some((inside, outside, count))
            }
            _ => None,
        }
    })
}

/// The uid and gid that the root of process `pid`'s user namespace is
/// outside it, when that namespace is not this process's own: what a pipe
/// or file must belong to for the container's root to own it. `None` in
/// this process's namespace (a container without one).
pub fn root_ids_of(pid: i32) -> std::io::Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
    let theirs = std::fs::metadata(proc.join("ns/user"))?;
    let ours = std::fs::metadata("/proc/self/ns/user")?;
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Ok(None);
    }
    let map = |name: &str| -> std::io::Result<u32> {
        let text = std::fs::read_to_string(proc.join(name))?;
        host_id_of_root(&text).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("/proc/{pid}/{name} maps no id 0: {text:?}"),
            )
        })
    };
    Ok(Some((map("uid_map")?, map("gid_map")?)))
}

#[cfg(test)]
mod nested_tests {
    use super::{host_id_of_root, is_nested_uid_map};

    #[test]
    fn the_root_of_a_map_is_the_line_of_inside_id_0() {
        assert_eq!(
            host_id_of_root("         0     200000      65536\n"),
            Some(200_000)
        );
        assert_eq!(
            host_id_of_root("1000 1000 1\n0 100000 1000\n"),
            Some(100_000)
        );
        assert_eq!(host_id_of_root("1 100001 65535\n"), None);
        assert_eq!(host_id_of_root(""), None);
        assert_eq!(host_id_of_root("0 5 0\n"), None);
    }

    #[test]
    fn only_the_initial_namespaces_map_is_not_nested() {
        assert!(!is_nested_uid_map("         0          0 4294967295\n"));
        assert!(is_nested_uid_map("         0     100000      65536\n"));
        assert!(is_nested_uid_map("0 0 1000\n1000 1000 1\n"));
    }
}
