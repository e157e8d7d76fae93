//! OCI `linux.sysctl` and `domainname` -> `lxc.sysctl.<key>`.
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

/// The UTS namespace's NIS domain name, which `kernel.domainname` holds.
const DOMAINNAME: &str = "kernel.domainname";

/// OCI `domainname` as the `kernel.domainname` sysctl: LXC has no key of
/// its own for it, and writing the sysctl in the container's UTS namespace
/// is what runc's setdomainname(2) does. runc sets it before the sysctls,
/// so one the spec's `linux.sysctl` gives wins. Like runc, it needs a UTS
/// namespace of the container's (runc: libcontainer/configs/validate
/// `hostname`), and the kernel takes at most 64 bytes (`__NEW_UTS_LEN`).
pub(super) fn add_domainname(
    sysctls: &mut Vec<(String, String)>,
    domainname: Option<&str>,
    uts: Mode,
) -> Result<()> {
    let Some(name) = domainname.filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    if name.len() > 64 {
        return Err(invalid("domainname", "longer than 64 bytes"));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err(invalid(
            "domainname",
            "contains a control character or surrounding whitespace",
        ));
    }
    if uts == Mode::Host {
        return Err(invalid(
            "domainname",
            "setting a domain name needs a UTS namespace in linux.namespaces",
        ));
    }
    if !sysctls.iter().any(|(key, _)| key == DOMAINNAME) {
        sysctls.push((DOMAINNAME.to_string(), name.to_string()));
        sysctls.sort();
    }
    Ok(())
}
