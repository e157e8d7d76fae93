//! The parameter names the PVE 9.1 schema lists for the two endpoints that
//! take a CT config. A test compares these lists with
//! `tests/data/pve-api/schema.json`, so a schema update shows up as a test
//! failure rather than as a 400 from a real node.

use std::fmt;

/// The endpoint a set of parameters is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiEndpoint {
    /// `POST /nodes/{node}/lxc`.
    Create,
    /// `PUT /nodes/{node}/lxc/{vmid}/config`.
    Update,
}

impl fmt::Display for ApiEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApiEndpoint::Create => "POST /nodes/{node}/lxc",
            ApiEndpoint::Update => "PUT /nodes/{node}/lxc/{vmid}/config",
        })
    }
}

/// Keys of both endpoints (`node` and `vmid` are path parameters of
/// `Update`; `node` is one of `Create`).
pub(super) const COMMON_KEYS: &[&str] = &[
    "arch",
    "cmode",
    "console",
    "cores",
    "cpulimit",
    "cpuunits",
    "debug",
    "description",
    "entrypoint",
    "env",
    "features",
    "hookscript",
    "hostname",
    "lock",
    "memory",
    "nameserver",
    "onboot",
    "ostype",
    "protection",
    "rootfs",
    "searchdomain",
    "startup",
    "swap",
    "tags",
    "template",
    "timezone",
    "tty",
    "unprivileged",
];

pub(super) const CREATE_ONLY_KEYS: &[&str] = &[
    "bwlimit",
    "force",
    "ha-managed",
    "ignore-unpack-errors",
    "ostemplate",
    "password",
    "pool",
    "restore",
    "ssh-public-keys",
    "start",
    "storage",
    "unique",
    "vmid",
];

pub(super) const UPDATE_ONLY_KEYS: &[&str] = &["delete", "digest", "revert"];

/// `name[n]` families and how many of each PVE supports
/// (`$MAX_LXC_NETWORKS`, `$MAX_MOUNT_POINTS`, `$MAX_DEVICES`, unused disks
/// in pve-container).
pub(super) const INDEXED_KEYS: &[(&str, u32)] =
    &[("dev", 256), ("mp", 256), ("net", 32), ("unused", 256)];

/// Whether the schema knows `key` for `endpoint`.
pub(super) fn is_known(endpoint: ApiEndpoint, key: &str) -> bool {
    if COMMON_KEYS.contains(&key) {
        return true;
    }
    let only = match endpoint {
        ApiEndpoint::Create => CREATE_ONLY_KEYS,
        ApiEndpoint::Update => UPDATE_ONLY_KEYS,
    };
    if only.contains(&key) {
        return true;
    }
    INDEXED_KEYS.iter().any(|(family, max)| {
        key.strip_prefix(family).is_some_and(|n| {
            !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'))
                && n.parse::<u32>().is_ok_and(|i| i < *max)
        })
    })
}
