//! Node-chosen user namespaces (`userns.unprivileged`): every container
//! whose spec asks for no user namespace gets one, with a range of host ids
//! of its own from a configured pool ([`IdPool`]), never shared with
//! another running container and freed when it is deleted ([`IdSlots`]).

mod pool;
mod slots;

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

#[cfg(test)]
mod nested_tests {
    use super::is_nested_uid_map;

    #[test]
    fn only_the_initial_namespaces_map_is_not_nested() {
        assert!(!is_nested_uid_map("         0          0 4294967295\n"));
        assert!(is_nested_uid_map("         0     100000      65536\n"));
        assert!(is_nested_uid_map("0 0 1000\n1000 1000 1\n"));
    }
}
