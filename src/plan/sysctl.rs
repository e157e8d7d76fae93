//! OCI `linux.sysctl` -> `lxc.sysctl.<key>`.
//!
//! LXC writes these into `/proc/sys` inside the container. Only sysctls
//! that belong to one of the container's own namespaces are accepted
//! (the same rule as runc): anything else would change the host.

use std::collections::HashMap;

use super::namespaces::Mode;
use super::{invalid, Result};

/// IPC-namespaced sysctls outside `fs.mqueue.*`.
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Checked sysctls sorted by key (the spec's map has no order).
pub(super) fn plan_sysctls(
    sysctl: Option<&HashMap<String, String>>,
    net: Mode,
    ipc: Mode,
    uts: Mode,
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = sysctl
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.sort();
    for (key, value) in &out {
        let field = format!("linux.sysctl[{key:?}]");
        let key_ok = !key.is_empty()
            && !key.contains("..")
            && !key.starts_with(['.', '/'])
            && !key.ends_with(['.', '/'])
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'));
        if !key_ok {
            return Err(invalid(&field, "not a sysctl name ([A-Za-z0-9_./-])"));
        }
        if value.is_empty() || value.chars().any(char::is_control) {
            return Err(invalid(
                &field,
                "value is empty or contains a control character",
            ));
        }
        let (ns, mode) = if key.starts_with("net.") {
            ("network", net)
        } else if key.starts_with("fs.mqueue.") || IPC_SYSCTLS.contains(&key.as_str()) {
            ("ipc", ipc)
        } else if key == "kernel.hostname" || key == "kernel.domainname" {
            ("uts", uts)
        } else {
            return Err(invalid(
                &field,
                "not namespaced: setting it would change the host",
            ));
        };
        if mode == Mode::Host {
            return Err(invalid(
                &field,
                &format!("needs the container's own {ns} namespace, but it shares the host's"),
            ));
        }
    }
    Ok(out)
}
